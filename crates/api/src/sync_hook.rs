//! The hook of the sync extension (feature `sync`): its status at
//! `GET /v2/_zot/ext/sync` (any authenticated caller), and, in on-demand
//! mode, before
//! a manifest `GET`/`HEAD` by tag, or by a digest not stored here, and
//! before a referrers `GET`, the registry asks [`OnDemand`] to fetch from
//! upstream, then answers from local storage as always. The request has
//! been authenticated and authorised first; the fetch's own failures are
//! the extension's to log, and the client gets the local answer.
//!
//! Streaming pull-through: a manifest fetched whose image is still being
//! copied is answered at once ([`PendingManifest`]); a blob `GET` for a
//! blob not stored here asks [`SyncHook::blob`], which joins or starts its
//! transfer from upstream, and the body follows it as it arrives
//! ([`PulledBlob`]): its last byte only once the blob is verified, an
//! error (a cut-off response) when the transfer fails. A blob `HEAD` for
//! a blob arriving ([`SyncHook::blob_size`]: its pull in flight, or an
//! image being copied names it) answers as for a stored blob.
//!
//! containerd, using this registry as a mirror, adds `?ns=<registry>` to
//! its requests: the namespace is passed on so that only the upstreams of
//! that registry are asked.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use zot_oci::{Digest, Reference, RepoName};

/// A boxed future of the hook.
pub type Fetch<'a, T = ()> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A manifest fetched from upstream whose image is still being copied.
#[derive(Debug, Clone)]
pub struct PendingManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// A body of a blob arriving from upstream.
pub type PulledBody = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A blob being pulled through.
pub trait PulledBlob: Send {
    /// Its size, when upstream said.
    fn size(&self) -> Option<u64>;
    /// Bytes `start..end` (`None`: to the end) as they arrive.
    fn read(self: Box<Self>, start: u64, end: Option<u64>) -> PulledBody;
}

/// What the sync extension hands the API.
pub trait SyncHook: Send + Sync {
    /// Whether sync is on now (a reload may turn it on or off); off, its
    /// status is not served and nothing is fetched.
    fn enabled(&self) -> bool {
        true
    }
    /// Whether some upstream has `onDemand` (else the fetches below are
    /// never asked for, and requests pay nothing for the extension).
    fn on_demand(&self) -> bool;
    /// The status document (JSON) of `GET /v2/_zot/ext/sync`.
    fn status(&self) -> String;
    /// Brings `repo:reference` from upstream when it is mapped there (from
    /// the upstreams of registry `ns` only, when given).
    /// Returns the manifest when it was fetched but is not stored yet.
    fn manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a Reference,
        ns: Option<&'a str>,
    ) -> Fetch<'a, Option<PendingManifest>>;
    /// Blob `digest` of `repo`, not stored here, from upstream (`None`
    /// when no upstream has it).
    fn blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> Fetch<'a, Option<Box<dyn PulledBlob>>>;
    /// The size of blob `digest` of `repo`, not stored here, when it is
    /// arriving from upstream (a `HEAD` then answers as for a stored blob).
    fn blob_size<'a>(&'a self, repo: &'a RepoName, digest: &'a Digest) -> Fetch<'a, Option<u64>>;
    /// Brings the referrers of `subject` in `repo` from upstream.
    fn referrers<'a>(&'a self, repo: &'a RepoName, subject: &'a Digest) -> Fetch<'a>;
}

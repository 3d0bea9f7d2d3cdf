//! The hook of the sync extension (feature `sync`): its status at
//! `GET /v2/_zot/ext/sync` (any authenticated caller), and, in on-demand
//! mode, before
//! a manifest `GET`/`HEAD` by tag, or by a digest not stored here, and
//! before a referrers `GET`, the registry asks [`OnDemand`] to fetch from
//! upstream, then answers from local storage as always. The request has
//! been authenticated and authorised first; the fetch's own failures are
//! the extension's to log, and the client gets the local answer.
//!
//! containerd, using this registry as a mirror, adds `?ns=<registry>` to
//! its requests: the namespace is passed on so that only the upstreams of
//! that registry are asked.

use std::future::Future;
use std::pin::Pin;

use zot_oci::{Digest, Reference, RepoName};

/// A boxed future of the hook.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

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
    fn manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a Reference,
        ns: Option<&'a str>,
    ) -> Fetch<'a>;
    /// Brings the referrers of `subject` in `repo` from upstream.
    fn referrers<'a>(&'a self, repo: &'a RepoName, subject: &'a Digest) -> Fetch<'a>;
}

//! Reads of stored documents that get parsed (manifests, image configs),
//! bounded by the manifest size limit.
//!
//! Invariants:
//! - Nothing is parsed from a blob larger than [`MAX_MANIFEST_BYTES`]: the
//!   size is checked before reading, and the read itself stops at the size
//!   found, so background work (GC, rebuild, scrub, lint) never loads a
//!   layer into memory because something named it as a manifest or config.
//! - [`Registry::read_listed_manifest`] tells a manifest apart from a blob
//!   that is none (too large, not JSON, not a manifest) and from one that
//!   cannot be read now (an I/O error, content that no longer matches its
//!   digest): only the last leaves its references unknown.

use crate::paths;
use crate::registry::Registry;
use std::io;
use zot_oci::{Descriptor, Digest, ParsedManifest, RepoName};

/// The largest manifest accepted on push, and the most read from storage
/// for parsing: 4 MiB, as zot and distribution.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Bytes one batch of document reads may hold (beyond its last document):
/// a layout naming many large documents is read a part at a time.
pub(crate) const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// A listed manifest, as read for GC and the start-up rebuild.
#[derive(Debug)]
pub(crate) enum ListedManifest {
    Parsed(Box<ParsedManifest>),
    /// Not there.
    Missing,
    /// Larger than [`MAX_MANIFEST_BYTES`]: not read, so not a manifest.
    TooLarge(u64),
    /// Present and intact, but not a manifest this registry parses (not
    /// JSON, or JSON of no supported kind): `mentions` are the digests found
    /// in its JSON (none when it is not JSON), the references to keep in
    /// case it is a manifest after all (e.g. Docker schema 1).
    NotManifest {
        why: String,
        mentions: Vec<Digest>,
    },
    /// Cannot be read now, or its content does not match its digest: its
    /// references are unknown.
    Unreadable(io::Error),
}

/// Every string in `doc` that is a digest.
fn mentioned_digests(doc: &serde_json::Value, out: &mut Vec<Digest>) {
    match doc {
        serde_json::Value::String(s) => out.extend(s.parse::<Digest>().ok()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| mentioned_digests(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| mentioned_digests(v, out)),
        _ => {}
    }
}

impl Registry {
    /// The content of a blob of `repo` that is to be parsed, at most
    /// [`MAX_MANIFEST_BYTES`]: `NotFound` when missing, `FileTooLarge` when
    /// larger.
    pub(crate) async fn read_document(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> io::Result<Vec<u8>> {
        let read = self
            .backend
            .read_at_most(&paths::blob(repo, digest), MAX_MANIFEST_BYTES)
            .await;
        self.resolve_read(repo, digest, read).await
    }

    /// Reads and parses a manifest listed in `index.json` or by an index.
    pub(crate) async fn read_listed_manifest(
        &self,
        repo: &RepoName,
        desc: &Descriptor,
    ) -> ListedManifest {
        self.read_listed(repo, desc).await.0
    }

    /// [`Registry::read_listed_manifest`], with the bytes read when they
    /// are the manifest's (verified against its digest), else empty.
    pub(crate) async fn read_listed(
        &self,
        repo: &RepoName,
        desc: &Descriptor,
    ) -> (ListedManifest, Vec<u8>) {
        let read = self.read_document(repo, &desc.digest).await;
        self.listed_from(repo, desc, read).await
    }

    /// Several [`Registry::read_document`]s of `repo` in one batch (see
    /// [`crate::Backend::read_many_at_most`]), by digest; those left unread
    /// by the batch's memory budget ([`BATCH_BYTES`]) are absent.
    pub(crate) async fn read_documents(
        &self,
        repo: &RepoName,
        digests: Vec<Digest>,
    ) -> std::collections::HashMap<Digest, io::Result<Vec<u8>>> {
        let keys = digests.iter().map(|d| paths::blob(repo, d)).collect();
        let read = self
            .backend
            .read_many_at_most(keys, MAX_MANIFEST_BYTES, BATCH_BYTES)
            .await;
        let mut out = std::collections::HashMap::new();
        for (d, r) in digests.into_iter().zip(read) {
            if let Some(r) = r {
                let r = self.resolve_read(repo, &d, r).await;
                out.insert(d, r);
            }
        }
        out
    }

    /// Classifies the result `read` of reading the manifest `desc` names.
    pub(crate) async fn listed_from(
        &self,
        repo: &RepoName,
        desc: &Descriptor,
        read: io::Result<Vec<u8>>,
    ) -> (ListedManifest, Vec<u8>) {
        let bytes = match read {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return (ListedManifest::Missing, Vec::new());
            }
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                let size = self.blob_size(repo, &desc.digest).await.ok().flatten();
                let size = size.unwrap_or(MAX_MANIFEST_BYTES + 1);
                return (ListedManifest::TooLarge(size), Vec::new());
            }
            Err(e) => return (ListedManifest::Unreadable(e), Vec::new()),
        };
        if !desc.digest.verify(&bytes) {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                "content does not match its digest",
            );
            return (ListedManifest::Unreadable(e), Vec::new());
        }
        let listed = Self::parse_listed(&bytes, desc);
        (listed, bytes)
    }

    fn parse_listed(bytes: &[u8], desc: &Descriptor) -> ListedManifest {
        match ParsedManifest::parse(bytes, Some(&desc.media_type), true) {
            Ok(p) => ListedManifest::Parsed(Box::new(p)),
            Err(e) => {
                let mut mentions = Vec::new();
                if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) {
                    mentioned_digests(&doc, &mut mentions);
                }
                ListedManifest::NotManifest {
                    why: e.to_string(),
                    mentions,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_anywhere_in_a_document_are_mentions() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let doc = serde_json::json!({
            "schemaVersion": 1,
            "fsLayers": [{"blobSum": a.to_string()}],
            "x": {"y": [1, "not a digest", b.to_string()]},
        });
        let mut found = Vec::new();
        mentioned_digests(&doc, &mut found);
        found.sort_by_key(|d| d.to_string());
        let mut want = vec![a, b];
        want.sort_by_key(|d| d.to_string());
        assert_eq!(found, want);
    }
}

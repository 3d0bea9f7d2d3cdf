//! Manifests fetched on demand whose image is still being copied: the
//! request that asked is answered with the manifest at once, and its blobs
//! are pulled through as the client asks for them (`pull.rs`), instead of
//! the client waiting for the whole copy.
//!
//! Invariants:
//! - An entry lives from the moment its manifest was fetched (and
//!   verified by the client) until its copy ended, stored or not: after
//!   that the local store answers.
//! - Bounded: at most [`MAX_PENDING`] entries and [`MAX_PENDING_BYTES`] of
//!   manifests; beyond, a manifest is not published and its request waits
//!   for the copy as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zot_client::Manifest;
use zot_oci::{Digest, ParsedManifest, RepoName};

pub const MAX_PENDING: usize = 1024;
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Key: local repository, the reference asked for (tag or digest), and
/// containerd's `?ns=` (empty without).
type Key = (RepoName, String, String);

#[derive(Default)]
pub struct Pending {
    map: Mutex<(HashMap<Key, Arc<Manifest>>, usize)>,
}

impl Pending {
    /// The manifest pending for `repo:reference`.
    pub fn get(&self, (repo, ns): (&RepoName, &str), reference: &str) -> Option<Arc<Manifest>> {
        let key = (repo.clone(), reference.to_owned(), ns.to_owned());
        self.map.lock().ok()?.0.get(&key).cloned()
    }

    /// Publishes `manifest` under each of `references`; false when the
    /// bounds refuse it.
    pub fn publish(
        &self,
        (repo, ns): (&RepoName, &str),
        references: &[String],
        manifest: &Arc<Manifest>,
    ) -> bool {
        let Ok(mut guard) = self.map.lock() else {
            return false;
        };
        let (map, bytes) = &mut *guard;
        let adding = manifest.bytes.len() * references.len();
        if map.len() + references.len() > MAX_PENDING || *bytes + adding > MAX_PENDING_BYTES {
            return false;
        }
        for r in references {
            let key = (repo.clone(), r.clone(), ns.to_owned());
            if let Some(old) = map.insert(key, manifest.clone()) {
                *bytes -= old.bytes.len();
            }
            *bytes += manifest.bytes.len();
        }
        true
    }

    /// Drops the entries of `references` that still hold `manifest`.
    pub fn retract(
        &self,
        (repo, ns): (&RepoName, &str),
        references: &[String],
        manifest: &Arc<Manifest>,
    ) {
        let Ok(mut guard) = self.map.lock() else {
            return;
        };
        let (map, bytes) = &mut *guard;
        for r in references {
            let key = (repo.clone(), r.clone(), ns.to_owned());
            if map.get(&key).is_some_and(|m| Arc::ptr_eq(m, manifest)) {
                map.remove(&key);
                *bytes -= manifest.bytes.len();
            }
        }
    }

    /// The size of blob `digest` when a manifest pending in `repo` (under
    /// any `?ns=`) names it: its image is being copied, so the blob is on
    /// its way. Parses each pending manifest of `repo` once (only a `HEAD`
    /// of a blob not stored here asks).
    pub fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Option<u64> {
        let manifests: Vec<Arc<Manifest>> = {
            let guard = self.map.lock().ok()?;
            let mut seen: Vec<Arc<Manifest>> = Vec::new();
            for ((r, _, _), m) in &guard.0 {
                if r == repo && !seen.iter().any(|s| Arc::ptr_eq(s, m)) {
                    seen.push(m.clone());
                }
            }
            seen
        };
        manifests.iter().find_map(|m| {
            let parsed = ParsedManifest::parse(&m.bytes, Some(&m.media_type), true).ok()?;
            parsed
                .required_blobs()
                .find(|d| d.digest == *digest)
                .map(|d| d.size)
        })
    }

    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.0.len())
    }
}

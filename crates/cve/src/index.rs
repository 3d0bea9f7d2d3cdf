//! The CVE-id index `ImageListForCVE` reads: for each CVE id, the
//! manifest digests whose current findings name it, so the query checks
//! set membership per image instead of decoding every image's findings
//! (10,001 images of 2 CVEs each: 0.2–1.1 s per query without it).
//!
//! Invariants:
//! - Built on first use from every store's stored findings, under the
//!   index lock; a match of one manifest writes its findings first and
//!   then updates a built index under the same lock, so a build that read
//!   the old findings is corrected before anyone reads it, and one that
//!   read the new findings is not harmed by the update.
//! - A re-match (many digests at once, and GC'd digests dropped) discards
//!   the index; the next query builds it again from the stored findings.
//! - Digests no tag reaches any more may stay in a set: the query walks
//!   the tagged images and only asks whether each is in the set.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use zot_oci::Digest;
use zot_storage::Stores;

use crate::record::StoredCve;

#[derive(Default)]
struct Built {
    by_id: HashMap<String, Arc<HashSet<Digest>>>,
    by_digest: HashMap<Digest, Vec<String>>,
}

impl Built {
    fn set(&mut self, digest: &Digest, ids: Vec<String>) {
        for old in self.by_digest.remove(digest).unwrap_or_default() {
            if let Some(set) = self.by_id.get_mut(&old) {
                Arc::make_mut(set).remove(digest);
            }
        }
        for id in &ids {
            Arc::make_mut(self.by_id.entry(id.clone()).or_default()).insert(digest.clone());
        }
        self.by_digest.insert(digest.clone(), ids);
    }
}

/// The index; empty until a query needs it.
#[derive(Default)]
pub(crate) struct CveIndex {
    built: Mutex<Option<Built>>,
}

fn ids(list: &[StoredCve]) -> Vec<String> {
    list.iter().map(|c| c.id.clone()).collect()
}

impl CveIndex {
    /// Records the new findings of `digest` (when the index is built).
    pub(crate) fn update(&self, digest: &Digest, list: &[StoredCve]) {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = built.as_mut() {
            b.set(digest, ids(list));
        }
    }

    /// Drops the index (after a re-match).
    pub(crate) fn discard(&self) {
        *self.built.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The digests whose findings name `id`; `None` when the stored
    /// findings could not be read (the caller then asks image by image).
    pub(crate) fn digests_with(&self, stores: &Stores, id: &str) -> Option<Arc<HashSet<Digest>>> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if built.is_none() {
            *built = Some(build(stores)?);
        }
        let b = built.as_ref()?;
        Some(b.by_id.get(id).cloned().unwrap_or_default())
    }
}

fn build(stores: &Stores) -> Option<Built> {
    let mut b = Built::default();
    for reg in stores.distinct() {
        let meta = reg.metadata();
        let digests = match meta.scanned_digests() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cve: reading stored findings for the CVE index");
                return None;
            }
        };
        for key in digests {
            let Ok(digest) = key.parse::<Digest>() else {
                continue;
            };
            match meta.findings(&key) {
                Ok(Some((_, bytes))) => {
                    if let Ok(list) = serde_json::from_slice::<Vec<StoredCve>>(&bytes) {
                        b.set(&digest, ids(&list));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cve: reading stored findings for the CVE index");
                    return None;
                }
            }
        }
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn new_findings_replace_a_digests_ids() {
        let mut b = Built::default();
        b.set(&d(1), vec!["CVE-1".into(), "CVE-2".into()]);
        b.set(&d(2), vec!["CVE-2".into()]);
        b.set(&d(1), vec!["CVE-3".into()]);
        let of = |id: &str| {
            let mut v: Vec<Digest> = b
                .by_id
                .get(id)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        assert_eq!(of("CVE-1"), Vec::<Digest>::new());
        assert_eq!(of("CVE-2"), vec![d(2)]);
        assert_eq!(of("CVE-3"), vec![d(1)]);
    }
}

//! An in-memory cache of manifest bodies, by digest. Content-addressed
//! bodies never change, so entries need no invalidation: whether a
//! repository *has* a manifest is always decided by the metadata store
//! before the cache is consulted. Memory is bounded by a byte budget; when
//! it is exceeded the cache starts over (cheap, and manifests are small).
//! Every lookup counts a hit or a miss (one relaxed atomic addition), for
//! the hit ratio in metrics.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use zot_oci::Digest;

pub struct ManifestCache {
    entries: RwLock<(HashMap<Digest, Bytes>, usize)>,
    budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ManifestCache {
    pub fn new(budget: usize) -> ManifestCache {
        ManifestCache {
            entries: RwLock::new((HashMap::new(), 0)),
            budget,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        let found = {
            let guard = self.entries.read().unwrap_or_else(|e| e.into_inner());
            guard.0.get(digest).cloned()
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Lookups so far: (hits, misses).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    pub fn insert(&self, digest: Digest, body: Bytes) {
        // One entry may take at most a sixteenth of the budget.
        if body.len() > self.budget / 16 {
            return;
        }
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let (map, used) = &mut *guard;
        if *used + body.len() > self.budget {
            map.clear();
            *used = 0;
        }
        *used += body.len();
        if let Some(old) = map.insert(digest, body) {
            *used -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let c = ManifestCache::new(160);
        for i in 0..20u8 {
            c.insert(Digest::sha256_of(&[i]), Bytes::from(vec![i; 10]));
        }
        let guard = c.entries.read().unwrap();
        assert!(guard.1 <= 160);
        assert_eq!(guard.1, guard.0.values().map(Bytes::len).sum::<usize>());
        drop(guard);
        assert_eq!(c.get(&Digest::sha256_of(&[19])).unwrap()[0], 19);
        c.insert(Digest::sha256_of(b"big"), Bytes::from(vec![0; 11]));
        assert!(c.get(&Digest::sha256_of(b"big")).is_none());
        assert_eq!(c.counts(), (1, 1));
    }
}

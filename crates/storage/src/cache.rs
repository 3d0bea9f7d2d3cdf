//! An in-memory cache of manifest bodies, by digest. Content-addressed
//! bodies never change, so entries need no invalidation: whether a
//! repository *has* a manifest is always decided by the metadata store
//! before the cache is consulted. Memory is bounded by a byte budget; when
//! it is exceeded the cache starts over (cheap, and manifests are small).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::RwLock;
use zot_oci::Digest;

pub struct ManifestCache {
    entries: RwLock<(HashMap<Digest, Bytes>, usize)>,
    budget: usize,
}

impl ManifestCache {
    pub fn new(budget: usize) -> ManifestCache {
        ManifestCache {
            entries: RwLock::new((HashMap::new(), 0)),
            budget,
        }
    }

    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        let guard = self.entries.read().unwrap_or_else(|e| e.into_inner());
        guard.0.get(digest).cloned()
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
    }
}

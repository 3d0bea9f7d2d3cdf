//! A short-lived cache of successful password verifications (bcrypt and LDAP
//! binds are slow). Keys are SHA-256 digests of the credentials: the plain
//! password is never stored. Entries live [`crate::CACHE_TTL`]; the cache is
//! emptied when it grows past [`MAX_ENTRIES`] or the htpasswd file changes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::Identity;

const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct CredentialCache {
    entries: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

impl CredentialCache {
    pub(crate) fn key(user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"zot-credentials\0");
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Identity> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((identity, at)) if at.elapsed() < crate::CACHE_TTL => Some(identity.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, key: [u8; 32], identity: Identity) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (identity, Instant::now()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

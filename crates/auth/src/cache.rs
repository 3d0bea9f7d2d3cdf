//! A short-lived cache of successful password verifications (bcrypt and LDAP
//! binds are slow). Keys are HMAC-SHA-256 tags of the credentials under a
//! key drawn at random when the process starts: the plain password is never
//! stored, and a key seen in a memory dump cannot be brute-forced offline
//! without that secret. The user name is length-prefixed, so no two
//! (user, password) pairs share a key (`"a\0b"`/`"c"` and `"a"`/`"b\0c"`
//! differ). Entries live [`crate::CACHE_TTL`]; the cache is emptied when it
//! grows past [`MAX_ENTRIES`] or the htpasswd file changes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ring::hmac;

use crate::Identity;

const MAX_ENTRIES: usize = 10_000;

pub(crate) struct CredentialCache {
    secret: hmac::Key,
    entries: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut seed = [0u8; 32];
        // Without randomness the cache still works, keyed by a plain
        // (length-prefixed) SHA-256 of the credentials.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        CredentialCache {
            secret: hmac::Key::new(hmac::HMAC_SHA256, &seed),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    pub(crate) fn key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.secret);
        ctx.update(b"zot-credentials\0");
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.sign().as_ref());
        key
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous_and_per_process() {
        let cache = CredentialCache::default();
        assert_ne!(cache.key("a\0b", "c"), cache.key("a", "b\0c"));
        assert_ne!(cache.key("ab", "c"), cache.key("a", "bc"));
        assert_eq!(cache.key("a", "b"), cache.key("a", "b"));
        let other = CredentialCache::default();
        assert_ne!(cache.key("a", "b"), other.key("a", "b"));
    }
}

//! API keys (`http.auth.apikey`): long-lived, revocable passwords for CI,
//! made by a logged-in user at `/zot/auth/apikey` and sent as the Basic
//! password (`user:zak_...`) by any client, directly or through the
//! built-in token service.
//!
//! Format and storage:
//! - A key is `zak_` and 32 lowercase hex digits, as zot makes them, but
//!   all 128 bits come from the OS's CSPRNG (zot's are a UUIDv4: 122).
//! - Only SHA-256 of the part after `zak_` is stored (zot's hash), never
//!   the key: whoever reads the metadata store cannot log in with it. A
//!   fast hash is enough, unlike for passwords: a key is 128 random bits,
//!   not something a person chose, so no dictionary helps and trying
//!   2^128 candidates is out of reach whatever the hash costs; a slow hash
//!   (bcrypt) would only make every CI request pay ~50 ms. Keys are found
//!   by their hash (an exact lookup), so comparing a key leaks no timing
//!   about stored ones.
//! - Records live in a [`KeyStore`] (the default store's metadata store;
//!   `zot_meta`), with their owner, label, creation and expiry times,
//!   scopes (`apikey_scope`), the owner's directory groups when the key
//!   was made, and how the owner logged in then.
//!
//! Invariants:
//! - Every use reads the store: no cache outlives a revocation or an
//!   expiry (a revoked or expired key is refused on the next request).
//! - A key authenticates only as its owner (the Basic user name must be
//!   the owner's), with the owner's groups, and within its scope.
//! - A key-shaped password is checked only as a key, never against
//!   htpasswd or LDAP: a revoked key costs a hash and a lookup, not bcrypt.
//! - Last use is noted in memory and written by [`ApiKeys::flush`] (every
//!   30 s and at shutdown, by the binary), never one write per request;
//!   listings merge the notes not yet written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::apikey_scope::KeyScope;
use crate::{Identity, Method};

/// The prefix of every key.
pub const KEY_PREFIX: &str = "zak_";
/// Keys one user may hold at once.
pub const MAX_KEYS_PER_USER: usize = 256;

/// SHA-256 of a key's secret part.
pub type KeyHash = [u8; 32];

/// A key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// zot's `uuid`: names the key in listings and revocations.
    pub id: String,
    pub owner: String,
    pub label: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Seconds since the Unix epoch; `None`: never expires.
    pub expires: Option<u64>,
    pub scopes: Vec<String>,
    /// The owner's directory (LDAP) groups when the key was made.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the owner logged in when making the key (`htpasswd`, `ldap`, ...).
    #[serde(default)]
    pub via: String,
    /// The `User-Agent` of the request that made the key.
    #[serde(default)]
    pub creator_ua: String,
    /// Last use, seconds since the Unix epoch (kept apart by the store).
    #[serde(skip)]
    pub last_used: Option<u64>,
}

impl StoredKey {
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// A store failure (logged; the request fails closed).
#[derive(Debug, thiserror::Error)]
#[error("API key store: {0}")]
pub struct KeyStoreError(pub String);

/// Where keys are kept. Writes of keys (insert, remove) are durable when
/// they return; use times may be written lazily.
pub trait KeyStore: Send + Sync {
    fn insert(&self, hash: &KeyHash, key: &StoredKey) -> Result<(), KeyStoreError>;
    fn by_hash(&self, hash: &KeyHash) -> Result<Option<StoredKey>, KeyStoreError>;
    fn by_id(&self, owner: &str, id: &str) -> Result<Option<StoredKey>, KeyStoreError>;
    /// The owner's keys, oldest first.
    fn of_owner(&self, owner: &str) -> Result<Vec<StoredKey>, KeyStoreError>;
    /// `false` when the owner has no such key.
    fn remove(&self, owner: &str, id: &str) -> Result<bool, KeyStoreError>;
    /// `(owner, id, seconds)`; keys no longer stored are skipped.
    fn record_use(&self, used: &[(String, String, u64)]) -> Result<(), KeyStoreError>;
}

/// What a client that logged in with a key may do beyond its owner's
/// rights: the key's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub id: String,
    pub scope: KeyScope,
    /// How the owner logged in when making the key.
    pub via: String,
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] KeyStoreError),
}

/// What a new key should be.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub label: String,
    pub scopes: Vec<String>,
    /// Seconds since the Unix epoch; must be in the future.
    pub expires: Option<u64>,
    pub user_agent: String,
}

/// A key just made: the only time the key itself is known.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: String,
    pub stored: StoredKey,
}

/// The outcome of checking a Basic password as a key.
pub(crate) enum KeyCheck {
    /// Not key-shaped: check it as a password.
    NotAKey,
    Valid(Identity),
    /// Key-shaped but unknown, revoked, expired, another user's, or the
    /// store failed.
    Refused(&'static str),
}

/// The API keys of this registry.
pub struct ApiKeys {
    store: Arc<dyn KeyStore>,
    rng: SystemRandom,
    /// (owner, id) → last use not yet written.
    used: Mutex<HashMap<(String, String), u64>>,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A time as zot's JSON shows it (RFC 3339, UTC); `None` is Go's zero
/// time (`0001-01-01T00:00:00Z`), which zot shows for "never".
pub fn json_time(secs: Option<u64>) -> String {
    match secs {
        Some(s) => crate::audit::rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(s)),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret part of a key-shaped password (`zak_` + 32 lowercase hex).
pub fn key_secret(password: &str) -> Option<&str> {
    let secret = password.strip_prefix(KEY_PREFIX)?;
    let ok = secret.len() == 32
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(secret)
}

/// The stored hash of a key: SHA-256 of its secret part (as zot).
pub fn key_hash(secret: &str) -> KeyHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// How `method` is recorded as a key owner's login.
pub(crate) fn via_of(identity: &Identity) -> String {
    match identity.method {
        Method::Htpasswd => "htpasswd".to_owned(),
        Method::Ldap => "ldap".to_owned(),
        Method::Certificate => "certificate".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl ApiKeys {
    pub fn new(store: Arc<dyn KeyStore>) -> ApiKeys {
        ApiKeys {
            store,
            rng: SystemRandom::new(),
            used: Mutex::new(HashMap::new()),
        }
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], KeyError> {
        let mut bytes = [0u8; N];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| KeyError::Store(KeyStoreError("no randomness".to_owned())))?;
        Ok(bytes)
    }

    /// Makes a key for `owner` (who must not be logged in with a key or a
    /// token: the API layer checks that).
    pub fn create(&self, owner: &Identity, new: NewKey) -> Result<CreatedKey, KeyError> {
        KeyScope::parse(&new.scopes).map_err(KeyError::Invalid)?;
        let now = now_secs();
        if new.expires.is_some_and(|e| e <= now) {
            return Err(KeyError::Invalid(
                "expirationDate is in the past".to_owned(),
            ));
        }
        if self.store.of_owner(&owner.name)?.len() >= MAX_KEYS_PER_USER {
            return Err(KeyError::Invalid(format!(
                "at most {MAX_KEYS_PER_USER} keys per user; revoke some first"
            )));
        }
        let secret = hex(&self.random::<16>()?);
        let mut id = self.random::<16>()?;
        // A UUIDv4, as zot names keys.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let h = hex(&id);
        let id = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
        let stored = StoredKey {
            id,
            owner: owner.name.clone(),
            label: new.label,
            created: now,
            expires: new.expires,
            scopes: new.scopes,
            groups: owner.groups.clone(),
            via: via_of(owner),
            creator_ua: new.user_agent,
            last_used: None,
        };
        self.store.insert(&key_hash(&secret), &stored)?;
        Ok(CreatedKey {
            key: format!("{KEY_PREFIX}{secret}"),
            stored,
        })
    }

    /// The owner's keys, with uses not yet written.
    pub fn list(&self, owner: &str) -> Result<Vec<StoredKey>, KeyStoreError> {
        let mut keys = self.store.of_owner(owner)?;
        if let Ok(used) = self.used.lock() {
            for k in &mut keys {
                if let Some(&at) = used.get(&(k.owner.clone(), k.id.clone())) {
                    k.last_used = Some(k.last_used.map_or(at, |s| s.max(at)));
                }
            }
        }
        Ok(keys)
    }

    /// Revokes the owner's key `id`; `false` when there is none.
    pub fn revoke(&self, owner: &str, id: &str) -> Result<bool, KeyStoreError> {
        let removed = self.store.remove(owner, id)?;
        if let Ok(mut used) = self.used.lock() {
            used.remove(&(owner.to_owned(), id.to_owned()));
        }
        Ok(removed)
    }

    /// Checks a Basic `user`/`password` pair as a key.
    pub(crate) fn check(&self, user: &str, password: &str) -> KeyCheck {
        let Some(secret) = key_secret(password) else {
            return KeyCheck::NotAKey;
        };
        let stored = match self.store.by_hash(&key_hash(secret)) {
            Ok(Some(k)) => k,
            Ok(None) => return KeyCheck::Refused("unknown or revoked API key"),
            Err(e) => {
                tracing::error!(error = %e, "reading an API key");
                return KeyCheck::Refused("API key store unavailable");
            }
        };
        if stored.owner != user {
            return KeyCheck::Refused("API key of another user");
        }
        if stored.expired_at(now_secs()) {
            return KeyCheck::Refused("expired API key");
        }
        self.note_use(&stored.owner, &stored.id);
        KeyCheck::Valid(identity_of(stored))
    }

    /// The key `id` of `owner` if it is still valid (for tokens made from
    /// a key), its use noted.
    pub(crate) fn still_valid(&self, owner: &str, id: &str) -> Option<KeyUse> {
        match self.store.by_id(owner, id) {
            Ok(Some(k)) if !k.expired_at(now_secs()) => {
                self.note_use(owner, id);
                Some(key_use(&k))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "reading an API key");
                None
            }
        }
    }

    fn note_use(&self, owner: &str, id: &str) {
        if let Ok(mut used) = self.used.lock() {
            used.insert((owner.to_owned(), id.to_owned()), now_secs());
        }
    }

    /// Writes the uses noted since the last flush; returns how many. On a
    /// failure they are kept for the next flush.
    pub fn flush(&self) -> Result<usize, KeyStoreError> {
        let batch: Vec<(String, String, u64)> = match self.used.lock() {
            Ok(mut used) => used.drain().map(|((o, i), t)| (o, i, t)).collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.record_use(&batch) {
            if let Ok(mut used) = self.used.lock() {
                for (o, i, t) in batch {
                    let at = used.entry((o, i)).or_insert(t);
                    *at = (*at).max(t);
                }
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}

fn key_use(k: &StoredKey) -> KeyUse {
    KeyUse {
        id: k.id.clone(),
        scope: KeyScope::parse_or_nothing(&k.scopes),
        via: k.via.clone(),
    }
}

fn identity_of(k: StoredKey) -> Identity {
    let key = key_use(&k);
    Identity {
        name: k.owner,
        groups: k.groups,
        method: Method::ApiKey,
        grants: None,
        key: Some(Arc::new(key)),
    }
}

#[cfg(test)]
#[path = "apikey_tests.rs"]
mod tests;

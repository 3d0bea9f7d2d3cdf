//! Browser sessions: sealed cookies naming records kept server-side.
//!
//! Invariants:
//! - Every cookie this module makes is sealed with AES-256-GCM under a key
//!   derived from `sessionKeysFile` (`hashKey`, `encryptKey`) or, without
//!   it, from random bytes made at start-up (sessions then end with the
//!   process); the cookie's name is the additional data, so a value cannot
//!   be moved from one cookie to another, and the expiry is sealed inside,
//!   so a cookie cannot be made to live longer.
//! - The cookie holds only a random 256-bit record id: who the user is,
//!   and their groups, are read from the [`SessionStore`], so a logout (the
//!   record deleted) revokes the session on every instance sharing the
//!   store, and a stolen key alone cannot make a session.
//! - A login's state is a record too, taken (read and removed at once) by
//!   its callback: a state is accepted once, within [`LOGIN_LIFETIME`], and
//!   only from the browser holding the `statecookie` it was sealed into.
//! - Session cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, live
//!   [`SESSION_LIFETIME`], and are `Secure` under TLS or `secureSession`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{Identity, Method, SetupError};

/// How long a session lasts (zot's 7200 s).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7200);
/// How long a login may take between `/zot/auth/login` and its callback.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// The session cookie's name (zot's).
pub const SESSION_COOKIE: &str = "session";
/// The login state cookie's name (zot's).
pub const STATE_COOKIE: &str = "statecookie";
/// The path the state cookie is sent to.
pub const STATE_COOKIE_PATH: &str = "/zot/auth/callback";

/// Failure of the session store (logged by the caller; the client is
/// answered as if it had no session).
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Where session and login-state records live: the metadata store
/// ([`crate::session_stores::MetaSessions`]) or Redis
/// ([`crate::session_stores::RedisSessions`]). Keys are opaque strings;
/// `expires` is in seconds since the epoch.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn put(&self, key: &str, value: Vec<u8>, expires: u64) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and removes `key` at once: of two concurrent takes, one wins.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The sealing key of the cookies.
pub struct CookieKeys {
    key: LessSafeKey,
    rng: SystemRandom,
}

#[derive(Deserialize)]
struct KeysFile {
    #[serde(rename = "hashKey", alias = "hashkey")]
    hash_key: String,
    #[serde(rename = "encryptKey", alias = "encryptkey")]
    encrypt_key: Option<String>,
}

impl CookieKeys {
    /// Keys from the two secrets of `sessionKeysFile`: the AES-256 key is
    /// HMAC-SHA256(hashKey, "zot session cookie" || encryptKey).
    pub fn from_secrets(hash_key: &[u8], encrypt_key: &[u8]) -> CookieKeys {
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, hash_key);
        let mut ctx = ring::hmac::Context::with_key(&mac);
        ctx.update(b"zot session cookie");
        ctx.update(encrypt_key);
        let tag = ctx.sign();
        Self::from_aes_key(tag.as_ref())
    }

    fn from_aes_key(bytes: &[u8]) -> CookieKeys {
        // 32 bytes (an HMAC-SHA256 tag) always make an AES-256 key.
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("an AES-256 key is 32 bytes"));
        CookieKeys {
            key,
            rng: SystemRandom::new(),
        }
    }

    /// Keys read from `sessionKeysFile` (JSON `{"hashKey", "encryptKey"}`).
    pub fn from_file(path: &std::path::Path) -> Result<CookieKeys, SetupError> {
        let fail = |why: String| SetupError(format!("sessionKeysFile {}: {why}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let keys: KeysFile = serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
        if keys.hash_key.len() < 32 {
            return Err(fail("hashKey must have at least 32 bytes".into()));
        }
        crate::warn_if_shared(path, "sessionKeysFile");
        let encrypt = keys.encrypt_key.unwrap_or_default();
        Ok(Self::from_secrets(
            keys.hash_key.as_bytes(),
            encrypt.as_bytes(),
        ))
    }

    /// Random keys, for this process only.
    pub fn random() -> Result<CookieKeys, SetupError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SetupError("no randomness for the session keys".into()))?;
        Ok(Self::from_aes_key(&bytes))
    }

    /// `value` sealed for the cookie `name` until `expires`.
    pub fn seal(&self, name: &str, value: &[u8], expires: u64) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut data = expires.to_be_bytes().to_vec();
        data.extend_from_slice(value);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    /// The value of a cookie `name` sealed by [`CookieKeys::seal`], if it is
    /// authentic and not expired at `now`.
    pub fn open(&self, name: &str, cookie: &str, now: u64) -> Option<Vec<u8>> {
        if cookie.len() > 4096 {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cookie)
            .ok()?;
        if raw.len() < NONCE_LEN + 8 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut sealed)
            .ok()?;
        let (expires, value) = plain.split_at_checked(8)?;
        let expires = u64::from_be_bytes(expires.try_into().ok()?);
        (expires > now).then(|| value.to_vec())
    }

    fn random_id(&self) -> Option<String> {
        let mut id = [0u8; 32];
        self.rng.fill(&mut id).ok()?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
    }
}

/// A fresh secret (48 random bytes, URL-safe base64): the cookie secret
/// instances share through Redis.
pub fn random_secret() -> Result<String, SetupError> {
    let mut bytes = [0u8; 48];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SetupError("no randomness for the session secret".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What a session record says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: String,
    pub groups: Vec<String>,
    /// The provider key of an OpenID login; `None` for a Basic login.
    pub provider: Option<String>,
}

/// A login under way, kept from `/zot/auth/login` to its callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    pub nonce: String,
    pub verifier: String,
    /// Where the browser goes after the login (already checked).
    pub callback_ui: Option<String>,
}

/// Why a login callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateRejection {
    #[error("no valid state cookie (missing, tampered with or expired)")]
    Cookie,
    #[error("the state does not match the state cookie")]
    Mismatch,
    #[error("the state was already used or has expired")]
    Used,
    #[error("the session store failed")]
    Store,
}

/// Sessions: the keys, the store, and how cookies are written.
pub struct Sessions {
    keys: CookieKeys,
    store: Arc<dyn SessionStore>,
    secure: bool,
}

fn session_key(id: &str) -> String {
    format!("session:{id}")
}

fn state_key(id: &str) -> String {
    format!("state:{id}")
}

impl Sessions {
    pub fn new(keys: CookieKeys, store: Arc<dyn SessionStore>, secure: bool) -> Sessions {
        Sessions {
            keys,
            store,
            secure,
        }
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64, http_only: bool) -> String {
        let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Lax");
        if http_only {
            c.push_str("; HttpOnly");
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// Makes a session for `record`: the `Set-Cookie` values (`session`,
    /// and zot's `user` cookie that the UI reads).
    pub async fn create(&self, record: &SessionRecord) -> Result<Vec<String>, StoreError> {
        let id = self
            .keys
            .random_id()
            .ok_or_else(|| StoreError("no randomness".into()))?;
        let expires = now() + SESSION_LIFETIME.as_secs();
        let body = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
        self.store.put(&session_key(&id), body, expires).await?;
        let sealed = self
            .keys
            .seal(SESSION_COOKIE, id.as_bytes(), expires)
            .ok_or_else(|| StoreError("sealing failed".into()))?;
        let age = SESSION_LIFETIME.as_secs();
        // The user name in a cookie value: only characters a cookie may hold.
        let user: String = form_urlencoded::byte_serialize(record.user.as_bytes()).collect();
        Ok(vec![
            self.cookie(SESSION_COOKIE, &sealed, "/", age, true),
            self.cookie("user", &user, "/", age, false),
        ])
    }

    /// The session named by a `session` cookie's value, if valid.
    pub async fn lookup(&self, cookie: &str) -> Option<(String, SessionRecord)> {
        let id = self.keys.open(SESSION_COOKIE, cookie, now())?;
        let id = String::from_utf8(id).ok()?;
        let body = match self.store.get(&session_key(&id)).await {
            Ok(body) => body?,
            Err(e) => {
                tracing::warn!(error = %e, "reading a session");
                return None;
            }
        };
        let record: SessionRecord = serde_json::from_slice(&body).ok()?;
        Some((id, record))
    }

    /// The identity of a `session` cookie's value, if valid.
    pub async fn authenticate(&self, cookie: &str) -> Option<Identity> {
        let (_, record) = self.lookup(cookie).await?;
        Some(Identity {
            name: record.user,
            groups: record.groups,
            method: Method::Session,
            grants: None,
            key: None,
        })
    }

    /// Ends the session of a `session` cookie's value (if any): its record
    /// is deleted. Returns the record, and the `Set-Cookie` values that
    /// clear both cookies.
    pub async fn end(&self, cookie: Option<&str>) -> (Option<SessionRecord>, Vec<String>) {
        let mut ended = None;
        if let Some((id, record)) = match cookie {
            Some(c) => self.lookup(c).await,
            None => None,
        } {
            if let Err(e) = self.store.delete(&session_key(&id)).await {
                tracing::warn!(error = %e, "deleting a session");
            }
            ended = Some(record);
        }
        (ended, self.cleared())
    }

    /// `Set-Cookie` values that remove the session cookies.
    pub fn cleared(&self) -> Vec<String> {
        vec![
            self.cookie(SESSION_COOKIE, "", "/", 0, true),
            self.cookie("user", "", "/", 0, false),
        ]
    }

    /// Starts a login: the state to send to the provider, and the
    /// `Set-Cookie` value binding it to this browser.
    pub async fn begin_login(
        &self,
        pending: &PendingLogin,
    ) -> Result<(String, String), StoreError> {
        let state = self
            .keys
            .random_id()
            .ok_or_else(|| StoreError("no randomness".into()))?;
        let expires = now() + LOGIN_LIFETIME.as_secs();
        let body = serde_json::to_vec(pending).map_err(|e| StoreError(e.to_string()))?;
        self.store.put(&state_key(&state), body, expires).await?;
        let sealed = self
            .keys
            .seal(STATE_COOKIE, state.as_bytes(), expires)
            .ok_or_else(|| StoreError("sealing failed".into()))?;
        let cookie = self.cookie(
            STATE_COOKIE,
            &sealed,
            STATE_COOKIE_PATH,
            LOGIN_LIFETIME.as_secs(),
            true,
        );
        Ok((state, cookie))
    }

    /// Ends a login: the state the provider sent back must be the one
    /// sealed in the browser's state cookie, and is accepted once.
    pub async fn finish_login(
        &self,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<PendingLogin, StateRejection> {
        let sealed = cookie.ok_or(StateRejection::Cookie)?;
        let expected = self
            .keys
            .open(STATE_COOKIE, sealed, now())
            .ok_or(StateRejection::Cookie)?;
        // Both are random and the cookie is sealed: plain comparison.
        if expected != state.as_bytes() {
            return Err(StateRejection::Mismatch);
        }
        let body = self
            .store
            .take(&state_key(state))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "reading a login state");
                StateRejection::Store
            })?
            .ok_or(StateRejection::Used)?;
        serde_json::from_slice(&body).map_err(|_| StateRejection::Used)
    }

    /// The `Set-Cookie` value removing the state cookie.
    pub fn clear_state(&self) -> String {
        self.cookie(STATE_COOKIE, "", STATE_COOKIE_PATH, 0, true)
    }

    /// A random URL-safe string (nonces, PKCE verifiers).
    pub fn random(&self) -> Option<String> {
        self.keys.random_id()
    }
}

/// The value of cookie `name` in a `Cookie` header, if present once.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cookies_resist_tampering_moving_and_expiry() {
        let keys = CookieKeys::from_secrets(&[7; 32], b"e");
        let sealed = keys.seal("session", b"id", 100).unwrap_or_default();
        assert_eq!(keys.open("session", &sealed, 50), Some(b"id".to_vec()));
        assert_eq!(keys.open("session", &sealed, 100), None, "expired");
        assert_eq!(keys.open("statecookie", &sealed, 50), None, "other cookie");
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(keys.open("session", &tampered, 50), None, "tampered");
        let other = CookieKeys::from_secrets(&[8; 32], b"e");
        let sealed = keys.seal("session", b"id", 100).unwrap_or_default();
        assert_eq!(other.open("session", &sealed, 50), None, "other keys");
    }

    #[test]
    fn cookie_header_values() {
        assert_eq!(
            cookie_value("a=1; session=xyz; b=2", "session"),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", "session"), None);
        assert_eq!(cookie_value("session=", "session"), None);
    }
}

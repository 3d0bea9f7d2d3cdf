//! Browser sessions and pending logins of the registry's own login routes,
//! kept beside the metadata so that they survive a restart and a logout
//! revokes them (the cookie only names a record here).
//!
//! Invariants:
//! - A record has an expiry (seconds since the epoch); an expired record is
//!   never returned, and [`MetaStore::session_purge`] removes them.
//! - [`MetaStore::session_take`] reads and removes in one write
//!   transaction: a key can be taken once (a login state is not replayed).
//! - Puts and deletes are committed durably (fsync): a session survives a
//!   crash, and a logout is not undone by one.
//! - Keys and values are opaque here (the auth crate names and seals them).
//!   A row's value is the expiry (8 big-endian bytes) then the value.

use crate::kv::{read_u64, u64_bytes};
use crate::{MetaStore, Result};

/// Key -> (expiry, value).
const SESSIONS: &str = "sessions";

/// The value of a row unless expired at `now`.
fn live(row: &[u8], now: u64) -> Option<Vec<u8>> {
    (read_u64(row) > now).then(|| row.get(8..).unwrap_or(&[]).to_vec())
}

impl MetaStore {
    /// Stores `value` under `key` until `expires` (seconds since the epoch),
    /// durably (a login is rare; a session must survive a crash).
    pub fn session_put(&self, key: &str, value: &[u8], expires: u64) -> Result<()> {
        let mut row = u64_bytes(expires).to_vec();
        row.extend_from_slice(value);
        self.write(true, |w| w.put(SESSIONS, key.as_bytes(), &row))
    }

    /// The value under `key`, unless absent or expired at `now`.
    pub fn session_get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
        let row = self.read(|r| r.get(SESSIONS, key.as_bytes()))?;
        Ok(row.and_then(|row| live(&row, now)))
    }

    /// Removes `key` and returns its value, unless it was absent or expired.
    pub fn session_take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
        self.write(true, |w| {
            let row = w.get(SESSIONS, key.as_bytes())?;
            if row.is_some() {
                w.delete(SESSIONS, key.as_bytes())?;
            }
            Ok(row.and_then(|row| live(&row, now)))
        })
    }

    /// Removes `key` (absent is fine), durably: a logout must not come
    /// back after a crash.
    pub fn session_delete(&self, key: &str) -> Result<()> {
        self.write(true, |w| w.delete(SESSIONS, key.as_bytes()))
    }

    /// Removes every record expired at `now`; returns how many.
    pub fn session_purge(&self, now: u64) -> Result<usize> {
        self.write(true, |w| {
            let mut removed = 0;
            for (k, v) in w.range(SESSIONS, b"", None, usize::MAX)? {
                if read_u64(&v) <= now {
                    w.delete(SESSIONS, &k)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

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

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition, WriteTransaction};

use crate::{MetaStore, Result};

/// Key -> (expiry, value).
const SESSIONS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("sessions");

pub(crate) fn create(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SESSIONS)?;
    Ok(())
}

impl MetaStore {
    /// Stores `value` under `key` until `expires` (seconds since the epoch),
    /// durably (a login is rare; a session must survive a crash).
    pub fn session_put(&self, key: &str, value: &[u8], expires: u64) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(SESSIONS)?.insert(key, (expires, value))?;
        self.watch(txn.commit().map_err(Into::into))
    }

    /// The value under `key`, unless absent or expired at `now`.
    pub fn session_get(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(SESSIONS)?;
        let found = table.get(key)?.and_then(|v| {
            let (expires, value) = v.value();
            (expires > now).then(|| value.to_vec())
        });
        Ok(found)
    }

    /// Removes `key` and returns its value, unless it was absent or expired.
    pub fn session_take(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.begin_write()?;
        let found = {
            let mut table = txn.open_table(SESSIONS)?;
            table.remove(key)?.and_then(|v| {
                let (expires, value) = v.value();
                (expires > now).then(|| value.to_vec())
            })
        };
        self.watch(txn.commit().map_err(Into::into))?;
        Ok(found)
    }

    /// Removes `key` (absent is fine), durably: a logout must not come
    /// back after a crash.
    pub fn session_delete(&self, key: &str) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(SESSIONS)?.remove(key)?;
        self.watch(txn.commit().map_err(Into::into))
    }

    /// Removes every record expired at `now`; returns how many.
    pub fn session_purge(&self, now: u64) -> Result<usize> {
        let txn = self.begin_write()?;
        let removed = {
            let mut table = txn.open_table(SESSIONS)?;
            let before = table.len()?;
            table.retain(|_, (expires, _)| expires > now)?;
            before.saturating_sub(table.len()?)
        };
        self.watch(txn.commit().map_err(Into::into))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_take_expire() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::MetaError::Encoding(e.to_string()))?;
        let store = MetaStore::open(&dir.path().join("meta.db"))?;
        store.session_put("a", b"one", 100)?;
        store.session_put("b", b"two", 50)?;
        assert_eq!(store.session_get("a", 10)?, Some(b"one".to_vec()));
        assert_eq!(store.session_get("b", 60)?, None, "expired");
        assert_eq!(store.session_take("a", 10)?, Some(b"one".to_vec()));
        assert_eq!(store.session_take("a", 10)?, None, "taken once");
        store.session_put("c", b"three", 100)?;
        assert_eq!(store.session_purge(60)?, 1);
        store.session_delete("c")?;
        assert_eq!(store.session_get("c", 10)?, None);
        Ok(())
    }
}

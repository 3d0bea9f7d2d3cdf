//! API keys (`http.auth.apikey`), kept in the default store's metadata
//! store. The records are opaque bytes here (the `zot-auth` crate owns
//! their meaning); this module keeps them findable by the hash of the key
//! (at each use) and by owner and id (listings, revocations, tokens made
//! from a key).
//!
//! Invariants:
//! - Unlike the rest of the store, these rows are no cache of the layouts:
//!   nothing can rebuild them. Making and revoking a key therefore commit
//!   durably before they return (a revocation that a crash could undo
//!   would bring a revoked key back).
//! - The two key tables change together in one transaction: every hash row
//!   has its (owner, id) row and back.
//! - Use times are written in batches ([`MetaStore::record_api_key_uses`]),
//!   never one write per request, without fsync (losing the last few
//!   seconds of use times to a crash is harmless); a use of a key revoked
//!   meanwhile is dropped.

use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{MAX, MetaStore, Result};

/// SHA-256 of the key's secret -> (owner, id, record).
const KEYS: TableDefinition<&[u8], (&str, &str, &[u8])> = TableDefinition::new("api_keys");
/// (owner, id) -> SHA-256 of the key's secret.
const KEY_IDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("api_key_ids");
/// (owner, id) -> last use, seconds since the Unix epoch.
const KEY_USES: TableDefinition<(&str, &str), u64> = TableDefinition::new("api_key_uses");

pub(crate) fn create(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(KEYS)?;
    txn.open_table(KEY_IDS)?;
    txn.open_table(KEY_USES)?;
    Ok(())
}

/// One stored key: its record and when it was last used (as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub record: Vec<u8>,
    pub last_used: Option<u64>,
}

impl MetaStore {
    /// Stores a key of `owner` named `id` under `hash`, durably.
    pub fn put_api_key(&self, hash: &[u8], owner: &str, id: &str, record: &[u8]) -> Result<()> {
        self.watch((|| {
            let mut txn = self.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            {
                txn.open_table(KEYS)?.insert(hash, (owner, id, record))?;
                txn.open_table(KEY_IDS)?.insert((owner, id), hash)?;
            }
            txn.commit()?;
            Ok(())
        })())
    }

    /// The key stored under `hash`, with its owner and id.
    pub fn api_key(&self, hash: &[u8]) -> Result<Option<(String, String, ApiKeyRow)>> {
        self.watch((|| {
            let txn = self.db()?.begin_read()?;
            let keys = txn.open_table(KEYS)?;
            let Some(v) = keys.get(hash)? else {
                return Ok(None);
            };
            let (owner, id, record) = v.value();
            let used = txn.open_table(KEY_USES)?;
            let last_used = used.get((owner, id))?.map(|t| t.value());
            Ok(Some((
                owner.to_owned(),
                id.to_owned(),
                ApiKeyRow {
                    record: record.to_vec(),
                    last_used,
                },
            )))
        })())
    }

    /// The key `id` of `owner`.
    pub fn api_key_by_id(&self, owner: &str, id: &str) -> Result<Option<ApiKeyRow>> {
        self.watch((|| {
            let txn = self.db()?.begin_read()?;
            let ids = txn.open_table(KEY_IDS)?;
            let Some(hash) = ids.get((owner, id))? else {
                return Ok(None);
            };
            let keys = txn.open_table(KEYS)?;
            let Some(v) = keys.get(hash.value())? else {
                return Ok(None);
            };
            let last_used = txn
                .open_table(KEY_USES)?
                .get((owner, id))?
                .map(|t| t.value());
            Ok(Some(ApiKeyRow {
                record: v.value().2.to_vec(),
                last_used,
            }))
        })())
    }

    /// Every key of `owner`, in id order.
    pub fn api_keys_of(&self, owner: &str) -> Result<Vec<ApiKeyRow>> {
        self.watch((|| {
            let txn = self.db()?.begin_read()?;
            let ids = txn.open_table(KEY_IDS)?;
            let keys = txn.open_table(KEYS)?;
            let uses = txn.open_table(KEY_USES)?;
            let mut out = Vec::new();
            for item in ids.range((owner, "")..(owner, MAX))? {
                let (k, hash) = item?;
                let (_, id) = k.value();
                if let Some(v) = keys.get(hash.value())? {
                    out.push(ApiKeyRow {
                        record: v.value().2.to_vec(),
                        last_used: uses.get((owner, id))?.map(|t| t.value()),
                    });
                }
            }
            Ok(out)
        })())
    }

    /// Removes the key `id` of `owner`, durably; `false` when there is none.
    pub fn remove_api_key(&self, owner: &str, id: &str) -> Result<bool> {
        self.watch((|| {
            let mut txn = self.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let removed = {
                let mut ids = txn.open_table(KEY_IDS)?;
                let hash = ids.remove((owner, id))?.map(|h| h.value().to_vec());
                match hash {
                    Some(hash) => {
                        txn.open_table(KEYS)?.remove(hash.as_slice())?;
                        txn.open_table(KEY_USES)?.remove((owner, id))?;
                        true
                    }
                    None => false,
                }
            };
            txn.commit()?;
            Ok(removed)
        })())
    }

    /// Records last uses `(owner, id, seconds)` in one transaction; keys
    /// no longer stored are skipped, and a time never goes back.
    pub fn record_api_key_uses(&self, uses: &[(String, String, u64)]) -> Result<()> {
        self.watch((|| {
            let txn = self.begin_write()?;
            {
                let ids = txn.open_table(KEY_IDS)?;
                let mut table = txn.open_table(KEY_USES)?;
                for (owner, id, at) in uses {
                    let key = (owner.as_str(), id.as_str());
                    if ids.get(key)?.is_none() {
                        continue;
                    }
                    let before = table.get(key)?.map_or(0, |t| t.value());
                    if *at > before {
                        table.insert(key, *at)?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MetaStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn keys_are_found_by_hash_and_by_owner_and_id() {
        let (_dir, s) = store();
        s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
        s.put_api_key(&[2; 32], "alice", "id-2", b"two").unwrap();
        s.put_api_key(&[3; 32], "alicex", "id-3", b"three").unwrap();
        let (owner, id, row) = s.api_key(&[1; 32]).unwrap().unwrap();
        assert_eq!((owner.as_str(), id.as_str()), ("alice", "id-1"));
        assert_eq!(row.record, b"one");
        assert_eq!(row.last_used, None);
        assert_eq!(s.api_key(&[9; 32]).unwrap(), None);
        assert_eq!(
            s.api_key_by_id("alice", "id-2").unwrap().unwrap().record,
            b"two"
        );
        assert_eq!(s.api_key_by_id("bob", "id-2").unwrap(), None);
        let mine: Vec<Vec<u8>> = s
            .api_keys_of("alice")
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        assert_eq!(mine, [b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn removal_drops_every_row_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = MetaStore::open(&path).unwrap();
            s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
            s.put_api_key(&[2; 32], "alice", "id-2", b"two").unwrap();
            s.record_api_key_uses(&[("alice".into(), "id-1".into(), 50)])
                .unwrap();
            assert!(!s.remove_api_key("bob", "id-1").unwrap());
            assert!(s.remove_api_key("alice", "id-1").unwrap());
            assert!(!s.remove_api_key("alice", "id-1").unwrap());
        }
        let s = MetaStore::open(&path).unwrap();
        assert_eq!(s.api_key(&[1; 32]).unwrap(), None);
        assert_eq!(s.api_key_by_id("alice", "id-1").unwrap(), None);
        assert_eq!(s.api_keys_of("alice").unwrap().len(), 1);
        assert!(s.api_key(&[2; 32]).unwrap().is_some(), "made durably");
        // A use recorded for a removed key is dropped.
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 60)])
            .unwrap();
        s.put_api_key(&[1; 32], "alice", "id-1", b"again").unwrap();
        assert_eq!(s.api_key(&[1; 32]).unwrap().unwrap().2.last_used, None);
    }

    #[test]
    fn uses_never_go_back() {
        let (_dir, s) = store();
        s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 100)])
            .unwrap();
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 90)])
            .unwrap();
        assert_eq!(
            s.api_key_by_id("alice", "id-1").unwrap().unwrap().last_used,
            Some(100)
        );
        assert_eq!(s.api_keys_of("alice").unwrap()[0].last_used, Some(100));
    }
}

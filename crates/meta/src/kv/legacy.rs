//! Rows of a redb file of the typed layout before the key-value layer
//! (tables named `api_keys`, `sessions`, ... with tuple keys) that cannot
//! be rebuilt from the layouts: API keys and browser sessions. They are
//! read before the old file is replaced and written into the new one, so
//! an upgrade loses no key and logs no one out; every other table is a
//! cache of the layouts and is rebuilt.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{k2, key, u64_bytes};
use crate::Result;

const KEYS: TableDefinition<&[u8], (&str, &str, &[u8])> = TableDefinition::new("api_keys");
const KEY_IDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("api_key_ids");
const KEY_USES: TableDefinition<(&str, &str), u64> = TableDefinition::new("api_key_uses");
const SESSIONS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("sessions");

/// One row to carry over: (table of the key-value layer, key, value).
pub(crate) type Carried = (&'static str, Vec<u8>, Vec<u8>);

/// Whether the table is absent (nothing to carry).
fn absent<T>(r: std::result::Result<T, redb::TableError>) -> Result<Option<T>> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The API keys and sessions of an old file, in the new encoding.
pub(crate) fn carry_over(db: &redb::Database) -> Result<Vec<Carried>> {
    let txn = db.begin_read()?;
    let mut out = Vec::new();
    if let Some(t) = absent(txn.open_table(KEYS))? {
        for row in t.iter()? {
            let (k, v) = row?;
            let (owner, id, record) = v.value();
            let value = key(&[owner.as_bytes(), id.as_bytes(), record]);
            out.push(("api_keys", k.value().to_vec(), value));
        }
    }
    if let Some(t) = absent(txn.open_table(KEY_IDS))? {
        for row in t.iter()? {
            let (k, v) = row?;
            let (owner, id) = k.value();
            out.push(("api_key_ids", k2(owner, id), v.value().to_vec()));
        }
    }
    if let Some(t) = absent(txn.open_table(KEY_USES))? {
        for row in t.iter()? {
            let (k, v) = row?;
            let (owner, id) = k.value();
            out.push(("api_key_uses", k2(owner, id), u64_bytes(v.value()).to_vec()));
        }
    }
    if let Some(t) = absent(txn.open_table(SESSIONS))? {
        for row in t.iter()? {
            let (k, v) = row?;
            let (expires, value) = v.value();
            let mut row = u64_bytes(expires).to_vec();
            row.extend_from_slice(value);
            out.push(("sessions", k.value().as_bytes().to_vec(), row));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetaStore;

    #[test]
    fn api_keys_and_sessions_survive_the_change_of_layout() -> Result<()> {
        let dir = tempfile::tempdir().map_err(redb::Error::Io)?;
        let path = dir.path().join("meta.redb");
        {
            let db = redb::Database::create(&path)?;
            let txn = db.begin_write()?;
            {
                txn.open_table(KEYS)?
                    .insert([1u8; 32].as_slice(), ("alice", "id-1", b"rec".as_slice()))?;
                txn.open_table(KEY_IDS)?
                    .insert(("alice", "id-1"), [1u8; 32].as_slice())?;
                txn.open_table(KEY_USES)?.insert(("alice", "id-1"), 77)?;
                txn.open_table(SESSIONS)?
                    .insert("session:x", (100, b"who".as_slice()))?;
                let tags: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("tags");
                txn.open_table(tags)?
                    .insert(("r", "v1"), b"{}".as_slice())?;
            }
            txn.commit()?;
        }
        let m = MetaStore::open(&path)?;
        let (owner, id, row) = m.api_key(&[1; 32])?.expect("carried over");
        assert_eq!((owner.as_str(), id.as_str()), ("alice", "id-1"));
        assert_eq!(
            (row.record.as_slice(), row.last_used),
            (b"rec".as_slice(), Some(77))
        );
        assert_eq!(m.api_keys_of("alice")?.len(), 1);
        assert_eq!(m.session_get("session:x", 10)?, Some(b"who".to_vec()));
        assert_eq!(
            m.repos(None, 10)?.0.len(),
            0,
            "caches are rebuilt, not carried"
        );
        Ok(())
    }
}

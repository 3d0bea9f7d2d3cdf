//! [`MetaKeyStore`]: the API keys' [`KeyStore`] over the default store's
//! metadata store (`zot_meta`'s `apikeys` tables). Records are JSON of
//! [`StoredKey`]; a record that does not decode, or whose owner or id
//! disagree with the row that holds it, is an error (refused, logged),
//! never a key.

use std::sync::Arc;

use zot_auth::{KeyHash, KeyStore, KeyStoreError, StoredKey};
use zot_storage::Registry;

/// API keys in the metadata store of `registry` (the default store).
pub struct MetaKeyStore {
    registry: Arc<Registry>,
}

impl MetaKeyStore {
    pub fn new(registry: Arc<Registry>) -> MetaKeyStore {
        MetaKeyStore { registry }
    }
}

fn fail(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError(e.to_string())
}

fn decode(
    owner: &str,
    id: &str,
    record: &[u8],
    last_used: Option<u64>,
) -> Result<StoredKey, KeyStoreError> {
    let mut key: StoredKey = serde_json::from_slice(record).map_err(fail)?;
    if key.owner != owner || key.id != id {
        return Err(fail(format!("the record of key {id} names another key")));
    }
    key.last_used = last_used;
    Ok(key)
}

impl KeyStore for MetaKeyStore {
    fn insert(&self, hash: &KeyHash, key: &StoredKey) -> Result<(), KeyStoreError> {
        let record = serde_json::to_vec(key).map_err(fail)?;
        self.registry
            .metadata()
            .put_api_key(hash, &key.owner, &key.id, &record)
            .map_err(fail)
    }

    fn by_hash(&self, hash: &KeyHash) -> Result<Option<StoredKey>, KeyStoreError> {
        match self.registry.metadata().api_key(hash).map_err(fail)? {
            Some((owner, id, row)) => decode(&owner, &id, &row.record, row.last_used).map(Some),
            None => Ok(None),
        }
    }

    fn by_id(&self, owner: &str, id: &str) -> Result<Option<StoredKey>, KeyStoreError> {
        match self
            .registry
            .metadata()
            .api_key_by_id(owner, id)
            .map_err(fail)?
        {
            Some(row) => decode(owner, id, &row.record, row.last_used).map(Some),
            None => Ok(None),
        }
    }

    fn of_owner(&self, owner: &str) -> Result<Vec<StoredKey>, KeyStoreError> {
        let rows = self.registry.metadata().api_keys_of(owner).map_err(fail)?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let mut key: StoredKey = serde_json::from_slice(&row.record).map_err(fail)?;
            key.last_used = row.last_used;
            keys.push(key);
        }
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(keys)
    }

    fn remove(&self, owner: &str, id: &str) -> Result<bool, KeyStoreError> {
        self.registry
            .metadata()
            .remove_api_key(owner, id)
            .map_err(fail)
    }

    fn record_use(&self, used: &[(String, String, u64)]) -> Result<(), KeyStoreError> {
        self.registry
            .metadata()
            .record_api_key_uses(used)
            .map_err(fail)
    }
}

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

use crate::kv::{Read, all, k2, key, read_u64, u64_bytes, under};
use crate::{MetaStore, Result};

/// SHA-256 of the key's secret -> owner, 0, id, 0, record.
const KEYS: &str = "api_keys";
/// (owner, id) -> SHA-256 of the key's secret.
const KEY_IDS: &str = "api_key_ids";
/// (owner, id) -> last use, seconds since the Unix epoch.
const KEY_USES: &str = "api_key_uses";

/// One stored key: its record and when it was last used (as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub record: Vec<u8>,
    pub last_used: Option<u64>,
}

/// (owner, id, record) of a `KEYS` value.
fn split(v: &[u8]) -> (String, String, Vec<u8>) {
    let mut it = v.splitn(3, |b| *b == 0);
    let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or(&[])).into_owned();
    let owner = text(it.next());
    let id = text(it.next());
    (owner, id, it.next().unwrap_or(&[]).to_vec())
}

fn last_used(r: &mut dyn Read, owner: &str, id: &str) -> Result<Option<u64>> {
    Ok(r.get(KEY_USES, &k2(owner, id))?.map(|v| read_u64(&v)))
}

impl MetaStore {
    /// Stores a key of `owner` named `id` under `hash`, durably.
    pub fn put_api_key(&self, hash: &[u8], owner: &str, id: &str, record: &[u8]) -> Result<()> {
        self.write(true, |w| {
            w.put(KEYS, hash, &key(&[owner.as_bytes(), id.as_bytes(), record]))?;
            w.put(KEY_IDS, &k2(owner, id), hash)
        })
    }

    /// The key stored under `hash`, with its owner and id.
    pub fn api_key(&self, hash: &[u8]) -> Result<Option<(String, String, ApiKeyRow)>> {
        self.read(|r| {
            let Some(v) = r.get(KEYS, hash)? else {
                return Ok(None);
            };
            let (owner, id, record) = split(&v);
            let last_used = last_used(r, &owner, &id)?;
            Ok(Some((owner, id, ApiKeyRow { record, last_used })))
        })
    }

    /// The key `id` of `owner`.
    pub fn api_key_by_id(&self, owner: &str, id: &str) -> Result<Option<ApiKeyRow>> {
        self.read(|r| {
            let Some(hash) = r.get(KEY_IDS, &k2(owner, id))? else {
                return Ok(None);
            };
            let Some(v) = r.get(KEYS, &hash)? else {
                return Ok(None);
            };
            Ok(Some(ApiKeyRow {
                record: split(&v).2,
                last_used: last_used(r, owner, id)?,
            }))
        })
    }

    /// Every key of `owner`, in id order.
    pub fn api_keys_of(&self, owner: &str) -> Result<Vec<ApiKeyRow>> {
        self.read(|r| {
            let mut out = Vec::new();
            for (k, hash) in all(r, KEY_IDS, &under(&[owner]))? {
                if let Some(v) = r.get(KEYS, &hash)? {
                    out.push(ApiKeyRow {
                        record: split(&v).2,
                        last_used: r.get(KEY_USES, &k)?.map(|t| read_u64(&t)),
                    });
                }
            }
            Ok(out)
        })
    }

    /// Replaces the record of the key `id` of `owner` (its hash kept),
    /// durably; `false` when there is no such key.
    pub fn replace_api_key_record(&self, owner: &str, id: &str, record: &[u8]) -> Result<bool> {
        self.write(true, |w| {
            let Some(hash) = w.get(KEY_IDS, &k2(owner, id))? else {
                return Ok(false);
            };
            w.put(
                KEYS,
                &hash,
                &key(&[owner.as_bytes(), id.as_bytes(), record]),
            )?;
            Ok(true)
        })
    }

    /// Removes the key `id` of `owner`, durably; `false` when there is none.
    pub fn remove_api_key(&self, owner: &str, id: &str) -> Result<bool> {
        self.write(true, |w| {
            let k = k2(owner, id);
            let Some(hash) = w.get(KEY_IDS, &k)? else {
                return Ok(false);
            };
            w.delete(KEY_IDS, &k)?;
            w.delete(KEYS, &hash)?;
            w.delete(KEY_USES, &k)?;
            Ok(true)
        })
    }

    /// Records last uses `(owner, id, seconds)` in one transaction; keys
    /// no longer stored are skipped, and a time never goes back.
    pub fn record_api_key_uses(&self, uses: &[(String, String, u64)]) -> Result<()> {
        self.write(false, |w| {
            for (owner, id, at) in uses {
                let k = k2(owner, id);
                if w.get(KEY_IDS, &k)?.is_none() {
                    continue;
                }
                let before = w.get(KEY_USES, &k)?.map_or(0, |t| read_u64(&t));
                if *at > before {
                    w.put(KEY_USES, &k, &u64_bytes(*at))?;
                }
            }
            Ok(())
        })
    }
}

//! Records of upload sessions shared between instances, in Redis.
//!
//! A session is the hash `<prefix>:upload:<uuid>` with two fields: `size`,
//! the bytes acknowledged (or `closed` once it completes or is cancelled),
//! and `rec`, the JSON [`SessionRecord`] (repository, size, SHA-256 state,
//! where the data stands). It expires after the upload time to live
//! without a write, as sessions in memory do.
//!
//! Invariants:
//! - Every change is a compare-and-set on `size` (a Lua script, atomic in
//!   Redis): a write acknowledged at one offset by one instance makes every
//!   other write based on the same offset fail, so two instances can never
//!   both append at one offset (the loser answers 416).
//! - `size` only grows, so a stale compare can never succeed (no ABA).
//! - A closed record is never written again; it is deleted once its data
//!   is published or removed (or expires).

use super::{SharedError, SharedState};
use crate::backend::UploadState;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use zot_oci::HashState;

/// Creates the record unless the key exists.
const CREATE: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
     redis.call('HSET', KEYS[1], 'size', ARGV[1], 'rec', ARGV[2]) \
     redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";
/// Replaces the record if its size is still ARGV[1].
const COMMIT: &str = "if redis.call('HGET', KEYS[1], 'size') ~= ARGV[1] then return 0 end \
     redis.call('HSET', KEYS[1], 'size', ARGV[2], 'rec', ARGV[3]) \
     redis.call('PEXPIRE', KEYS[1], ARGV[4]) return 1";

/// One shared upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub repo: String,
    /// Bytes acknowledged.
    pub size: u64,
    /// SHA-256 of exactly those bytes.
    pub hash: HashState,
    /// Where the bytes are (the backend's).
    pub data: UploadState,
    /// Seconds since the epoch when the session started.
    pub created: u64,
}

/// A session as read: open with its record, or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    Open(Box<SessionRecord>),
    Closed,
}

/// The shared session table.
#[derive(Clone, Debug)]
pub struct SessionRecords {
    shared: SharedState,
    ttl: Duration,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

impl SessionRecords {
    /// Sessions expiring `ttl` after their last write.
    pub fn new(shared: SharedState, ttl: Duration) -> SessionRecords {
        SessionRecords { shared, ttl }
    }

    fn key(&self, id: &uuid::Uuid) -> String {
        self.shared.key(&format!("upload:{id}"))
    }

    fn encode(&self, rec: &SessionRecord) -> Result<String, SharedError> {
        serde_json::to_string(rec).map_err(|e| SharedError::Corrupt {
            key: rec.repo.clone(),
            reason: e.to_string(),
        })
    }

    /// Stores the new session `id`; `false` if the id is taken.
    pub async fn create(&self, id: &uuid::Uuid, rec: &SessionRecord) -> Result<bool, SharedError> {
        let created: i64 = redis::cmd("EVAL")
            .arg(CREATE)
            .arg(1)
            .arg(self.key(id))
            .arg(rec.size)
            .arg(self.encode(rec)?)
            .arg(ms(self.ttl))
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(created == 1)
    }

    /// The session `id`, or `None` when unknown (never created, expired,
    /// or deleted).
    pub async fn get(&self, id: &uuid::Uuid) -> Result<Option<Session>, SharedError> {
        let key = self.key(id);
        let (size, rec): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("size")
            .arg("rec")
            .query_async(&mut self.shared.conn())
            .await?;
        match (size.as_deref(), rec) {
            (None, _) => Ok(None),
            (Some("closed"), _) => Ok(Some(Session::Closed)),
            (Some(_), Some(rec)) => serde_json::from_str(&rec)
                .map(|r| Some(Session::Open(Box::new(r))))
                .map_err(|e| SharedError::Corrupt {
                    key,
                    reason: e.to_string(),
                }),
            (Some(_), None) => Err(SharedError::Corrupt {
                key,
                reason: "no record".to_owned(),
            }),
        }
    }

    /// Replaces the record if the session still has `expected` bytes
    /// (and is open); `false` otherwise, having changed nothing.
    pub async fn commit(
        &self,
        id: &uuid::Uuid,
        expected: u64,
        rec: &SessionRecord,
    ) -> Result<bool, SharedError> {
        let done: i64 = redis::cmd("EVAL")
            .arg(COMMIT)
            .arg(1)
            .arg(self.key(id))
            .arg(expected)
            .arg(rec.size)
            .arg(self.encode(rec)?)
            .arg(ms(self.ttl))
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(done == 1)
    }

    /// Closes the session if it still has `expected` bytes: no request can
    /// use it any more. `false` when it had another size or was gone.
    pub async fn close(&self, id: &uuid::Uuid, expected: u64) -> Result<bool, SharedError> {
        let done: i64 = redis::cmd("EVAL")
            .arg(COMMIT)
            .arg(1)
            .arg(self.key(id))
            .arg(expected)
            .arg("closed")
            .arg("")
            .arg(ms(self.ttl))
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(done == 1)
    }

    /// Forgets the session (its data is gone).
    pub async fn delete(&self, id: &uuid::Uuid) -> Result<(), SharedError> {
        redis::cmd("DEL")
            .arg(self.key(id))
            .query_async::<()>(&mut self.shared.conn())
            .await?;
        Ok(())
    }

    /// Whether the session `id` is known (open or closed).
    pub async fn exists(&self, id: &uuid::Uuid) -> Result<bool, SharedError> {
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.key(id))
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(n == 1)
    }
}

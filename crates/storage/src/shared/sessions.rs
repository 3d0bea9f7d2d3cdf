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
//! - Open sessions are counted per repository and per store in two sorted
//!   sets scored by expiry (`uploads-open:<repo>`, `uploads-open`): the
//!   caps are checked and the session inserted in one script, closing
//!   removes it in the script that closes, and a session that expires
//!   without closing drops out of the count when its score passes.

use super::{SharedError, SharedState};
use crate::backend::UploadState;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use zot_oci::HashState;

/// The time in Redis, in milliseconds (scripts: one clock for all).
const NOW: &str = "local t = redis.call('TIME') \
     local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) ";
/// Creates the record unless the key exists or a cap is reached. KEYS:
/// record, the repository's open set, the store's open set. ARGV: size,
/// record, TTL (ms), id, cap per repository, cap in all.
const CREATE: &str = "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) \
     redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) \
     if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return -1 end \
     if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return -2 end \
     if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
     redis.call('HSET', KEYS[1], 'size', ARGV[1], 'rec', ARGV[2]) \
     redis.call('PEXPIRE', KEYS[1], ARGV[3]) \
     local expiry = now + tonumber(ARGV[3]) \
     for i = 2, 3 do redis.call('ZADD', KEYS[i], expiry, ARGV[4]) \
       redis.call('PEXPIRE', KEYS[i], ARGV[3]) end \
     return 1";
/// Replaces the record if its size is still ARGV[1]. KEYS as [`CREATE`];
/// ARGV: expected size, size, record, TTL (ms), id.
const COMMIT: &str = "if redis.call('HGET', KEYS[1], 'size') ~= ARGV[1] then return 0 end \
     redis.call('HSET', KEYS[1], 'size', ARGV[2], 'rec', ARGV[3]) \
     redis.call('PEXPIRE', KEYS[1], ARGV[4]) \
     local expiry = now + tonumber(ARGV[4]) \
     for i = 2, 3 do redis.call('ZADD', KEYS[i], 'XX', expiry, ARGV[5]) \
       redis.call('PEXPIRE', KEYS[i], ARGV[4]) end \
     return 1";
/// Closes the record if its size is still ARGV[1], and stops counting it.
/// KEYS as [`CREATE`]; ARGV: expected size, TTL (ms), id.
const CLOSE: &str = "if redis.call('HGET', KEYS[1], 'size') ~= ARGV[1] then return 0 end \
     redis.call('HSET', KEYS[1], 'size', 'closed', 'rec', '') \
     redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
     redis.call('ZREM', KEYS[2], ARGV[3]) redis.call('ZREM', KEYS[3], ARGV[3]) \
     return 1";

/// Bounds on open shared sessions (as `uploads::Caps` in memory).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_repo: usize,
    pub total: usize,
}

/// What [`SessionRecords::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// The id was in use (nothing written).
    Taken,
    /// The repository has `per_repo` open sessions.
    RepoFull,
    /// The store has `total` open sessions.
    AllFull,
}

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

    /// The record's key and the two sets counting open sessions (of its
    /// repository, of the store), scored by expiry.
    fn keys(&self, id: &uuid::Uuid, repo: &str) -> [String; 3] {
        [
            self.key(id),
            self.shared.key(&format!("uploads-open:{repo}")),
            self.shared.key("uploads-open"),
        ]
    }

    fn encode(&self, rec: &SessionRecord) -> Result<String, SharedError> {
        serde_json::to_string(rec).map_err(|e| SharedError::Corrupt {
            key: rec.repo.clone(),
            reason: e.to_string(),
        })
    }

    /// Stores the new session `id` unless its id is taken or a cap is
    /// reached (counted and inserted in one step, in Redis).
    pub async fn create(
        &self,
        id: &uuid::Uuid,
        rec: &SessionRecord,
        caps: Caps,
    ) -> Result<Created, SharedError> {
        let created: i64 = redis::cmd("EVAL")
            .arg(format!("{NOW}{CREATE}"))
            .arg(3)
            .arg(&self.keys(id, &rec.repo))
            .arg(rec.size)
            .arg(self.encode(rec)?)
            .arg(ms(self.ttl))
            .arg(id.to_string())
            .arg(caps.per_repo)
            .arg(caps.total)
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(match created {
            1 => Created::Yes,
            -1 => Created::RepoFull,
            -2 => Created::AllFull,
            _ => Created::Taken,
        })
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
            .arg(format!("{NOW}{COMMIT}"))
            .arg(3)
            .arg(&self.keys(id, &rec.repo))
            .arg(expected)
            .arg(rec.size)
            .arg(self.encode(rec)?)
            .arg(ms(self.ttl))
            .arg(id.to_string())
            .query_async(&mut self.shared.conn())
            .await?;
        Ok(done == 1)
    }

    /// Closes the session of `repo` if it still has `expected` bytes: no
    /// request can use it any more, and it no longer counts against the
    /// caps. `false` when it had another size or was gone.
    pub async fn close(
        &self,
        id: &uuid::Uuid,
        repo: &str,
        expected: u64,
    ) -> Result<bool, SharedError> {
        let done: i64 = redis::cmd("EVAL")
            .arg(CLOSE)
            .arg(3)
            .arg(&self.keys(id, repo))
            .arg(expected)
            .arg(ms(self.ttl))
            .arg(id.to_string())
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

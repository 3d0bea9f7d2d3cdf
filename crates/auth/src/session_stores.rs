//! The places sessions live (see [`crate::session::SessionStore`]): the
//! registry's metadata store (`sessionDriver` absent or `local`), or Redis
//! (`sessionDriver.name: redis`), shared by every instance using it.
//!
//! Invariants: metadata-store calls run on the blocking pool (a redb
//! writer may wait); Redis is one server (the configuration refuses
//! sentinel and cluster URLs for sessions, whose nodes would otherwise be
//! used as one server); keys are `<keyprefix>:<key>` and expire in Redis
//! itself at the record's expiry; a take is `GETDEL`, atomic in Redis.
//! Without `sessionKeysFile`, instances sharing a Redis share the cookie
//! secret through it (the first one to start stores it).

use std::sync::Arc;

use zot_meta::MetaStore;

use crate::session::{SessionStore, StoreError, now};

/// Sessions in the metadata store (redb).
pub struct MetaSessions {
    meta: Arc<MetaStore>,
}

impl MetaSessions {
    pub fn new(meta: Arc<MetaStore>) -> MetaSessions {
        MetaSessions { meta }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MetaStore) -> zot_meta::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || f(&meta))
            .await
            .map_err(|e| StoreError(e.to_string()))?
            .map_err(|e| StoreError(e.to_string()))
    }

    /// Removes expired records (called periodically by the binary).
    pub async fn purge(&self) -> Result<usize, StoreError> {
        self.run(|m| m.session_purge(now())).await
    }
}

#[async_trait::async_trait]
impl SessionStore for MetaSessions {
    async fn put(&self, key: &str, value: Vec<u8>, expires: u64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |m| m.session_put(&key, &value, expires))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.run(move |m| m.session_get(&key, now())).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.run(move |m| m.session_take(&key, now())).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |m| m.session_delete(&key)).await
    }
}

/// Sessions in Redis (`sessionDriver: {name: redis, url, keyprefix}`).
pub struct RedisSessions {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl RedisSessions {
    /// Connects to `url` (checked with a `PING`).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisSessions, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let mut conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(redis_error)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(RedisSessions {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The secret every instance sharing this Redis seals cookies with,
    /// when no `sessionKeysFile` is configured: `candidate` is stored under
    /// `<keyprefix>:cookie-secret` unless another instance stored one
    /// first (`SET NX`), and the stored one is returned.
    pub async fn shared_secret(&self, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key("cookie-secret");
        redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)?;
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        stored
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| StoreError(format!("{key} is missing or shorter than 32 bytes")))
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn put(&self, key: &str, value: Vec<u8>, expires: u64) -> Result<(), StoreError> {
        let seconds = expires.saturating_sub(now()).max(1);
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("EX")
            .arg(seconds)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)
    }
}

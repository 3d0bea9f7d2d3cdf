//! State shared by several registry processes serving one bucket, kept in
//! Redis (`storage.remoteCache: true` with a redis `storage.cacheDriver`):
//! upload sessions ([`sessions`]) and leases on background work
//! ([`lease`]). Every key lives under the configured key prefix, so several
//! registries (or other users) can share one Redis.
//!
//! Without Redis there is no [`SharedState`]: leases are then granted
//! locally at once ([`lease::Leases::local`]) and upload sessions stay in
//! the process's memory (`uploads.rs`), exactly as before.

pub mod lease;
pub mod sessions;

/// An error talking to Redis, or a record in it that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("shared record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A connection to the Redis all instances share, and the key prefix.
/// Cloning is cheap (one multiplexed connection, re-established by
/// `redis`' connection manager after a failure).
#[derive(Clone)]
pub struct SharedState {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedState({})", self.prefix)
    }
}

impl SharedState {
    /// Connects to `url`; keys are put under `<prefix>:`. The connection
    /// is made lazily: an unreachable server is logged, not an error, so an
    /// instance starts while Redis is away (its requests that need the
    /// shared state answer 503 until it is back).
    pub async fn connect(url: &str, prefix: &str) -> Result<SharedState, SharedError> {
        SharedState::over(redis::Client::open(url)?, prefix).await
    }

    /// [`SharedState::connect`] to `address`: with sentinels, to the
    /// master they name now, asked once (a failover is followed by the
    /// metadata store's next connection, but here only at the next
    /// start; see ARCHITECTURE.md, The metadata store).
    pub async fn connect_to(
        address: &zot_meta::RedisAddress,
        prefix: &str,
    ) -> Result<SharedState, SharedError> {
        SharedState::over(address.client_async().await?, prefix).await
    }

    async fn over(client: redis::Client, prefix: &str) -> Result<SharedState, SharedError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        let state = SharedState {
            conn,
            prefix: prefix.to_owned(),
        };
        if let Err(e) = redis::cmd("PING")
            .query_async::<String>(&mut state.conn())
            .await
        {
            tracing::warn!(error = %e, "the shared upload state is unreachable for now");
        }
        Ok(state)
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    pub(crate) fn conn(&self) -> Retrying {
        Retrying(self.conn.clone())
    }
}

/// The connection manager, with a command that failed on a dropped
/// connection sent once more: the manager reconnects after such an
/// error, so without this the first request after a Redis restart would
/// fail. A command the old server had already run before the connection
/// dropped may run twice; every write here is a compare-and-set or
/// idempotent, so the second run is refused or changes nothing.
pub(crate) struct Retrying(redis::aio::ConnectionManager);

impl redis::aio::ConnectionLike for Retrying {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            match self.0.req_packed_command(cmd).await {
                Err(e) if e.is_connection_dropped() => self.0.req_packed_command(cmd).await,
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            match self.0.req_packed_commands(pipeline, offset, count).await {
                Err(e) if e.is_connection_dropped() => {
                    self.0.req_packed_commands(pipeline, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

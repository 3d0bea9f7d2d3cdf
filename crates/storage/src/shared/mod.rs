//! State shared by several registry processes serving one bucket, kept in
//! Redis (`storage.remoteCache: true` with a redis `storage.cacheDriver`):
//! upload sessions ([`sessions`]) and leases on background work
//! ([`lease`]). Every key lives under the configured key prefix, so several
//! registries (or other users) can share one Redis.
//!
//! Keys are `<keyprefix>:...` on one server or behind sentinels (the names
//! earlier builds wrote, so instances of both keep excluding each other
//! through the same leases during a rolling upgrade), and
//! `{<keyprefix>}:...` in a Redis Cluster: the hash tag puts every key in
//! the slot of the metadata store's keys (`{<keyprefix>}:kv:...`), so the
//! multi-key scripts and pipelines here run on the one master serving it.
//!
//! Without Redis there is no [`SharedState`]: leases are then granted
//! locally at once ([`lease::Leases::local`]) and upload sessions stay in
//! the process's memory (`uploads.rs`), exactly as before.

pub mod lease;
mod link;
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
/// `redis`' connection manager after a failure; with sentinels, made
/// again to the master they name after a failover, see [`link`]).
#[derive(Clone)]
pub struct SharedState {
    link: std::sync::Arc<link::Link>,
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
        let link = link::Link::server(redis::Client::open(url)?)?;
        SharedState::over(link, prefix).await
    }

    /// [`SharedState::connect`] to `address`: with sentinels, to the
    /// master they name, asked again whenever it cannot be reached or
    /// refuses writes (a failover), and asked at the first request when
    /// no sentinel answered at start-up; in a cluster, to the master
    /// serving the slot of `{<prefix>}`, asked of the seed nodes in the
    /// same way and again when the slot moves.
    pub async fn connect_to(
        address: &zot_meta::RedisAddress,
        prefix: &str,
    ) -> Result<SharedState, SharedError> {
        let prefix = match address.cluster {
            Some(_) => format!("{{{prefix}}}"),
            None => prefix.to_owned(),
        };
        let slot = zot_meta::key_slot(prefix.as_bytes());
        let link = match address.resolved() {
            false => link::Link::server(address.client(slot)?)?,
            true => link::Link::resolving(address.clone(), slot),
        };
        SharedState::over(link, &prefix).await
    }

    async fn over(link: link::Link, prefix: &str) -> Result<SharedState, SharedError> {
        let state = SharedState {
            link: std::sync::Arc::new(link),
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

    pub(crate) fn conn(&self) -> link::Retrying {
        link::Retrying(self.link.clone())
    }
}

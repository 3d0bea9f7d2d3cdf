//! Where the Redis of a shared store is: one server, or the master that a
//! set of sentinels names (`storage.cacheDriver` with `master_name`).
//!
//! With sentinels, the master is asked of them (the `redis` crate's
//! `SentinelClient`: the first sentinel answering names the master, which
//! must say it is one) each time a client is made: the metadata store does
//! so for every new connection of its pool, and the shared upload state
//! (`zot_storage`'s `shared/link.rs`) when it connects again. Both connect
//! again when a command fails and when the sentinels announce a switch
//! ([`RedisAddress::watch_master`], `sentinel_watch.rs`), so reads follow
//! a failover too. The URL gives what the master needs (credentials,
//! database, TLS); its host is not used.

use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

/// Where the server is and how long to wait for it.
#[derive(Clone)]
pub struct RedisAddress {
    /// `redis://[user:password@]host:port/db` (`rediss://` for TLS); with
    /// sentinels, the host is the first sentinel's and only the rest is
    /// used.
    pub url: String,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// Sentinel mode: the master is the one these sentinels name.
    pub sentinel: Option<Sentinels>,
}

/// Sentinels and the name of the master they watch.
#[derive(Clone)]
pub struct Sentinels {
    /// `redis://[user:password@]host:port` of each sentinel.
    pub urls: Vec<String>,
    pub master_name: String,
}

impl std::fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs may carry a password.
        let hide = |url: &str| match url.rsplit_once('@') {
            Some((_, host)) => format!("redis://<credentials>@{host}"),
            None => url.to_owned(),
        };
        let sentinels = self.sentinel.as_ref().map(|s| {
            let urls: Vec<String> = s.urls.iter().map(|u| hide(u)).collect();
            (s.master_name.clone(), urls)
        });
        f.debug_struct("RedisAddress")
            .field("url", &hide(&self.url))
            .field("sentinel", &sentinels)
            .finish()
    }
}

impl RedisAddress {
    /// A client of the server, or of the master the sentinels name now.
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.sentinel {
            None => redis::Client::open(self.url.as_str()),
            Some(s) => self.sentinel_client(s)?.get_client(),
        }
    }

    /// [`RedisAddress::client`] for async code.
    pub async fn client_async(&self) -> redis::RedisResult<redis::Client> {
        match &self.sentinel {
            None => redis::Client::open(self.url.as_str()),
            Some(s) => self.sentinel_client(s)?.async_get_client().await,
        }
    }

    /// With sentinels, a watch of the master's switches (a thread; see
    /// `sentinel_watch.rs`); `None` for one server.
    pub fn watch_master(&self) -> Option<std::sync::Arc<super::sentinel_watch::MasterWatch>> {
        self.sentinel
            .as_ref()
            .map(super::sentinel_watch::MasterWatch::start)
    }

    fn sentinel_client(&self, s: &Sentinels) -> redis::RedisResult<SentinelClient> {
        let info = self.url.as_str().into_connection_info()?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(info.redis_settings().clone());
        if self.url.starts_with("rediss://") {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        SentinelClient::build(
            s.urls.clone(),
            s.master_name.as_str(),
            Some(node),
            SentinelServerType::Master,
        )
    }
}

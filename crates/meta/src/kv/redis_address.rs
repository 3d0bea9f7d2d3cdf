//! Where the Redis of a shared store is: one server, the master that a
//! set of sentinels names (`storage.cacheDriver` with `master_name`), or
//! the master serving the store's slot in a Redis Cluster (several
//! addresses without `master_name`; see `redis_cluster.rs`).
//!
//! With sentinels, the master is asked of them (the `redis` crate's
//! `SentinelClient`: the first sentinel answering names the master, which
//! must say it is one) each time a client is made: the metadata store does
//! so for every new connection of its pool, and the shared upload state
//! (`zot_storage`'s `shared/link.rs`) when it connects again. Both connect
//! again when a command fails and when the sentinels announce a switch
//! ([`RedisAddress::watch_master`], `sentinel_watch.rs`), so reads follow
//! a failover too. The URL gives what the master needs (credentials,
//! database, TLS); its host is not used. In a cluster, the master of the
//! store's slot is asked of the seed nodes each time a client is made, in
//! the same way.

use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

use super::redis_cluster::ClusterNodes;

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
    /// Cluster mode: the master is the one serving the store's slot.
    pub cluster: Option<ClusterNodes>,
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
        let cluster = self
            .cluster
            .as_ref()
            .map(|c| c.urls.iter().map(|u| hide(u)).collect::<Vec<_>>());
        f.debug_struct("RedisAddress")
            .field("url", &hide(&self.url))
            .field("sentinel", &sentinels)
            .field("cluster", &cluster)
            .finish()
    }
}

impl RedisAddress {
    /// A client of the server, of the master the sentinels name now, or
    /// of the cluster master serving `slot` now (the slot of the store's
    /// keys, [`crate::key_slot`]; unused without a cluster).
    pub fn client(&self, slot: u16) -> redis::RedisResult<redis::Client> {
        if let Some(c) = &self.cluster {
            return c.master(slot, self.connect_timeout, self.io_timeout);
        }
        match &self.sentinel {
            None => redis::Client::open(self.url.as_str()),
            Some(s) => self.sentinel_client(s)?.get_client(),
        }
    }

    /// [`RedisAddress::client`] for async code.
    pub async fn client_async(&self, slot: u16) -> redis::RedisResult<redis::Client> {
        if let Some(c) = &self.cluster {
            return c
                .master_async(slot, self.connect_timeout, self.io_timeout)
                .await;
        }
        match &self.sentinel {
            None => redis::Client::open(self.url.as_str()),
            Some(s) => self.sentinel_client(s)?.async_get_client().await,
        }
    }

    /// Whether the server is found anew for each client (sentinels or a
    /// cluster), so that a failover is followed.
    pub fn resolved(&self) -> bool {
        self.sentinel.is_some() || self.cluster.is_some()
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

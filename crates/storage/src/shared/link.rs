//! The connection behind [`super::SharedState`]: one multiplexed
//! connection (`redis`' `ConnectionManager`, which reconnects by itself)
//! to the server, or to the master that the sentinels name.
//!
//! Invariants:
//! - A command that failed on a dropped connection is sent once more: the
//!   manager reconnects after such an error, so without this the first
//!   request after a Redis restart would fail. A command the old server
//!   had already run before the connection dropped may run twice; every
//!   write of the shared state is a compare-and-set or idempotent, so the
//!   second run is refused or changes nothing.
//! - With sentinels, a command whose connection failed (dropped, refused,
//!   timed out) or that the server refused as a read-only replica (the
//!   old master after a failover) makes the link ask the sentinels for the
//!   master again and sends the command once more there. When no sentinel
//!   answered at start-up, the first command asks them.
//! - With sentinels, the connection is used only in the generation of the
//!   master it was made in (`zot_meta::MasterWatch`, bumped when the
//!   sentinels announce a switch): the first command after a switch asks
//!   them again, so reads too go to the new master at once.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
}

pub(crate) struct Link {
    /// The connection and the master generation it was made in; `None`
    /// until the sentinels named a master.
    current: Mutex<Option<(u64, ConnectionManager)>>,
    /// With sentinels: where to ask for the master again.
    sentinels: Option<zot_meta::RedisAddress>,
    /// With sentinels: the master's switches.
    watch: Option<Arc<zot_meta::MasterWatch>>,
}

impl Link {
    /// One server (connected lazily).
    pub(crate) fn server(client: redis::Client) -> RedisResult<Link> {
        let manager = ConnectionManager::new_lazy_with_config(client, config())?;
        Ok(Link {
            current: Mutex::new(Some((0, manager))),
            sentinels: None,
            watch: None,
        })
    }

    /// The master `address`'s sentinels name (asked at the first command).
    pub(crate) fn sentinels(address: zot_meta::RedisAddress) -> Link {
        Link {
            current: Mutex::new(None),
            watch: address.watch_master(),
            sentinels: Some(address),
        }
    }

    fn generation(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.generation())
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, m)| m.clone())
    }

    async fn manager(&self) -> RedisResult<ConnectionManager> {
        let now = self.generation();
        let current = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(g, _)| *g == now)
            .map(|(_, m)| m.clone());
        match current {
            Some(m) => Ok(m),
            None => self.resolve().await,
        }
    }

    /// Asks the sentinels for the master and connects to it from now on.
    async fn resolve(&self) -> RedisResult<ConnectionManager> {
        let Some(address) = &self.sentinels else {
            return self.current().ok_or_else(|| {
                RedisError::from((redis::ErrorKind::Client, "no connection to Redis"))
            });
        };
        let generation = self.generation();
        let manager =
            ConnectionManager::new_lazy_with_config(address.client_async().await?, config())?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, manager.clone()));
        tracing::info!("shared state: connected to the master the sentinels name");
        Ok(manager)
    }

    /// Whether `e` calls for asking the sentinels again.
    fn moved(&self, e: &RedisError) -> bool {
        self.sentinels.is_some()
            && (e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_io_error()
                || e.is_timeout()
                || e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly))
    }
}

/// Whether an answer is a read-only replica's refusal.
fn read_only(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => e.kind() == Some(ServerErrorKind::ReadOnly),
        Value::Array(items) => items.iter().any(read_only),
        _ => false,
    }
}

/// The link, as a connection that retries as the module doc says.
pub(crate) struct Retrying(pub(crate) Arc<Link>);

impl ConnectionLike for Retrying {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let link = &self.0;
            let mut m = link.manager().await?;
            match m.req_packed_command(cmd).await {
                Err(e) if link.moved(&e) => link.resolve().await?.req_packed_command(cmd).await,
                Ok(v) if link.sentinels.is_some() && read_only(&v) => {
                    link.resolve().await?.req_packed_command(cmd).await
                }
                Err(e) if e.is_connection_dropped() => m.req_packed_command(cmd).await,
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let link = &self.0;
            let mut m = link.manager().await?;
            match m.req_packed_commands(pipeline, offset, count).await {
                Err(e) if link.moved(&e) => {
                    let mut m = link.resolve().await?;
                    m.req_packed_commands(pipeline, offset, count).await
                }
                Ok(v) if link.sentinels.is_some() && v.iter().any(read_only) => {
                    let mut m = link.resolve().await?;
                    m.req_packed_commands(pipeline, offset, count).await
                }
                Err(e) if e.is_connection_dropped() => {
                    m.req_packed_commands(pipeline, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.current().map_or(0, |m| m.get_db())
    }
}

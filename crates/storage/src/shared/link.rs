//! The connection behind [`super::SharedState`]: one multiplexed
//! connection (`redis`' `ConnectionManager`, which reconnects by itself)
//! to the server, to the master that the sentinels name, or to the master
//! serving the slot of the store's keys in a Redis Cluster.
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
//! - In a cluster, the same on a failed connection; and a command the
//!   cluster refused because the slot moved or is moving (`MOVED`, `ASK`,
//!   `TRYAGAIN`, `CLUSTERDOWN`: nothing ran, `zot_meta::is_redirect`)
//!   makes the link ask the seed nodes for the slot's master again and
//!   send it there, pausing and asking again while the refusals last
//!   (a migration in progress), for at most [`REDIRECT_WAIT`].
//! - With sentinels, the connection is used only in the generation of the
//!   master it was made in (`zot_meta::MasterWatch`, bumped when the
//!   sentinels announce a switch): the first command after a switch asks
//!   them again, so reads too go to the new master at once.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long commands refused by a cluster whose slot moves are sent again.
const REDIRECT_WAIT: Duration = Duration::from_secs(15);

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
}

pub(crate) struct Link {
    /// The connection and the master generation it was made in; `None`
    /// until the sentinels (or the cluster's seed nodes) named a master.
    current: Mutex<Option<(u64, ConnectionManager)>>,
    /// With sentinels or a cluster: where to ask for the master again.
    sentinels: Option<zot_meta::RedisAddress>,
    /// The cluster slot of the store's keys (`{<keyprefix>}`).
    slot: u16,
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
            slot: 0,
            watch: None,
        })
    }

    /// The master `address`'s sentinels name, or the master its cluster's
    /// seed nodes name for `slot` (asked at the first command).
    pub(crate) fn resolving(address: zot_meta::RedisAddress, slot: u16) -> Link {
        Link {
            current: Mutex::new(None),
            watch: address.watch_master(),
            sentinels: Some(address),
            slot,
        }
    }

    fn cluster(&self) -> bool {
        self.sentinels.as_ref().is_some_and(|a| a.cluster.is_some())
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
        let client = address.client_async(self.slot).await?;
        let manager = ConnectionManager::new_lazy_with_config(client, config())?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, manager.clone()));
        let what = if self.cluster() {
            "the cluster master serving the slot of the store's keys"
        } else {
            "the master the sentinels name"
        };
        tracing::info!("shared state: connected to {what}");
        Ok(manager)
    }

    /// Whether `e` calls for asking the sentinels (or seed nodes) again.
    fn moved(&self, e: &RedisError) -> bool {
        self.sentinels.is_some()
            && (e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_io_error()
                || e.is_timeout()
                || e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
                || self.redirected(e))
    }

    /// Whether a cluster refused `e`'s command because the slot moved.
    fn redirected(&self, e: &RedisError) -> bool {
        self.cluster() && zot_meta::is_redirect(e)
    }

    /// Whether an answer is a refusal calling for a new master: a
    /// read-only replica's (sentinels) or a cluster's (slot moved).
    fn refused(&self, v: &Value) -> bool {
        self.sentinels.is_some()
            && (read_only(v) || (self.cluster() && zot_meta::is_redirect_value(v)))
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

/// Sends a command with `send` on the link's connection, and again after
/// asking for the master as the module doc says; `refused` tells an
/// answer that calls for a new master.
async fn retrying<'a, T, F>(link: &'a Link, send: F, refused: impl Fn(&T) -> bool) -> RedisResult<T>
where
    F: Fn(ConnectionManager) -> RedisFuture<'a, T>,
{
    let m = link.manager().await?;
    match send(m.clone()).await {
        Err(e) if link.moved(&e) => {}
        Ok(v) if refused(&v) => {}
        Err(e) if e.is_connection_dropped() => return send(m).await,
        other => return other,
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        // In a cluster, no master named for the slot (a failover under way)
        // is waited out like a refusal.
        let answer = match link.resolve().await {
            Ok(m) => send(m).await,
            Err(e) => Err(e),
        };
        // A cluster that keeps refusing is moving the slot: ask again
        // after a pause; anything else is sent to the new master once.
        let again = match &answer {
            Err(e) => link.redirected(e),
            Ok(v) => link.cluster() && refused(v),
        };
        if !again || start.elapsed() >= REDIRECT_WAIT {
            return answer;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The link, as a connection that retries as the module doc says.
pub(crate) struct Retrying(pub(crate) Arc<Link>);

impl ConnectionLike for Retrying {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let link = &*self.0;
        Box::pin(retrying(
            link,
            move |mut m| Box::pin(async move { m.req_packed_command(cmd).await }),
            |v| link.refused(v),
        ))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let link = &*self.0;
        Box::pin(retrying(
            link,
            move |mut m| {
                Box::pin(async move { m.req_packed_commands(pipeline, offset, count).await })
            },
            |v: &Vec<Value>| v.iter().any(|x| link.refused(x)),
        ))
    }

    fn get_db(&self) -> i64 {
        self.0.current().map_or(0, |m| m.get_db())
    }
}

//! The connections of the Redis store (`redis_kv.rs`): a pool of
//! synchronous connections to the server, to the master the sentinels
//! name, or to the cluster master serving the store's slot.
//!
//! Invariants:
//! - A connection whose command failed is dropped, never pooled again.
//! - With sentinels, each new connection asks them where the master is
//!   (`RedisAddress::client`), so a failover is followed. In a cluster the
//!   master the seed nodes named is kept for new connections until a
//!   command fails (refused, or its connection failed): the next new
//!   connection asks the seed nodes again.
//! - In a cluster, a command refused because the slot moved or is moving
//!   (`zot_meta::is_redirect`: nothing ran) marks the connection
//!   `redirected` and empties the pool (its connections go to the old
//!   master); callers try again on a new connection, pausing between tries
//!   ([`RedirectWait`]) for at most [`REDIRECT_WAIT`].

use std::sync::Mutex;
use std::time::Duration;

use redis::Connection;

use super::redis_address::RedisAddress;
use super::redis_cluster::is_redirect;
use crate::{MetaError, Result};

/// Idle connections kept.
const POOL: usize = 16;
/// How long a command refused by a cluster whose slot moves is tried again.
pub(crate) const REDIRECT_WAIT: Duration = Duration::from_secs(15);

pub(crate) fn redis_error(e: redis::RedisError) -> MetaError {
    // A replica refusing a write is a master gone (a sentinel failover),
    // and a cluster still refusing after `REDIRECT_WAIT` is reorganizing:
    // unavailable too, until a new connection finds the new master.
    let io = is_redirect(&e)
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
    MetaError::Remote {
        message: e.to_string(),
        io,
    }
}

/// The store's connections.
pub(crate) struct RedisPool {
    /// The server's client; `None` with sentinels or a cluster (the master
    /// is asked of them for each new connection, so a failover is
    /// followed).
    client: Option<redis::Client>,
    address: RedisAddress,
    /// The cluster slot of every key of the store.
    slot: u16,
    /// In a cluster: the slot's master as last named by the seed nodes.
    master: Mutex<Option<redis::Client>>,
    /// Idle connections, with the master generation each was made in.
    idle: Mutex<Vec<(u64, Connection)>>,
    /// With sentinels: the master's switches (`sentinel_watch.rs`).
    watch: Option<std::sync::Arc<super::sentinel_watch::MasterWatch>>,
}

impl RedisPool {
    pub(crate) fn new(address: &RedisAddress, slot: u16) -> Result<RedisPool> {
        let client = match address.resolved() {
            false => Some(redis::Client::open(address.url.as_str()).map_err(redis_error)?),
            true => None,
        };
        Ok(RedisPool {
            client,
            address: address.clone(),
            slot,
            master: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            watch: address.watch_master(),
        })
    }

    /// The master's generation now (0 without sentinels).
    fn generation(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.generation())
    }

    pub(crate) fn cluster(&self) -> bool {
        self.address.cluster.is_some()
    }

    fn new_connection(&self) -> redis::RedisResult<Connection> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None if self.cluster() => {
                let known = self
                    .master
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                match known {
                    Some(c) => c,
                    None => {
                        let c = self.address.client(self.slot)?;
                        *self.master.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                        c
                    }
                }
            }
            None => self.address.client(self.slot)?,
        };
        let c = client.get_connection_with_timeout(self.address.connect_timeout)?;
        let t = Some(self.address.io_timeout);
        c.set_read_timeout(t)?;
        c.set_write_timeout(t)?;
        Ok(c)
    }

    pub(crate) fn conn(&self) -> Result<Pooled<'_>> {
        self.try_conn().map_err(|(e, _)| e)
    }

    /// A connection, or the error and whether it is a cluster's refusal
    /// (no master named for the slot yet: a failover).
    fn try_conn(&self) -> std::result::Result<Pooled<'_>, (MetaError, bool)> {
        let generation = self.generation();
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|(g, _)| *g == generation);
            idle.pop().map(|(_, c)| c)
        };
        let conn = match idle {
            Some(c) => c,
            None => self.new_connection().map_err(|e| {
                // The master named may be gone: ask the seeds next time.
                *self.master.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let redirect = self.cluster() && is_redirect(&e);
                (redis_error(e), redirect)
            })?,
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            generation,
            broken: false,
            redirected: false,
        })
    }

    /// A connection, waiting (within `wait`) while the cluster names no
    /// master for the slot.
    pub(crate) fn conn_within(&self, wait: &mut RedirectWait) -> Result<Pooled<'_>> {
        loop {
            match self.try_conn() {
                Ok(c) => return Ok(c),
                Err((_, true)) if wait.pause() => {}
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// The slot moved (or its master failed): connections to its old
    /// master are of no more use, and the master is asked again.
    pub(crate) fn forget_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.master.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Pauses between tries of a command a cluster refused while its slot
/// moves, for at most [`REDIRECT_WAIT`] in all.
pub(crate) struct RedirectWait {
    start: std::time::Instant,
    pause: Duration,
}

impl RedirectWait {
    pub(crate) fn new() -> RedirectWait {
        RedirectWait {
            start: std::time::Instant::now(),
            pause: Duration::from_millis(20),
        }
    }

    /// Sleeps before the next try; `false` (no sleep) once the time is up.
    pub(crate) fn pause(&mut self) -> bool {
        if self.start.elapsed() >= REDIRECT_WAIT {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(Duration::from_millis(500));
        true
    }
}

/// A connection borrowed from the pool; back to it when dropped, unless broken.
pub(crate) struct Pooled<'a> {
    pool: &'a RedisPool,
    pub(crate) conn: Option<Connection>,
    /// The master generation it was made in.
    generation: u64,
    pub(crate) broken: bool,
    /// A cluster refused a command because the slot moved (see the module
    /// doc): nothing ran; try again on a new connection.
    pub(crate) redirected: bool,
}

impl Pooled<'_> {
    /// Whether the sentinels announced another master since this
    /// connection was made.
    pub(crate) fn stale(&self) -> bool {
        self.generation != self.pool.generation()
    }

    pub(crate) fn failed(&mut self, e: redis::RedisError) -> MetaError {
        self.broken = true;
        if self.pool.cluster() {
            if is_redirect(&e) {
                self.redirected = true;
                self.pool.forget_idle();
            } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                // The master is gone: its idle connections would each fail
                // one more request.
                self.pool.forget_idle();
            } else {
                *self.pool.master.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        redis_error(e)
    }

    pub(crate) fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(MetaError::Unavailable);
        };
        cmd.query(conn).map_err(|e| self.failed(e))
    }
}

impl Pooled<'_> {
    /// `WATCH key` then `cmd`, in one round trip.
    pub(crate) fn watched<T: redis::FromRedisValue>(
        &mut self,
        key: &[u8],
        cmd: &redis::Cmd,
    ) -> Result<T> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(MetaError::Unavailable);
        };
        let mut pipe = redis::pipe();
        pipe.cmd("WATCH").arg(key).ignore().add_command(cmd.clone());
        match pipe.query::<(T,)>(conn) {
            Ok((v,)) => Ok(v),
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if self.broken || self.stale() {
            return;
        }
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < POOL {
                idle.push((self.generation, conn));
            }
        }
    }
}

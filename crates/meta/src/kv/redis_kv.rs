//! The tables in Redis, shared by every registry instance using the same
//! server and key prefix.
//!
//! Key layout (`<p>` is `storage.cacheDriver.keyprefix`, in braces so that
//! every key of one store hashes to one Redis Cluster slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{<p>}:kv:<table>:<key bytes>` | string | the value of one row |
//! | `{<p>}:ix:<table>` | sorted set, every score 0 | the keys of the table's rows, in byte order (`ZRANGEBYLEX`) |
//! | `{<p>}:ver:<table>` | integer | bumped by every commit that writes the table |
//!
//! Invariants:
//! - A row's value and its index entry change together, in one
//!   `MULTI`/`EXEC`: a key is in the index exactly when its value exists.
//! - A write is optimistic: before each read it `WATCH`es what the read
//!   depends on (the row's key for a point read; the table's `ver` key for
//!   a range, a length or a last row), keeps its own puts and deletes in
//!   memory (its reads see them), and commits them in one `MULTI`/`EXEC`
//!   that also bumps `ver` of each table written. When another writer
//!   changed something watched, `EXEC` is refused and the write runs again
//!   from the start (with a short random pause, at most
//!   [`MAX_ATTEMPTS`] times).
//! - A range read outside a write is one Lua script (`ZRANGEBYLEX` then
//!   the values), so it never sees an index entry without its value.
//! - A connection that failed is dropped, never reused; an I/O error is
//!   `MetaError::Remote { io: true }`, which the store reports as
//!   unavailable until [`Kv::reopen`] reaches the server again.
//! - In a Redis Cluster every key above is in the slot of `{<p>}`, served
//!   by one master (`redis_cluster.rs`). A command refused because the
//!   slot moved or is moving (`MOVED`, `ASK`, `TRYAGAIN`, ...) ran
//!   nothing: the idle connections are dropped, and the read is sent again
//!   (the write run again from the start) on a connection to the slot's
//!   master of the moment, pausing while the slot migrates, for at most
//!   `redis_pool::REDIRECT_WAIT`. In a cluster, a range read whose index
//!   names a row without its value (the row already migrated) is refused
//!   the same way (a row and its index entry are otherwise always
//!   together).
//! - With sentinels, a pooled connection is used only in the generation
//!   of the master it was made in (`sentinel_watch.rs`, kept by
//!   `redis_pool.rs`): after a switch the pool is emptied and connections
//!   in use are not returned, so no read started after the switch is
//!   announced is answered by the old master, and a write whose
//!   connection was made before it runs again before its `EXEC`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use redis::Value;

use super::redis_address::RedisAddress;
use super::redis_pool::{Pooled, RedirectWait, RedisPool};
use super::{Kv, Read, Row, Write};
use crate::{MetaError, Result};

/// Attempts of one write before it gives up (conflicts with other writers).
pub(crate) const MAX_ATTEMPTS: u32 = 200;
/// `ZRANGEBYLEX` (or `ZREVRANGEBYLEX` when ARGV[5] is `1`) with the rows'
/// values, atomically. KEYS[1]: index; ARGV: row key prefix, min, max,
/// limit, rev, and whether a missing row is a cluster's migration under
/// way (`1`: refused with `TRYAGAIN`; else skipped, as it cannot happen).
const RANGE_SCRIPT: &str = r"
local ks
if ARGV[5] == '1' then
  ks = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
else
  ks = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
end
local out = {}
for _, k in ipairs(ks) do
  local v = redis.call('GET', ARGV[1] .. k)
  if v then
    out[#out + 1] = k
    out[#out + 1] = v
  elseif ARGV[6] == '1' then
    return redis.error_reply('TRYAGAIN a row of the range is moving to another cluster node')
  end
end
return out
";

pub(crate) struct RedisKv {
    pool: RedisPool,
    /// `{<p>}:`
    prefix: String,
}

impl RedisKv {
    pub(crate) fn connect(address: &RedisAddress, key_prefix: &str) -> Result<RedisKv> {
        let prefix = format!("{{{key_prefix}}}:");
        let slot = super::redis_cluster::key_slot(prefix.as_bytes());
        Ok(RedisKv {
            pool: RedisPool::new(address, slot)?,
            prefix,
        })
    }

    fn row_key(&self, table: &str, key: &[u8]) -> Vec<u8> {
        let mut k = format!("{}kv:{table}:", self.prefix).into_bytes();
        k.extend_from_slice(key);
        k
    }

    fn row_prefix(&self, table: &str) -> String {
        format!("{}kv:{table}:", self.prefix)
    }

    fn index_key(&self, table: &str) -> String {
        format!("{}ix:{table}", self.prefix)
    }

    fn version_key(&self, table: &str) -> String {
        format!("{}ver:{table}", self.prefix)
    }
}

/// A lexical bound of `ZRANGEBYLEX`: `[key` (inclusive) or `(key`.
fn lex(inclusive: bool, key: &[u8]) -> Vec<u8> {
    let mut b = vec![if inclusive { b'[' } else { b'(' }];
    b.extend_from_slice(key);
    b
}

fn range_cmd(
    kv: &RedisKv,
    table: &str,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
    rev: bool,
) -> redis::Cmd {
    let max = end.map_or_else(|| b"+".to_vec(), |e| lex(false, e));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX).min(1 << 40);
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RANGE_SCRIPT)
        .arg(1)
        .arg(kv.index_key(table))
        .arg(kv.row_prefix(table))
        .arg(lex(true, start))
        .arg(max)
        .arg(limit)
        .arg(if rev { "1" } else { "0" })
        .arg(if kv.pool.cluster() { "1" } else { "0" });
    cmd
}

fn pairs(v: Vec<Vec<u8>>) -> Vec<Row> {
    let mut out = Vec::with_capacity(v.len() / 2);
    let mut it = v.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Reads of committed data, one command each.
struct RedisRead<'a> {
    kv: &'a RedisKv,
    conn: Pooled<'a>,
}

impl RedisRead<'_> {
    /// Runs `cmd`, again on a new connection while a cluster refuses it
    /// because the slot moved (see the module doc).
    fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        let mut wait = RedirectWait::new();
        loop {
            match self.conn.run(cmd) {
                Err(_) if self.conn.redirected && wait.pause() => {
                    self.conn = self.kv.pool.conn_within(&mut wait)?;
                }
                other => return other,
            }
        }
    }
}

impl Read for RedisRead<'_> {
    fn get(&mut self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.kv.row_key(table, key));
        self.run(&cmd)
    }

    fn range(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let cmd = range_cmd(self.kv, table, start, end, limit, false);
        Ok(pairs(self.run(&cmd)?))
    }

    fn keys(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The index alone: an entry is there exactly when its value is.
        let max = end.map_or_else(|| b"+".to_vec(), |e| lex(false, e));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX).min(1 << 40);
        let mut cmd = redis::cmd("ZRANGEBYLEX");
        cmd.arg(self.kv.index_key(table))
            .arg(lex(true, start))
            .arg(max)
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        self.run(&cmd)
    }

    fn last(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<Row>> {
        let cmd = range_cmd(self.kv, table, start, end, 1, true);
        Ok(pairs(self.run(&cmd)?).pop())
    }

    fn len(&mut self, table: &'static str) -> Result<u64> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(self.kv.index_key(table));
        self.run(&cmd)
    }
}

/// One attempt of a write: watched reads, buffered changes.
struct RedisWrite<'a> {
    kv: &'a RedisKv,
    conn: Pooled<'a>,
    /// (table, key) -> new value (`None`: deleted).
    pending: BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
    watched: HashSet<Vec<u8>>,
}

impl RedisWrite<'_> {
    /// Runs `cmd` after watching `key` (in the same round trip the first time).
    fn watch_run<T: redis::FromRedisValue>(&mut self, key: Vec<u8>, cmd: &redis::Cmd) -> Result<T> {
        if self.watched.contains(&key) {
            return self.conn.run(cmd);
        }
        let v = self.conn.watched(&key, cmd)?;
        self.watched.insert(key);
        Ok(v)
    }

    /// The pending changes of `table` with `start <= key < end`.
    fn pending_in<'p>(
        &'p self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'p Vec<u8>, &'p Option<Vec<u8>>)> {
        let lo = (table, start.to_vec());
        self.pending
            .range(lo..)
            .take_while(move |((t, k), _)| *t == table && end.is_none_or(|e| k.as_slice() < e))
            .map(|((_, k), v)| (k, v))
    }

    fn commit(&mut self) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut tables = BTreeSet::new();
        for ((table, key), value) in &self.pending {
            tables.insert(*table);
            let row = self.kv.row_key(table, key);
            match value {
                Some(v) => {
                    pipe.cmd("SET").arg(row).arg(v.as_slice()).ignore();
                    pipe.cmd("ZADD")
                        .arg(self.kv.index_key(table))
                        .arg(0)
                        .arg(key.as_slice())
                        .ignore();
                }
                None => {
                    pipe.cmd("DEL").arg(row).ignore();
                    pipe.cmd("ZREM")
                        .arg(self.kv.index_key(table))
                        .arg(key.as_slice())
                        .ignore();
                }
            }
        }
        for table in tables {
            pipe.cmd("INCR").arg(self.kv.version_key(table)).ignore();
        }
        if self.conn.stale() {
            // The sentinels named another master since this connection was
            // made: the old one may still accept the write, and lose it.
            // Run it again from the start on the new master.
            self.conn.broken = true;
            return Ok(false);
        }
        let Some(conn) = self.conn.conn.as_mut() else {
            return Err(MetaError::Unavailable);
        };
        match pipe.query::<Option<()>>(conn) {
            Ok(done) => Ok(done.is_some()),
            Err(e) => Err(self.conn.failed(e)),
        }
    }
}

impl Read for RedisWrite<'_> {
    fn get(&mut self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(&(table, key.to_vec())) {
            return Ok(v.clone());
        }
        let row = self.kv.row_key(table, key);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&row);
        self.watch_run(row, &cmd)
    }

    fn range(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Pending deletes may hide rows: read that many more.
        let hidden = self.pending_in(table, start, end).count();
        let cmd = range_cmd(
            self.kv,
            table,
            start,
            end,
            limit.saturating_add(hidden),
            false,
        );
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> =
            pairs(self.conn.run(&cmd)?).into_iter().collect();
        let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .pending_in(table, start, end)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in changes {
            match v {
                Some(v) => {
                    rows.insert(k, v);
                }
                None => {
                    rows.remove(&k);
                }
            }
        }
        Ok(rows.into_iter().take(limit).collect())
    }

    fn keys(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        // Inside a write the pending changes decide: through `range`
        // (values read too; no write lists a large table).
        let rows = self.range(table, start, end, limit)?;
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }

    fn last(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<Row>> {
        Ok(self.range(table, start, end, usize::MAX)?.pop())
    }

    fn len(&mut self, table: &'static str) -> Result<u64> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(self.kv.index_key(table));
        let version = self.kv.version_key(table).into_bytes();
        let mut n: u64 = self.watch_run(version, &cmd)?;
        let changes: Vec<(Vec<u8>, bool)> = self
            .pending_in(table, b"", None)
            .map(|(k, v)| (k.clone(), v.is_some()))
            .collect();
        for (k, present) in changes {
            let mut cmd = redis::cmd("ZSCORE");
            cmd.arg(self.kv.index_key(table)).arg(k);
            let stored: Option<String> = self.conn.run(&cmd)?;
            match (stored.is_some(), present) {
                (false, true) => n += 1,
                (true, false) => n = n.saturating_sub(1),
                _ => {}
            }
        }
        Ok(n)
    }
}

impl Write for RedisWrite<'_> {
    fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        self.pending
            .insert((table, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<()> {
        self.pending.insert((table, key.to_vec()), None);
        Ok(())
    }
}

impl Kv for RedisKv {
    fn read(&self) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(RedisRead {
            kv: self,
            conn: self.pool.conn()?,
        }))
    }

    fn write(&self, _durable: bool, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        let mut wait = RedirectWait::new();
        let mut attempt = 0;
        while attempt < MAX_ATTEMPTS {
            let mut w = RedisWrite {
                kv: self,
                conn: self.pool.conn_within(&mut wait)?,
                pending: BTreeMap::new(),
                watched: HashSet::new(),
            };
            if let Err(e) = f(&mut w) {
                if w.conn.redirected && wait.pause() {
                    continue;
                }
                if !w.watched.is_empty() && !w.conn.broken {
                    let _ = w.conn.run::<()>(&redis::cmd("UNWATCH"));
                }
                return Err(e);
            }
            if w.pending.is_empty() {
                if !w.watched.is_empty() {
                    w.conn.run::<()>(&redis::cmd("UNWATCH"))?;
                }
                return Ok(());
            }
            match w.commit() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(_) if w.conn.redirected && wait.pause() => continue,
                Err(e) => return Err(e),
            }
            attempt += 1;
            // Another writer changed what this one read: run it again,
            // after a pause that grows and differs between writers.
            let spread = u64::from(attempt.min(20)) * 200 + 50;
            let jitter = u64::from(std::process::id()).wrapping_mul(31)
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_nanos()));
            std::thread::sleep(Duration::from_micros(jitter % spread));
        }
        Err(MetaError::Remote {
            message: format!("a write conflicted with other writers {MAX_ATTEMPTS} times"),
            io: false,
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn probe(&self) -> Result<()> {
        let mut conn = self.pool.conn()?;
        let _: Value = conn.run(&redis::cmd("PING"))?;
        if self.pool.cluster() {
            // The node must serve the slot as its master (a PING does not
            // tell): a key command is refused with MOVED otherwise.
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(self.version_key("repos"));
            let _: Value = conn.run(&cmd)?;
        }
        Ok(())
    }

    fn reopen(&self) -> Result<()> {
        self.pool.forget_idle();
        self.probe()
    }

    fn shared(&self) -> bool {
        true
    }
}

//! A Redis Cluster as the home of one store: every key of the store shares
//! the hash tag `{<keyprefix>}`, so they all live in one slot, served by
//! one master; the store talks to that master over plain connections, as
//! it would to a single server, and its transactions (`WATCH`/`MULTI`/
//! `EXEC`) and Lua scripts work unchanged. The price: one store's keys sit
//! on one node (no spreading of one store over the cluster's masters).
//!
//! Invariants:
//! - The slot of a key is Redis's: CRC16 (XMODEM) of the hash tag (the
//!   bytes between the first `{` and the first `}` after it, when not
//!   empty), else of the whole key, modulo 16384 ([`key_slot`]).
//! - The master serving a slot is asked of the seed addresses in order
//!   (`CLUSTER SLOTS`; the first entry of a range is its master); the
//!   first that answers decides. The connection to the master carries the
//!   seed URL's credentials and TLS settings; only the host and port
//!   change.
//! - No connection is ever put in `READONLY` mode, so a replica answers
//!   every command on the slot with `MOVED` to its master: reads and writes
//!   never go to a replica silently.
//! - A refusal caused by the cluster's layout changing (`MOVED`, `ASK`,
//!   `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, a transaction aborted by
//!   one of them: [`is_redirect`]) did not run the command: callers ask the
//!   seeds again and send it again, pausing while a slot migrates.

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, RedisResult, Value};

/// The slots of a cluster.
const SLOTS: u16 = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis
/// Cluster computes it.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The cluster slot of `key`, with Redis's hash tag rule.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

/// The seed addresses of a cluster (`storage.cacheDriver` with several
/// addresses and no `master_name`).
#[derive(Clone)]
pub struct ClusterNodes {
    /// `redis://[user:password@]host:port` (`rediss://` for TLS) of each
    /// seed node.
    pub urls: Vec<String>,
}

/// Whether `e` is a refusal caused by the cluster's layout changing (see
/// the module doc): the command did not run, and should be sent again to
/// the slot's master of the moment.
pub fn is_redirect(e: &RedisError) -> bool {
    use redis::ServerErrorKind as K;
    matches!(
        e.kind(),
        redis::ErrorKind::Server(
            K::Moved | K::Ask | K::TryAgain | K::ClusterDown | K::MasterDown | K::ExecAbort
        )
    )
}

/// Whether an answer (or one of a pipeline's answers) is such a refusal.
pub fn is_redirect_value(v: &Value) -> bool {
    use redis::ServerErrorKind as K;
    match v {
        Value::ServerError(e) => matches!(
            e.kind(),
            Some(K::Moved | K::Ask | K::TryAgain | K::ClusterDown | K::MasterDown)
        ),
        Value::Array(items) => items.iter().any(is_redirect_value),
        _ => false,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The (host, port) of the master serving `slot` in a `CLUSTER SLOTS`
/// answer; an empty host (or `?`, an unknown endpoint) is the node asked.
pub(crate) fn slot_master(reply: &Value, slot: u16) -> Option<(Option<String>, u16)> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(parts) = range else {
            return None;
        };
        let (start, end) = (int(parts.first()?)?, int(parts.get(1)?)?);
        if !(start..=end).contains(&i64::from(slot)) {
            return None;
        }
        let Value::Array(master) = parts.get(2)? else {
            return None;
        };
        let host = text(master.first()?)?;
        let port = u16::try_from(int(master.get(1)?)?).ok()?;
        let host = (!host.is_empty() && host != "?").then_some(host);
        Some((host, port))
    })
}

/// The seed's connection settings, pointed at `host:port`.
pub(crate) fn at(seed: &ConnectionInfo, host: Option<String>, port: u16) -> ConnectionInfo {
    let addr = match seed.addr().clone() {
        ConnectionAddr::Tcp(h, _) => ConnectionAddr::Tcp(host.unwrap_or(h), port),
        ConnectionAddr::TcpTls {
            host: h,
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.unwrap_or(h),
            port,
            insecure,
            tls_params,
        },
        other => other,
    };
    seed.clone().set_addr(addr)
}

fn no_master(slot: u16, last: Option<RedisError>) -> RedisError {
    last.unwrap_or_else(|| {
        RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
            "no seed node of the Redis Cluster named a master for the slot",
            format!("slot {slot}"),
        ))
    })
}

impl ClusterNodes {
    /// A client of the master serving `slot`, asked of the seeds in turn.
    pub fn master(
        &self,
        slot: u16,
        connect_timeout: std::time::Duration,
        io_timeout: std::time::Duration,
    ) -> RedisResult<redis::Client> {
        let mut last = None;
        for url in &self.urls {
            let asked = (|| {
                let seed = url.as_str().into_connection_info()?;
                let client = redis::Client::open(seed.clone())?;
                let mut conn = client.get_connection_with_timeout(connect_timeout)?;
                conn.set_read_timeout(Some(io_timeout))?;
                conn.set_write_timeout(Some(io_timeout))?;
                let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn)?;
                Ok::<_, RedisError>((seed, reply))
            })();
            match asked {
                Ok((seed, reply)) => match slot_master(&reply, slot) {
                    Some((host, port)) => return redis::Client::open(at(&seed, host, port)),
                    None => last = Some(no_master(slot, None)),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(no_master(slot, last))
    }

    /// [`ClusterNodes::master`] for async code.
    pub async fn master_async(
        &self,
        slot: u16,
        connect_timeout: std::time::Duration,
        io_timeout: std::time::Duration,
    ) -> RedisResult<redis::Client> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(io_timeout));
        let mut last = None;
        for url in &self.urls {
            let asked = async {
                let seed = url.as_str().into_connection_info()?;
                let client = redis::Client::open(seed.clone())?;
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                let reply: Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await?;
                Ok::<_, RedisError>((seed, reply))
            }
            .await;
            match asked {
                Ok((seed, reply)) => match slot_master(&reply, slot) {
                    Some((host, port)) => return redis::Client::open(at(&seed, host, port)),
                    None => last = Some(no_master(slot, None)),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(no_master(slot, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // The examples of the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag hashes the whole key.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"{zot}:kv:tags:x"), key_slot(b"{zot}:upload:1"));
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn the_master_of_a_slot_is_read_from_cluster_slots() {
        let node = |h: &str, p: i64| Value::Array(vec![bulk(h), Value::Int(p), bulk("id")]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        assert_eq!(
            slot_master(&reply, 5460),
            Some((Some("10.0.0.1".to_owned()), 7000))
        );
        assert_eq!(slot_master(&reply, 5461), Some((None, 7001)));
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(10),
            node("h", 1),
        ])]);
        assert_eq!(slot_master(&partial, 11), None);
    }

    #[test]
    fn the_master_keeps_the_seed_credentials_and_tls() {
        let seed = "rediss://u:p@seed:7000"
            .into_connection_info()
            .expect("url");
        let m = at(&seed, Some("10.0.0.2".into()), 7002);
        assert_eq!(m.addr().to_string(), "10.0.0.2:7002");
        assert!(matches!(m.addr(), ConnectionAddr::TcpTls { .. }));
        assert_eq!(m.redis_settings().username(), Some("u"));
        assert_eq!(m.redis_settings().password(), Some("p"));
        let m = at(&seed, None, 7005);
        assert_eq!(m.addr().to_string(), "seed:7005");
    }
}

//! The shared metadata store of a store with `remoteCache` and a redis
//! `cacheDriver`: the connection settings of `zot_config::RedisTarget`
//! turned into what `zot_meta` opens.
//!
//! Invariants:
//! - One server (`redis://`, or `rediss://` over TLS), the master a set
//!   of sentinels names (`master_name`; the sentinels reached with
//!   `sentinel_username`/`sentinel_password`, the master with the
//!   credentials and database, over TLS for both with `rediss://`), or
//!   the master of a Redis Cluster serving the slot of `{<keyprefix>}`
//!   (several addresses without `master_name`: each a seed node, reached,
//!   like the master, with the credentials and TLS; database 0 only).
//! - In a cluster the key prefix holds no `{` or `}`: the prefix in braces
//!   is the hash tag that keeps every key of the store in one slot.
//! - TLS verifies the server's certificate against the system's roots
//!   (`SSL_CERT_FILE` / `SSL_CERT_DIR` name a private CA, as for go-redis),
//!   with the host name of the URL; there is no way to turn verification
//!   off.
//! - The password comes from `passwordfile` (its first line) when given,
//!   else from the configuration; it is only ever put in the URL handed to
//!   the client, never logged.

use std::time::Duration;

use anyhow::{Context, bail};
use zot_config::{RedisMode, RedisTarget};
use zot_storage::{ClusterNodes, RedisAddress, Sentinels};

/// go-redis's default dial timeout.
const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
/// go-redis's default read and write timeouts.
const DEFAULT_IO: Duration = Duration::from_secs(3);

/// Percent-encodes `s` for a URL's user info.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where and how to reach `target`.
pub fn address(target: &RedisTarget) -> anyhow::Result<RedisAddress> {
    if target.mode == RedisMode::Cluster && target.key_prefix.contains(['{', '}']) {
        bail!(
            "storage.cacheDriver.keyprefix {:?}: with a Redis Cluster the prefix may not hold `{{` or `}}` (in braces, it is the hash tag that keeps the store's keys in one slot)",
            target.key_prefix
        );
    }
    let password = match &target.password_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "reading storage.cacheDriver.passwordfile {}",
                    file.display()
                )
            })?;
            Some(text.lines().next().unwrap_or("").to_owned())
        }
        None => target.password.clone(),
    };
    let user = user_info(&target.username, &password);
    let scheme = if target.tls { "rediss" } else { "redis" };
    let Some(addr) = target.addrs.first() else {
        bail!("storage.cacheDriver: no address");
    };
    let io = match (target.read_timeout, target.write_timeout) {
        (Some(r), Some(w)) => r.max(w),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => DEFAULT_IO,
    };
    let sentinel = match &target.mode {
        RedisMode::Sentinel { master_name } => {
            let user = user_info(&target.sentinel_username, &target.sentinel_password);
            Some(Sentinels {
                urls: target
                    .addrs
                    .iter()
                    .map(|a| format!("{scheme}://{user}{a}"))
                    .collect(),
                master_name: master_name.clone(),
            })
        }
        _ => None,
    };
    let cluster = (target.mode == RedisMode::Cluster).then(|| ClusterNodes {
        urls: target
            .addrs
            .iter()
            .map(|a| format!("{scheme}://{user}{a}"))
            .collect(),
    });
    Ok(RedisAddress {
        url: format!("{scheme}://{user}{addr}/{}", target.db),
        connect_timeout: target.dial_timeout.unwrap_or(DEFAULT_CONNECT),
        io_timeout: io,
        sentinel,
        cluster,
    })
}

/// `user:password@` (percent-encoded; empty without either).
fn user_info(user: &Option<String>, password: &Option<String>) -> String {
    match (user, password) {
        (Some(u), Some(p)) => format!("{}:{}@", encode(u), encode(p)),
        (None, Some(p)) => format!(":{}@", encode(p)),
        (Some(u), None) => format!("{}@", encode(u)),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_encoded_sentinels_and_cluster_nodes_named() {
        let mut t = RedisTarget::single("h:6379", "zot");
        t.username = Some("u@x".into());
        t.password = Some("p:w/".into());
        t.db = 2;
        let a = address(&t).expect("one server");
        assert_eq!(a.url, "redis://u%40x:p%3Aw%2F@h:6379/2");
        assert!(!format!("{a:?}").contains("p%3A"), "not shown");
        assert!(a.cluster.is_none() && a.sentinel.is_none());
        t.mode = RedisMode::Cluster;
        t.addrs = vec!["h:6379".into(), "h2:7000".into()];
        let a = address(&t).expect("a cluster");
        let c = a.cluster.as_ref().expect("cluster mode");
        assert_eq!(
            c.urls,
            [
                "redis://u%40x:p%3Aw%2F@h:6379",
                "redis://u%40x:p%3Aw%2F@h2:7000"
            ]
        );
        assert!(!format!("{a:?}").contains("p%3A"), "not shown");
        t.key_prefix = "a{b}".into();
        let refused = address(&t).expect_err("a brace in the prefix");
        assert!(refused.to_string().contains("keyprefix"), "{refused}");
        t.key_prefix = "zot".into();
        t.mode = RedisMode::Sentinel {
            master_name: "m".into(),
        };
        t.addrs = vec!["s1:26379".into(), "s2:26379".into()];
        t.sentinel_password = Some("s p".into());
        let a = address(&t).expect("sentinels");
        let s = a.sentinel.as_ref().expect("sentinel mode");
        assert_eq!(s.master_name, "m");
        assert_eq!(
            s.urls,
            ["redis://:s%20p@s1:26379", "redis://:s%20p@s2:26379"]
        );
        assert_eq!(a.url, "redis://u%40x:p%3Aw%2F@s1:26379/2");
        assert!(!format!("{a:?}").contains("s%20p"), "not shown");
        t.mode = RedisMode::Single;
        t.addrs = vec!["h:6379".into()];
        t.tls = true;
        let a = address(&t).expect("TLS to one server");
        assert_eq!(a.url, "rediss://u%40x:p%3Aw%2F@h:6379/2");
    }
}

//! The shared metadata store of a store with `remoteCache` and a redis
//! `cacheDriver`: the connection settings of `zot_config::RedisTarget`
//! turned into what `zot_meta` opens.
//!
//! Invariants:
//! - One server (`redis://`, or `rediss://` over TLS), or the master a set
//!   of sentinels names (`master_name`; the sentinels reached with
//!   `sentinel_username`/`sentinel_password`, the master with the
//!   credentials and database, over TLS for both with `rediss://`). Redis
//!   Cluster settings are read by the configuration but refused here by
//!   name, at start-up, rather than served by something else.
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
use zot_storage::{RedisAddress, Sentinels};

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
    if target.mode == RedisMode::Cluster {
        bail!(
            "storage.cacheDriver: a Redis Cluster ({}) is not supported by this build's shared metadata store (use one server or sentinels)",
            target.addrs.join(",")
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
    Ok(RedisAddress {
        url: format!("{scheme}://{user}{addr}/{}", target.db),
        connect_timeout: target.dial_timeout.unwrap_or(DEFAULT_CONNECT),
        io_timeout: io,
        sentinel,
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
    fn credentials_are_encoded_sentinels_named_and_clusters_refused() {
        let mut t = RedisTarget::single("h:6379", "zot");
        t.username = Some("u@x".into());
        t.password = Some("p:w/".into());
        t.db = 2;
        let a = address(&t).expect("one server");
        assert_eq!(a.url, "redis://u%40x:p%3Aw%2F@h:6379/2");
        assert!(!format!("{a:?}").contains("p%3A"), "not shown");
        t.mode = RedisMode::Cluster;
        assert!(address(&t).is_err());
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

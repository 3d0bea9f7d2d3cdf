//! `storage.cacheDriver`: where a store keeps its metadata when
//! `storage.remoteCache` is on. Only `name: redis` is built; `dynamodb`
//! (which zot knows) is refused as not supported by this build, any other
//! name as unknown.
//!
//! Invariants of a parsed [`RedisTarget`]:
//! - `addrs` holds at least one `host:port` (port default 6379).
//! - Its [`RedisMode`] is go-redis's `UniversalClient` choice: `master_name`
//!   set: sentinel (the addresses are the sentinels'); several addresses (a
//!   URL with `addr=` query keys, as go-redis `ParseClusterURL`, or an
//!   `addr` list): cluster; else one server.
//! - `url` (`redis://` or `rediss://`, user and password percent-decoded
//!   from the user info, database from the path) and the individual
//!   go-redis keys (`addr`, `db`, `username`, `password`, ...) do not mix:
//!   zot reads only the URL when there is one, so a key beside it is named
//!   as a problem rather than silently ignored. A URL query key go-redis
//!   does not know is a problem too (go-redis: "unexpected option").
//! - The password may come from the URL, `password`, or `passwordfile`
//!   (this build's key: a file whose first line is the password, read by
//!   the server at start-up, so no secret needs to sit in the config).
//!   `Debug` never shows it.
//! - `key_prefix` (`keyprefix`) is non-empty, default `zot`, without `{`
//!   or `}` with a cluster (in braces it is the store's hash tag); every key the
//!   store writes starts with it, so registries with different prefixes
//!   share a Redis without seeing each other.
//! - Connection-tuning keys of go-redis (pool sizes, retries, ...) are
//!   accepted and not acted on; the timeouts are kept.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// The default `keyprefix`.
pub const DEFAULT_KEY_PREFIX: &str = "zot";

/// go-redis options accepted and not acted on (individual keys and URL
/// query keys alike).
const TUNING: &[&str] = &[
    "protocol",
    "max_retries",
    "min_retry_backoff",
    "max_retry_backoff",
    "context_timeout_enabled",
    "pool_fifo",
    "pool_size",
    "pool_timeout",
    "min_idle_conns",
    "max_idle_conns",
    "max_active_conns",
    "conn_max_idle_time",
    "conn_max_lifetime",
    "max_redirects",
    "read_only",
    "route_by_latency",
    "route_randomly",
    "disable_identity",
    "identity_suffix",
    "unstable_resp3",
    "skip_verify",
];

/// A store's metadata outside the process (`storage.cacheDriver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDriver {
    Redis(RedisTarget),
}

/// How the servers of a [`RedisTarget`] are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisMode {
    /// One server.
    Single,
    /// A Redis Cluster reached through any of the addresses.
    Cluster,
    /// Sentinels naming the master of `master_name`.
    Sentinel { master_name: String },
}

/// A Redis server (or cluster, or sentinel set) and the key prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `host:port` of each server (sentinels in sentinel mode).
    pub addrs: Vec<String>,
    pub mode: RedisMode,
    /// `rediss://`: TLS.
    pub tls: bool,
    pub db: u64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `passwordfile`: read at start-up, preferred over `password`.
    pub password_file: Option<PathBuf>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub client_name: Option<String>,
    pub dial_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisTarget")
            .field("addrs", &self.addrs)
            .field("mode", &self.mode)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("password_file", &self.password_file)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &redacted(&self.sentinel_password))
            .field("client_name", &self.client_name)
            .field("dial_timeout", &self.dial_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisTarget {
    /// One server at `addr` (`host:port`), no credentials: for tests and
    /// defaults.
    pub fn single(addr: impl Into<String>, key_prefix: impl Into<String>) -> RedisTarget {
        RedisTarget {
            addrs: vec![addr.into()],
            mode: RedisMode::Single,
            tls: false,
            db: 0,
            username: None,
            password: None,
            password_file: None,
            sentinel_username: None,
            sentinel_password: None,
            client_name: None,
            dial_timeout: None,
            read_timeout: None,
            write_timeout: None,
            key_prefix: key_prefix.into(),
        }
    }

    /// Where it is, without credentials: for logs.
    pub fn describe(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let mode = match &self.mode {
            RedisMode::Single => String::new(),
            RedisMode::Cluster => " (cluster)".to_owned(),
            RedisMode::Sentinel { master_name } => format!(" (sentinel, master {master_name})"),
        };
        format!(
            "{scheme}://{}/{}{mode}, key prefix {:?}",
            self.addrs.join(","),
            self.db,
            self.key_prefix
        )
    }
}

/// Reads `cacheDriver` at `path`; `None` (with problems) when unusable.
pub(crate) fn parse(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<CacheDriver> {
    let mut section = Section::new(path.clone(), value, problems)?;
    let name = fields::string(&mut section, "name", problems).map(|n| n.to_ascii_lowercase());
    match name.as_deref() {
        Some("redis") => {}
        Some("dynamodb") => {
            // Its keys are zot's; none is read.
            let _ = section.take_rest();
            problems.push(Problem::new(path, "not supported by this build"));
            return None;
        }
        Some(other) => {
            problems.push(Problem::new(
                section.child("name"),
                format!("unknown cache driver {other:?} (expected redis)"),
            ));
            return None;
        }
        None => {
            problems.push(Problem::new(path, "needs a name (redis)"));
            return None;
        }
    }
    let before = problems.len();
    let key_prefix = fields::string(&mut section, "keyprefix", problems)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    let password_file = fields::string(&mut section, "passwordfile", problems)
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from);
    let target = match fields::string(&mut section, "url", problems) {
        Some(url) => {
            for (key, _) in section.take_rest() {
                problems.push(Problem::new(
                    section.child(key),
                    "not read beside url (zot reads only the URL; put it in the URL's query)",
                ));
            }
            match parse_url(&url) {
                Ok(t) => Some(t),
                Err(message) => {
                    problems.push(Problem::new(section.child("url"), message));
                    None
                }
            }
        }
        None => individual_keys(&mut section, problems),
    };
    let cluster = target
        .as_ref()
        .is_some_and(|t| t.mode == RedisMode::Cluster);
    if cluster && key_prefix.contains(['{', '}']) {
        problems.push(Problem::new(
            section.child("keyprefix"),
            "with a Redis Cluster the prefix may not hold `{` or `}` (in braces, it is the hash tag that keeps the store's keys in one slot)",
        ));
    }
    section.finish(problems);
    let mut target = target?;
    target.key_prefix = key_prefix;
    if password_file.is_some() {
        target.password_file = password_file;
    }
    (problems.len() == before).then_some(CacheDriver::Redis(target))
}

/// The go-redis keys given one by one (no `url`).
fn individual_keys(section: &mut Section<'_>, problems: &mut Vec<Problem>) -> Option<RedisTarget> {
    let addrs: Vec<String> = match section.get("addr") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(_)) => fields::string_list(section, "addr", problems)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
        Some(_) => {
            problems.push(Problem::new(
                section.child("addr"),
                "expected an address or a list of addresses",
            ));
            return None;
        }
        None => vec!["localhost:6379".to_owned()],
    };
    let text = |s: Option<String>| s.filter(|s| !s.is_empty());
    let mut target = RedisTarget::single("", DEFAULT_KEY_PREFIX);
    target.addrs = Vec::new();
    for a in addrs {
        match host_port(&a) {
            Ok(a) => target.addrs.push(a),
            Err(m) => problems.push(Problem::new(section.child("addr"), m)),
        }
    }
    target.db = fields::unsigned(section, "db", problems).unwrap_or(0);
    target.username = text(fields::string(section, "username", problems));
    target.password = text(fields::string(section, "password", problems));
    target.sentinel_username = text(fields::string(section, "sentinel_username", problems));
    target.sentinel_password = text(fields::string(section, "sentinel_password", problems));
    target.client_name = text(fields::string(section, "client_name", problems));
    target.dial_timeout = fields::duration(section, "dial_timeout", problems);
    target.read_timeout = fields::duration(section, "read_timeout", problems);
    target.write_timeout = fields::duration(section, "write_timeout", problems);
    for key in TUNING {
        let _ = section.get(key);
    }
    let master = text(fields::string(section, "master_name", problems));
    target.mode = match master {
        Some(master_name) => RedisMode::Sentinel { master_name },
        None if target.addrs.len() > 1 => RedisMode::Cluster,
        None => RedisMode::Single,
    };
    check_cluster_db(&target, section, problems);
    (!target.addrs.is_empty()).then_some(target)
}

fn check_cluster_db(target: &RedisTarget, section: &Section<'_>, problems: &mut Vec<Problem>) {
    if target.mode == RedisMode::Cluster && target.db != 0 {
        problems.push(Problem::new(
            section.child("db"),
            "a Redis Cluster has only database 0",
        ));
    }
}

/// `host[:port]` with the default port added; an error names what is wrong.
fn host_port(addr: &str) -> Result<String, String> {
    let addr = addr.trim();
    let bad = || format!("invalid address {addr:?} (expected host:port)");
    if addr.is_empty() || addr.contains(['/', ' ', '@', '?', '#']) {
        return Err(bad());
    }
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p)),
            Some(_) => return Err(bad()),
            None => (addr.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None => 6379,
    };
    if host.is_empty() || host == "[]" {
        return Err(bad());
    }
    Ok(format!("{host}:{port}"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not UTF-8".to_owned())
}

/// A go-redis duration in a URL: an integer is seconds, else a Go duration.
fn url_duration(key: &str, v: &str) -> Result<Option<Duration>, String> {
    if v.is_empty() || v == "-1" || v == "0" {
        return Ok(None);
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Some(Duration::from_secs(secs)));
    }
    crate::duration::parse_duration(v)
        .map(Some)
        .map_err(|e| format!("{key}: {e}"))
}

/// Parses `redis://[user[:password]@]host[:port][/db][?key=value&...]`
/// (`rediss://` for TLS) as go-redis `ParseURL`, or, with `addr=` query
/// keys, `ParseClusterURL`.
pub(crate) fn parse_url(url: &str) -> Result<RedisTarget, String> {
    let url = url.trim();
    let (tls, rest) = if let Some(r) = url.strip_prefix("redis://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("rediss://") {
        (true, r)
    } else {
        return Err("expected a redis:// or rediss:// URL".to_owned());
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut target = RedisTarget::single("", DEFAULT_KEY_PREFIX);
    target.tls = tls;
    if let Some(u) = userinfo {
        let (user, pass) = match u.split_once(':') {
            Some((user, pass)) => (user, Some(pass)),
            None => (u, None),
        };
        target.username = Some(percent_decode(user)?).filter(|u| !u.is_empty());
        target.password = pass.map(percent_decode).transpose()?;
    }
    let host = if hostport.is_empty() {
        "localhost"
    } else {
        hostport
    };
    target.addrs = vec![host_port(host)?];
    let path = path.trim_end_matches('/');
    if !path.is_empty() {
        target.db = path
            .parse()
            .map_err(|_| format!("invalid database number {path:?} in the URL's path"))?;
    }
    let mut master = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        match k {
            "addr" => target.addrs.push(host_port(&v)?),
            "db" => {
                target.db = v
                    .parse()
                    .map_err(|_| format!("invalid database number {v:?}"))?;
            }
            "client_name" => target.client_name = Some(v).filter(|v| !v.is_empty()),
            "dial_timeout" => target.dial_timeout = url_duration(k, &v)?,
            "read_timeout" => target.read_timeout = url_duration(k, &v)?,
            "write_timeout" => target.write_timeout = url_duration(k, &v)?,
            "master_name" => master = Some(v).filter(|v| !v.is_empty()),
            k if TUNING.contains(&k) => {}
            other => return Err(format!("unexpected option {other:?} in the URL's query")),
        }
    }
    target.mode = match master {
        Some(master_name) => RedisMode::Sentinel { master_name },
        None if target.addrs.len() > 1 => RedisMode::Cluster,
        None => RedisMode::Single,
    };
    if target.mode == RedisMode::Cluster && target.db != 0 {
        return Err("a Redis Cluster has only database 0".to_owned());
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_go_redis_reads_them() {
        let t = parse_url("redis://localhost:6379").unwrap();
        assert_eq!(t.addrs, ["localhost:6379"]);
        assert_eq!(t.mode, RedisMode::Single);
        let t = parse_url("rediss://u%40x:p%3Aw@h/3").unwrap();
        assert!(t.tls);
        assert_eq!(t.addrs, ["h:6379"]);
        assert_eq!(t.db, 3);
        assert_eq!(t.username.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        let t = parse_url(
            "redis://user:password@host1:6379?dial_timeout=3&read_timeout=6s&addr=host2:6379&addr=host3:6379",
        )
        .unwrap();
        assert_eq!(t.addrs, ["host1:6379", "host2:6379", "host3:6379"]);
        assert_eq!(t.mode, RedisMode::Cluster);
        assert_eq!(t.dial_timeout, Some(Duration::from_secs(3)));
        assert_eq!(t.read_timeout, Some(Duration::from_secs(6)));
        let t = parse_url("redis://s1:26379?addr=s2:26379&master_name=m").unwrap();
        assert_eq!(
            t.mode,
            RedisMode::Sentinel {
                master_name: "m".into()
            }
        );
        assert!(parse_url("http://h").is_err());
        assert!(parse_url("redis://h?bogus=1").is_err());
        assert!(parse_url("redis://h/x").is_err());
        assert!(parse_url("redis://h:99999").is_err());
        assert!(parse_url("redis://a?addr=b&db=2").is_err());
        assert!(!format!("{t:?}").contains("password\": Some(\"p"));
    }

    #[test]
    fn debug_hides_passwords() {
        let t = parse_url("redis://u:secret@h").unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!t.describe().contains("secret"));
    }
}

//! `extensions.events`, in zot's keys, and the outbox settings (ours).
//!
//! Invariants of what is returned:
//! - `events` is on only with `enable: true` (zot has no default-on) and at
//!   least one sink (zot: an empty `sinks` disables it).
//! - Each sink has `type` `http` or `nats` (anything else is zot's
//!   "unsupported event sink"), a non-empty `address` (an `http(s)` URL for
//!   `http`), a `channel` for `nats` (the subject), and optionally `channel`
//!   for `http`, `timeout` (a duration; HTTP
//!   defaults to 30 s as in zot, NATS to 10 s, zot having none),
//!   `proxy` (`http` only), `headers` (a mapping of strings),
//!   `credentials` (`username`, `password`, `file`, `token`) and
//!   `tlsConfig` (`caCertFile`, `certFile`, `keyFile`; a certificate needs
//!   its key). Every other key is a problem.
//! - A `nats` sink may have `jetstream` (ours, a boolean, default false).
//! - `outbox` (ours) has `maxEvents` (at least 1, default
//!   [`DEFAULT_MAX_OUTBOX_EVENTS`]) and `maxBackoff` (the longest wait
//!   between delivery attempts, default [`DEFAULT_MAX_BACKOFF`], at least
//!   100 ms).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// Default `extensions.events.outbox.maxEvents`.
pub const DEFAULT_MAX_OUTBOX_EVENTS: u64 = 100_000;
/// Default `extensions.events.outbox.maxBackoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// zot's default timeout of an HTTP sink.
pub const DEFAULT_HTTP_SINK_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a NATS sink when none is set (zot has no default).
pub const DEFAULT_NATS_SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// `extensions.events` when enabled with sinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub sinks: Vec<SinkConfig>,
    /// `outbox.maxEvents`.
    pub max_outbox_events: u64,
    /// `outbox.maxBackoff`.
    pub max_backoff: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Http,
    Nats,
}

/// One of `extensions.events.sinks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub kind: SinkKind,
    pub address: String,
    /// NATS subject; over HTTP the CloudEvents extension `channel`.
    pub channel: Option<String>,
    pub timeout: Duration,
    pub proxy: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub credentials: SinkCredentials,
    pub tls: SinkTls,
    /// NATS: publish through JetStream and wait for the stream's
    /// acknowledgement (`jetstream`, ours; default off: core NATS).
    pub jetstream: bool,
}

/// `credentials` of a sink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkCredentials {
    pub username: Option<String>,
    pub password: Option<String>,
    /// NATS credentials file.
    pub file: Option<PathBuf>,
    pub token: Option<String>,
}

/// `tlsConfig` of a sink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkTls {
    pub ca_cert_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl SinkConfig {
    /// A name that identifies the sink across restarts (its delivery
    /// position is kept under it) and in logs: its type, address (without
    /// any `user:password@` in it) and channel.
    pub fn name(&self) -> String {
        let kind = match self.kind {
            SinkKind::Http => "http",
            SinkKind::Nats => "nats",
        };
        let address = match self.address.split_once("://") {
            Some((scheme, rest)) => {
                let host_end = rest.find('/').unwrap_or(rest.len());
                match rest[..host_end].rfind('@') {
                    Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                    None => self.address.clone(),
                }
            }
            None => self.address.clone(),
        };
        format!("{kind} {address} {}", self.channel.as_deref().unwrap_or(""))
    }
}

/// Reads `extensions.events` (`None` when it has no sinks).
pub(crate) fn read_events(value: &Value, problems: &mut Vec<Problem>) -> Option<EventsConfig> {
    let mut section = Section::new("extensions.events".to_owned(), value, problems)?;
    section.get("enable");
    let mut config = EventsConfig {
        sinks: Vec::new(),
        max_outbox_events: DEFAULT_MAX_OUTBOX_EVENTS,
        max_backoff: DEFAULT_MAX_BACKOFF,
    };
    match section.get("sinks") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{}[{i}]", section.child("sinks"));
                if let Some(sink) = read_sink(path, item, problems) {
                    config.sinks.push(sink);
                }
            }
        }
        Some(_) => problems.push(Problem::new(section.child("sinks"), "expected a list")),
    }
    if let Some(v) = section.get("outbox")
        && let Some(mut outbox) = Section::new(section.child("outbox"), v, problems)
    {
        match fields::unsigned(&mut outbox, "maxEvents", problems) {
            Some(0) => problems.push(Problem::new(
                outbox.child("maxEvents"),
                "must be at least 1",
            )),
            Some(n) => config.max_outbox_events = n,
            None => {}
        }
        match fields::duration(&mut outbox, "maxBackoff", problems) {
            Some(d) if d < Duration::from_millis(100) => problems.push(Problem::new(
                outbox.child("maxBackoff"),
                "must be at least 100ms",
            )),
            Some(d) => config.max_backoff = d,
            None => {}
        }
        outbox.finish(problems);
    }
    section.finish(problems);
    (!config.sinks.is_empty()).then_some(config)
}

fn read_sink(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<SinkConfig> {
    let mut s = Section::new(path, value, problems)?;
    let kind = match fields::string(&mut s, "type", problems).as_deref() {
        Some(t) if t.eq_ignore_ascii_case("http") => Some(SinkKind::Http),
        Some(t) if t.eq_ignore_ascii_case("nats") => Some(SinkKind::Nats),
        Some(t) => {
            let why = format!("unsupported event sink {t:?} (http or nats)");
            problems.push(Problem::new(s.child("type"), why));
            None
        }
        None => {
            problems.push(Problem::new(s.child("type"), "required (http or nats)"));
            None
        }
    };
    let address = fields::string(&mut s, "address", problems).filter(|a| !a.is_empty());
    if address.is_none() {
        problems.push(Problem::new(s.child("address"), "required"));
    }
    if let (Some(SinkKind::Http), Some(a)) = (kind, &address)
        && !(a.starts_with("http://") || a.starts_with("https://"))
    {
        problems.push(Problem::new(s.child("address"), "must be an http(s) URL"));
    }
    let channel = fields::string(&mut s, "channel", problems);
    if channel.is_none() && kind == Some(SinkKind::Nats) {
        problems.push(Problem::new(
            s.child("channel"),
            "required for nats sinks (the subject)",
        ));
    }
    let timeout = fields::duration(&mut s, "timeout", problems).filter(|t| !t.is_zero());
    let proxy = fields::string(&mut s, "proxy", problems);
    if proxy.is_some() && kind == Some(SinkKind::Nats) {
        problems.push(Problem::new(s.child("proxy"), "only for http sinks"));
    }
    let jetstream = fields::boolean(&mut s, "jetstream", problems).unwrap_or(false);
    if jetstream && kind == Some(SinkKind::Http) {
        problems.push(Problem::new(s.child("jetstream"), "only for nats sinks"));
    }
    let mut headers = BTreeMap::new();
    if let Some(v) = s.get("headers") {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(v) => {
                            headers.insert(k.clone(), v.clone());
                        }
                        _ => problems.push(Problem::new(
                            format!("{}.{k}", s.child("headers")),
                            "expected a string",
                        )),
                    }
                }
            }
            _ => problems.push(Problem::new(s.child("headers"), "expected a mapping")),
        }
    }
    let mut credentials = SinkCredentials::default();
    if let Some(v) = s.get("credentials")
        && let Some(mut c) = Section::new(s.child("credentials"), v, problems)
    {
        credentials.username = fields::string(&mut c, "username", problems);
        credentials.password = fields::string(&mut c, "password", problems);
        credentials.file = fields::string(&mut c, "file", problems).map(PathBuf::from);
        credentials.token = fields::string(&mut c, "token", problems);
        c.finish(problems);
    }
    let mut tls = SinkTls::default();
    if let Some(v) = s.get("tlsConfig")
        && let Some(mut t) = Section::new(s.child("tlsConfig"), v, problems)
    {
        tls.ca_cert_file = fields::string(&mut t, "caCertFile", problems).map(PathBuf::from);
        tls.cert_file = fields::string(&mut t, "certFile", problems).map(PathBuf::from);
        tls.key_file = fields::string(&mut t, "keyFile", problems).map(PathBuf::from);
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            problems.push(Problem::new(
                t.child("certFile"),
                "certFile and keyFile go together",
            ));
        }
        t.finish(problems);
    }
    s.finish(problems);
    let kind = kind?;
    Some(SinkConfig {
        kind,
        address: address?,
        channel,
        timeout: timeout.unwrap_or(match kind {
            SinkKind::Http => DEFAULT_HTTP_SINK_TIMEOUT,
            SinkKind::Nats => DEFAULT_NATS_SINK_TIMEOUT,
        }),
        proxy,
        headers,
        credentials,
        tls,
        jetstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> (Option<EventsConfig>, Vec<Problem>) {
        let v: Value = serde_json::from_str(json).unwrap_or_default();
        let mut problems = Vec::new();
        (read_events(&v, &mut problems), problems)
    }

    #[test]
    fn zots_example_reads() {
        let (c, p) = read(
            r#"{"enable": true, "sinks": [{"type": "nats", "address": "nats://127.0.0.1:4222",
                "timeout": "10s", "channel": "alerts"}]}"#,
        );
        assert!(p.is_empty(), "{p:?}");
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.sinks[0].kind, SinkKind::Nats);
        assert_eq!(c.sinks[0].channel.as_deref(), Some("alerts"));
        assert_eq!(c.max_outbox_events, DEFAULT_MAX_OUTBOX_EVENTS);
    }

    #[test]
    fn every_key_is_checked() {
        let (c, p) = read(
            r#"{"sinks": [{"type": "kafka", "address": ""},
                {"type": "http", "address": "ftp://x", "headers": {"a": 1},
                 "credentials": {"user": "x"}, "tlsConfig": {"certFile": "c"}, "other": 1}],
                "outbox": {"maxEvents": 0, "maxBackoff": "1ms"}}"#,
        );
        drop(c);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "extensions.events.sinks[0].type",
            "extensions.events.sinks[0].address",
            "extensions.events.sinks[1].address",
            "extensions.events.sinks[1].headers.a",
            "extensions.events.sinks[1].credentials.user",
            "extensions.events.sinks[1].tlsConfig.certFile",
            "extensions.events.sinks[1].other",
            "extensions.events.outbox.maxEvents",
            "extensions.events.outbox.maxBackoff",
        ] {
            assert!(paths.contains(&want), "{want} in {paths:?}");
        }
    }

    #[test]
    fn a_sink_is_named_without_its_password() {
        let (c, p) = read(
            r#"{"sinks": [{"type": "nats", "address": "nats://u:secret@h:4222", "channel": "c"},
                {"type": "http", "address": "https://h/p@q"}]}"#,
        );
        assert!(p.is_empty(), "{p:?}");
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.sinks[0].name(), "nats nats://h:4222 c");
        assert_eq!(c.sinks[1].name(), "http https://h/p@q ");
    }

    #[test]
    fn no_sinks_is_off() {
        assert_eq!(read(r#"{"enable": true, "sinks": []}"#), (None, vec![]));
    }
}

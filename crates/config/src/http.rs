//! The `http` section.
//!
//! Invariants of a parsed [`HttpConfig`]:
//! - `address` is non-empty; `port` is 0..=65535 (0: the OS picks a free port),
//!   written in the file as a string (`"8080"`, as zot does) or a number.
//! - `compat` holds each mode at most once; only `docker2s2` exists.
//! - `tls`, when present, has a non-empty `cert` and `key`; `tls.cacert`
//!   turns on verification of client certificates (mutual TLS).
//! - `auth`, `accessControl` and `ratelimit` are read by [`crate::auth`];
//!   `readTimeout`/`writeTimeout` are Go durations.
//! - `allowOrigin`, when present, is `*` or one origin
//!   (`scheme://host[:port]`, no path): a value a browser can compare.

use std::path::PathBuf;

use serde_json::Value;

use crate::auth::{self, AccessControlConfig, AuthConfig, RateLimitConfig};
use crate::fields;
use crate::problem::Problem;
use crate::value::{Section, kind};

/// zot's default listening address.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1";
/// The default listening port.
pub const DEFAULT_PORT: u16 = 5000;

/// The HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on (`http.address`, default `127.0.0.1`).
    pub address: String,
    /// Port to listen on (`http.port`, default 5000; 0 picks a free port).
    pub port: u16,
    /// Realm of `WWW-Authenticate` challenges (`http.realm`, default empty as in zot).
    pub realm: String,
    /// The URL clients reach the registry at (`http.externalUrl`, e.g.
    /// `https://registry.example.com`), without a trailing `/`: the base of
    /// the built-in token service's realm. Without it the realm is built
    /// from the request's `Host`.
    pub external_url: Option<String>,
    /// The browser origin allowed to call the API from another site
    /// (`http.allowOrigin`: `*` or one origin). `None`: no CORS headers at
    /// all, so browsers keep pages of other sites out (zot sends `*` then).
    pub allow_origin: Option<String>,
    /// Compatibility modes (`http.compat`).
    pub compat: Vec<Compat>,
    /// Serve HTTPS (`http.tls`).
    pub tls: Option<TlsConfig>,
    /// Authentication (`http.auth`); `None`: anyone may do anything.
    pub auth: Option<AuthConfig>,
    /// Authorization (`http.accessControl`).
    pub access_control: Option<AccessControlConfig>,
    /// Request rate limits (`http.ratelimit`).
    pub ratelimit: Option<RateLimitConfig>,
    /// Time to read a whole request head, and the longest pause while
    /// reading a body (`http.readTimeout`).
    pub read_timeout: Option<std::time::Duration>,
    /// The longest pause while writing a response (`http.writeTimeout`).
    pub write_timeout: Option<std::time::Duration>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADDRESS.to_owned(),
            port: DEFAULT_PORT,
            realm: String::new(),
            external_url: None,
            allow_origin: None,
            compat: Vec::new(),
            tls: None,
            auth: None,
            access_control: None,
            ratelimit: None,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

/// A compatibility mode of `http.compat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compat {
    /// Accept and serve Docker image manifest v2 schema 2 media types.
    Docker2s2,
}

impl Compat {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Compat::Docker2s2 => "docker2s2",
        }
    }
}

/// HTTPS settings (`http.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain (`http.tls.cert`).
    pub cert: PathBuf,
    /// PEM private key (`http.tls.key`).
    pub key: PathBuf,
    /// CA of accepted client certificates (`http.tls.cacert`): mutual TLS.
    pub cacert: Option<PathBuf>,
}

/// Reads `http` (absent: all defaults).
pub(crate) fn parse(value: Option<&Value>, problems: &mut Vec<Problem>) -> HttpConfig {
    let mut config = HttpConfig::default();
    let Some(mut section) =
        Section::new("http".to_owned(), value.unwrap_or(&Value::Null), problems)
    else {
        return config;
    };
    if let Some(address) = fields::string(&mut section, "address", problems) {
        if address.trim().is_empty() {
            problems.push(Problem::new(
                section.child("address"),
                "must not be empty (use 0.0.0.0 to listen on all interfaces)",
            ));
        } else {
            config.address = address;
        }
    }
    if let Some(value) = section.get("port") {
        match port(value) {
            Ok(port) => config.port = port,
            Err(message) => problems.push(Problem::new(section.child("port"), message)),
        }
    }
    if let Some(url) = fields::string(&mut section, "externalUrl", problems) {
        let url = url.trim_end_matches('/').to_owned();
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        let clean = !url.contains(['"', '\\', ' ']) && !url.chars().any(char::is_control);
        if scheme_ok
            && clean
            && url.len() <= 1024
            && url.split("://").nth(1).is_some_and(|h| !h.is_empty())
        {
            config.external_url = Some(url);
        } else {
            problems.push(Problem::new(
                section.child("externalUrl"),
                "expected an http:// or https:// URL without quotes or spaces",
            ));
        }
    }
    if let Some(origin) = fields::string(&mut section, "allowOrigin", problems) {
        match allow_origin(&origin) {
            Ok(origin) => config.allow_origin = origin,
            Err(message) => problems.push(Problem::new(section.child("allowOrigin"), message)),
        }
    }
    if let Some(realm) = fields::string(&mut section, "realm", problems) {
        config.realm = realm;
    }
    for (path, name) in fields::string_list(&mut section, "compat", problems).unwrap_or_default() {
        if name.eq_ignore_ascii_case(Compat::Docker2s2.as_str()) {
            if !config.compat.contains(&Compat::Docker2s2) {
                config.compat.push(Compat::Docker2s2);
            }
        } else {
            problems.push(Problem::new(
                path,
                format!("unknown compatibility mode {name:?} (expected \"docker2s2\")"),
            ));
        }
    }
    if let Some(value) = section.get("tls") {
        config.tls = tls(section.child("tls"), value, problems);
    }
    if let Some(value) = section.get("auth") {
        config.auth = Some(auth::parse_auth(section.child("auth"), value, problems));
    }
    if let Some(value) = section.get("accessControl") {
        let path = section.child("accessControl");
        config.access_control = Some(auth::parse_access(path, value, problems));
    }
    if let Some(value) = section.get("ratelimit") {
        let path = section.child("ratelimit");
        config.ratelimit = Some(auth::parse_ratelimit(path, value, problems));
    }
    config.read_timeout = fields::duration(&mut section, "readTimeout", problems);
    config.write_timeout = fields::duration(&mut section, "writeTimeout", problems);
    section.finish(problems);
    config
}

/// `http.allowOrigin`: `*`, or an origin as browsers send it in `Origin`
/// (scheme, host, optional port; no path, no trailing `/`). Empty is the
/// same as absent.
fn allow_origin(value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value == "*" {
        return Ok(Some(value.to_owned()));
    }
    const EXPECTED: &str = "expected \"*\" or one origin such as \"https://ui.example.com\"";
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| format!("{EXPECTED}, found {value:?}"))?;
    let host_ok = !rest.is_empty()
        && value.len() <= 1024
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if host_ok {
        Ok(Some(value.to_owned()))
    } else {
        Err(format!("{EXPECTED}, found {value:?}"))
    }
}

/// A port as zot writes it: a string of digits, or a number.
fn port(value: &Value) -> Result<u16, String> {
    const RANGE: &str = "expected a port number from 0 to 65535";
    let number = match value {
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{RANGE}, found {s:?}"))?,
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("{RANGE}, found {n}"))?,
        other => return Err(format!("{RANGE}, found {}", kind(other))),
    };
    u16::try_from(number).map_err(|_| format!("{RANGE}, found {number}"))
}

fn tls(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<TlsConfig> {
    let mut section = Section::new(path, value, problems)?;
    let cert = tls_file(&mut section, "cert", problems);
    let key = tls_file(&mut section, "key", problems);
    let cacert = fields::string(&mut section, "cacert", problems)
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from);
    section.finish(problems);
    Some(TlsConfig {
        cert: cert?,
        key: key?,
        cacert,
    })
}

/// A required, non-empty file path of `http.tls`.
fn tls_file(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    let present = section.has(name);
    match fields::string(section, name, problems) {
        Some(p) if !p.trim().is_empty() => Some(PathBuf::from(p)),
        Some(_) => {
            problems.push(Problem::new(section.child(name), "must not be empty"));
            None
        }
        None => {
            if !present {
                problems.push(Problem::new(
                    section.child(name),
                    "required when http.tls is set",
                ));
            }
            None
        }
    }
}

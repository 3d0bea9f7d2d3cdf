//! `extensions.sync`: upstream registries to mirror, in zot's keys, with
//! zot's defaults and validation (`pkg/extensions/config/sync/config.go`,
//! `pkg/cli/server/root.go` validateSync*).
//!
//! Invariants of a parsed [`SyncConfig`]:
//! - Every registry has at least one `urls` entry, each `http://` or
//!   `https://` with a host.
//! - `pollInterval` is `Some` only when it is not zero; periodic sync runs
//!   for a registry with a poll interval and non-empty `content`.
//! - Every `content[].prefix` is a valid glob ([`crate::glob`], `**` across
//!   segments), every `tags.regex`/`tags.excludeRegex` compiles; a
//!   `stripPrefix` rule with `destination: "/"` has a `/*` glob in its
//!   prefix.
//! - `retryDelay` is set when `maxRetries` or `maxRetryDelay` is, and
//!   `maxRetryDelay >= retryDelay`; `manifestCheckInterval > 0` needs
//!   `onDemand`; `reqConcurrent`, `maxIdleConnsPerHost` are > 0 and
//!   `reqPerSec` a finite number > 0.
//! - Checks against other sections (`preserveDigest` needs `http.compat`;
//!   remote storage needs `downloadDir`) are made by [`cross_check`].
//! - `platforms` (ours, on a registry or a content rule) lists
//!   `os/arch[/variant]` entries.
//! - `credentialHelper` (`ecr`, `gcp`, `oauth2`) and
//!   `oauth2CredentialHelper` are validated and kept; this build has no
//!   credential helper and says so when sync starts.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::{Section, kind};

/// zot's default `syncTimeout`.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// zot's default `responseHeaderTimeout`.
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// `extensions.sync` when enabled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncConfig {
    /// `credentialsFile`: JSON keyed by `host[:port]` (read when sync starts).
    pub credentials_file: Option<PathBuf>,
    /// `downloadDir` (required with remote storage; unused with local).
    pub download_dir: Option<PathBuf>,
    /// `registries`, in order.
    pub registries: Vec<SyncRegistry>,
}

/// One entry of `registries`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRegistry {
    pub urls: Vec<String>,
    /// `pollInterval` when not zero.
    pub poll_interval: Option<Duration>,
    pub content: Vec<ContentRule>,
    /// `tlsVerify` (default true).
    pub tls_verify: bool,
    pub on_demand: bool,
    pub manifest_check_interval: Duration,
    pub cert_dir: Option<PathBuf>,
    pub max_retries: Option<u32>,
    pub retry_delay: Option<Duration>,
    /// Default: `retryDelay` (a fixed delay).
    pub max_retry_delay: Option<Duration>,
    pub only_signed: bool,
    /// `syncLegacyCosignTags` (default true).
    pub sync_legacy_cosign_tags: bool,
    pub credential_helper: Option<String>,
    pub preserve_digest: bool,
    /// `syncTimeout` (default 3 h).
    pub sync_timeout: Duration,
    /// `responseHeaderTimeout` (default 30 s).
    pub response_header_timeout: Duration,
    pub req_concurrent: Option<usize>,
    pub req_per_sec: Option<f64>,
    pub disable_http2: bool,
    pub max_idle_conns_per_host: Option<usize>,
    /// `platforms` (ours, beyond zot): only these children of an index are
    /// synced (`os/arch[/variant]`); empty: all.
    pub platforms: Vec<String>,
}

/// One entry of `content`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentRule {
    /// A glob over upstream repository names, without its leading `/`.
    pub prefix: String,
    pub tags: Option<TagFilter>,
    /// Local name prefix (`/` trimmed; empty: the upstream name).
    pub destination: Option<String>,
    pub strip_prefix: bool,
    /// `platforms` of this rule (ours); empty: the registry's.
    pub platforms: Vec<String>,
}

/// `content[].tags`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagFilter {
    pub regex: Option<String>,
    pub exclude_regex: Option<String>,
    pub semver: bool,
}

fn positive(section: &mut Section<'_>, key: &str, problems: &mut Vec<Problem>) -> Option<usize> {
    let v = section.get(key)?;
    match v.as_u64().filter(|n| *n > 0) {
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        None => {
            problems.push(Problem::new(
                section.child(key),
                format!("expected an integer greater than 0, found {}", kind(v)),
            ));
            None
        }
    }
}

fn path_of(section: &mut Section<'_>, key: &str, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    fields::string(section, key, problems)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Reads an enabled or disabled `extensions.sync` section.
pub(crate) fn read_sync(value: &Value, problems: &mut Vec<Problem>) -> SyncConfig {
    let mut config = SyncConfig::default();
    let Some(mut section) = Section::new("extensions.sync".to_owned(), value, problems) else {
        return config;
    };
    section.get("enable");
    config.credentials_file = path_of(&mut section, "credentialsFile", problems);
    config.download_dir = path_of(&mut section, "downloadDir", problems);
    match section.get("registries") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{}[{i}]", section.child("registries"));
                if let Some(r) = read_registry(p, item, problems) {
                    config.registries.push(r);
                }
            }
        }
        Some(other) => problems.push(Problem::new(
            section.child("registries"),
            format!("expected a list, found {}", kind(other)),
        )),
    }
    section.finish(problems);
    config
}

fn read_registry(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<SyncRegistry> {
    let mut s = Section::new(path, value, problems)?;
    let urls: Vec<String> = fields::string_list(&mut s, "urls", problems)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(p, u)| match url_problem(&u) {
            Some(why) => {
                problems.push(Problem::new(p, why));
                None
            }
            None => Some(u),
        })
        .collect();
    if !s.has("urls") {
        problems.push(Problem::new(
            s.child("urls"),
            "at least one URL is required",
        ));
    }
    let poll_interval = fields::duration(&mut s, "pollInterval", problems).filter(|d| !d.is_zero());
    let mut content = Vec::new();
    match s.get("content") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{}[{i}]", s.child("content"));
                if let Some(rule) = read_content(p, item, problems) {
                    content.push(rule);
                }
            }
        }
        Some(other) => problems.push(Problem::new(
            s.child("content"),
            format!("expected a list, found {}", kind(other)),
        )),
    }
    let tls_verify = fields::boolean(&mut s, "tlsVerify", problems).unwrap_or(true);
    let on_demand = fields::boolean(&mut s, "onDemand", problems).unwrap_or(false);
    let manifest_check_interval =
        fields::duration(&mut s, "manifestCheckInterval", problems).unwrap_or_default();
    if !manifest_check_interval.is_zero() && !on_demand {
        problems.push(Problem::new(
            s.child("manifestCheckInterval"),
            "needs onDemand: true",
        ));
    }
    let cert_dir = path_of(&mut s, "certDir", problems);
    let max_retries = fields::unsigned(&mut s, "maxRetries", problems)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let retry_delay = fields::duration(&mut s, "retryDelay", problems);
    let max_retry_delay = fields::duration(&mut s, "maxRetryDelay", problems);
    if retry_delay.is_none() {
        for key in ["maxRetries", "maxRetryDelay"] {
            if s.has(key) {
                problems.push(Problem::new(s.child(key), "needs retryDelay"));
            }
        }
    }
    if let (Some(d), Some(m)) = (retry_delay, max_retry_delay)
        && m < d
    {
        problems.push(Problem::new(
            s.child("maxRetryDelay"),
            "must not be shorter than retryDelay",
        ));
    }
    let only_signed = fields::boolean(&mut s, "onlySigned", problems).unwrap_or(false);
    let sync_legacy_cosign_tags =
        fields::boolean(&mut s, "syncLegacyCosignTags", problems).unwrap_or(true);
    let credential_helper = fields::string(&mut s, "credentialHelper", problems);
    if let Some(h) = &credential_helper
        && !matches!(h.as_str(), "ecr" | "gcp" | "oauth2" | "")
    {
        problems.push(Problem::new(
            s.child("credentialHelper"),
            format!("unknown credential helper {h:?} (expected ecr, gcp or oauth2)"),
        ));
    }
    if let Some(v) = s.get("oauth2CredentialHelper") {
        read_oauth2(s.child("oauth2CredentialHelper"), v, problems);
    }
    let preserve_digest = fields::boolean(&mut s, "preserveDigest", problems).unwrap_or(false);
    let sync_timeout =
        fields::duration(&mut s, "syncTimeout", problems).unwrap_or(DEFAULT_SYNC_TIMEOUT);
    let response_header_timeout = fields::duration(&mut s, "responseHeaderTimeout", problems)
        .unwrap_or(DEFAULT_RESPONSE_HEADER_TIMEOUT);
    let req_concurrent = positive(&mut s, "reqConcurrent", problems);
    let req_per_sec = match s.get("reqPerSec") {
        None => None,
        Some(v) => match v.as_f64().filter(|f| f.is_finite() && *f > 0.0) {
            Some(f) => Some(f),
            None => {
                problems.push(Problem::new(
                    s.child("reqPerSec"),
                    "expected a finite number greater than 0",
                ));
                None
            }
        },
    };
    let disable_http2 = fields::boolean(&mut s, "disableHTTP2", problems).unwrap_or(false);
    let max_idle_conns_per_host = positive(&mut s, "maxIdleConnsPerHost", problems);
    let platforms = read_platforms(&mut s, problems);
    s.finish(problems);
    Some(SyncRegistry {
        urls,
        poll_interval,
        content,
        tls_verify,
        on_demand,
        manifest_check_interval,
        cert_dir,
        max_retries,
        retry_delay,
        max_retry_delay: max_retry_delay.or(retry_delay),
        only_signed,
        sync_legacy_cosign_tags,
        credential_helper: credential_helper.filter(|h| !h.is_empty()),
        preserve_digest,
        sync_timeout,
        response_header_timeout,
        req_concurrent,
        req_per_sec,
        disable_http2,
        max_idle_conns_per_host,
        platforms,
    })
}

/// `platforms`: each `os/arch` or `os/arch/variant`, no part empty.
fn read_platforms(s: &mut Section<'_>, problems: &mut Vec<Problem>) -> Vec<String> {
    fields::string_list(s, "platforms", problems)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, p)| {
            let parts: Vec<&str> = p.split('/').collect();
            if (2..=3).contains(&parts.len()) && parts.iter().all(|x| !x.trim().is_empty()) {
                Some(p)
            } else {
                problems.push(Problem::new(
                    path,
                    "expected os/arch or os/arch/variant, e.g. linux/arm64/v8",
                ));
                None
            }
        })
        .collect()
}

fn url_problem(u: &str) -> Option<&'static str> {
    let Some(rest) = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
    else {
        return Some("must be an http:// or https:// URL with a host");
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Some("must be an http:// or https:// URL with a host");
    }
    None
}

fn read_content(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<ContentRule> {
    let mut s = Section::new(path, value, problems)?;
    let mut rule = ContentRule::default();
    match fields::string(&mut s, "prefix", problems) {
        Some(prefix) => {
            let trimmed = prefix.trim_start_matches('/').to_owned();
            if let Err(e) = crate::glob::Glob::new(&trimmed) {
                problems.push(Problem::new(
                    s.child("prefix"),
                    format!("invalid glob: {e}"),
                ));
            }
            rule.prefix = trimmed;
        }
        None => problems.push(Problem::new(s.child("prefix"), "is required")),
    }
    if let Some(v) = s.get("tags")
        && let Some(mut t) = Section::new(s.child("tags"), v, problems)
    {
        let mut filter = TagFilter::default();
        for (key, slot) in [
            ("regex", &mut filter.regex),
            ("excludeRegex", &mut filter.exclude_regex),
        ] {
            if let Some(re) = fields::string(&mut t, key, problems) {
                match regex::Regex::new(&re) {
                    Ok(_) => *slot = Some(re),
                    Err(e) => problems.push(Problem::new(
                        t.child(key),
                        format!("invalid regular expression: {e}"),
                    )),
                }
            }
        }
        filter.semver = fields::boolean(&mut t, "semver", problems).unwrap_or(false);
        t.finish(problems);
        rule.tags = Some(filter);
    }
    rule.destination = fields::string(&mut s, "destination", problems)
        .map(|d| d.trim_matches('/').to_owned())
        .filter(|d| !d.is_empty());
    rule.strip_prefix = fields::boolean(&mut s, "stripPrefix", problems).unwrap_or(false);
    rule.platforms = read_platforms(&mut s, problems);
    if rule.strip_prefix
        && rule.destination.is_none()
        && s.has("destination")
        && !rule.prefix.contains("/*")
    {
        problems.push(Problem::new(
            s.child("stripPrefix"),
            "with destination \"/\" the prefix needs a /* glob",
        ));
    }
    s.finish(problems);
    Some(rule)
}

fn read_oauth2(path: String, value: &Value, problems: &mut Vec<Problem>) {
    let Some(mut s) = Section::new(path, value, problems) else {
        return;
    };
    let grant_type = fields::string(&mut s, "grantType", problems);
    for key in [
        "tokenURL",
        "clientID",
        "clientSecretFile",
        "username",
        "subjectTokenType",
        "requestedTokenType",
    ] {
        fields::string(&mut s, key, problems);
    }
    let assertion = fields::string(&mut s, "assertionFile", problems);
    let signing = fields::string(&mut s, "signingFile", problems);
    if assertion.is_some() == signing.is_some() {
        problems.push(Problem::new(
            s.child("assertionFile"),
            "exactly one of assertionFile and signingFile is required",
        ));
    }
    fields::string_list(&mut s, "scopes", problems);
    let audience = fields::string(&mut s, "audience", problems);
    if grant_type.as_deref() == Some("urn:ietf:params:oauth:grant-type:token-exchange")
        && audience.is_none_or(|a| a.is_empty())
    {
        problems.push(Problem::new(
            s.child("audience"),
            "is required with the token-exchange grant type",
        ));
    }
    s.finish(problems);
}

/// Checks of `extensions.sync` against the rest of the configuration.
pub(crate) fn cross_check(
    sync: &SyncConfig,
    compat_set: bool,
    remote_storage: bool,
    problems: &mut Vec<Problem>,
) {
    for (i, r) in sync.registries.iter().enumerate() {
        if r.preserve_digest && !compat_set {
            problems.push(Problem::new(
                format!("extensions.sync.registries[{i}].preserveDigest"),
                "needs http.compat set",
            ));
        }
    }
    if remote_storage && sync.download_dir.is_none() {
        problems.push(Problem::new(
            "extensions.sync.downloadDir",
            "is required with remote (S3) storage",
        ));
    }
}

//! Configuration of the zot registry, read from the same JSON or YAML files as
//! the Go zot.
//!
//! # Invariants
//!
//! - **One path for both formats.** A file is parsed into a generic
//!   [`serde_json::Value`] (YAML is converted), then walked by hand; JSON and
//!   YAML with the same content give the same [`Config`] and the same problems.
//! - **zot's key names, matched case-insensitively** (`rootdirectory` is
//!   `rootDirectory`), because the Go zot lower-cases keys through viper.
//! - **Nothing is silently ignored.** A key this crate does not know is an
//!   `unknown key` problem; a key zot knows but this build does not implement
//!   is `not supported by this build`; an enabled extension this build lacks is
//!   `not available in this build`. Each [`Problem`] names the key path.
//! - **All problems at once.** Parsing continues past a problem so the user
//!   sees every one; a [`Config`] is returned only when there is none.
//! - **zot's defaults**, listed on each field; durations as Go writes them
//!   (see [`parse_duration`]); in a file an integer duration is nanoseconds.
//! - A returned [`Config`] is validated: non-empty root directory, port in
//!   range, TLS with both certificate and key. Files it names are not opened
//!   here; that is the server's job at start-up.

mod auth;
mod auth_oidc;
mod auth_openid;
pub mod cache_driver;
mod cluster;
mod duration;
mod events;
mod extensions;
mod fields;
pub mod glob;
mod http;
mod log;
mod problem;
mod retention;
mod search;
mod storage;
pub mod storage_driver;
mod sync;
mod value;

use std::path::Path;

use serde_json::Value;

pub use auth::{
    ACTIONS, AccessControlConfig, AuthConfig, BearerConfig, DEFAULT_TOKEN_PATH, LdapConfig,
    MAX_FAIL_DELAY, MetricsPolicy, MtlsConfig, Policy, RateLimitConfig, RepositoryPolicy,
    TokenConfig,
};
pub use auth_oidc::{IssuerCa, OidcIssuerConfig};
pub use auth_openid::{OpenIdConfig, ProviderConfig, ProviderKind, SessionDriver};
pub use cache_driver::{CacheDriver, RedisMode, RedisTarget};
pub use cluster::{ClusterConfig, ClusterTls};
pub use duration::parse_duration;
pub use events::{
    DEFAULT_HTTP_SINK_TIMEOUT, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_OUTBOX_EVENTS,
    DEFAULT_NATS_SINK_TIMEOUT, EventsConfig, SinkConfig, SinkCredentials, SinkKind, SinkTls,
};
pub use extensions::{
    AVAILABLE_EXTENSIONS, DEFAULT_METRICS_MAX_REPOSITORIES, DEFAULT_METRICS_PATH,
    DEFAULT_SCRUB_INTERVAL, ExtensionConfig, KNOWN_EXTENSIONS, LintConfig, MetricsConfig,
    ScrubConfig,
};
pub use http::{Compat, DEFAULT_ADDRESS, DEFAULT_PORT, HttpConfig, TlsConfig};
pub use log::{LogConfig, LogLevel, SchedulerConfig};
pub use problem::Problem;
pub use retention::{DEFAULT_RETENTION_DELAY, KeepTagsRule, RetentionConfig, RetentionPolicy};
pub use search::{
    CveConfig, DEFAULT_OSV_URL, DEFAULT_TRIVY_DB, DEFAULT_TRIVY_JAVA_DB, MIN_CVE_UPDATE_INTERVAL,
    OsvConfig, OsvSource, SbomFormat, SearchConfig, TrivyConfig,
};
pub use storage::{DEFAULT_GC_DELAY, DEFAULT_GC_INTERVAL, StorageConfig, TimeWindow};
pub use storage_driver::S3Config;
pub use sync::{
    ContentRule, DEFAULT_RESPONSE_HEADER_TIMEOUT, DEFAULT_SYNC_TIMEOUT, SyncConfig, SyncRegistry,
    TagFilter,
};

use value::Section;

/// The distribution-spec version zot reports by default.
pub const DEFAULT_DIST_SPEC_VERSION: &str = "1.1.1";

/// The whole configuration of a registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Reported distribution-spec version (`distSpecVersion`, default "1.1.1");
    /// a semantic version such as `1.1.0` (anything else is a problem).
    pub dist_spec_version: String,
    /// `storage`
    pub storage: StorageConfig,
    /// `http`
    pub http: HttpConfig,
    /// `log`
    pub log: LogConfig,
    /// `extensions`, in [`KNOWN_EXTENSIONS`] order, disabled ones included.
    pub extensions: Vec<ExtensionConfig>,
    /// `scheduler`
    pub scheduler: SchedulerConfig,
    /// `cluster`: zot's cluster mode (repositories spread over members).
    pub cluster: Option<ClusterConfig>,
}

/// The syntax of a config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON
    Json,
    /// YAML (1.2, as serde_yaml reads it)
    Yaml,
}

impl Format {
    /// The format a file name implies: `.json`, or `.yaml`/`.yml` (any case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

impl Config {
    /// The embedded default used by `zot serve` without a file: 127.0.0.1:5000,
    /// storage in ./zot-data, dedupe on, compat docker2s2 on, log level info to stdout.
    pub fn embedded_default() -> Config {
        Config {
            dist_spec_version: DEFAULT_DIST_SPEC_VERSION.to_owned(),
            storage: StorageConfig::with_root("./zot-data"),
            http: HttpConfig {
                compat: vec![Compat::Docker2s2],
                ..HttpConfig::default()
            },
            log: LogConfig {
                level: LogLevel::Info,
                ..LogConfig::default()
            },
            extensions: Vec::new(),
            scheduler: SchedulerConfig::default(),
            cluster: None,
        }
    }

    /// Reads a config file, its format chosen by extension (`.json`, `.yaml`,
    /// `.yml`); otherwise JSON is tried, then YAML. A read error is one problem
    /// whose path is the file name.
    pub fn from_file(path: &Path) -> Result<Config, Vec<Problem>> {
        Self::from_file_with(path, AVAILABLE_EXTENSIONS)
    }

    /// [`Config::from_file`] with an explicit list of available extensions.
    pub fn from_file_with(
        path: &Path,
        available_extensions: &[&str],
    ) -> Result<Config, Vec<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem::new(
                path.display().to_string(),
                format!("cannot read: {e}"),
            )]
        })?;
        Self::from_text_with(path, &text, available_extensions)
    }

    /// [`Config::from_file_with`] on the text of the file at `path`, read
    /// already (a reload hashes exactly what it validates); the name of
    /// `path` chooses the format as there.
    pub fn from_text_with(
        path: &Path,
        text: &str,
        available_extensions: &[&str],
    ) -> Result<Config, Vec<Problem>> {
        match Format::from_path(path) {
            Some(format) => Self::from_str_with(text, format, available_extensions),
            None => {
                let value = match serde_json::from_str::<Value>(text) {
                    Ok(value) => value,
                    Err(json) => parse_yaml(text).map_err(|yaml| {
                        vec![Problem::new(
                            "",
                            format!("neither valid JSON ({json}) nor valid YAML ({yaml})"),
                        )]
                    })?,
                };
                Self::from_value(&value, available_extensions)
            }
        }
    }

    /// Parses a config text in the given format.
    pub fn from_str(text: &str, format: Format) -> Result<Config, Vec<Problem>> {
        Self::from_str_with(text, format, AVAILABLE_EXTENSIONS)
    }

    /// [`Config::from_str`] with an explicit list of available extensions.
    pub fn from_str_with(
        text: &str,
        format: Format,
        available_extensions: &[&str],
    ) -> Result<Config, Vec<Problem>> {
        let value = match format {
            Format::Json => {
                serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}"))
            }
            Format::Yaml => parse_yaml(text).map_err(|e| format!("invalid YAML: {e}")),
        }
        .map_err(|message| vec![Problem::new("", message)])?;
        Self::from_value(&value, available_extensions)
    }

    /// Reads a config from a generic value (the common path of both formats).
    pub fn from_value(
        value: &Value,
        available_extensions: &[&str],
    ) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let Some(mut top) = Section::new(String::new(), value, &mut problems) else {
            return Err(problems);
        };
        let dist_spec_version =
            fields::string(&mut top, "distSpecVersion", &mut problems).filter(|v| {
                let ok = is_version(v);
                if !ok {
                    problems.push(Problem::new(
                        "distSpecVersion",
                        format!("{v:?} is not a version such as \"1.1.1\" (MAJOR.MINOR.PATCH)"),
                    ));
                }
                ok
            });
        let storage = storage::parse(top.get("storage"), &mut problems);
        let http = http::parse(top.get("http"), &mut problems);
        let log = log::parse_log(top.get("log"), &mut problems);
        let extensions =
            extensions::parse(top.get("extensions"), available_extensions, &mut problems);
        let scheduler = log::parse_scheduler(top.get("scheduler"), &mut problems);
        if let (Some(storage), Some(sync)) = (
            &storage,
            extensions
                .iter()
                .find_map(extensions::ExtensionConfig::sync),
        ) {
            let remote = storage.storage_driver.is_some()
                || storage
                    .sub_paths
                    .values()
                    .any(|s| s.storage_driver.is_some());
            sync::cross_check(&sync, !http.compat.is_empty(), remote, &mut problems);
        }
        let cluster = cluster::parse(top.get("cluster"), &mut problems);
        top.finish(&mut problems);
        match storage {
            Some(storage) if problems.is_empty() => Ok(Config {
                dist_spec_version: dist_spec_version
                    .unwrap_or_else(|| DEFAULT_DIST_SPEC_VERSION.to_owned()),
                storage,
                http,
                log,
                extensions,
                scheduler,
                cluster,
            }),
            _ => Err(problems),
        }
    }

    /// Whether Docker image manifest v2 schema 2 is accepted (`http.compat`).
    pub fn docker2s2(&self) -> bool {
        self.http.compat.contains(&Compat::Docker2s2)
    }

    /// The extension section named `name`, if present (enabled or not).
    pub fn extension(&self, name: &str) -> Option<&ExtensionConfig> {
        self.extensions
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }
}

/// A semantic version: `MAJOR.MINOR.PATCH` of decimal numbers without
/// leading zeros, optionally followed by `-prerelease` and/or `+build`
/// (dot-separated `[0-9A-Za-z-]` identifiers), as zot's `distSpecVersion`
/// values are (`1.1.0`, `1.1.1`).
fn is_version(v: &str) -> bool {
    let identifiers = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let (rest, build) = match v.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        })
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    value::yaml_to_json(yaml)
}

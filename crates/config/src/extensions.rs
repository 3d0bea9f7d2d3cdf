//! The `extensions` section.
//!
//! Invariants:
//! - Each key is one of [`KNOWN_EXTENSIONS`] (matched case-insensitively and
//!   stored under its canonical lower-case name); any other key is an
//!   `unknown extension` problem.
//! - A section is a mapping (an empty YAML value counts as `{}`). Its `enable`
//!   flag, when present, is a boolean; when absent, the extension is enabled
//!   or not as zot decides: `search`, `sync`, `metrics`, `scrub`, `ui` and
//!   `trust` are enabled by their mere presence (zot's `applyDefaultValues`),
//!   `lint`, `mgmt`, `apikey` and `events` are not.
//! - The rest of a section is kept verbatim in [`ExtensionConfig::raw`] for the
//!   extension to read. The sections of extensions this codebase implements
//!   (`scrub`, `lint`, `search`, `ui`, `metrics`, `sync`, `events`) are validated here, every key by its
//!   path, and read through [`ExtensionConfig::scrub`],
//!   [`ExtensionConfig::lint`] and [`ExtensionConfig::search`]; the others
//!   are not validated.
//! - An enabled `ui` needs an enabled `search` (see [`crate::search`]).
//! - An enabled extension that is not in the list of available extensions
//!   (by default [`AVAILABLE_EXTENSIONS`]; `apikey` excepted, which zot
//!   ignores) is a `not available in this build`
//!   problem; a disabled one is accepted whatever the build.

use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::search::{SearchConfig, read_search, read_ui};
use crate::sync::{SyncConfig, read_sync};
use crate::value::Section;

/// Every extension name zot knows, with whether its mere presence enables it.
pub const KNOWN_EXTENSIONS: &[(&str, bool)] = &[
    ("search", true),
    ("sync", true),
    ("metrics", true),
    ("scrub", true),
    ("ui", true),
    ("trust", true),
    ("lint", false),
    ("mgmt", false),
    ("apikey", false),
    ("events", false),
];

/// The extensions this codebase implements; an enabled extension must be
/// listed here. A binary built without some of them passes its own list to
/// [`crate::Config::from_file_with`].
/// `ui` is accepted with `search` (this build serves no web UI; the API the
/// UI uses is search's), and so is `mgmt`, which is on whenever search is.
pub const AVAILABLE_EXTENSIONS: &[&str] = &[
    "scrub", "lint", "search", "ui", "mgmt", "metrics", "sync", "events",
];

/// zot's default `extensions.metrics.prometheus.path`.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// `extensions.metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where the Prometheus text is served (`prometheus.path`, default
    /// [`DEFAULT_METRICS_PATH`]): absolute, clean, neither `/` nor under
    /// `/v2` (zot refuses `/` and `/v2`; a path under `/v2/` would be taken
    /// for a repository, so it is refused too), not a probe's path.
    pub path: String,
    /// Most repositories given a `repo` label (`maxRepositoryLabels`, ours,
    /// zot has none; default [`DEFAULT_METRICS_MAX_REPOSITORIES`]).
    pub max_repository_labels: usize,
}

/// Default `extensions.metrics.maxRepositoryLabels`.
pub const DEFAULT_METRICS_MAX_REPOSITORIES: usize = 1000;

/// zot's default `extensions.scrub.interval`.
pub const DEFAULT_SCRUB_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// `extensions.scrub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubConfig {
    /// Period of background scrubs (`interval`, default 24 h).
    pub interval: Duration,
}

/// `extensions.lint`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LintConfig {
    /// Annotations every pushed manifest must carry (`mandatoryAnnotations`).
    pub mandatory_annotations: Vec<String>,
}

impl ExtensionConfig {
    /// The settings of an enabled `scrub` section.
    pub fn scrub(&self) -> Option<ScrubConfig> {
        if !self.enabled || self.name != "scrub" {
            return None;
        }
        let mut problems = Vec::new();
        Some(read_scrub(&self.raw, &mut problems))
    }

    /// The settings of an enabled `metrics` section.
    pub fn metrics(&self) -> Option<MetricsConfig> {
        if !self.enabled || self.name != "metrics" {
            return None;
        }
        let mut problems = Vec::new();
        Some(read_metrics(&self.raw, &mut problems))
    }

    /// The settings of an enabled `lint` section.
    pub fn lint(&self) -> Option<LintConfig> {
        if !self.enabled || self.name != "lint" {
            return None;
        }
        let mut problems = Vec::new();
        Some(read_lint(&self.raw, &mut problems))
    }
}

impl ExtensionConfig {
    /// The settings of an enabled `sync` section.
    pub fn sync(&self) -> Option<SyncConfig> {
        if !self.enabled || self.name != "sync" {
            return None;
        }
        let mut problems = Vec::new();
        Some(read_sync(&self.raw, &mut problems))
    }

    /// The settings of an enabled `events` section with sinks.
    pub fn events(&self) -> Option<crate::events::EventsConfig> {
        if !self.enabled || self.name != "events" {
            return None;
        }
        crate::events::read_events(&self.raw, &mut Vec::new())
    }

    /// The settings of an enabled `search` section.
    pub fn search(&self) -> Option<SearchConfig> {
        if !self.enabled || self.name != "search" {
            return None;
        }
        let mut problems = Vec::new();
        Some(read_search(&self.raw, &mut problems))
    }
}

fn read_scrub(value: &Value, problems: &mut Vec<Problem>) -> ScrubConfig {
    let mut config = ScrubConfig {
        interval: DEFAULT_SCRUB_INTERVAL,
    };
    if let Some(mut section) = Section::new("extensions.scrub".to_owned(), value, problems) {
        section.get("enable");
        if let Some(interval) = fields::duration(&mut section, "interval", problems) {
            if interval.is_zero() {
                problems.push(Problem::new(section.child("interval"), "must not be zero"));
            } else {
                config.interval = interval;
            }
        }
        section.finish(problems);
    }
    config
}

fn read_metrics(value: &Value, problems: &mut Vec<Problem>) -> MetricsConfig {
    let mut config = MetricsConfig {
        path: DEFAULT_METRICS_PATH.to_owned(),
        max_repository_labels: DEFAULT_METRICS_MAX_REPOSITORIES,
    };
    let Some(mut section) = Section::new("extensions.metrics".to_owned(), value, problems) else {
        return config;
    };
    section.get("enable");
    if let Some(v) = section.get("maxRepositoryLabels") {
        match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= 1_000_000 => config.max_repository_labels = n,
            _ => problems.push(Problem::new(
                section.child("maxRepositoryLabels"),
                "must be an integer from 0 to 1000000",
            )),
        }
    }
    if let Some(v) = section.get("prometheus")
        && let Some(mut prom) = Section::new(section.child("prometheus"), v, problems)
    {
        if let Some(path) = fields::string(&mut prom, "path", problems) {
            match metrics_path_problem(&path) {
                Some(why) => problems.push(Problem::new(prom.child("path"), why)),
                None => config.path = path,
            }
        }
        prom.finish(problems);
    }
    section.finish(problems);
    config
}

/// Why `path` cannot be the metrics endpoint, if it cannot.
fn metrics_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with /");
    }
    let unclean = path.len() > 1 && path.ends_with('/')
        || path
            .split('/')
            .skip(1)
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if path == "/" {
        Some("must not be /")
    } else if unclean {
        Some("must be a clean path (no empty, . or .. segment, no trailing /)")
    } else if path == "/v2" || path.starts_with("/v2/") {
        Some("must not be /v2 or under it")
    } else if matches!(path, "/livez" | "/readyz" | "/startupz") {
        Some("must not be a health probe's path")
    } else {
        None
    }
}

fn read_lint(value: &Value, problems: &mut Vec<Problem>) -> LintConfig {
    let mut config = LintConfig::default();
    if let Some(mut section) = Section::new("extensions.lint".to_owned(), value, problems) {
        section.get("enable");
        config.mandatory_annotations =
            fields::string_list(&mut section, "mandatoryAnnotations", problems)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, s)| s)
                .collect();
        section.finish(problems);
    }
    config
}

/// One section of `extensions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionConfig {
    /// Canonical (lower-case) extension name, e.g. `search`.
    pub name: String,
    /// Whether the extension is on (explicit `enable`, or zot's default).
    pub enabled: bool,
    /// The whole section as written (with `enable`, keys in the user's spelling).
    pub raw: Value,
}

/// Reads `extensions` (absent: none).
pub(crate) fn parse(
    value: Option<&Value>,
    available: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<ExtensionConfig> {
    let mut out = Vec::new();
    let Some(mut section) = Section::new(
        "extensions".to_owned(),
        value.unwrap_or(&Value::Null),
        problems,
    ) else {
        return out;
    };
    for &(name, on_by_presence) in KNOWN_EXTENSIONS {
        let Some(value) = section.get_even_null(name) else {
            continue;
        };
        let path = section.child(name);
        let Some(mut body) = Section::new(path.clone(), value, problems) else {
            continue;
        };
        let enabled = match (
            body.has("enable"),
            fields::boolean(&mut body, "enable", problems),
        ) {
            (_, Some(enable)) => enable,
            (false, None) => on_by_presence,
            // An invalid `enable` is reported once, as such.
            (true, None) => false,
        };
        // zot accepts `extensions.apikey` and ignores it (API keys are
        // `http.auth.apikey`); so does this build, with a note.
        let ignored = name.eq_ignore_ascii_case("apikey");
        if enabled && !ignored && !available.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            problems.push(Problem::new(path, "not available in this build"));
        }
        let raw = if value.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            value.clone()
        };
        match name {
            "scrub" => {
                read_scrub(&raw, problems);
            }
            "lint" => {
                read_lint(&raw, problems);
            }
            "search" => {
                read_search(&raw, problems);
            }
            "ui" => {
                read_ui(&raw, problems);
            }
            "metrics" => {
                read_metrics(&raw, problems);
            }
            "sync" => {
                read_sync(&raw, problems);
            }
            "events" => {
                crate::events::read_events(&raw, problems);
            }
            _ => {}
        }
        out.push(ExtensionConfig {
            name: name.to_owned(),
            enabled,
            raw,
        });
    }
    for (key, _) in section.take_rest() {
        problems.push(Problem::new(section.child(key), "unknown extension"));
    }
    let on = |name: &str| {
        out.iter()
            .any(|e: &ExtensionConfig| e.name == name && e.enabled)
    };
    if on("ui") && !on("search") {
        problems.push(Problem::new(
            section.child("ui"),
            "needs the search extension enabled (extensions.search)",
        ));
    }
    section.finish(problems);
    out
}

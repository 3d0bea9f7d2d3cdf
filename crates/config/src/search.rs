//! `extensions.search` (with `cve`) and `extensions.ui`, in zot's keys.
//!
//! Invariants of what is returned:
//! - `search` is enabled by its mere presence (zot's `applyDefaultValues`);
//!   its keys are `enable` and `cve`, nothing else.
//! - `cve`, when present (not `null`), turns CVE scanning on with search and
//!   is validated key by key: `updateInterval` is a duration, raised to
//!   [`MIN_CVE_UPDATE_INTERVAL`] when shorter or unset (zot does the same,
//!   with a warning); `trivy.dbRepository` and `trivy.javaDBRepository` are
//!   non-empty strings with zot's defaults; `trivy.vulnSeveritySources` is a
//!   list of strings (default `["auto"]`); `trivy.sbom.format` is
//!   `spdx-json` (the default) or `cyclonedx` (zot warns and falls back on
//!   anything else; here it is a problem, since nothing is silently
//!   ignored). Scanning itself is not built yet: the settings are read for
//!   the scanner to come.
//! - `ui` has only `enable`; an enabled `ui` needs an enabled `search`, as
//!   in zot ("failed to enable ui, search extension must be enabled").

use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// The shortest CVE database update interval (and the default).
pub const MIN_CVE_UPDATE_INTERVAL: Duration = Duration::from_secs(2 * 3600);
/// zot's default Trivy vulnerability database.
pub const DEFAULT_TRIVY_DB: &str = "ghcr.io/aquasecurity/trivy-db";
/// zot's default Trivy Java database.
pub const DEFAULT_TRIVY_JAVA_DB: &str = "ghcr.io/aquasecurity/trivy-java-db";

/// `extensions.search` when enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchConfig {
    /// `cve`: CVE scanning, on when present.
    pub cve: Option<CveConfig>,
}

/// `extensions.search.cve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveConfig {
    /// How often the vulnerability database is refreshed (`updateInterval`,
    /// at least [`MIN_CVE_UPDATE_INTERVAL`]).
    pub update_interval: Duration,
    /// `trivy`
    pub trivy: TrivyConfig,
}

/// `extensions.search.cve.trivy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrivyConfig {
    /// `dbRepository` (an OCI reference).
    pub db_repository: String,
    /// `javaDBRepository` (an OCI reference).
    pub java_db_repository: String,
    /// `vulnSeveritySources`.
    pub vuln_severity_sources: Vec<String>,
    /// `sbom.enable`
    pub sbom: bool,
    /// `sbom.format`
    pub sbom_format: SbomFormat,
}

impl Default for TrivyConfig {
    fn default() -> Self {
        TrivyConfig {
            db_repository: DEFAULT_TRIVY_DB.to_owned(),
            java_db_repository: DEFAULT_TRIVY_JAVA_DB.to_owned(),
            vuln_severity_sources: vec!["auto".to_owned()],
            sbom: false,
            sbom_format: SbomFormat::SpdxJson,
        }
    }
}

/// `extensions.search.cve.trivy.sbom.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// `spdx-json`
    SpdxJson,
    /// `cyclonedx`
    CycloneDx,
}

/// Reads an `extensions.search` section (`enable` is read by the caller's
/// generic code and only marked read here).
pub(crate) fn read_search(value: &Value, problems: &mut Vec<Problem>) -> SearchConfig {
    let mut config = SearchConfig::default();
    if let Some(mut section) = Section::new("extensions.search".to_owned(), value, problems) {
        section.get("enable");
        if let Some(cve) = section.get("cve") {
            config.cve = read_cve(section.child("cve"), cve, problems);
        }
        section.finish(problems);
    }
    config
}

fn read_cve(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<CveConfig> {
    let mut section = Section::new(path, value, problems)?;
    let update_interval = fields::duration(&mut section, "updateInterval", problems)
        .unwrap_or_default()
        .max(MIN_CVE_UPDATE_INTERVAL);
    let trivy = match section.get("trivy") {
        Some(trivy) => read_trivy(section.child("trivy"), trivy, problems),
        None => TrivyConfig::default(),
    };
    section.finish(problems);
    Some(CveConfig {
        update_interval,
        trivy,
    })
}

fn non_empty(section: &mut Section<'_>, key: &str, problems: &mut Vec<Problem>) -> Option<String> {
    let value = fields::string(section, key, problems)?;
    if value.trim().is_empty() {
        problems.push(Problem::new(section.child(key), "must not be empty"));
        return None;
    }
    Some(value)
}

fn read_trivy(path: String, value: &Value, problems: &mut Vec<Problem>) -> TrivyConfig {
    let mut config = TrivyConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    if let Some(db) = non_empty(&mut section, "dbRepository", problems) {
        config.db_repository = db;
    }
    if let Some(db) = non_empty(&mut section, "javaDBRepository", problems) {
        config.java_db_repository = db;
    }
    if let Some(sources) = fields::string_list(&mut section, "vulnSeveritySources", problems) {
        config.vuln_severity_sources = sources.into_iter().map(|(_, s)| s).collect();
    }
    if let Some(sbom) = section.get("sbom")
        && let Some(mut sbom) = Section::new(section.child("sbom"), sbom, problems)
    {
        config.sbom = fields::boolean(&mut sbom, "enable", problems).unwrap_or(false);
        match fields::string(&mut sbom, "format", problems).as_deref() {
            None | Some("spdx-json") => {}
            Some("cyclonedx") => config.sbom_format = SbomFormat::CycloneDx,
            Some(other) => problems.push(Problem::new(
                sbom.child("format"),
                format!("unknown SBOM format {other:?} (expected spdx-json or cyclonedx)"),
            )),
        }
        sbom.finish(problems);
    }
    section.finish(problems);
    config
}

/// Validates an `extensions.ui` section: only `enable`.
pub(crate) fn read_ui(value: &Value, problems: &mut Vec<Problem>) {
    if let Some(mut section) = Section::new("extensions.ui".to_owned(), value, problems) {
        section.get("enable");
        section.finish(problems);
    }
}

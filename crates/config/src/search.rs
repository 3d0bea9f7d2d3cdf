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
//!   ignored). The `trivy` keys are accepted for zot's configurations
//!   and not used: this registry scans with its own OSV-based scanner.
//! - `cve.osv` (ours) names the OSV database source: exactly one of
//!   `url` (http or https, default [`DEFAULT_OSV_URL`]), `path` (a
//!   non-empty folder path) or `repository` (`<host>/<repo>:<tag>` or
//!   `@<digest>`), and optionally `ecosystems`, a list of OSV ecosystem
//!   families (non-empty names without `/`) that limits what is fetched.
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

/// OSV's public bucket, the default `cve.osv.url`.
pub const DEFAULT_OSV_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";

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
    /// `trivy` (accepted; only `sbom` is used)
    pub trivy: TrivyConfig,
    /// `osv`: where the vulnerability database comes from.
    pub osv: OsvConfig,
}

/// `extensions.search.cve.osv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsvConfig {
    pub source: OsvSource,
    /// `ecosystems`: the OSV ecosystem families fetched (empty: those the
    /// stored images need).
    pub ecosystems: Vec<String>,
}

impl Default for OsvConfig {
    fn default() -> Self {
        OsvConfig {
            source: OsvSource::Url(DEFAULT_OSV_URL.to_owned()),
            ecosystems: Vec::new(),
        }
    }
}

/// The one source of `extensions.search.cve.osv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsvSource {
    /// `url`: a base URL holding `<ecosystem>/all.zip`.
    Url(String),
    /// `path`: a folder holding `<ecosystem>/all.zip` or `<ecosystem>/*.json`.
    Path(String),
    /// `repository`: an OCI artifact `<host>/<repo>:<tag>` whose layers are the zips.
    Repository(String),
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
    let osv = match section.get("osv") {
        Some(osv) => read_osv(section.child("osv"), osv, problems),
        None => OsvConfig::default(),
    };
    section.finish(problems);
    Some(CveConfig {
        update_interval,
        trivy,
        osv,
    })
}

fn read_osv(path: String, value: &Value, problems: &mut Vec<Problem>) -> OsvConfig {
    let mut config = OsvConfig::default();
    let Some(mut section) = Section::new(path.clone(), value, problems) else {
        return config;
    };
    let mut sources = Vec::new();
    if let Some(url) = non_empty(&mut section, "url", problems) {
        if url.starts_with("http://") || url.starts_with("https://") {
            sources.push(OsvSource::Url(url));
        } else {
            problems.push(Problem::new(
                section.child("url"),
                "must be an http or https URL",
            ));
        }
    }
    if let Some(p) = non_empty(&mut section, "path", problems) {
        sources.push(OsvSource::Path(p));
    }
    if let Some(r) = non_empty(&mut section, "repository", problems) {
        let (name, reference) = match r.split_once('@') {
            Some((n, d)) => (n, d.contains(':')),
            None => match r.rsplit_once(':') {
                Some((n, tag)) => (n, !tag.is_empty() && !tag.contains('/')),
                None => (r.as_str(), false),
            },
        };
        if name.contains('/') && reference {
            sources.push(OsvSource::Repository(r));
        } else {
            problems.push(Problem::new(
                section.child("repository"),
                "must be <host>/<repository>:<tag> or <host>/<repository>@<digest>",
            ));
        }
    }
    match sources.len() {
        0 | 1 => {
            if let Some(source) = sources.pop() {
                config.source = source;
            }
        }
        _ => problems.push(Problem::new(
            path,
            "must name exactly one of url, path and repository",
        )),
    }
    if let Some(list) = fields::string_list(&mut section, "ecosystems", problems) {
        for (item_path, eco) in list {
            if eco.trim().is_empty() || eco.contains('/') {
                problems.push(Problem::new(
                    item_path,
                    "must be an OSV ecosystem name (e.g. Debian, PyPI)",
                ));
            } else if !config.ecosystems.contains(&eco) {
                config.ecosystems.push(eco);
            }
        }
    }
    section.finish(problems);
    config
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

//! Vulnerability scanning in the binary (Cargo feature `cve`, on top of
//! `search`): on when search is on and `extensions.search.cve` is present.
//! Opens the database under the default store's root (`_zot/cve/`), hands
//! the scanner to search, and starts its background work on the
//! scheduler's permits (see `zot_cve`); `trivy.sbom` makes it attach an
//! SBOM referrer to each manifest it scans. Without the feature the settings
//! are read, checked and noted as not used (`search_ext::notes`).

use std::sync::Arc;

use anyhow::Context;
use zot_config::{Config, OsvSource};
use zot_cve::{CveScanner, RefreshSettings};

/// The OSV database directory under a store root.
pub const DB_DIR: &str = "_zot/cve";

/// How often a local folder source is checked for changes (only file
/// sizes and times are read; a change is imported at once).
const FOLDER_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// The CVE settings, when scanning is on in this build.
pub fn settings(cfg: &Config) -> Option<zot_config::CveConfig> {
    if !crate::search_ext::enabled(cfg) {
        return None;
    }
    cfg.extension("search")
        .and_then(|e| e.search())
        .and_then(|s| s.cve)
}

/// The scanner, when scanning is on: its database opened (the index
/// in use at the last shutdown, if any).
pub fn open(cfg: &Config, stores: &zot_storage::Stores) -> anyhow::Result<Option<Arc<CveScanner>>> {
    let Some(settings) = settings(cfg) else {
        return Ok(None);
    };
    let dir = cfg.storage.root_directory.join(DB_DIR);
    let db = zot_vulndb::VulnDb::open(&dir)
        .with_context(|| format!("opening the vulnerability database at {}", dir.display()))?;
    match db.info() {
        Some(info) => {
            tracing::info!(version = info.version, built_at = info.built_at, source = %info.source, "cve: database in use")
        }
        None => tracing::info!("cve: no database yet; the first update runs now"),
    }
    // `trivy.sbom`: an SBOM referrer per scanned manifest (zot's keys).
    let sbom = settings
        .trivy
        .sbom
        .then_some(match settings.trivy.sbom_format {
            zot_config::SbomFormat::SpdxJson => zot_cve::SbomFormat::Spdx,
            zot_config::SbomFormat::CycloneDx => zot_cve::SbomFormat::CycloneDx,
        });
    Ok(Some(CveScanner::with_sbom(
        stores.clone(),
        Arc::new(db),
        sbom,
    )))
}

/// The database refresh as the configuration says: started with the
/// scan queue, and replaced by a reload that changes the CVE settings
/// (scanning on or off needs a restart: search is wired at start-up).
pub struct CveSwitch {
    scanner: Arc<CveScanner>,
    permits: Arc<tokio::sync::Semaphore>,
    root: std::path::PathBuf,
    settings: zot_config::CveConfig,
    refresh: tokio::task::AbortHandle,
}

impl CveSwitch {
    /// Applies `cfg`'s CVE settings when they changed: the refresh running
    /// stops (a database update under way is dropped, the one in use
    /// stays) and one with the new source and interval starts at once.
    pub fn replace(&mut self, cfg: &Config) {
        let Some(settings) = settings(cfg) else {
            return;
        };
        if settings == self.settings {
            return;
        }
        self.refresh.abort();
        let refresh = refresh_settings(&settings, &self.root);
        tracing::info!(source = ?refresh.source, interval_s = refresh.interval.as_secs(), "cve: database refresh restarted with the reloaded settings");
        self.refresh = zot_cve::start_refresh(&self.scanner, refresh, &self.permits);
        self.settings = settings;
    }
}

/// What the refresh of `settings` reads, and how often.
fn refresh_settings(settings: &zot_config::CveConfig, root: &std::path::Path) -> RefreshSettings {
    let ecosystems = settings.osv.ecosystems.clone();
    match &settings.osv.source {
        OsvSource::Url(u) => RefreshSettings {
            source: zot_vulndb::Source::Url(u.clone()),
            artifact: None,
            ecosystems,
            interval: settings.update_interval,
        },
        OsvSource::Path(p) => RefreshSettings {
            source: zot_vulndb::Source::Path(p.into()),
            artifact: None,
            ecosystems,
            interval: settings.update_interval.min(FOLDER_CHECK),
        },
        OsvSource::Repository(r) => RefreshSettings {
            source: zot_vulndb::Source::Path(root.join(DB_DIR).join("artifact")),
            artifact: Some(r.clone()),
            ecosystems,
            interval: settings.update_interval,
        },
    }
}

/// Starts the scan queue and the database refresh on `permits`, and
/// reports to the metrics every few seconds when they are on.
pub fn start(
    cfg: &Config,
    scanner: &Arc<CveScanner>,
    stores: &zot_storage::Stores,
    permits: &Arc<tokio::sync::Semaphore>,
    recorder: &crate::metrics_ext::Recorder,
) -> Option<CveSwitch> {
    let settings = settings(cfg)?;
    zot_cve::start(scanner, stores, None, permits, None);
    let root = cfg.storage.root_directory.clone();
    let refresh = zot_cve::start_refresh(scanner, refresh_settings(&settings, &root), permits);
    report(scanner, recorder);
    Some(CveSwitch {
        scanner: Arc::clone(scanner),
        permits: Arc::clone(permits),
        root,
        settings,
        refresh,
    })
}

#[cfg(feature = "metrics")]
fn report(scanner: &Arc<CveScanner>, recorder: &crate::metrics_ext::Recorder) {
    use std::sync::atomic::Ordering;
    let scanner = Arc::clone(scanner);
    // Metrics may be turned on and off by a reload: looked up at each tick.
    let recorder = recorder.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            let Some(metrics) = recorder.metrics() else {
                continue;
            };
            let info = scanner.db().info();
            let c = scanner.counters();
            metrics.set_cve(&zot_metrics::CveStatus {
                db_version: info.as_ref().map_or(0, |i| i.version),
                db_built_at: info.as_ref().map_or(0, |i| i.built_at),
                layers_read: c.layers_read.load(Ordering::Relaxed),
                manifests_scanned: c.manifests_scanned.load(Ordering::Relaxed),
                manifests_matched: c.manifests_matched.load(Ordering::Relaxed),
                queue: scanner.queue_len() as u64,
            });
        }
    });
}

#[cfg(not(feature = "metrics"))]
fn report(_scanner: &Arc<CveScanner>, _recorder: &crate::metrics_ext::Recorder) {}

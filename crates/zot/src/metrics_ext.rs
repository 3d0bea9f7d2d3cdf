//! Wiring of the metrics extension (Cargo feature `metrics`): with the
//! feature off nothing of it is compiled, and an enabled
//! `extensions.metrics` is refused by `zot verify` as not available.
//! Recording happens in the API layer; this builds the registry from
//! `extensions.metrics` and the build's description for `zot_info`.

use zot_config::Config;

/// The metrics endpoint, when the extension is built in and enabled.
#[cfg(feature = "metrics")]
pub fn endpoint(cfg: &Config) -> Option<zot_api::MetricsEndpoint> {
    let settings = cfg.extension("metrics").and_then(|e| e.metrics())?;
    let built: String = crate::lifecycle::AVAILABLE
        .iter()
        .filter(|tag| **tag != "ui")
        .map(|tag| format!("-{tag}"))
        .collect();
    let info = zot_metrics::BuildInfo {
        version: cfg.dist_spec_version.clone(),
        commit: option_env!("ZOT_COMMIT").unwrap_or_default().to_owned(),
        binary_type: built,
        go_version: "rust".to_owned(),
    };
    Some(zot_api::MetricsEndpoint {
        path: settings.path,
        metrics: std::sync::Arc::new(zot_metrics::Metrics::new(
            info,
            settings.max_repository_labels,
        )),
    })
}

/// Without the feature: never on.
#[cfg(not(feature = "metrics"))]
pub fn endpoint(_cfg: &Config) -> Option<zot_api::MetricsEndpoint> {
    None
}

/// The kinds of background task whose durations are measured.
#[derive(Debug, Clone, Copy)]
pub enum TaskKind {
    Gc,
    Scrub,
    UploadExpiry,
    /// One repository of a periodic sync run.
    #[cfg(feature = "sync")]
    Sync,
}

/// What background tasks report to the metrics: a no-op without the
/// feature or with `extensions.metrics` off. Every call is a few atomic
/// additions.
#[derive(Clone, Default)]
pub struct Recorder {
    #[cfg(feature = "metrics")]
    metrics: Option<std::sync::Arc<zot_metrics::Metrics>>,
}

#[cfg(feature = "metrics")]
impl Recorder {
    pub fn new(endpoint: Option<&zot_api::MetricsEndpoint>) -> Recorder {
        Recorder {
            metrics: endpoint.map(|e| e.metrics.clone()),
        }
    }

    fn with(&self, f: impl FnOnce(&zot_metrics::Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    pub fn set_workers(&self, n: usize) {
        self.with(|m| m.background().set_workers(n));
    }

    pub fn queued(&self) {
        self.with(|m| m.background().queued());
    }

    pub fn started(&self) {
        self.with(|m| m.background().started());
    }

    pub fn finished(&self, kind: TaskKind, elapsed: std::time::Duration) {
        let kind = match kind {
            TaskKind::Gc => zot_metrics::Task::Gc,
            TaskKind::Scrub => zot_metrics::Task::Scrub,
            TaskKind::UploadExpiry => zot_metrics::Task::UploadExpiry,
            #[cfg(feature = "sync")]
            TaskKind::Sync => zot_metrics::Task::Sync,
        };
        self.with(|m| m.background().finished(kind, elapsed));
    }

    /// One GC round of a store: its repositories' reports summed, and
    /// whether any repository was skipped on an error.
    pub fn gc_round(&self, r: &zot_storage::GcReport, error: bool, elapsed: std::time::Duration) {
        let round = zot_metrics::GcRound {
            manifests_removed: r.manifests_removed as u64,
            blobs_removed: r.blobs_removed as u64,
            tags_removed: r.tags_removed as u64,
            problems: r.problems as u64,
            error,
        };
        self.with(|m| m.background().gc_round(&round, elapsed));
    }

    pub fn uploads_expired(&self, n: usize) {
        self.with(|m| m.background().uploads_expired(n as u64));
    }

    pub fn scrub_round(&self, blobs: usize, manifests: usize, problems: usize) {
        let round = zot_metrics::ScrubRound {
            blobs_checked: blobs as u64,
            manifests_checked: manifests as u64,
            problems: problems as u64,
        };
        self.with(|m| m.background().scrub_round(&round));
    }

    /// The metrics, when on (for the sampler).
    pub fn metrics(&self) -> Option<&std::sync::Arc<zot_metrics::Metrics>> {
        self.metrics.as_ref()
    }
}

/// Without the feature: records nothing.
#[cfg(not(feature = "metrics"))]
impl Recorder {
    pub fn new(_endpoint: Option<&zot_api::MetricsEndpoint>) -> Recorder {
        Recorder {}
    }
    pub fn set_workers(&self, _n: usize) {}
    pub fn queued(&self) {}
    pub fn started(&self) {}
    pub fn finished(&self, _kind: TaskKind, _elapsed: std::time::Duration) {}
    pub fn gc_round(&self, _r: &zot_storage::GcReport, _error: bool, _e: std::time::Duration) {}
    pub fn uploads_expired(&self, _n: usize) {}
    pub fn scrub_round(&self, _blobs: usize, _manifests: usize, _problems: usize) {}
}

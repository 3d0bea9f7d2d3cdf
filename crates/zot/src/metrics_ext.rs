//! Wiring of the metrics extension (Cargo feature `metrics`): with the
//! feature off nothing of it is compiled, and an enabled
//! `extensions.metrics` is refused by `zot verify` as not available.
//! Recording happens in the API layer; this builds the registry from
//! `extensions.metrics` and the build's description for `zot_info`, and
//! turns it on and off as the configuration says ([`MetricsSwitch`], at
//! start-up and at each reload).

#[cfg(feature = "metrics")]
use std::sync::Arc;
use zot_config::Config;

/// A new metrics registry for `cfg` (whose `extensions.metrics` is on).
#[cfg(feature = "metrics")]
fn make(cfg: &Config, max_repository_labels: usize) -> Arc<zot_metrics::Metrics> {
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
    Arc::new(zot_metrics::Metrics::new(info, max_repository_labels))
}

/// Metrics on or off as the configuration says, at start-up and at each
/// reload. The registry is made the first time metrics are on and kept
/// (turned off, it is no longer served, and requests and background tasks
/// no longer record into it, though the sampler goes on setting its
/// gauges; on again, it goes on counting), so its label cap is the one of
/// that first time.
pub struct MetricsSwitch {
    #[cfg(feature = "metrics")]
    recorder: Recorder,
    #[cfg(feature = "metrics")]
    made: Option<Arc<zot_metrics::Metrics>>,
    /// The stores the sampler measures (started with the registry).
    #[cfg(feature = "metrics")]
    stores: Vec<crate::lifecycle::Store>,
    /// The sync upstreams whose counters are read when scraped.
    #[cfg(feature = "metrics")]
    sync: crate::sync_ext::LiveUpstreams,
}

impl MetricsSwitch {
    pub fn new(
        recorder: Recorder,
        stores: &[crate::lifecycle::Store],
        sync: &crate::sync_ext::LiveUpstreams,
    ) -> MetricsSwitch {
        #[cfg(not(feature = "metrics"))]
        let _ = (recorder, stores, sync);
        MetricsSwitch {
            #[cfg(feature = "metrics")]
            recorder,
            #[cfg(feature = "metrics")]
            made: None,
            #[cfg(feature = "metrics")]
            stores: stores.to_vec(),
            #[cfg(feature = "metrics")]
            sync: sync.clone(),
        }
    }

    /// Serves and records metrics when `cfg` turns them on; else neither.
    #[cfg(feature = "metrics")]
    pub fn apply(&mut self, cfg: &Config, state: &zot_api::AppState) {
        let Some(settings) = cfg.extension("metrics").and_then(|e| e.metrics()) else {
            if self.recorder.metrics().is_some() {
                tracing::info!("metrics off");
            }
            state.set_metrics(None);
            self.recorder.set(None);
            return;
        };
        let metrics = match &self.made {
            Some(m) => m.clone(),
            None => {
                let m = make(cfg, settings.max_repository_labels);
                // Gauges no request feeds: uploads open, storage sizes.
                crate::metrics_sampler::start(m.clone(), &self.stores);
                // Cache hits, lock waits, sync runs: read when scraped.
                crate::metrics_sources::add(&m, &self.stores, &self.sync);
                self.made = Some(m.clone());
                m
            }
        };
        tracing::info!(path = %settings.path, "metrics served");
        state.set_metrics(Some(zot_api::MetricsEndpoint {
            path: settings.path,
            metrics: metrics.clone(),
        }));
        self.recorder.set(Some(metrics));
    }

    /// Without the feature: never on.
    #[cfg(not(feature = "metrics"))]
    pub fn apply(&mut self, _cfg: &Config, _state: &zot_api::AppState) {}

    /// The configuration reload counts and the hash in use.
    pub fn set_config_state(&self, succeeded: u64, failed: u64, hash: &str) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.made {
            m.config().set(succeeded, failed, hash);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (succeeded, failed, hash);
    }
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

#[cfg(feature = "metrics")]
impl TaskKind {
    fn metric(self) -> zot_metrics::Task {
        match self {
            TaskKind::Gc => zot_metrics::Task::Gc,
            TaskKind::Scrub => zot_metrics::Task::Scrub,
            TaskKind::UploadExpiry => zot_metrics::Task::UploadExpiry,
            #[cfg(feature = "sync")]
            TaskKind::Sync => zot_metrics::Task::Sync,
        }
    }
}

/// What background tasks report to the metrics: a no-op without the
/// feature or with `extensions.metrics` off. Every call is a few atomic
/// additions.
/// Clones share one switch, turned by [`MetricsSwitch`].
#[derive(Clone, Default)]
pub struct Recorder {
    #[cfg(feature = "metrics")]
    metrics: Arc<arc_swap::ArcSwapOption<zot_metrics::Metrics>>,
}

#[cfg(feature = "metrics")]
impl Recorder {
    fn set(&self, metrics: Option<Arc<zot_metrics::Metrics>>) {
        self.metrics.store(metrics);
    }

    fn with(&self, f: impl FnOnce(&zot_metrics::Metrics)) {
        if let Some(m) = &*self.metrics.load() {
            f(m);
        }
    }

    /// The events outboxes: events kept, events dropped at the bound.
    #[cfg(feature = "events")]
    pub fn set_events_outbox(&self, kept: u64, dropped: u64) {
        self.with(|m| m.set_events_outbox(kept, dropped));
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
        let kind = kind.metric();
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

    /// A round skipped: another instance held its lease.
    pub fn lease_skipped(&self, kind: TaskKind) {
        let kind = kind.metric();
        self.with(|m| m.background().lease_skipped(kind));
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

    /// The metrics, when on.
    pub fn metrics(&self) -> Option<Arc<zot_metrics::Metrics>> {
        self.metrics.load_full()
    }
}

/// Without the feature: records nothing.
#[cfg(not(feature = "metrics"))]
impl Recorder {
    #[cfg(feature = "events")]
    pub fn set_events_outbox(&self, _kept: u64, _dropped: u64) {}
    pub fn set_workers(&self, _n: usize) {}
    pub fn queued(&self) {}
    pub fn started(&self) {}
    pub fn finished(&self, _kind: TaskKind, _elapsed: std::time::Duration) {}
    pub fn gc_round(&self, _r: &zot_storage::GcReport, _error: bool, _e: std::time::Duration) {}
    pub fn uploads_expired(&self, _n: usize) {}
    pub fn lease_skipped(&self, _kind: TaskKind) {}
    pub fn scrub_round(&self, _blobs: usize, _manifests: usize, _problems: usize) {}
}

//! Series the metrics read from the rest of the process when scraped
//! (feature `metrics`; see `zot_metrics::Source`): per store, the
//! manifest-cache hits and misses and the lock waits the storage layer
//! counts; per sync upstream, its runs and fetches.
//!
//! Invariants:
//! - A scrape reads atomics only: [`zot_storage::Registry::stats`] and
//!   [`zot_sync::UpstreamCounters::counts`].
//! - Labels come from the configuration: `storageName` is a store's root
//!   directory (zot's label), `registry` an upstream's first URL (with
//!   ` #<n>`, its place in `registries`, when an earlier entry has the
//!   same first URL, so no two upstreams share a series).

use std::sync::Arc;

use zot_metrics::{Collected, Metrics, Source};
use zot_storage::{LOCK_WAIT_BUCKETS, LockKind, Registry};

use crate::lifecycle::Store;

/// Adds the storage series of `stores` and the sync series of `sync`.
pub fn add(metrics: &Metrics, stores: &[Store], sync: &crate::sync_ext::LiveUpstreams) {
    metrics.add_source(Box::new(StoreSource {
        stores: stores
            .iter()
            .map(|s| {
                (
                    s.settings.root_directory.display().to_string(),
                    s.registry.clone(),
                )
            })
            .collect(),
    }));
    #[cfg(feature = "sync")]
    metrics.add_source(Box::new(SyncSource { live: sync.clone() }));
    #[cfg(not(feature = "sync"))]
    let _ = sync;
}

struct StoreSource {
    /// Each store's root directory and registry.
    stores: Vec<(String, Arc<Registry>)>,
}

impl Source for StoreSource {
    fn collect(&self, out: &mut Collected) {
        let stats: Vec<_> = self.stores.iter().map(|(_, r)| r.stats()).collect();
        let hits = stats.iter().map(|s| s.manifest_cache_hits).sum();
        let misses = stats.iter().map(|s| s.manifest_cache_misses).sum();
        out.counter(
            "zot_manifest_cache_hits_total",
            "Manifest bodies served from the in-memory cache",
            &[],
            hits,
        );
        out.counter(
            "zot_manifest_cache_misses_total",
            "Manifest bodies read from storage (not in the in-memory cache)",
            &[],
            misses,
        );
        for ((root, _), s) in self.stores.iter().zip(&stats) {
            for (kind, waits) in LockKind::ALL.iter().zip(&s.lock_waits) {
                out.histogram(
                    "zot_storage_lock_latency_seconds",
                    "Time waited for a storage lock (0 when it was free)",
                    &[("storageName", root), ("lockType", kind.label())],
                    &LOCK_WAIT_BUCKETS,
                    &waits.buckets,
                    waits.sum,
                );
            }
        }
    }
}

#[cfg(feature = "sync")]
struct SyncSource {
    /// The upstreams running now (a reload replaces them, and their
    /// counters start again from zero).
    live: crate::sync_ext::LiveUpstreams,
}

/// Each upstream with its `registry` label.
#[cfg(feature = "sync")]
fn labelled(upstreams: &[Arc<zot_sync::Upstream>]) -> Vec<(String, &zot_sync::Upstream)> {
    let mut labelled: Vec<(String, &zot_sync::Upstream)> = Vec::new();
    for (i, up) in upstreams.iter().enumerate() {
        let label = if labelled.iter().any(|(_, u)| u.name == up.name) {
            format!("{} #{i}", up.name)
        } else {
            up.name.clone()
        };
        labelled.push((label, up));
    }
    labelled
}

#[cfg(feature = "sync")]
impl Source for SyncSource {
    fn collect(&self, out: &mut Collected) {
        let upstreams = self.live.load();
        for (label, up) in labelled(&upstreams) {
            let c = up.counters.counts();
            let l = [("registry", label.as_str())];
            for (name, help, value) in [
                (
                    "zot_sync_runs_total",
                    "Periodic sync runs ended, per upstream",
                    c.runs,
                ),
                (
                    "zot_sync_run_failures_total",
                    "Periodic sync runs that failed (catalog unreadable), per upstream",
                    c.run_failures,
                ),
                (
                    "zot_sync_repository_failures_total",
                    "Repositories whose sync failed within a run, per upstream",
                    c.repository_failures,
                ),
                (
                    "zot_sync_on_demand_fetches_total",
                    "On-demand fetches asked of an upstream",
                    c.on_demand,
                ),
                (
                    "zot_sync_on_demand_failures_total",
                    "On-demand fetches that failed, per upstream",
                    c.on_demand_failures,
                ),
            ] {
                out.counter(name, help, &l, value);
            }
        }
    }
}

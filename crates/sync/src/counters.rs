//! What an upstream did, counted for metrics (relaxed atomics, read by
//! the binary's metrics source), and the hooks through which a periodic
//! run reports its repositories to the scheduler's metrics.
//!
//! Invariants:
//! - A periodic run counts once when it ends: as a failure when its
//!   catalog could not be read (the run did nothing); each repository
//!   that failed within a run is counted apart.
//! - An on-demand fetch (a manifest, or referrers) counts once per
//!   upstream asked, background retries included; a failure is an error
//!   other than "not here" (not found, unauthorized, not signed, invalid),
//!   as the log says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The counters of one upstream.
#[derive(Debug, Default)]
pub struct UpstreamCounters {
    runs: AtomicU64,
    run_failures: AtomicU64,
    repository_failures: AtomicU64,
    on_demand: AtomicU64,
    on_demand_failures: AtomicU64,
}

/// The counters of one upstream, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Periodic runs ended.
    pub runs: u64,
    /// Of those, runs that failed (catalog unreadable).
    pub run_failures: u64,
    /// Repositories that failed within runs.
    pub repository_failures: u64,
    /// On-demand fetches asked of this upstream.
    pub on_demand: u64,
    /// Of those, fetches that failed.
    pub on_demand_failures: u64,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl UpstreamCounters {
    pub(crate) fn run(&self, failed: bool, failed_repositories: usize) {
        add(&self.runs, 1);
        add(&self.run_failures, u64::from(failed));
        add(&self.repository_failures, failed_repositories as u64);
    }

    pub(crate) fn on_demand(&self, failed: bool) {
        add(&self.on_demand, 1);
        add(&self.on_demand_failures, u64::from(failed));
    }

    pub fn counts(&self) -> UpstreamCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        UpstreamCounts {
            runs: l(&self.runs),
            run_failures: l(&self.run_failures),
            repository_failures: l(&self.repository_failures),
            on_demand: l(&self.on_demand),
            on_demand_failures: l(&self.on_demand_failures),
        }
    }
}

/// What a periodic run tells the scheduler's metrics about each
/// repository it syncs: waiting for a permit, holding one, done.
pub trait TaskHooks: Send + Sync {
    fn queued(&self) {}
    fn started(&self) {}
    fn finished(&self, _elapsed: Duration) {}
}

/// Hooks that record nothing.
pub struct NoHooks;

impl TaskHooks for NoHooks {}

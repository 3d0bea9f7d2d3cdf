//! Counters of the storage layer that the metrics extension reads: hits
//! and misses of the manifest-body cache, and how long callers waited for
//! the per-repository and per-digest locks.
//!
//! Invariants:
//! - Recording is relaxed atomic additions, nothing else: no lock, no
//!   allocation. A lock taken without waiting (its `try_` acquisition
//!   succeeded) is counted in the first bucket without reading a clock;
//!   only an acquisition that had to wait reads [`Instant::now`] twice.
//! - Counters only grow; [`StorageStats`] is a copy taken at one moment
//!   (fields read one by one, so a concurrent caller may show in one and
//!   not yet in another: the usual tolerance of lock-free metrics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bucket bounds (seconds) of lock waits: zot's
/// `zot_storage_lock_latency_seconds`.
pub const LOCK_WAIT_BUCKETS: [f64; 9] = [0.001, 0.01, 0.1, 1.0, 5.0, 10.0, 15.0, 30.0, 60.0];

/// The locks whose waits are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A repository's lock taken shared (blob placements): zot's `RLock`.
    RepoShared,
    /// A repository's lock taken exclusively (`index.json` writes, GC):
    /// zot's `RWLock`.
    RepoExclusive,
    /// The striped per-digest placement lock (ours).
    Digest,
}

impl LockKind {
    pub const ALL: [LockKind; 3] = [
        LockKind::RepoShared,
        LockKind::RepoExclusive,
        LockKind::Digest,
    ];

    /// The `lockType` label: zot's `RLock`/`RWLock`, and `digest`.
    pub fn label(self) -> &'static str {
        match self {
            LockKind::RepoShared => "RLock",
            LockKind::RepoExclusive => "RWLock",
            LockKind::Digest => "digest",
        }
    }
}

/// The waits for one kind of lock.
#[derive(Debug, Default)]
pub(crate) struct WaitHistogram {
    /// Acquisitions per bucket alone (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LOCK_WAIT_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl WaitHistogram {
    /// An acquisition that did not wait.
    pub(crate) fn immediate(&self) {
        self.buckets[0].fetch_add(1, Ordering::Relaxed);
    }

    /// An acquisition that waited since `since`.
    pub(crate) fn waited(&self, since: Instant) {
        let waited = since.elapsed();
        let secs = waited.as_secs_f64();
        let i = LOCK_WAIT_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LOCK_WAIT_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn snapshot_for_tests(&self) -> LockWaits {
        self.snapshot()
    }

    fn snapshot(&self) -> LockWaits {
        LockWaits {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// The lock-wait histograms of one registry.
#[derive(Debug, Default)]
pub(crate) struct LockStats {
    kinds: [WaitHistogram; LockKind::ALL.len()],
}

impl LockStats {
    pub(crate) fn of(&self, kind: LockKind) -> &WaitHistogram {
        &self.kinds[kind as usize]
    }
}

/// Waits for one kind of lock, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockWaits {
    /// Acquisitions per bucket of [`LOCK_WAIT_BUCKETS`] alone (not
    /// cumulative); the last is `+Inf`. Their sum is every acquisition.
    pub buckets: [u64; LOCK_WAIT_BUCKETS.len() + 1],
    /// The time waited, in all.
    pub sum: Duration,
}

/// What the storage layer of one registry counted, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Manifest bodies served from memory.
    pub manifest_cache_hits: u64,
    /// Manifest bodies read from the backend (then cached when small enough).
    pub manifest_cache_misses: u64,
    /// Per [`LockKind::ALL`], in that order.
    pub lock_waits: [LockWaits; LockKind::ALL.len()],
}

impl crate::Registry {
    /// What the storage layer counted so far (for metrics).
    pub fn stats(&self) -> StorageStats {
        let (hits, misses) = self.manifests.counts();
        StorageStats {
            manifest_cache_hits: hits,
            manifest_cache_misses: misses,
            lock_waits: std::array::from_fn(|i| self.lock_stats.kinds[i].snapshot()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_land_in_their_bucket() {
        let h = WaitHistogram::default();
        h.immediate();
        h.waited(Instant::now() - Duration::from_millis(50));
        h.waited(Instant::now() - Duration::from_secs(100));
        let s = h.snapshot();
        assert_eq!(s.buckets, [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert!(s.sum >= Duration::from_millis(100_050), "{:?}", s.sum);
    }
}

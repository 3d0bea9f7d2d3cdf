//! Per-repository locks: a readers-writer lock for each repository that
//! somebody is using right now, created on first use and dropped when its
//! last guard goes, so the table holds only repositories in use (a client
//! touching many names leaves nothing behind).
//!
//! Invariants:
//! - Exclusive: every write of a repository's `index.json`, and the
//!   removal of an empty repository by GC (which also sweeps its blobs).
//! - Shared: a blob placed into (or mounted into) the repository's layout.
//!   Placements of different blobs run together; none runs while GC
//!   decides the repository is empty and removes its layout, so a blob
//!   never lands in a folder that has just stopped being a layout.
//! - An entry leaves the table only when no guard and no waiter holds it:
//!   references are taken and checked under the table's mutex.
//! - Every acquisition is counted in [`crate::stats`]: one that had to
//!   wait with the time it waited, one that did not (its `try_` succeeded)
//!   without reading a clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use zot_oci::RepoName;

use crate::stats::{LockKind, LockStats};

type Table = HashMap<RepoName, Arc<RwLock<()>>>;

/// The lock table of one registry.
#[derive(Default, Clone)]
pub(crate) struct RepoLocks {
    table: Arc<Mutex<Table>>,
    stats: Arc<LockStats>,
}

/// Held while a repository's `index.json` is rewritten or the repository removed.
pub(crate) struct ExclusiveGuard {
    inner: Option<OwnedRwLockWriteGuard<()>>,
    _release: Release,
}

/// Held while a blob is placed into a repository's layout.
pub(crate) struct SharedGuard {
    inner: Option<OwnedRwLockReadGuard<()>>,
    _release: Release,
}

/// Prunes the entry when the last user of a repository's lock goes. Declared
/// after the lock guard in both guards, so it runs once that is released.
struct Release {
    table: Arc<Mutex<Table>>,
    repo: RepoName,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        // Only the table's own reference left: no guard, no waiter.
        if table
            .get(&self.repo)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            table.remove(&self.repo);
        }
    }
}

impl Drop for ExclusiveGuard {
    fn drop(&mut self) {
        self.inner.take();
    }
}

impl Drop for SharedGuard {
    fn drop(&mut self) {
        self.inner.take();
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

impl RepoLocks {
    fn entry(&self, repo: &RepoName) -> (Arc<RwLock<()>>, Release) {
        let lock = lock(&self.table).entry(repo.clone()).or_default().clone();
        let release = Release {
            table: self.table.clone(),
            repo: repo.clone(),
        };
        (lock, release)
    }

    /// A table counting its waits into `stats`.
    pub(crate) fn new(stats: Arc<LockStats>) -> RepoLocks {
        RepoLocks {
            table: Arc::default(),
            stats,
        }
    }

    /// Waits for sole use of `repo`.
    pub(crate) async fn exclusive(&self, repo: &RepoName) -> ExclusiveGuard {
        let (lock, release) = self.entry(repo);
        let waits = self.stats.of(LockKind::RepoExclusive);
        let inner = match lock.clone().try_write_owned() {
            Ok(guard) => {
                waits.immediate();
                guard
            }
            Err(_) => {
                let since = Instant::now();
                let guard = lock.write_owned().await;
                waits.waited(since);
                guard
            }
        };
        ExclusiveGuard {
            inner: Some(inner),
            _release: release,
        }
    }

    /// Waits for shared use of `repo` (no exclusive holder).
    pub(crate) async fn shared(&self, repo: &RepoName) -> SharedGuard {
        let (lock, release) = self.entry(repo);
        let waits = self.stats.of(LockKind::RepoShared);
        let inner = match lock.clone().try_read_owned() {
            Ok(guard) => {
                waits.immediate();
                guard
            }
            Err(_) => {
                let since = Instant::now();
                let guard = lock.read_owned().await;
                waits.waited(since);
                guard
            }
        };
        SharedGuard {
            inner: Some(inner),
            _release: release,
        }
    }

    /// Repositories with a lock in the table.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn repo(n: usize) -> RepoName {
        format!("r{n}").parse().unwrap()
    }

    #[tokio::test]
    async fn idle_locks_are_pruned() {
        let locks = RepoLocks::default();
        for n in 0..1000 {
            drop(locks.exclusive(&repo(n)).await);
            drop(locks.shared(&repo(n)).await);
        }
        assert_eq!(locks.len(), 0, "idle repository locks stay in the table");
        let a = locks.shared(&repo(1)).await;
        let b = locks.shared(&repo(1)).await;
        assert_eq!(locks.len(), 1);
        drop(a);
        assert_eq!(locks.len(), 1, "a lock still held was pruned");
        drop(b);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn exclusive_waits_for_shared_and_a_waiter_keeps_the_entry() {
        let locks = RepoLocks::default();
        let shared = locks.shared(&repo(1)).await;
        let also_shared = locks.shared(&repo(1)).await;
        let l = locks.clone();
        let writer = tokio::spawn(async move {
            let _g = l.exclusive(&repo(1)).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writer.is_finished(), "exclusive ran beside shared guards");
        drop(shared);
        drop(also_shared);
        // The waiting writer must get the same lock, not a fresh one.
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(locks.len(), 0);
        // Two shared guards taken at once, one exclusive that waited.
        let shared = locks.stats.of(LockKind::RepoShared);
        let exclusive = locks.stats.of(LockKind::RepoExclusive);
        let waited = |h: &crate::stats::WaitHistogram| h.snapshot_for_tests();
        assert_eq!(waited(shared).buckets.iter().sum::<u64>(), 2);
        assert_eq!(waited(shared).buckets[0], 2);
        let w = waited(exclusive);
        assert_eq!(w.buckets.iter().sum::<u64>(), 1);
        assert!(w.sum >= Duration::from_millis(50), "{w:?}");
    }
}

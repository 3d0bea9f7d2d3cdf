//! Start-up rebuilds committed many repositories at a time.
//!
//! Rebuilding the metadata of 10,000 layouts one write transaction each
//! spends most of its time in redb's commits: every commit copies the
//! B-tree pages from root to leaf of each table it touches. The layouts a
//! start-up synchronisation rebuilds are instead gathered into batches
//! (in name order, so neighbours share leaf pages) and each batch is
//! written in one transaction ([`zot_meta::MetaStore::replace_repos`]).
//!
//! Invariant: a repository's exclusive lock, taken before its layout was
//! read, is held until its batch is committed, so no write to it can land
//! between the read and the commit (and be overwritten by older rows).

use zot_meta::Change;
use zot_oci::RepoName;

use crate::error::Result;
use crate::locks::ExclusiveGuard;
use crate::registry::Registry;

/// Repositories per batch.
pub(crate) const BATCH_REPOS: usize = 256;
/// Changes per batch (a batch of large repositories commits sooner).
pub(crate) const BATCH_CHANGES: usize = 32 * 1024;

/// Rebuilt repositories waiting for their commit, with their locks.
#[derive(Default)]
pub(crate) struct RebuildBatch {
    items: Vec<(RepoName, Vec<Change>)>,
    guards: Vec<ExclusiveGuard>,
    changes: usize,
}

impl RebuildBatch {
    pub(crate) fn push(&mut self, repo: RepoName, guard: ExclusiveGuard, changes: Vec<Change>) {
        self.changes += changes.len();
        self.items.push((repo, changes));
        self.guards.push(guard);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= BATCH_REPOS || self.changes >= BATCH_CHANGES
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

impl Registry {
    /// Writes the batch in one transaction, then releases its locks.
    pub(crate) async fn commit_batch(&self, batch: &mut RebuildBatch) -> Result<()> {
        let RebuildBatch {
            mut items, guards, ..
        } = std::mem::take(batch);
        if items.is_empty() {
            return Ok(());
        }
        items.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let n = items.len();
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.replace_repos(&items))
            .await
            .map_err(std::io::Error::other)??;
        drop(guards);
        tracing::info!(repositories = n, "rebuilt metadata from the layouts");
        Ok(())
    }
}

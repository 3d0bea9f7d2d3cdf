//! The exclusion of one digest's placements and removals, across
//! instances (issue 9, point 3).
//!
//! In one process the digest lock does it: a placement (upload
//! completion, mount, dedupe placeholder) holds it until its metadata is
//! recorded, and GC decides and removes a blob under it, checking the
//! placements remembered in memory (`gc.rs`, `Lifecycle`). With several
//! instances on one bucket and one Redis (`storage.remoteCache`), neither
//! reaches the other instances, so [`Registry::lock_digest`] adds:
//!
//! - the digest's lease in Redis (`<keyprefix>:lease:digest:<digest>`, 10 s,
//!   renewed while held; `shared/lease.rs`), taken after the local lock by
//!   every placement and removal: a placement on one instance and a
//!   removal on another never interleave;
//! - a placement mark, `<keyprefix>:placed:<repo>@<digest>`, written under
//!   the lease by every placement that records a blob while GC is on
//!   (`gcDelay` tracked), expiring after `gcDelay`; GC reads it under the
//!   lease before it removes the blob, as it reads its own memory. Without
//!   it, GC on one instance would take a blob that another instance has
//!   just placed again over an old object (a re-push of an unreferenced
//!   blob, which writes nothing new) for an old one and remove it.
//!
//! Redis away: a placement or removal fails (`503`), as the shared upload
//! sessions do; GC keeps a blob whose mark it cannot read.

use crate::error::Result;
use crate::registry::Registry;
use crate::shared::lease::LeaseGuard;
use std::time::Duration;
use zot_meta::Change;
use zot_oci::{Digest, RepoName};

/// Time to live of a digest's lease (renewed by its holder every third).
pub(crate) const DIGEST_LEASE_TTL: Duration = Duration::from_secs(10);

/// A digest excluded: this process's lock, and the lease across instances
/// when the state is shared. Both are given up when it is dropped.
pub(crate) struct DigestGuard<'a> {
    _lease: Option<LeaseGuard>,
    _local: tokio::sync::MutexGuard<'a, ()>,
}

fn mark_key(repo: &RepoName, digest: &Digest) -> String {
    format!("placed:{repo}@{digest}")
}

impl Registry {
    /// Excludes other placements and removals of `digest`, in this process
    /// and (with shared state) on every instance.
    pub(crate) async fn lock_digest(&self, digest: &Digest) -> Result<DigestGuard<'_>> {
        let local = self.lock_digest_local(digest).await;
        let lease = match self.shared_uploads.get() {
            Some(sh) => Some(
                sh.digest_leases
                    .acquire(&format!("digest:{digest}"))
                    .await?,
            ),
            None => None,
        };
        Ok(DigestGuard {
            _lease: lease,
            _local: local,
        })
    }

    /// Marks the blobs `changes` add to `repo` as just placed, for GC on
    /// every instance (with shared state and GC on; called under the
    /// digest's guard, before the placement is acknowledged).
    pub(crate) async fn mark_placed(&self, repo: &RepoName, changes: &[Change]) -> Result<()> {
        let (Some(sh), Some(delay)) = (self.shared_uploads.get(), self.lifecycle.tracked()) else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        let mut any = false;
        for change in changes {
            if let Change::AddBlob(d) = change {
                pipe.cmd("SET")
                    .arg(sh.shared.key(&mark_key(repo, d)))
                    .arg(1)
                    .arg("PX")
                    .arg(delay.as_millis().max(1) as u64)
                    .ignore();
                any = true;
            }
        }
        if any {
            let () = pipe
                .query_async(&mut sh.shared.conn())
                .await
                .map_err(crate::shared::SharedError::from)?;
        }
        Ok(())
    }

    /// Whether another instance placed blob `digest` in `repo` within
    /// `gcDelay` (its mark is there). Call under the digest's guard.
    pub(crate) async fn placed_elsewhere(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let Some(sh) = self.shared_uploads.get() else {
            return Ok(false);
        };
        let n: i64 = redis::cmd("EXISTS")
            .arg(sh.shared.key(&mark_key(repo, digest)))
            .query_async(&mut sh.shared.conn())
            .await
            .map_err(crate::shared::SharedError::from)?;
        Ok(n > 0)
    }
}

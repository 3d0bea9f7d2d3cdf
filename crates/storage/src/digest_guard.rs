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
//!   (`gcDelay` tracked), expiring after `gcDelay`; GC checks it under the
//!   lease before it removes the blob (by the claim below), as it reads its
//!   own memory. Without
//!   it, GC on one instance would take a blob that another instance has
//!   just placed again over an old object (a re-push of an unreferenced
//!   blob, which writes nothing new) for an old one and remove it;
//! - the same mark written by every manifest push, for each blob and child
//!   manifest it references, in one pipelined request under the
//!   repository's lock and before the push checks they are present
//!   ([`Registry::mark_referenced`]): GC on another instance may have read
//!   `index.json` before the push lists its manifest, and the blob may be
//!   old and unreferenced until then (a client that found it with a
//!   `HEAD` does not upload it again);
//! - GC's removal claim: under the lease, GC does not merely read the mark
//!   but claims the key (`SET NX`, value `gc:<token>`) and removes the blob
//!   only when the claim succeeds (no mark), releasing the claim after the
//!   removal (compare-and-delete), still under the lease. A manifest push
//!   writes its marks with `SET ... GET`: either its mark came first (GC's
//!   claim fails, the blob stays) or GC's claim did (the push sees the
//!   claim, waits for the digest's lease, so for the removal to end, and
//!   only then checks the blob present: it is refused with
//!   `MANIFEST_BLOB_UNKNOWN` rather than listing a manifest whose blob is
//!   going). Nothing is added to a push's latency but the one pipelined
//!   request, unless it meets a removal in progress.
//!
//! The marks live `gcDelay`: a push spending longer than that between its
//! marks and its `index.json` write, or a GC round spending longer than
//! half of it between its read of `index.json` and a removal (GC stops
//! its sweep then; see `gc.rs`), would not be covered.
//!
//! Redis away: a placement, a manifest push or a removal fails (`503`),
//! as the shared upload sessions do; GC keeps a blob whose mark it cannot
//! read or claim.

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

/// How a removal claim's value begins (a mark's value is `1`).
const CLAIM_PREFIX: &str = "gc:";
/// How long a removal claim outlives a holder that could not release it:
/// longer than any removal (a server-side copy of moved content
/// included); meanwhile GC keeps the blob and a push referencing it waits
/// for the digest's lease once.
pub(crate) const CLAIM_TTL: Duration = Duration::from_secs(600);
/// Deletes the claim only if it still holds the token.
pub(crate) const RELEASE_CLAIM: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

/// GC's claim of one removal (`None` inside: no shared state).
pub(crate) struct RemovalClaim(Option<(String, String)>);

pub(crate) fn mark_key(repo: &RepoName, digest: &Digest) -> String {
    format!("placed:{repo}@{digest}")
}

/// A removal claim's value: `gc:<token>`.
pub(crate) fn claim_value(token: &str) -> String {
    format!("{CLAIM_PREFIX}{token}")
}

/// The lease a claim's holder keeps until its removals end: a push that
/// met the claim waits for it (`manifest_claims.rs`; a blob's removal
/// holds no such lease, only the digest's).
pub(crate) fn removal_lease(token: &str) -> String {
    format!("removal:{token}")
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

    /// Marks the blobs (and child manifests) a manifest push references as
    /// just referenced, for GC on every instance: one pipelined request of
    /// `SET ... PX <gcDelay> GET`. Where GC's removal claim was found, waits
    /// for the digest's lease and the claim's removal lease (the removal in
    /// progress ends), so that the presence check that follows sees its
    /// outcome. A push passes its own digest too: retention removing it
    /// elsewhere claims it the same way (`manifest_claims.rs`). In the same
    /// request, an index marks each child as named by it (`named:`, with
    /// shared state even when GC is off; `manifest_delete.rs`), and waits
    /// the same way for an explicit delete of a child in progress. Call with
    /// the repository's lock held, before that check (with shared state;
    /// otherwise nothing).
    pub(crate) async fn mark_referenced<'d>(
        &self,
        repo: &RepoName,
        (own, children): (&'d Digest, &[&'d Digest]),
        blobs: impl Iterator<Item = &'d Digest>,
    ) -> Result<()> {
        let Some(sh) = self.shared_uploads.get() else {
            return Ok(());
        };
        let mut digests: Vec<&Digest> = Vec::new();
        let mut pipe = redis::pipe();
        if let Some(delay) = self.lifecycle.tracked() {
            digests.extend(blobs);
            digests.extend(children);
            digests.push(own);
            for d in &digests {
                pipe.cmd("SET")
                    .arg(sh.shared.key(&mark_key(repo, d)))
                    .arg(1)
                    .arg("PX")
                    .arg(delay.as_millis().max(1) as u64)
                    .arg("GET");
            }
        }
        for child in children {
            pipe.cmd("SET")
                .arg(
                    sh.shared
                        .key(&crate::manifest_delete::named_key(repo, child)),
                )
                .arg(own.to_string())
                .arg("PX")
                .arg(crate::manifest_delete::NAMED_TTL.as_millis() as u64)
                .arg("GET");
            digests.push(child);
        }
        if digests.is_empty() {
            return Ok(());
        }
        let before: Vec<Option<String>> = pipe
            .query_async(&mut sh.shared.conn())
            .await
            .map_err(crate::shared::SharedError::from)?;
        for (d, old) in digests.into_iter().zip(before) {
            if let Some(token) = old.as_deref().and_then(|v| v.strip_prefix(CLAIM_PREFIX)) {
                tracing::debug!(%repo, digest = %d, "manifest push: waiting for a removal in progress");
                drop(self.lock_digest(d).await?);
                sh.digest_leases
                    .wait_released(&removal_lease(token))
                    .await?;
            }
        }
        Ok(())
    }

    /// Claims the removal of blob `digest` from `repo`: `None` when another
    /// instance placed it or a manifest push referenced it within
    /// `gcDelay` (its mark is there; keep it). Call under the digest's
    /// guard, just before the removal, and release the claim after it
    /// ([`Registry::release_removal`]) while still holding the guard.
    pub(crate) async fn claim_removal(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<RemovalClaim>> {
        let Some(sh) = self.shared_uploads.get() else {
            return Ok(Some(RemovalClaim(None)));
        };
        let key = sh.shared.key(&mark_key(repo, digest));
        let token = claim_value(&uuid::Uuid::new_v4().simple().to_string());
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(CLAIM_TTL.as_millis() as u64)
            .query_async(&mut sh.shared.conn())
            .await
            .map_err(crate::shared::SharedError::from)?;
        Ok(set.map(|_| RemovalClaim(Some((key, token)))))
    }

    /// Gives up a removal claim (only if still ours: a push's mark that
    /// replaced it stays). A failure is logged: the claim then expires.
    pub(crate) async fn release_removal(&self, claim: RemovalClaim) {
        let (Some(sh), Some((key, token))) = (self.shared_uploads.get(), claim.0) else {
            return;
        };
        let released: std::result::Result<i64, _> = redis::cmd("EVAL")
            .arg(RELEASE_CLAIM)
            .arg(1)
            .arg(&key)
            .arg(&token)
            .query_async(&mut sh.shared.conn())
            .await;
        if let Err(e) = released {
            tracing::warn!(key, error = %e, "gc: releasing a removal claim (it expires by itself)");
        }
    }
}

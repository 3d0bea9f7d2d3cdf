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
//!   manifest it references, in one script call under the
//!   repository's lock and before the push checks they are present
//!   ([`Registry::mark_referenced`]): GC on another instance may have read
//!   `index.json` before the push lists its manifest, and the blob may be
//!   old and unreferenced until then (a client that found it with a
//!   `HEAD` does not upload it again);
//! - GC's removal claim: under the lease, GC does not merely read the mark
//!   but claims the key (`SET NX`, value `gc:<token>`) and removes the blob
//!   only when the claim succeeds (no mark), releasing the claim after the
//!   removal (compare-and-delete), still under the lease. A manifest push
//!   writes its marks with one script that answers each key's value
//!   before and never overwrites a claim (so a command sent again after a
//!   dropped connection answers the same): either its mark came first (GC's
//!   claim fails, the blob stays) or GC's claim did (the push sees the
//!   claim, waits for the digest's lease, so for the removal to end, and
//!   only then checks the blob present: it is refused with
//!   `MANIFEST_BLOB_UNKNOWN` rather than listing a manifest whose blob is
//!   going; a removal that failed and kept the blob is marked again after
//!   the wait). Nothing is added to a push's latency but the one script
//!   call, unless it meets a removal in progress.
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
/// A manifest push's marks (`KEYS`: the marks; `ARGV`: for each, the
/// value to set and its lifetime in ms): each key holding a removal claim
/// is left as it is, every other one is set; answers each key's value
/// before. One script, so a
/// command sent again (after a dropped connection, or a cluster's refusal
/// of part of a pipeline during a slot migration) answers the same: a
/// claim is never overwritten, so it cannot be missed by a second run.
const MARK_SCRIPT: &str = "local out = {} \
     for i, k in ipairs(KEYS) do \
       local v = redis.call('GET', k) \
       if v and string.sub(v, 1, 3) == 'gc:' then out[i] = v \
       else redis.call('SET', k, ARGV[2 * i - 1], 'PX', ARGV[2 * i]); out[i] = v or false end \
     end \
     return out";
/// Rounds of marking at most for one push: each round after the first
/// follows a removal of one of its digests (GC claims again only in a new
/// round); past them the presence check decides.
const MARK_ROUNDS: usize = 3;
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
    /// just referenced, for GC on every instance: one script call
    /// ([`MARK_SCRIPT`], each mark set for `gcDelay` unless it holds a
    /// claim). Where GC's removal claim was found, waits
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
        // (the digest, its key, the value and lifetime in ms to set)
        let mut marks: Vec<(&Digest, String, String, u64)> = Vec::new();
        if let Some(delay) = self.lifecycle.tracked() {
            let ttl = delay.as_millis().max(1) as u64;
            for d in blobs.chain(children.iter().copied()).chain([own]) {
                marks.push((d, sh.shared.key(&mark_key(repo, d)), "1".to_owned(), ttl));
            }
        }
        for &child in children {
            let key = sh
                .shared
                .key(&crate::manifest_delete::named_key(repo, child));
            let ttl = crate::manifest_delete::NAMED_TTL.as_millis() as u64;
            marks.push((child, key, own.to_string(), ttl));
        }
        // Marks again after waiting for a removal: it may have failed and
        // kept the manifest or blob, which then needs its mark like any
        // other.
        for _ in 0..MARK_ROUNDS {
            if marks.is_empty() {
                break;
            }
            let mut script = redis::cmd("EVAL");
            script.arg(MARK_SCRIPT).arg(marks.len());
            for (_, key, _, _) in &marks {
                script.arg(key);
            }
            for (_, _, value, ttl) in &marks {
                script.arg(value).arg(*ttl);
            }
            let before: Vec<Option<String>> = script
                .query_async(&mut sh.shared.conn())
                .await
                .map_err(crate::shared::SharedError::from)?;
            let mut claimed = Vec::new();
            for (mark, old) in marks.into_iter().zip(before) {
                if let Some(token) = old.as_deref().and_then(|v| v.strip_prefix(CLAIM_PREFIX)) {
                    tracing::debug!(%repo, digest = %mark.0, "manifest push: waiting for a removal in progress");
                    drop(self.lock_digest(mark.0).await?);
                    sh.digest_leases
                        .wait_released(&removal_lease(token))
                        .await?;
                    claimed.push(mark);
                }
            }
            marks = claimed;
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

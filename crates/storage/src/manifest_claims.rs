//! Retention's claims on the manifests it removes, across instances
//! (issue 9, point 4).
//!
//! A GC round decides which untagged manifests and orphan referrers to
//! remove on the `index.json` it read. Meanwhile another instance may push
//! an index naming one of them as a child, or push one of them again by
//! tag. The conditional write of `index.json` does not help: on a conflict
//! it re-applies this round's removals to the newer index
//! ([`crate::index::LayoutIndex::rebase`]), so the index pushed elsewhere
//! would name a child that is gone, or the tag pushed elsewhere would go
//! with its manifest. Re-deciding on the conflict would not be enough
//! either: a push that checked the child present before the round's write
//! lists its index after it (its own write rebases), while the round
//! removes the file.
//!
//! So retention claims each manifest's placement mark before removing it,
//! as the blob sweep does (`digest_guard.rs`): every manifest push writes
//! the mark `placed:<repo>@<digest>` (`SET ... PX <gcDelay> GET`) for its
//! blobs, its child manifests and itself, before it checks them present.
//!
//! - The round takes one lease, `removal:<token>`, then claims every mark
//!   in one pipelined request (`SET NX`, value `gc:<token>`). A manifest
//!   whose mark is there (pushed or named within `gcDelay`) is kept, and
//!   the decision is made again with it kept (its children and referrers
//!   stay too), until every manifest left to remove is claimed.
//! - The claims and the lease are held until `index.json` is written and
//!   the files are removed, then released (claims by compare-and-delete).
//!   A push that finds a claim in its `SET ... GET` waits for the digest's
//!   lease and then for `removal:<token>` to be released, and only then
//!   checks what it names: it finds the manifest gone and answers
//!   `MANIFEST_BLOB_UNKNOWN` (or, pushing it again, writes it anew).
//! - The round claims only within half of `gcDelay` after its read of
//!   `index.json` (the marks live `gcDelay`); later, it removes no
//!   manifest this round. A round whose lease was lost removes no file.
//!
//! Cost: two Redis round trips per round that removes manifests (the lease
//! and the pipelined claims), and the release; nothing per push.

use crate::error::Result;
use crate::registry::Registry;
use crate::shared::lease::LeaseGuard;
use std::collections::{HashMap, HashSet};
use zot_oci::{Digest, RepoName};

/// The claims of one round (empty without shared state).
#[derive(Default)]
pub(crate) struct ManifestClaims {
    /// `removal:<token>`, taken with the first claim.
    lease: Option<LeaseGuard>,
    token: String,
    /// Claimed marks: digest and key.
    claimed: HashMap<Digest, String>,
}

impl ManifestClaims {
    /// Whether the round's lease was lost: its claims may be stale.
    pub(crate) fn lost(&self) -> bool {
        self.lease.as_ref().is_some_and(LeaseGuard::is_lost)
    }
}

impl Registry {
    /// Claims the marks of `digests` of `repo` not claimed yet (see the
    /// module doc); returns those whose mark was there (keep them). Without
    /// shared state, claims nothing and refuses nothing.
    pub(crate) async fn claim_manifests(
        &self,
        repo: &RepoName,
        claims: &mut ManifestClaims,
        digests: &HashSet<Digest>,
    ) -> Result<Vec<Digest>> {
        let Some(sh) = self.shared_uploads.get() else {
            return Ok(Vec::new());
        };
        let todo: Vec<&Digest> = digests
            .iter()
            .filter(|d| !claims.claimed.contains_key(*d))
            .collect();
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        if claims.lease.is_none() {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let lease = sh
                .digest_leases
                .acquire(&crate::digest_guard::removal_lease(&token))
                .await?;
            claims.token = token;
            claims.lease = Some(lease);
        }
        let value = crate::digest_guard::claim_value(&claims.token);
        let keys: Vec<String> = todo
            .iter()
            .map(|d| sh.shared.key(&crate::digest_guard::mark_key(repo, d)))
            .collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("SET")
                .arg(key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(crate::digest_guard::CLAIM_TTL.as_millis() as u64);
        }
        let set: Vec<Option<String>> = pipe
            .query_async(&mut sh.shared.conn())
            .await
            .map_err(crate::shared::SharedError::from)?;
        let mut refused = Vec::new();
        for ((d, key), set) in todo.into_iter().zip(keys).zip(set) {
            match set {
                Some(_) => {
                    claims.claimed.insert(d.clone(), key);
                }
                None => refused.push(d.clone()),
            }
        }
        Ok(refused)
    }

    /// Gives up the claims on manifests no longer in `keep` (the decision
    /// made again kept them), or all of them and the round's lease with
    /// `keep` `None`. A failure is logged: the claims expire by themselves.
    pub(crate) async fn release_claims(
        &self,
        claims: &mut ManifestClaims,
        keep: Option<&HashSet<Digest>>,
    ) {
        let Some(sh) = self.shared_uploads.get() else {
            return;
        };
        let value = crate::digest_guard::claim_value(&claims.token);
        let mut pipe = redis::pipe();
        let mut any = false;
        claims.claimed.retain(|d, key| {
            if keep.is_some_and(|k| k.contains(d)) {
                return true;
            }
            pipe.cmd("EVAL")
                .arg(crate::digest_guard::RELEASE_CLAIM)
                .arg(1)
                .arg(key.as_str())
                .arg(&value)
                .ignore();
            any = true;
            false
        });
        if any && let Err(e) = pipe.query_async::<()>(&mut sh.shared.conn()).await {
            tracing::warn!(error = %e, "gc: releasing removal claims (they expire by themselves)");
        }
        if keep.is_none()
            && let Some(lease) = claims.lease.take()
            && let Err(e) = lease.release().await
        {
            tracing::warn!(error = %e, "gc: releasing the removal lease (it expires by itself)");
        }
    }
}

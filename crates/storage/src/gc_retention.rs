//! What a GC round removes per the retention policy (`retention.rs`):
//! tags, then untagged manifests and referrers whose subject is gone,
//! decided on the `index.json` the round read.
//!
//! With several instances (shared state), a manifest to remove is first
//! claimed (`manifest_claims.rs`): one that another instance's push has
//! named since (as a child, or pushed again) is kept, and the decision
//! made again with it kept, so its children and referrers stay too. The
//! claims are held until the round's removals end. A round that took
//! longer than half of `gcDelay` since its read of `index.json` removes
//! no manifest (the marks that tell of pushes live `gcDelay`), nor one
//! that cannot reach Redis (counted as a problem).

use crate::gc::{GcOptions, GcReport, Listed};
use crate::manifest_claims::ManifestClaims;
use crate::registry::Registry;
use crate::retention::{TagTimes, tags_to_remove};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use zot_oci::{Digest, RepoName};

/// The removals of one round, and the claims held for them.
pub(crate) struct Removals {
    pub(crate) tags: HashSet<String>,
    pub(crate) manifests: HashSet<Digest>,
    pub(crate) claims: ManifestClaims,
}

impl Registry {
    /// Decides the round's removals on `listed` (read at `read_at`; `now`
    /// in seconds since the epoch), claiming the manifests with shared
    /// state (not in a dry run).
    pub(crate) async fn retention_removals(
        &self,
        repo: &RepoName,
        listed: &HashMap<Digest, Listed>,
        options: &GcOptions,
        (now, read_at): (u64, Instant),
        report: &mut GcReport,
    ) -> Removals {
        let retention = &options.retention;
        let Some(policy) = retention.policy_for(repo.as_str()) else {
            return Removals {
                tags: HashSet::new(),
                manifests: HashSet::new(),
                claims: ManifestClaims::default(),
            };
        };
        let tag_times: Vec<TagTimes> = listed
            .values()
            .flat_map(|l| {
                l.tags.iter().map(|t| TagTimes {
                    tag: t.clone(),
                    times: l.times,
                })
            })
            .collect();
        let tags: HashSet<String> = tags_to_remove(policy, &tag_times, now)
            .into_iter()
            .collect();
        let decide = |kept: &HashSet<Digest>| {
            manifests_to_remove(
                listed,
                &tags,
                kept,
                (policy.delete_untagged, policy.delete_referrers),
                now.saturating_sub(retention.delay.as_secs()),
            )
        };
        let mut kept = HashSet::new();
        let mut manifests = decide(&kept);
        let mut claims = ManifestClaims::default();
        if retention.dry_run || manifests.is_empty() || !self.uploads_shared() {
            return Removals {
                tags,
                manifests,
                claims,
            };
        }
        if read_at.elapsed() > options.delay / 2 {
            tracing::info!(%repo, "gc: round longer than half of gcDelay; no manifest removed this round");
            manifests.clear();
        }
        while !manifests.is_empty() {
            match self.claim_manifests(repo, &mut claims, &manifests).await {
                Ok(refused) if refused.is_empty() => break,
                Ok(refused) => {
                    for d in &refused {
                        tracing::info!(%repo, digest = %d, "gc: manifest named by a push elsewhere meanwhile; kept");
                    }
                    kept.extend(refused);
                    manifests = decide(&kept);
                    self.release_claims(&mut claims, Some(&manifests)).await;
                }
                Err(e) => {
                    tracing::warn!(%repo, error = %e, "gc: cannot claim manifests for removal; none removed this round");
                    report.problems += 1;
                    manifests.clear();
                }
            }
        }
        Removals {
            tags,
            manifests,
            claims,
        }
    }
}

/// The manifests retention removes: untagged ones (no tag left, not a child
/// of a kept index, no subject) and referrers whose subject is gone, once
/// pushed before `cutoff`, but none of `kept`; repeated until nothing
/// changes, so the children of a removed index and the referrers of a
/// removed subject follow. `delete`: (untagged, referrers).
fn manifests_to_remove(
    listed: &HashMap<Digest, Listed>,
    removed_tags: &HashSet<String>,
    kept: &HashSet<Digest>,
    (delete_untagged, delete_referrers): (bool, bool),
    cutoff: u64,
) -> HashSet<Digest> {
    let mut removed = HashSet::new();
    loop {
        let remaining = || {
            listed
                .values()
                .filter(|l| !removed.contains(&l.desc.digest))
        };
        let children: HashSet<&Digest> = remaining()
            .filter_map(|l| l.parsed.as_ref())
            .flat_map(|p| p.manifests.iter().map(|m| &m.digest))
            .collect();
        let mut more = Vec::new();
        for l in remaining() {
            let d = &l.desc.digest;
            let tagged = l.tags.iter().any(|t| !removed_tags.contains(t));
            if tagged
                || kept.contains(d)
                || children.contains(d)
                || l.times.pushed.unwrap_or(0) > cutoff
            {
                continue;
            }
            let subject = l.parsed.as_ref().and_then(|p| p.subject.as_ref());
            let remove = match subject {
                Some(s) => {
                    delete_referrers
                        && (removed.contains(&s.digest) || !listed.contains_key(&s.digest))
                }
                None => delete_untagged,
            };
            if remove {
                more.push(d.clone());
            }
        }
        if more.is_empty() {
            return removed;
        }
        removed.extend(more);
    }
}

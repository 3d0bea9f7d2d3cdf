//! Referrers follow their subjects, also when the subject was converted.
//!
//! Invariants:
//! - Referrers (the referrers API, or the tag schema) of a subject, and
//!   theirs to a bounded depth, are copied when the local repository lacks
//!   them.
//! - A Docker image converted to OCI is stored under another digest than
//!   upstream's, so its referrers upstream name a digest that is not here.
//!   They are re-pointed: each one's `subject` is set to the stored
//!   image's descriptor (and the referrer stored under its new digest), so
//!   the referrers API of the stored digest lists them; their referrers in
//!   turn are re-pointed at the re-pointed referrer. Signatures that sign
//!   the upstream digest (cosign's payload names it) keep naming it: they
//!   verify the upstream image, not the converted one. Legacy cosign tags
//!   `sha256-<hex>.sig/.sbom/.att` are renamed after the stored digest.
//! - A re-pointed referrer is a pure function of the upstream bytes and the
//!   subject, so a later run finds it present by digest.

use std::collections::{HashSet, VecDeque};

use serde_json::Value;
use zot_client::Manifest;
use zot_oci::{Digest, Reference, Tag};

use super::{MAX_REFERRER_DEPTH, Upstream};
use crate::SyncError;
use crate::copy::{CopyStats, Fetched, RepoPair};

/// The descriptor a re-pointed referrer names as its subject.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Subject {
    /// The stored image of `f`, when conversion changed its digest.
    pub(crate) fn converted(f: &Fetched) -> Option<Subject> {
        (f.manifest.digest != f.upstream_digest).then(|| Subject::of(&f.manifest))
    }

    fn of(m: &Manifest) -> Subject {
        Subject {
            media_type: m.media_type.clone(),
            digest: m.digest.clone(),
            size: m.bytes.len() as u64,
        }
    }
}

/// `m` with its `subject` set to `to` (keys re-serialised sorted, as a
/// conversion does).
pub(crate) fn repoint(m: &Manifest, to: &Subject) -> Result<Manifest, SyncError> {
    let mut v: Value = serde_json::from_slice(&m.bytes)
        .map_err(|e| SyncError::Invalid(format!("referrer {}: {e}", m.digest)))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(SyncError::Invalid(format!(
            "referrer {}: not an object",
            m.digest
        )));
    };
    obj.insert(
        "subject".into(),
        serde_json::json!({
            "mediaType": to.media_type,
            "digest": to.digest.to_string(),
            "size": to.size,
        }),
    );
    let bytes = serde_json::to_vec(&v).map_err(|e| SyncError::Invalid(e.to_string()))?;
    Ok(Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes: bytes.into(),
        media_type: m.media_type.clone(),
    })
}

impl Upstream {
    /// Referrers of the upstream `subject` (and theirs, to a bounded
    /// depth) that the local repository lacks; re-pointed at `local` when
    /// the subject was stored under another digest.
    pub(super) async fn copy_referrers(
        &self,
        pair: &RepoPair<'_>,
        subject: &Digest,
        local: Option<Subject>,
    ) -> Result<CopyStats, SyncError> {
        let mut stats = CopyStats::default();
        let mut queue = VecDeque::from([(subject.clone(), local, 0usize)]);
        let mut seen = HashSet::new();
        while let Some((digest, local, depth)) = queue.pop_front() {
            if depth >= MAX_REFERRER_DEPTH || !seen.insert(digest.clone()) {
                continue;
            }
            for desc in self.client.referrers(pair.upstream, &digest).await? {
                let next = match &local {
                    None => {
                        if !pair.has_manifest(&desc.digest) {
                            stats += pair
                                .copy_reference(&Reference::Digest(desc.digest.clone()))
                                .await?
                                .1;
                        }
                        None
                    }
                    Some(to) => {
                        let f = pair.fetch(&desc.digest.to_string()).await?;
                        let manifest = repoint(&f.manifest, to)?;
                        let next = Subject::of(&manifest);
                        if !pair.has_manifest(&manifest.digest) {
                            let reference = Reference::Digest(manifest.digest.clone());
                            let f = Fetched { manifest, ..f };
                            stats += pair.store(&f, reference).await?;
                        }
                        Some(next)
                    }
                };
                queue.push_back((desc.digest, next, depth + 1));
            }
        }
        Ok(stats)
    }

    /// Copies the legacy cosign tag `from` upstream as `to` here.
    pub(super) async fn copy_legacy_tag(
        &self,
        pair: &RepoPair<'_>,
        from: &Tag,
        to: &Tag,
    ) -> Result<CopyStats, SyncError> {
        let f = pair.fetch(from.as_str()).await?;
        if pair.local_tag(to).as_ref() == Some(&f.manifest.digest) {
            return Ok(CopyStats::default());
        }
        pair.store(&f, Reference::Tag(to.clone())).await
    }
}

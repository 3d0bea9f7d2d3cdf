//! An explicit manifest delete by digest, and the indexes that name the
//! manifest (issue 9, point 4).
//!
//! As zot does, a manifest that an index of its repository names as a child
//! is not deleted: `405 DENIED` ([`StorageError::ManifestReferenced`]);
//! delete the index first. Checked on the `index.json` the delete read
//! (every listed index is parsed; a child is listed too, since a push by
//! digest lists it).
//!
//! Across instances that check alone would race with an index pushed
//! elsewhere: the push checks the child present, the delete (which read
//! `index.json` before the push wrote it) removes the child, and the
//! conditional write of `index.json` merges the removal into the pushed
//! index, which then names a missing child. So, with shared state:
//!
//! - an index push writes `named:<repo>@<child>` = its own digest for each
//!   child (for [`NAMED_TTL`], unless a claim is there), in the script
//!   call that writes its placement marks, before it checks the children;
//! - the delete, under the manifest's digest lease and before writing
//!   `index.json`, claims that key (`SET gc:<token> NX GET`). A value there
//!   means an index naming it was pushed (or is being pushed) within
//!   [`NAMED_TTL`]: refused as above. Claimed, a push that comes later
//!   finds the claim, waits for the digest lease (held until the removal
//!   and its metadata are done), then finds the child gone:
//!   `MANIFEST_BLOB_UNKNOWN`. The claim is released by compare-and-delete;
//! - deleting an index removes the marks it wrote for its children
//!   (compare-and-delete on its digest), so its children can be deleted at
//!   once; only a failed index push, or one removed by retention, leaves
//!   its children refused for up to [`NAMED_TTL`].
//!
//! The manifest pushed again itself (by tag, say) through B while A
//! deletes it: B found its file present, then A wrote `index.json`, B
//! listed it again over that (its conditional write merges), A removed
//! the file. No claim helps (the push's mark on its own digest cannot tell
//! a push in flight from one an hour ago); instead each side looks again
//! after its `index.json` write. B, when it had found the file, checks it
//! again after its write ([`Registry::restore_deleted`], one more `HEAD`
//! for a push of a stored manifest with shared state); A, after removing
//! the file, reads `index.json` again and writes the file back if the
//! manifest is listed. Either B's write came after A's re-read, so after
//! A's removal and before B's check, or A's re-read sees it: the manifest
//! stays, as if deleted first and pushed after.
//!
//! Cost: no new round trip for a push (its marks' request holds one more
//! `SET` per child; with GC off, an index push makes that one request);
//! two or three per delete.

use crate::digest_guard::{CLAIM_TTL, RELEASE_CLAIM, claim_value};
use crate::error::{Result, StorageError};
use crate::index::LayoutIndex;
use crate::registry::Registry;
use std::time::Duration;
use zot_oci::{Digest, ManifestKind, ParsedManifest, RepoName};

/// How long an index push's mark on a child lives: longer than a push takes
/// between its marks and its `index.json` write.
pub(crate) const NAMED_TTL: Duration = Duration::from_secs(300);

pub(crate) fn named_key(repo: &RepoName, child: &Digest) -> String {
    format!("named:{repo}@{child}")
}

/// A delete's claim on a manifest's `named:` key (`None` inside: no shared
/// state).
pub(crate) struct DeleteClaim(Option<(String, String)>);

impl Registry {
    /// The first index listed in `index` that names `digest` as a child.
    /// The indexes not in the manifest cache are read in batches.
    pub(crate) async fn listed_parent(
        &self,
        repo: &RepoName,
        index: &LayoutIndex,
        digest: &Digest,
    ) -> Result<Option<Digest>> {
        let names = |body: &[u8], media_type: &str| {
            ParsedManifest::parse(body, Some(media_type), true)
                .is_ok_and(|p| p.manifests.iter().any(|m| m.digest == *digest))
        };
        let mut unread = Vec::new();
        for (desc, _) in index.descriptors() {
            let is_index =
                ManifestKind::from_media_type(&desc.media_type).is_some_and(ManifestKind::is_index);
            if !is_index || desc.digest == *digest {
                continue;
            }
            match self.manifests.get(&desc.digest) {
                Some(body) if names(&body, &desc.media_type) => return Ok(Some(desc.digest)),
                Some(_) => {}
                None => unread.push(desc),
            }
        }
        while !unread.is_empty() {
            let digests = unread.iter().map(|d| d.digest.clone()).collect();
            let mut read = self.read_documents(repo, digests).await;
            let mut left = Vec::new();
            for desc in unread {
                match read.remove(&desc.digest) {
                    Some(Ok(body)) if names(&body, &desc.media_type) => {
                        return Ok(Some(desc.digest));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::FileTooLarge => {}
                    Some(Err(e)) => return Err(e.into()),
                    // Past the batch's memory budget: the next batch.
                    None => left.push(desc),
                }
            }
            unread = left;
        }
        Ok(None)
    }

    /// Writes the manifest `digest` (`body`) again if a delete removed its
    /// file after it was found present (with shared state; see the module
    /// doc).
    pub(crate) async fn restore_deleted(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: &[u8],
    ) -> Result<()> {
        if !self.uploads_shared() {
            return Ok(());
        }
        let key = crate::paths::blob(repo, digest);
        if self.backend.size(&key).await? != Some(body.len() as u64) {
            tracing::info!(%repo, %digest, "manifest deleted elsewhere while pushed again here: written again");
            self.backend.write_atomic(&key, body).await?;
        }
        Ok(())
    }

    /// Claims the delete of manifest `digest` against index pushes on other
    /// instances (see the module doc): refused when one named it within
    /// [`NAMED_TTL`]. Call under the digest's guard, before writing
    /// `index.json`; release with [`Registry::release_delete`].
    pub(crate) async fn claim_delete(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<DeleteClaim> {
        let Some(sh) = self.shared_uploads.get() else {
            return Ok(DeleteClaim(None));
        };
        let key = sh.shared.key(&named_key(repo, digest));
        let value = claim_value(&uuid::Uuid::new_v4().simple().to_string());
        let before: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(CLAIM_TTL.as_millis() as u64)
            .query_async(&mut sh.shared.conn())
            .await
            .map_err(crate::shared::SharedError::from)?;
        match before {
            None => Ok(DeleteClaim(Some((key, value)))),
            Some(parent) => Err(StorageError::ManifestReferenced {
                digest: digest.clone(),
                index: parent.parse().ok(),
            }),
        }
    }

    /// Gives up a delete's claim, and the marks the deleted manifest (an
    /// index) wrote for `children`. A failure is logged: they expire.
    pub(crate) async fn release_delete(
        &self,
        repo: &RepoName,
        (claim, deleted): (DeleteClaim, &Digest),
        children: &[Digest],
    ) {
        let (Some(sh), Some((key, value))) = (self.shared_uploads.get(), claim.0) else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(RELEASE_CLAIM)
            .arg(1)
            .arg(&key)
            .arg(&value)
            .ignore();
        for child in children {
            pipe.cmd("EVAL")
                .arg(RELEASE_CLAIM)
                .arg(1)
                .arg(sh.shared.key(&named_key(repo, child)))
                .arg(deleted.to_string())
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut sh.shared.conn()).await {
            tracing::warn!(%repo, error = %e, "manifest delete: releasing its marks (they expire by themselves)");
        }
    }
}

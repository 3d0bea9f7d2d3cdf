//! Dedupe on a store without hard links (S3), as zot does it: a digest's
//! content is stored once, in the repository the dedupe map names (its
//! *origin*, `zot_meta` `dedupe.rs`); every other repository holding the
//! digest has a zero-byte *placeholder* at `blobs/<alg>/<hex>` of its
//! layout. With dedupe off, a placement or mount is a server-side copy.
//!
//! Invariants:
//! - A placeholder is a zero-byte object whose digest is not the empty
//!   content's (`sha256:e3b0c442…` / the SHA-512 one): the real empty blob
//!   is zero bytes too, and is always content, never shared or resolved.
//! - A placeholder is written only while a content holder exists, after
//!   its row is recorded, and the holder is checked again after it is
//!   written: if the content went meanwhile, the upload's own data
//!   replaces the placeholder. A manifest push records every blob it
//!   references in its repository, so a placeholder a client found by a
//!   `HEAD` (one left unrecorded) is known to the removals.
//! - Content leaves a repository only after it is safe elsewhere: when
//!   the leaving repository's object holds content and no other recorded
//!   holder has content, it is copied (server-side) onto the first
//!   placeholder holder, which is then recorded as the origin, and only
//!   then deleted. A failed copy keeps it (the removal fails).
//! - Every read of a blob (GET, HEAD, ranges, documents parsed by GC,
//!   scrub, lint, search, the rebuild) goes through [`Registry::locate_blob`]
//!   or [`Registry::resolve_read`], so a placeholder is never served as
//!   the blob; a placeholder whose content is nowhere is a missing blob.
//! - Reads resolve placeholders whether or not dedupe is on now: a bucket
//!   written with dedupe on and served with it off keeps working (its
//!   placeholders stay; new placements are copies).
//! - The map is a cache: when it names no holder with content, the
//!   repositories recorded for the digest are looked at, and the one found
//!   is recorded; a rebuild records every object with content.
//!
//! Mutations of one digest are serialized by the registry's digest lock,
//! which with shared state is also a lease in Redis (`digest_guard.rs`),
//! so across instances too. The order above (placeholder, record, check
//! again; copy, record, delete) keeps content whichever step interleaves
//! even where the lease is not held (instances with separate metadata
//! stores and no Redis).

use crate::error::{Result, StorageError};
use crate::paths;
use crate::registry::Registry;
use std::io;
use zot_meta::Change;
use zot_oci::{Digest, RepoName};

/// Whether `digest` names the empty content (zero bytes that are the blob).
pub(crate) fn is_empty_blob(digest: &Digest) -> bool {
    *digest == digest.algorithm().hasher().finish()
}

/// Whether an object of `size` bytes stored for `digest` is a placeholder.
pub(crate) fn is_placeholder(digest: &Digest, size: u64) -> bool {
    size == 0 && !is_empty_blob(digest)
}

/// The metadata changes of content (no placeholder) placed in a repository.
fn holds_content(digest: &Digest) -> Vec<Change> {
    vec![
        Change::AddBlob(digest.clone()),
        Change::HoldsContent(digest.clone()),
    ]
}

impl Registry {
    /// Whether this store shares content by placeholders.
    pub(crate) fn uses_placeholders(&self) -> bool {
        self.backend.placeholders()
    }

    /// The key of the object holding the content of blob `digest` of
    /// `repo` (its own, or its origin's for a placeholder), and its size;
    /// `None` when `repo` does not hold the blob, or holds a placeholder
    /// whose content is nowhere (logged).
    pub(crate) async fn locate_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<(String, u64)>> {
        let key = paths::blob(repo, digest);
        let Some(size) = self.backend.size(&key).await? else {
            return Ok(None);
        };
        if !self.uses_placeholders() || !is_placeholder(digest, size) {
            return Ok(Some((key, size)));
        }
        // The origin's zero-byte object is parked content (`parked.rs`);
        // another repository's is a placeholder, looked up by the map.
        let origin = self.meta.blob_origin(digest)?;
        if origin.as_deref() == Some(repo.as_str())
            && let Some(m) = self.parked_at(repo, digest).await?
        {
            return Ok(Some((m.upload, m.size)));
        }
        match self.holder_of(origin, digest, Some(repo)).await? {
            Some((_, key, size)) => Ok(Some((key, size))),
            None => match self.parked_at(repo, digest).await? {
                Some(m) => Ok(Some((m.upload, m.size))),
                // The move may have ended between the reads: its content
                // is then at the key.
                None => match self.backend.size(&key).await? {
                    Some(size) if !is_placeholder(digest, size) => Ok(Some((key, size))),
                    _ => {
                        tracing::error!(%repo, %digest, "placeholder whose content no repository holds");
                        Ok(None)
                    }
                },
            },
        }
    }

    /// A repository (not `except`) whose object of `digest` holds the
    /// content, with the key of that content and its size: the origin the
    /// map names, else any repository recorded for the digest (then
    /// recorded as the origin).
    pub(crate) async fn content_holder(
        &self,
        digest: &Digest,
        except: Option<&RepoName>,
    ) -> Result<Option<(RepoName, String, u64)>> {
        let origin = self.meta.blob_origin(digest)?;
        self.holder_of(origin, digest, except).await
    }

    /// [`Registry::content_holder`] with the map's `origin` already read.
    async fn holder_of(
        &self,
        origin: Option<String>,
        digest: &Digest,
        except: Option<&RepoName>,
    ) -> Result<Option<(RepoName, String, u64)>> {
        let origin_repo = origin.as_deref().and_then(|r| r.parse::<RepoName>().ok());
        if let Some(o) = &origin_repo
            && Some(o) != except
            && let Some((key, size)) = self.content_at(o, digest).await?
        {
            return Ok(Some((o.clone(), key, size)));
        }
        for other in self.meta.blob_repos(digest)? {
            let Ok(other) = other.parse::<RepoName>() else {
                continue;
            };
            if Some(&other) == except || Some(&other) == origin_repo.as_ref() {
                continue;
            }
            if let Some((key, size)) = self.content_at(&other, digest).await? {
                tracing::info!(%digest, holder = %other, "dedupe map: origin recorded again");
                // Best effort: the answer does not depend on it.
                let repair = vec![Change::HoldsContent(digest.clone())];
                if let Err(e) = self.apply_meta(&other, repair).await {
                    tracing::warn!(%digest, error = %e, "dedupe map: cannot record the origin");
                }
                return Ok(Some((other, key, size)));
            }
        }
        Ok(None)
    }

    /// Where `repo`'s content of `digest` is, and its size, when `repo`
    /// holds content: its blob object, or, for a parked blob (a zero-byte
    /// object with a marker), the upload key the marker names.
    pub(crate) async fn content_at(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<(String, u64)>> {
        let key = paths::blob(repo, digest);
        match self.backend.size(&key).await? {
            None => Ok(None),
            Some(size) if !is_placeholder(digest, size) => Ok(Some((key, size))),
            Some(_) => Ok(self
                .parked_at(repo, digest)
                .await?
                .map(|m| (m.upload, m.size))),
        }
    }

    /// `read`, the whole-object read of blob `digest` of `repo` (at most
    /// [`crate::MAX_MANIFEST_BYTES`]), or, when it read a placeholder, the
    /// content it stands for.
    pub(crate) async fn resolve_read(
        &self,
        repo: &RepoName,
        digest: &Digest,
        read: io::Result<Vec<u8>>,
    ) -> io::Result<Vec<u8>> {
        match read {
            Ok(b) if b.is_empty() && self.uses_placeholders() && !is_empty_blob(digest) => {
                let located = self
                    .locate_blob(repo, digest)
                    .await
                    .map_err(io::Error::other)?;
                let (key, _) = located.ok_or(io::ErrorKind::NotFound)?;
                self.backend
                    .read_at_most(&key, crate::MAX_MANIFEST_BYTES)
                    .await
            }
            other => other,
        }
    }

    /// Stores a verified upload as blob `digest` of `repo` on a store with
    /// placeholders (the digest lock and the placement guard held): a
    /// placeholder when dedupe is on and another repository holds the
    /// content, else the upload itself. Returns the metadata changes.
    pub(crate) async fn place_with_placeholders(
        &self,
        repo: &RepoName,
        digest: &Digest,
        upload_key: &str,
        size: u64,
    ) -> Result<Vec<Change>> {
        let target = paths::blob(repo, digest);
        let added = vec![Change::AddBlob(digest.clone())];
        if let Some(existing) = self.backend.size(&target).await? {
            // Already placed (content, parked content, or a placeholder);
            // unless it is a placeholder whose content is gone (left by a
            // crash, say): then this upload is the content.
            if !is_placeholder(digest, existing)
                || self.parked_at(repo, digest).await?.is_some()
                || self.content_holder(digest, Some(repo)).await?.is_some()
            {
                self.backend.delete(upload_key).await?;
                return Ok(added);
            }
        } else if self.options.dedupe
            && size > 0
            && let Some((holder, _, held)) = self.content_holder(digest, Some(repo)).await?
            && held == size
        {
            // Recorded before it exists: a removal of the holder that runs
            // meanwhile (another instance) cannot miss this repository once
            // its placeholder is there, and a crash in between leaves a row
            // without an object (skipped), never an unrecorded placeholder
            // that a removal would leave dangling.
            self.apply_meta(repo, added.clone()).await?;
            self.backend.write_atomic(&target, b"").await?;
            // The holder may have gone meanwhile (another instance): then
            // this upload is the content.
            if self.content_holder(digest, Some(repo)).await?.is_some() {
                tracing::debug!(%repo, %digest, origin = %holder, "dedupe: placeholder");
                self.backend.delete(upload_key).await?;
                return Ok(added);
            }
        }
        // A copy on this store (a chunked upload on S3) is made after the
        // answer (`parked.rs`); otherwise the upload is published now.
        if !self.try_park(repo, digest, upload_key, size).await? {
            self.backend.publish(upload_key, &target).await?;
        }
        Ok(holds_content(digest))
    }

    /// Mounts blob `digest` into `repo` from `source`'s content at
    /// `content_key` on a store with placeholders: a placeholder with
    /// dedupe, else a server-side copy. Returns the metadata changes.
    pub(crate) async fn mount_with_placeholders(
        &self,
        repo: &RepoName,
        digest: &Digest,
        content_key: &str,
    ) -> io::Result<Vec<Change>> {
        let to_key = paths::blob(repo, digest);
        if self.options.dedupe && !is_empty_blob(digest) {
            if self.backend.size(&to_key).await?.is_some() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            self.backend.write_atomic(&to_key, b"").await?;
            return Ok(vec![Change::AddBlob(digest.clone())]);
        }
        self.backend.link(content_key, &to_key).await?;
        Ok(holds_content(digest))
    }

    /// Deletes `repo`'s object of blob `digest` (call with the digest lock
    /// held, then record `RemoveBlob`): on a store with placeholders, its
    /// content is first handed over to a placeholder holder when no other
    /// repository holds it. `Ok(false)` when there was no object.
    pub(crate) async fn delete_blob_object(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool> {
        let key = paths::blob(repo, digest);
        if !self.uses_placeholders() {
            return Ok(self.backend.delete(&key).await?);
        }
        let Some(size) = self.backend.size(&key).await? else {
            return Ok(false);
        };
        // Parked content (`parked.rs`) is content too: handed over from its
        // upload key, which then goes with its marker (as it does when the
        // move copied it and has yet to clean up, or the marker is stale).
        let marker = self.marker(repo, digest).await?;
        let parked = match &marker {
            Some(m) if is_placeholder(digest, size) => self
                .backend
                .size(&m.upload)
                .await?
                .is_some()
                .then(|| m.upload.clone()),
            _ => None,
        };
        if !is_placeholder(digest, size) || parked.is_some() {
            let from = parked.unwrap_or_else(|| key.clone());
            self.hand_over_content(repo, digest, &from).await?;
        }
        let deleted = self.backend.delete(&key).await?;
        if let Some(m) = marker {
            self.backend.delete(&m.upload).await?;
            self.backend
                .delete(&crate::parked::marker_key(repo, digest))
                .await?;
        }
        Ok(deleted)
    }

    /// Before `repo`'s content of `digest` (at `from`) is deleted: makes
    /// another holder of content the origin, or copies the content onto
    /// the first placeholder holder that takes it and records it as the
    /// origin.
    async fn hand_over_content(&self, repo: &RepoName, digest: &Digest, from: &str) -> Result<()> {
        let is_origin = self.meta.blob_origin(digest)?.as_deref() == Some(repo.as_str());
        let mut heirs = Vec::new();
        for other in self.meta.blob_repos(digest)? {
            let Ok(other) = other.parse::<RepoName>() else {
                continue;
            };
            if other == *repo {
                continue;
            }
            match self.backend.size(&paths::blob(&other, digest)).await? {
                Some(size) if !is_placeholder(digest, size) => {
                    return self.hold_content_instead(&other, digest, is_origin).await;
                }
                Some(_) => heirs.push(other),
                None => {}
            }
        }
        // Another repository's parked content is content too (looked for
        // only when no object holds it: one marker read per placeholder).
        for heir in &heirs {
            if self.parked_at(heir, digest).await?.is_some() {
                return self.hold_content_instead(heir, digest, is_origin).await;
            }
        }
        for heir in &heirs {
            match self
                .backend
                .copy_over(from, &paths::blob(heir, digest))
                .await
            {
                Ok(()) => {
                    tracing::info!(%digest, from = %repo, to = %heir, "dedupe: content moved to the next holder");
                    self.apply_meta(heir, vec![Change::HoldsContent(digest.clone())])
                        .await?;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(%digest, from = %repo, to = %heir, error = %e, "dedupe: cannot move content")
                }
            }
        }
        if heirs.is_empty() {
            Ok(())
        } else {
            Err(StorageError::from(io::Error::other(format!(
                "{repo}: {digest} is the content of placeholders in {} repositories and could not be moved",
                heirs.len()
            ))))
        }
    }

    /// `other` holds `digest`'s content: recorded as the origin when the
    /// leaving repository was.
    async fn hold_content_instead(
        &self,
        other: &RepoName,
        digest: &Digest,
        is_origin: bool,
    ) -> Result<()> {
        if is_origin {
            self.apply_meta(other, vec![Change::HoldsContent(digest.clone())])
                .await?;
        }
        Ok(())
    }

    /// The blob rows of `repo`'s layout for a rebuild: every blob object,
    /// and on a store with placeholders every one holding content as the
    /// digest's origin (so the dedupe map is recovered from the bucket).
    pub(crate) async fn layout_blob_changes(&self, repo: &RepoName) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        for alg in self.backend.list(&paths::blobs_dir(repo)).await? {
            if !alg.is_dir || !matches!(alg.name.as_str(), "sha256" | "sha512") {
                continue; // e.g. a repository named `<repo>/blobs`
            }
            let folder = format!("{}/{}", paths::blobs_dir(repo), alg.name);
            if !self.uses_placeholders() {
                for blob in self.backend.list(&folder).await? {
                    if let Ok(d) = format!("{}:{}", alg.name, blob.name).parse::<Digest>()
                        && !blob.is_dir
                    {
                        changes.push(Change::AddBlob(d));
                    }
                }
                continue;
            }
            for (name, size) in self.backend.list_sizes(&folder).await? {
                if let Ok(d) = format!("{}:{}", alg.name, name).parse::<Digest>() {
                    changes.push(Change::AddBlob(d.clone()));
                    if !is_placeholder(&d, size) {
                        changes.push(Change::HoldsContent(d));
                    }
                }
            }
        }
        Ok(changes)
    }
}

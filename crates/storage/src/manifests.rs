//! Manifests, tags and referrers. A manifest is stored as a blob of its
//! repository, listed in `index.json` (with a tag annotation when pushed by
//! tag), and recorded in the metadata store for fast lookups.

use crate::error::{Result, StorageError};
use crate::events;
use crate::paths;
use crate::registry::Registry;
use bytes::Bytes;
use zot_meta::{Change, ManifestRecord};
use zot_oci::{Descriptor, Digest, ParsedManifest, Reference, RepoName};

/// Whether a manifest push may move an existing tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPolicy {
    CreateOrMove,
    CreateOnly,
}

/// The result of a manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// The descriptor under which a referrer is listed for its subject.
pub(crate) fn referrer_descriptor(desc: &Descriptor, parsed: &ParsedManifest) -> Descriptor {
    Descriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        size: desc.size,
        artifact_type: parsed.effective_artifact_type().map(str::to_owned),
        annotations: parsed.annotations.clone(),
        platform: None,
        urls: None,
    }
}

impl Registry {
    /// Validates and stores a manifest pushed to `repo` under `reference`.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<PushedManifest> {
        self.put_manifest_with(repo, reference, content_type, body, TagPolicy::CreateOrMove)
            .await
    }

    /// [`Registry::put_manifest`], with `TagPolicy::CreateOnly` refusing to
    /// move a tag that exists: decided under the repository lock, so a
    /// caller allowed only to create tags cannot win a race against a tag
    /// created at the same moment.
    pub async fn put_manifest_with(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        policy: TagPolicy,
    ) -> Result<PushedManifest> {
        self.put_manifest_as(repo, reference, content_type, body, policy, None)
            .await
    }

    /// [`Registry::put_manifest_with`], pushed by `pusher` (the
    /// authenticated user's name; `None` when anonymous), which search
    /// records for a manifest's first push.
    pub async fn put_manifest_as(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        policy: TagPolicy,
        pusher: Option<&str>,
    ) -> Result<PushedManifest> {
        let parsed = ParsedManifest::parse(body, content_type, self.options.docker2s2)?;
        let digest = match reference {
            Reference::Digest(d) => {
                let mut h = d.algorithm().hasher();
                h.update(body);
                let actual = h.finish();
                if actual != *d {
                    return Err(StorageError::DigestInvalid(format!(
                        "manifest has digest {actual}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(body),
        };
        for blob in parsed.required_blobs() {
            // A blob of another size is no blob of this descriptor: the same
            // answer as a missing one, naming no stored size (the pusher may
            // not be allowed to read this repository).
            if self.blob_size(repo, &blob.digest).await? != Some(blob.size) {
                return Err(StorageError::ManifestBlobUnknown(blob.digest.clone()));
            }
        }
        if let Err(e) = self.lint_manifest(repo, &parsed).await {
            self.lint_failed(repo, reference, &digest, &parsed, body)
                .await;
            return Err(e);
        }
        for m in parsed.required_manifests() {
            self.check_child_manifest(repo, m)?;
        }
        let desc = Descriptor {
            media_type: parsed.kind.media_type().to_owned(),
            digest: digest.clone(),
            size: body.len() as u64,
            artifact_type: None,
            annotations: None,
            platform: None,
            urls: None,
        };
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: desc.media_type.clone(),
            size: desc.size,
        };
        // Before the lock: the config read must not hold up other writes.
        let image = if self.options.search {
            Some(self.derive_image(repo, &digest, &parsed, body).await)
        } else {
            None
        };
        self.ensure_layout(repo).await?;
        // Under the lock: a delete of the same digest racing this push would
        // otherwise remove the file after it was found present.
        let _guard = self.lock_repo(repo).await;
        self.reconcile(repo).await?;
        if let (TagPolicy::CreateOnly, Reference::Tag(tag)) = (policy, reference)
            && self.meta.tag(repo, tag.as_str())?.is_some()
        {
            return Err(StorageError::TagExists);
        }
        // GC on another instance may have read index.json already: its
        // removals see these marks, or this push waits for them to end
        // (the manifest's own: retention there may be removing it).
        // An explicit delete of a child elsewhere sees its `named:` mark and
        // is refused, or this push waits for it (`manifest_delete.rs`).
        let children: Vec<&Digest> = parsed.required_manifests().map(|d| &d.digest).collect();
        let blobs = parsed.required_blobs().map(|d| &d.digest);
        self.mark_referenced(repo, (&digest, &children), blobs)
            .await?;
        // Again under the lock: garbage collection (which holds it) may have
        // removed an unreferenced blob since the check above; once the
        // manifest is listed, its blobs are referenced and GC keeps them.
        for blob in parsed.required_blobs() {
            if self.blob_size(repo, &blob.digest).await?.is_none() {
                return Err(StorageError::ManifestBlobUnknown(blob.digest.clone()));
            }
        }
        for m in parsed.required_manifests() {
            self.check_child_manifest(repo, m)?;
            if self.blob_size(repo, &m.digest).await?.is_none() {
                return Err(StorageError::ManifestBlobUnknown(m.digest.clone()));
            }
        }
        if self.backend.size(&paths::oci_layout(repo)).await?.is_none() {
            // GC removed the layout of an empty repository meanwhile.
            self.backend
                .write_atomic(&paths::oci_layout(repo), paths::OCI_LAYOUT_CONTENT)
                .await?;
        }
        let blob_key = paths::blob(repo, &digest);
        let found = self.backend.size(&blob_key).await? == Some(desc.size);
        if !found {
            self.backend.write_atomic(&blob_key, body).await?;
        }
        let mut index = self.read_index(repo).await?;
        let mut changes = vec![
            Change::AddBlob(digest.clone()),
            Change::PutManifest(record.clone()),
            Change::Pushed(digest.clone(), crate::gc::now_secs()),
        ];
        // The blobs it needs are recorded here too (checked present above):
        // on S3 one may be a placeholder no placement recorded (left by a
        // crash), which a removal of its content must know about.
        changes.extend(
            parsed
                .required_blobs()
                .map(|b| Change::AddBlob(b.digest.clone())),
        );
        if let Some(image) = image {
            changes.push(Change::PutImage(Box::new(image)));
            changes.push(Change::PushedBy(
                digest.clone(),
                pusher.unwrap_or_default().to_owned(),
            ));
            if let Reference::Tag(tag) = reference {
                let now = crate::search::now_ns();
                changes.push(Change::Tagged(tag.as_str().to_owned(), now));
            }
        }
        // Whether the push changes what the reference names (an identical
        // re-push makes no event).
        let updated = match reference {
            Reference::Tag(tag) => {
                let before = index.set_tag(tag.as_str(), &desc);
                changes.push(Change::SetTag(tag.as_str().to_owned(), record));
                before != Some(digest.to_string())
            }
            Reference::Digest(_) => {
                let listed = index.contains(&digest);
                index.add_untagged(&desc);
                !listed
            }
        };
        if updated && self.meta.events_enabled() {
            let image = events::Image {
                reference: &reference.to_string(),
                digest: &digest,
                media_type: &desc.media_type,
            };
            let event = events::image_pushed(repo, &image, body, false);
            changes.push(Change::Event(Box::new(event)));
        }
        if let Some(subject) = &parsed.subject {
            changes.push(Change::PutReferrer {
                subject: subject.digest.clone(),
                descriptor: referrer_descriptor(&desc, &parsed),
            });
        }
        changes.push(self.write_index(repo, &index).await?);
        if found {
            // A delete through another instance may have removed the file
            // found above, its index.json write before this one
            // (`manifest_delete.rs`).
            self.restore_deleted(repo, &digest, body).await?;
        }
        self.apply_meta(repo, changes).await?;
        if let Some(listener) = self.stored_listener.get() {
            listener(repo, &digest, &desc.media_type);
        }
        Ok(PushedManifest {
            digest,
            subject: parsed.subject.map(|s| s.digest),
        })
    }

    /// Records `image.scanned` (zot's event of a scan that was not served
    /// from its cache) for `image` of `repo`, when events are on: for the
    /// scanner, after a scan finishes.
    pub async fn record_scanned(
        &self,
        repo: &RepoName,
        image: &events::Image<'_>,
        summary: &events::ScanSummary,
    ) -> Result<()> {
        if !self.meta.events_enabled() {
            return Ok(());
        }
        let event = events::image_scanned(repo, image, summary);
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.append_events(&[event]))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Records `image.lint_failed` for a push refused by lint (in a
    /// transaction of its own: nothing else changed). A failure to record
    /// it is logged; the push is refused either way.
    async fn lint_failed(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
        parsed: &ParsedManifest,
        body: &[u8],
    ) {
        if !self.meta.events_enabled() {
            return;
        }
        let image = events::Image {
            reference: &reference.to_string(),
            digest,
            media_type: parsed.kind.media_type(),
        };
        let event = events::image_pushed(repo, &image, body, true);
        let meta = self.meta.clone();
        match tokio::task::spawn_blocking(move || meta.append_events(&[event])).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(%repo, error = %e, "recording image.lint_failed"),
            Err(e) => tracing::error!(%repo, error = %e, "recording image.lint_failed"),
        }
    }

    /// An index's child must be a manifest stored in `repo` (so parsed and
    /// at most 4 MiB when it was pushed), not merely a blob: GC, scrub and
    /// the start-up rebuild parse every child. Its descriptor must give the
    /// stored size.
    fn check_child_manifest(&self, repo: &RepoName, child: &Descriptor) -> Result<()> {
        let Some(record) = self.meta.manifest(repo, &child.digest)? else {
            return Err(StorageError::ManifestBlobUnknown(child.digest.clone()));
        };
        if record.size != child.size {
            return Err(zot_oci::ManifestError::Invalid(format!(
                "descriptor of {} says {} bytes, the manifest has {}",
                child.digest, child.size, record.size
            ))
            .into());
        }
        Ok(())
    }

    /// Looks a manifest up by tag or digest.
    pub fn manifest_record(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestRecord> {
        let rec = match reference {
            Reference::Tag(t) => self.meta.tag(repo, t.as_str())?,
            Reference::Digest(d) => self.meta.manifest(repo, d)?,
        };
        rec.ok_or(StorageError::ManifestUnknown)
    }

    /// The bytes of a manifest found by [`Registry::manifest_record`].
    pub async fn manifest_bytes(&self, repo: &RepoName, record: &ManifestRecord) -> Result<Bytes> {
        if let Some(body) = self.manifests.get(&record.digest) {
            return Ok(body);
        }
        match self.read_document(repo, &record.digest).await {
            Ok(b) if !record.digest.verify(&b) => {
                // Content on disk is untrusted (layouts written by other
                // tools, bit-rot): never serve it under the wrong digest.
                tracing::error!(%repo, digest = %record.digest, "manifest content does not match its digest");
                Err(StorageError::ManifestUnknown)
            }
            Ok(b) => {
                let body = Bytes::from(b);
                self.manifests.insert(record.digest.clone(), body.clone());
                Ok(body)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::error!(%repo, digest = %record.digest, "manifest recorded but its blob is missing");
                Err(StorageError::ManifestUnknown)
            }
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                tracing::error!(%repo, digest = %record.digest, error = %e, "manifest recorded but its blob is too large to be one");
                Err(StorageError::ManifestUnknown)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes by digest (the manifest and every tag pointing at it) or by
    /// tag (only the tag). A manifest an index of the repository names is
    /// not deleted by digest (`manifest_delete.rs`).
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let _guard = self.lock_repo(repo).await;
        self.reconcile(repo).await?;
        let mut index = self.read_index(repo).await?;
        let mut changes = Vec::new();
        let mut children = Vec::new();
        let mut body = None;
        let deleted = match reference {
            Reference::Tag(tag) => {
                let record = self.meta.tag(repo, tag.as_str())?;
                if index.remove_tag(tag.as_str()).is_none() && record.is_none() {
                    return Err(StorageError::ManifestUnknown);
                }
                changes.push(Change::RemoveTag(tag.as_str().to_owned()));
                record
            }
            Reference::Digest(digest) => {
                let Some(record) = self.meta.manifest(repo, digest)? else {
                    return Err(StorageError::ManifestUnknown);
                };
                if let Some(parent) = self.listed_parent(repo, &index, digest).await? {
                    return Err(StorageError::ManifestReferenced {
                        digest: digest.clone(),
                        index: Some(parent),
                    });
                }
                let mut tags = index.remove_digest(digest);
                tags.extend(self.meta.tags_of(repo, digest)?);
                tags.sort();
                tags.dedup();
                changes.extend(tags.into_iter().map(Change::RemoveTag));
                let read = self.read_document(repo, digest).await;
                if let Ok(bytes) = &read
                    && let Ok(parsed) = ParsedManifest::parse(bytes, Some(&record.media_type), true)
                {
                    children = parsed.manifests.iter().map(|m| m.digest.clone()).collect();
                    if let Some(subject) = parsed.subject {
                        changes.push(Change::RemoveReferrer {
                            subject: subject.digest,
                            referrer: digest.clone(),
                        });
                    }
                }
                changes.push(Change::RemoveManifest(digest.clone()));
                changes.push(Change::RemoveBlob(digest.clone()));
                body = read.ok();
                Some(record)
            }
        };
        if let Some(record) = deleted.filter(|_| self.meta.events_enabled()) {
            let image = events::Image {
                reference: &reference.to_string(),
                digest: &record.digest,
                media_type: &record.media_type,
            };
            changes.push(Change::Event(Box::new(events::image_deleted(repo, &image))));
        }
        let Reference::Digest(digest) = reference else {
            changes.push(self.write_index(repo, &index).await?);
            return self.apply_meta(repo, changes).await;
        };
        // Held until the metadata is written: an index pushed elsewhere that
        // meets the claim waits for it, then finds the manifest gone.
        let _digest_guard = self.lock_digest(digest).await?;
        let claim = self.claim_delete(repo, digest).await?;
        let done = async {
            changes.push(self.write_index(repo, &index).await?);
            self.delete_blob_object(repo, digest).await?;
            // Pushed again through another instance, its index.json write
            // after this one: put back what that push found.
            if let Some(body) = &body
                && self.uploads_shared()
                && self.read_index(repo).await?.contains(digest)
            {
                self.restore_deleted(repo, digest, body).await?;
                changes.retain(|c| {
                    !matches!(c, Change::RemoveManifest(d) | Change::RemoveBlob(d) if d == digest)
                });
            }
            self.apply_meta(repo, changes).await
        }
        .await;
        self.release_delete(repo, (claim, digest), &children).await;
        done
    }

    /// Tags of `repo` in lexical order after `last`, at most `n`, and
    /// whether more follow. `NameUnknown` when the repository does not exist.
    pub fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<(Vec<String>, bool)> {
        if !self.meta.repo_exists(repo)? {
            return Err(StorageError::NameUnknown);
        }
        Ok(self.meta.tags(repo, last, n)?)
    }

    /// Manifests of `repo` whose subject is `subject`, optionally only
    /// those of one artifact type.
    pub fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut all = self.meta.referrers(repo, subject)?;
        if let Some(t) = artifact_type {
            all.retain(|d| d.artifact_type.as_deref() == Some(t));
        }
        Ok(all)
    }
}

//! Copying one image (a manifest or an index with its children, and their
//! blobs) from an upstream into a store, through the storage `Registry`
//! API, so the metadata store stays in step exactly as for a push.
//!
//! Invariants:
//! - Order of a push: blobs, then child manifests (by digest), then the
//!   manifest itself (by tag or digest). A manifest is never stored before
//!   everything it references is.
//! - Present content is not fetched again: a blob already in the local
//!   repository, or a manifest already recorded there, is skipped.
//! - A blob is streamed into an upload session (bounded memory) and
//!   completed with its digest: storage verifies it again and stores
//!   nothing on a mismatch; a stream that failed (transport, size)
//!   cancels the session. The client does not hash the stream: storage
//!   hashes it as it writes, so the bytes are hashed once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use zot_client::{Manifest, RegistryClient};
use zot_oci::media_types as mt;
use zot_oci::{Descriptor, Digest, ParsedManifest, Reference, RepoName, Tag};
use zot_storage::Registry;

use crate::SyncError;
use crate::pull::{Phase, Pulls};

/// How much a copy moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

impl std::ops::AddAssign for CopyStats {
    fn add_assign(&mut self, o: CopyStats) {
        self.manifests += o.manifests;
        self.blobs += o.blobs;
        self.bytes += o.bytes;
    }
}

/// One upstream repository and the local repository it is mirrored into.
pub struct RepoPair<'a> {
    pub client: &'a Arc<RegistryClient>,
    pub upstream: &'a str,
    pub registry: &'a Arc<Registry>,
    pub local: &'a RepoName,
    /// Docker images are converted to OCI (`preserveDigest: false`).
    pub convert: bool,
    /// Only these children of an index are synced (empty: all).
    pub platforms: &'a [crate::platforms::Platform],
    /// On demand: blobs come through the pulls in flight, so a client
    /// asking for one while the image is copied shares its transfer.
    pub pulls: Option<&'a Arc<Pulls>>,
}

/// A manifest fetched from upstream, as it will be stored.
pub struct Fetched {
    /// The digest upstream (referrers and signatures name it).
    pub upstream_digest: Digest,
    /// The manifest to store (converted when asked).
    pub manifest: Manifest,
    /// Converted children of a converted list, stored first by digest.
    pub children: Vec<Manifest>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl RepoPair<'_> {
    /// Whether `local` records the manifest `digest`.
    pub fn has_manifest(&self, digest: &Digest) -> bool {
        self.registry
            .manifest_record(self.local, &Reference::Digest(digest.clone()))
            .is_ok()
    }

    /// The digest `tag` names locally, if any.
    pub fn local_tag(&self, tag: &Tag) -> Option<Digest> {
        self.registry
            .manifest_record(self.local, &Reference::Tag(tag.clone()))
            .ok()
            .map(|r| r.digest)
    }

    /// Stores `manifest` (already fetched) under `reference`, with
    /// everything it references first.
    pub fn store_manifest<'s>(
        &'s self,
        manifest: &'s Manifest,
        reference: Reference,
    ) -> BoxFuture<'s, Result<CopyStats, SyncError>> {
        Box::pin(async move {
            let parsed = ParsedManifest::parse(&manifest.bytes, Some(&manifest.media_type), true)
                .map_err(|e| SyncError::Invalid(format!("{}: {e}", manifest.digest)))?;
            let mut stats = CopyStats::default();
            for child in parsed.required_manifests() {
                if self.has_manifest(&child.digest) {
                    continue;
                }
                let m = self
                    .client
                    .manifest(self.upstream, &child.digest.to_string())
                    .await?;
                stats += self
                    .store_manifest(&m, Reference::Digest(child.digest.clone()))
                    .await?;
            }
            for blob in parsed.required_blobs() {
                stats += self.copy_blob(blob).await?;
            }
            self.registry
                .put_manifest(
                    self.local,
                    &reference,
                    Some(&manifest.media_type),
                    &manifest.bytes,
                )
                .await?;
            stats.manifests += 1;
            Ok(stats)
        })
    }

    /// Fetches `reference` upstream, converted to OCI when asked.
    pub async fn fetch(&self, reference: &str) -> Result<Fetched, SyncError> {
        let m = self.client.manifest(self.upstream, reference).await?;
        let upstream_digest = m.digest.clone();
        let (mut manifest, mut children) = if self.convert {
            crate::convert::to_oci(self.client, self.upstream, m).await?
        } else {
            (m, Vec::new())
        };
        if !self.platforms.is_empty() {
            manifest = crate::platforms::filter(manifest, self.platforms)?;
            let kept = crate::platforms::children(&manifest);
            children.retain(|c| kept.contains(&c.digest.to_string()));
        }
        Ok(Fetched {
            upstream_digest,
            manifest,
            children,
        })
    }

    /// Stores what [`RepoPair::fetch`] got: converted children, then the
    /// manifest under `reference`.
    pub async fn store(&self, f: &Fetched, reference: Reference) -> Result<CopyStats, SyncError> {
        let mut stats = CopyStats::default();
        for child in &f.children {
            if !self.has_manifest(&child.digest) {
                stats += self
                    .store_manifest(child, Reference::Digest(child.digest.clone()))
                    .await?;
            }
        }
        stats += self.store_manifest(&f.manifest, reference).await?;
        Ok(stats)
    }

    /// Fetches `reference` upstream and stores it, unless a manifest of
    /// the same (predicted) digest is already there under the same
    /// reference. A digest reference of a converted image is stored under
    /// its converted digest. Returns the digest stored.
    pub async fn copy_reference(
        &self,
        reference: &Reference,
    ) -> Result<(Digest, CopyStats), SyncError> {
        self.copy_reference_then(reference, &mut |_| {}).await
    }

    /// [`RepoPair::copy_reference`], calling `fetched` with what was
    /// fetched once it is known to be copied, before anything is stored.
    pub async fn copy_reference_then(
        &self,
        reference: &Reference,
        fetched: &mut (dyn FnMut(&Fetched) + Send),
    ) -> Result<(Digest, CopyStats), SyncError> {
        let f = self.fetch(&reference.to_string()).await?;
        let digest = f.manifest.digest.clone();
        let (present, reference) = match reference {
            Reference::Tag(t) => (
                self.local_tag(t).as_ref() == Some(&digest),
                reference.clone(),
            ),
            Reference::Digest(_) => (
                self.has_manifest(&digest),
                Reference::Digest(digest.clone()),
            ),
        };
        if present {
            return Ok((digest, CopyStats::default()));
        }
        fetched(&f);
        let stats = self.store(&f, reference).await?;
        Ok((digest, stats))
    }

    /// Streams one blob into the local repository unless it is there.
    async fn copy_blob(&self, desc: &Descriptor) -> Result<CopyStats, SyncError> {
        if mt::NON_DISTRIBUTABLE_LAYERS.contains(&desc.media_type.as_str()) {
            return Ok(CopyStats::default());
        }
        if self
            .registry
            .blob_size(self.local, &desc.digest)
            .await?
            .is_some()
        {
            return Ok(CopyStats::default());
        }
        if let Some(pulls) = self.pulls {
            return self.pull_blob(pulls, desc).await;
        }
        let stream = self
            .client
            .blob(self.upstream, &desc.digest, Some(desc.size))
            .await?
            .unhashed();
        let id = self.registry.start_upload(self.local).await?;
        let written = async {
            self.registry
                .append_upload(self.local, &id, Some(0), stream)
                .await?;
            self.registry
                .complete_upload(
                    self.local,
                    &id,
                    &desc.digest,
                    None,
                    None::<futures_util::stream::Empty<Result<Bytes, std::io::Error>>>,
                )
                .await
        }
        .await;
        match written {
            Ok(size) => Ok(CopyStats {
                manifests: 0,
                blobs: 1,
                bytes: size,
            }),
            Err(e) => {
                if let Err(c) = self.registry.cancel_upload(self.local, &id).await {
                    tracing::debug!(error = %c, "cancelling a failed sync upload");
                }
                Err(e.into())
            }
        }
    }

    /// Joins (or starts) the pull of one blob and waits for it to be
    /// stored.
    async fn pull_blob(
        &self,
        pulls: &Arc<Pulls>,
        desc: &Descriptor,
    ) -> Result<CopyStats, SyncError> {
        let (client, upstream) = (self.client.clone(), self.upstream.to_owned());
        let (digest, size) = (desc.digest.clone(), desc.size);
        let pull = pulls
            .pull(self.registry, self.local, &desc.digest, move || {
                Box::pin(
                    async move { Ok(Some(client.blob(&upstream, &digest, Some(size)).await?)) },
                )
            })
            .ok_or_else(|| SyncError::NotStored(format!("{} (too many pulls)", desc.digest)))?;
        match pull.ended().await {
            Phase::Present => Ok(CopyStats::default()),
            Phase::Stored => Ok(CopyStats {
                manifests: 0,
                blobs: 1,
                bytes: desc.size,
            }),
            phase => Err(SyncError::NotStored(format!("{} ({phase:?})", desc.digest))),
        }
    }
}

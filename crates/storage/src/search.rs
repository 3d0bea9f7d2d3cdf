//! The storage side of the search extension (`Options::search`): image
//! records derived when a manifest is stored or a layout rebuilt, download
//! counts noted in memory on `GET` and flushed with the pull times, and the
//! start-up fill of records missing from an older store.
//!
//! Invariants:
//! - A record is derived from the manifest's bytes and, for an image, its
//!   config blob read through `read_document` (at most 4 MiB); layers are
//!   never read. A config that cannot be read or parsed still gives a record.
//! - Records are written in the same metadata transaction as the manifest
//!   they describe (`Change::PutImage` beside `Change::PutManifest`).
//! - The hot path (`record_download`) takes one of [`PULL_SHARDS`] short
//!   mutexes chosen by digest, does no I/O and no metadata read; deciding
//!   whether a pull is a signature by its content happens at flush time.
//! - Start-up with the store in step and the `indexed` mark set reads no
//!   layout: repositories are visited only when the mark is missing (a
//!   store from before search, or opened with search off since).

use std::collections::HashMap;
use std::sync::Mutex;

use zot_meta::{Change, ManifestRecord, Pull};
use zot_oci::image_meta::{ImageMeta, is_cosign_tag};
use zot_oci::{Digest, ParsedManifest, Reference, RepoName, media_types};

use crate::documents::{BATCH_BYTES, MAX_MANIFEST_BYTES};
use crate::error::Result;
use crate::paths;
use crate::registry::Registry;

/// Shards of the in-memory pull log.
pub(crate) const PULL_SHARDS: usize = 16;

/// (repo, digest) -> (last pull in seconds since the Unix epoch, downloads counted).
type PullShard = HashMap<(RepoName, Digest), (u64, u64)>;

/// Pulls noted since the last flush.
pub(crate) struct PullLog {
    shards: Vec<Mutex<PullShard>>,
}

impl PullLog {
    pub(crate) fn new() -> PullLog {
        PullLog {
            shards: (0..PULL_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub(crate) fn note(&self, repo: &RepoName, digest: &Digest, secs: u64, count: u64) {
        let shard = digest
            .hex()
            .bytes()
            .take(4)
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let mut map = self.shards[shard % PULL_SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let e = map.entry((repo.clone(), digest.clone())).or_insert((0, 0));
        e.0 = e.0.max(secs);
        e.1 += count;
    }

    /// Takes everything noted so far.
    pub(crate) fn take(&self) -> Vec<Pull> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let map = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            out.extend(map.into_iter().map(|((repo, digest), (secs, count))| Pull {
                repo,
                digest,
                secs,
                count,
            }));
        }
        out
    }
}

/// A manifest whose record is to be derived.
pub(crate) struct ToDerive {
    pub digest: Digest,
    pub parsed: ParsedManifest,
    pub bytes: Vec<u8>,
}

/// The config blob a record is derived from: an image's, unless it is the
/// empty config of an artifact, which says nothing.
fn config_to_read(parsed: &ParsedManifest) -> Option<&Digest> {
    match &parsed.config {
        Some(c) if !parsed.kind.is_index() && c.media_type != media_types::OCI_EMPTY => {
            Some(&c.digest)
        }
        _ => None,
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Registry {
    /// Notes a manifest `GET` (not `HEAD`): its pull time, and a download
    /// when search is on, the manifest is an image or an index, and it was
    /// not asked for by a cosign tag (`sha256-<hex>.sig`, ...). In memory;
    /// written by [`Registry::flush_pulls`].
    pub fn record_download(&self, repo: &RepoName, reference: &Reference, record: &ManifestRecord) {
        let counted = self.options.search
            && matches!(
                record.media_type.as_str(),
                media_types::OCI_MANIFEST
                    | media_types::OCI_INDEX
                    | media_types::DOCKER_MANIFEST
                    | media_types::DOCKER_MANIFEST_LIST
            )
            && !matches!(reference, Reference::Tag(t) if is_cosign_tag(t.as_str()));
        self.lifecycle
            .pulls
            .note(repo, &record.digest, crate::gc::now_secs(), counted.into());
    }

    /// The record of a parsed manifest (`bytes` its content): reads the
    /// config of an image, at most 4 MiB of it, never a layer.
    pub(crate) async fn derive_image(
        &self,
        repo: &RepoName,
        digest: &Digest,
        parsed: &ParsedManifest,
        bytes: &[u8],
    ) -> ImageMeta {
        let config = match config_to_read(parsed) {
            Some(c) => self.read_document(repo, c).await.ok(),
            None => None,
        };
        ImageMeta::derive(
            digest.clone(),
            parsed.kind.media_type(),
            bytes,
            config.as_deref(),
        )
    }

    /// [`Registry::derive_image`] of several manifests of `repo`, their
    /// configs read in one batch (rebuilds and the start-up fill).
    pub(crate) async fn derive_images(
        &self,
        repo: &RepoName,
        items: Vec<ToDerive>,
    ) -> Vec<ImageMeta> {
        let mut keys = Vec::new();
        let has_config: Vec<bool> = items
            .iter()
            .map(|i| {
                let c = config_to_read(&i.parsed);
                keys.extend(c.map(|d| paths::blob(repo, d)));
                c.is_some()
            })
            .collect();
        let mut configs = self
            .backend
            .read_many_at_most(keys, MAX_MANIFEST_BYTES, BATCH_BYTES)
            .await
            .into_iter();
        let mut out = Vec::with_capacity(items.len());
        for (item, has_config) in items.into_iter().zip(has_config) {
            // `configs` holds one entry per item that has a config.
            let read = if has_config { configs.next() } else { None };
            let config = match (read, config_to_read(&item.parsed)) {
                (Some(Some(read)), Some(d)) => self.resolve_read(repo, d, read).await.ok(),
                // Left unread by the batch's memory budget: on its own.
                (Some(None), Some(d)) => self.read_document(repo, d).await.ok(),
                _ => None,
            };
            out.push(ImageMeta::derive(
                item.digest,
                item.parsed.kind.media_type(),
                &item.bytes,
                config.as_deref(),
            ));
        }
        out
    }

    /// At the end of start-up synchronisation: with search on and the
    /// `indexed` mark missing, derives the records missing from the
    /// repositories in `stale_candidates` (those not rebuilt just now),
    /// then sets the mark; with search off, clears it.
    pub(crate) async fn sync_search_index(&self, stale_candidates: &[&RepoName]) -> Result<()> {
        if !self.options.search {
            self.meta.set_search_indexed(false)?;
            return Ok(());
        }
        if self.meta.search_indexed()? {
            return Ok(());
        }
        use futures_util::StreamExt as _;
        let mut filled = 0;
        let mut pending = stale_candidates.iter();
        let mut fills = futures_util::stream::FuturesUnordered::new();
        loop {
            while fills.len() < crate::registry::SYNC_CONCURRENCY
                && let Some(repo) = pending.next()
            {
                fills.push(self.fill_images(repo));
            }
            let Some(n) = fills.next().await else {
                break;
            };
            filled += n?;
        }
        drop(fills);
        if filled > 0 {
            tracing::info!(
                records = filled,
                "search: image records derived for manifests stored without them"
            );
        }
        self.meta.set_search_indexed(true)?;
        Ok(())
    }

    /// Derives and stores the records of `repo`'s manifests that have none.
    async fn fill_images(&self, repo: &RepoName) -> Result<usize> {
        let _guard = self.lock_repo(repo).await;
        let missing = self.meta.manifests_without_image(repo.as_str())?;
        let mut items = Vec::new();
        for rec in missing {
            let desc = zot_oci::Descriptor {
                media_type: rec.media_type.clone(),
                digest: rec.digest.clone(),
                size: rec.size,
                artifact_type: None,
                annotations: None,
                platform: None,
                urls: None,
            };
            if let (crate::documents::ListedManifest::Parsed(parsed), bytes) =
                self.read_listed(repo, &desc).await
            {
                items.push(ToDerive {
                    digest: rec.digest,
                    parsed: *parsed,
                    bytes,
                });
            }
        }
        let changes: Vec<Change> = self
            .derive_images(repo, items)
            .await
            .into_iter()
            .map(|m| Change::PutImage(Box::new(m)))
            .collect();
        let n = changes.len();
        if n > 0 {
            self.apply_meta(repo, changes).await?;
        }
        Ok(n)
    }
}

//! Parked blobs: a chunked upload on an object store acknowledged before
//! its bytes are copied to the blob key.
//!
//! A chunked upload (POST, PATCH…, `PUT ?digest` without a body) learns its
//! digest, and so its blob key, only with its last request; its bytes are a
//! multipart upload at the upload key `<repo>/.uploads/<uuid>`. S3 has no
//! rename, so publishing it is a server-side copy, which on SeaweedFS
//! re-writes the bytes (about 40 % of a put's time). A verified upload of
//! at least [`crate::Options::park_min_bytes`] is therefore *parked*: the
//! upload is completed where it is, and, under the digest lock of the
//! placement,
//!
//! 1. the marker `.parked/<alg>-<hex>-<repo as hex>` (at the root of the
//!    store; no repository name starts with a dot) records the upload key
//!    and the size;
//! 2. a zero-byte placeholder is written at the blob key, and the blob is
//!    recorded as the repository's content (the dedupe map's origin);
//! 3. the client gets its `201`, and the move is queued.
//!
//! Marker before placeholder: a zero-byte blob key whose marker exists is
//! parked content, found by [`Registry::content_at`], so every read that
//! resolves placeholders (GET, HEAD, ranges, mounts, GC's and scrub's
//! reads, other repositories' placeholders) serves the upload key. The
//! bucket alone says what is parked: nothing is kept in the metadata store.
//!
//! The move (any instance, idempotent, under the digest lock, which with
//! shared state is a lease in Redis): if the blob key still holds the
//! placeholder, the upload key is copied over it (readers see the
//! placeholder, resolved to the upload, or the whole content; never a
//! part). The upload key and then the marker are deleted once the blob
//! key's content is [`CLEANUP_GRACE`] old, so a read that resolved to the
//! upload key just before the copy still finds it (whichever instance
//! cleans up). A blob key gone (the blob was removed, the removal cut
//! short), or a marker whose upload is gone (stale: it parks nothing, and
//! a placeholder it leaves dangles, missing for reads and replaced by the
//! next push), means only the upload and the marker are left to delete.
//! Blobs over [`PARK_MAX_BYTES`] are not parked (one `CopyObject` could
//! not move them).
//!
//! Resumption: every minute each instance lists the markers and queues the
//! moves of those older than [`RESUME_AGE`] (younger ones are their
//! parking instance's to move): a crashed or stopped instance's parked
//! blobs are moved by the next one to look. Removals (`dedupe.rs`) treat a
//! parked blob as content: it is handed over from the upload key to a
//! placeholder holder when needed, and the placeholder, the upload and the
//! marker deleted. The hourly upload sweep keeps upload keys that a marker
//! names.

use crate::dedupe::is_placeholder;
use crate::error::Result;
use crate::paths;
use crate::registry::Registry;
use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use zot_oci::{Digest, RepoName};

/// Uploads under this size are copied before the answer (the copy is
/// short; parking costs two small writes and a later copy anyway).
pub const PARK_MIN_BYTES: u64 = 16 << 20;

/// The largest blob parked: one `CopyObject` copies at most 5 GiB on AWS.
pub const PARK_MAX_BYTES: u64 = 5 << 30;

/// Time between a move's copy and the deletion of the upload key (the
/// blob key's age, which the copy set, says when it was).
pub(crate) const CLEANUP_GRACE: Duration = Duration::from_secs(30);

/// Markers at least this old are moved by whichever instance finds them.
pub const RESUME_AGE: Duration = Duration::from_secs(60);

/// What a marker records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Marker {
    /// The key of the completed upload holding the content.
    pub upload: String,
    pub size: u64,
    /// For people reading the bucket: the blob it stands for.
    pub repo: String,
    pub digest: String,
}

/// The marker key of `repo`'s parked blob `digest`.
pub(crate) fn marker_key(repo: &RepoName, digest: &Digest) -> String {
    format!("{}/{}", paths::PARKED, marker_name(repo, digest))
}

fn marker_name(repo: &RepoName, digest: &Digest) -> String {
    let mut name = format!("{}-{}-", digest.algorithm().as_str(), digest.hex());
    for b in repo.as_str().bytes() {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// The blob a marker's name stands for.
fn parse_marker_name(name: &str) -> Option<(RepoName, Digest)> {
    let (alg, rest) = name.split_once('-')?;
    let (hex, repo_hex) = rest.split_once('-')?;
    let digest = format!("{alg}:{hex}").parse::<Digest>().ok()?;
    if repo_hex.len() % 2 != 0 || !repo_hex.is_ascii() {
        return None;
    }
    let bytes = (0..repo_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&repo_hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let repo = String::from_utf8(bytes).ok()?.parse::<RepoName>().ok()?;
    Some((repo, digest))
}

/// The outcome of one [`Registry::finish_parked`] step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveStep {
    /// No marker: nothing parked (moved, removed, or never parked).
    Gone,
    /// The content was copied to the blob key; the upload and the marker
    /// are left for a later step.
    Copied,
    /// Copied earlier, less than the grace asked for ago: nothing done.
    Waiting,
    /// The upload and the marker were deleted.
    Cleaned,
}

/// The queue of moves of one registry (`Registry::start_parked_mover`).
#[derive(Default)]
pub(crate) struct Mover {
    tx: OnceLock<mpsc::UnboundedSender<(RepoName, Digest)>>,
    /// Queued, being moved, or waiting for their clean-up.
    queued: Mutex<HashSet<(RepoName, Digest)>>,
}

impl Mover {
    fn done(&self, repo: &RepoName, digest: &Digest) {
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(repo.clone(), digest.clone()));
    }
}

impl Registry {
    /// Parks the verified upload at `upload_key` as blob `digest` of
    /// `repo` when it is large enough and publishing it would be a copy
    /// (called with the digest lock and the placement guard held, in place
    /// of the publish); `false` (nothing done) otherwise.
    pub(crate) async fn try_park(
        &self,
        repo: &RepoName,
        digest: &Digest,
        upload_key: &str,
        size: u64,
    ) -> Result<bool> {
        let Some(min) = self.options.park_min_bytes else {
            return Ok(false);
        };
        // Over S3's limit of one CopyObject the move could never succeed:
        // the copy in line fails before the answer instead.
        if size < min.max(1)
            || size > PARK_MAX_BYTES
            || !self.backend.settle_for_move(upload_key).await?
        {
            return Ok(false);
        }
        // A marker left behind (a removal cut short after the blob key went)
        // names an upload that nothing would delete once this marker
        // replaces it.
        if let Some(old) = self.marker(repo, digest).await?
            && old.upload != upload_key
        {
            self.backend.delete(&old.upload).await?;
        }
        let marker = Marker {
            upload: upload_key.to_owned(),
            size,
            repo: repo.as_str().to_owned(),
            digest: digest.to_string(),
        };
        let data = serde_json::to_vec(&marker).map_err(io::Error::other)?;
        self.backend
            .write_atomic(&marker_key(repo, digest), &data)
            .await?;
        self.backend
            .write_atomic(&paths::blob(repo, digest), b"")
            .await?;
        tracing::debug!(%repo, %digest, upload = upload_key, "parked: acknowledged before the move");
        self.queue_move(repo, digest);
        Ok(true)
    }

    /// The marker of `repo`'s blob `digest` as stored, whether or not the
    /// upload it names is still there.
    pub(crate) async fn marker(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Marker>> {
        let data = match self
            .backend
            .read_at_most(&marker_key(repo, digest), 64 << 10)
            .await
        {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<Marker>(&data) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                tracing::error!(%repo, %digest, error = %e, "unreadable parked marker");
                Ok(None)
            }
        }
    }

    /// The marker of `repo`'s blob `digest`, when it is parked: the upload
    /// it names exists. A marker whose upload is gone (deleted by a failed
    /// step elsewhere) parks nothing: the placeholder is then a dangling
    /// one, missing for reads and replaced by the next push, and the
    /// marker is removed by the next move.
    pub(crate) async fn parked_at(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Marker>> {
        let Some(m) = self.marker(repo, digest).await? else {
            return Ok(None);
        };
        if self.backend.size(&m.upload).await?.is_none() {
            tracing::warn!(%repo, %digest, upload = %m.upload, "parked marker without its upload");
            return Ok(None);
        }
        Ok(Some(m))
    }

    /// One step of the move of `repo`'s parked blob `digest` (under the
    /// digest lock): the copy when the blob key still holds the
    /// placeholder; else, once the blob key's content is at least `grace`
    /// old (a read that resolved to the upload just before the copy keeps
    /// it), the clean-up.
    pub async fn finish_parked(
        &self,
        repo: &RepoName,
        digest: &Digest,
        grace: Duration,
    ) -> Result<MoveStep> {
        let _digest_guard = self.lock_digest(digest).await?;
        let Some(marker) = self.marker(repo, digest).await? else {
            return Ok(MoveStep::Gone);
        };
        let blob = paths::blob(repo, digest);
        let upload_there = self.backend.size(&marker.upload).await?.is_some();
        match self.backend.size(&blob).await? {
            Some(size) if is_placeholder(digest, size) && upload_there => {
                self.backend.copy_over(&marker.upload, &blob).await?;
                tracing::info!(%repo, %digest, size = marker.size, "parked blob moved to its key");
                return Ok(MoveStep::Copied);
            }
            Some(size) if !is_placeholder(digest, size) && upload_there && !grace.is_zero() => {
                let age = self.backend.age_secs(&blob).await?.unwrap_or(0);
                if age < grace.as_secs() {
                    return Ok(MoveStep::Waiting);
                }
            }
            // No blob key: the blob was removed (its removal cut short), or
            // a park on an instance without the shared lease is between its
            // marker and its placeholder: only an old marker is a leftover.
            None if upload_there && !grace.is_zero() => {
                let key = marker_key(repo, digest);
                let age = self.backend.age_secs(&key).await?.unwrap_or(0);
                if age < RESUME_AGE.as_secs() {
                    return Ok(MoveStep::Waiting);
                }
            }
            // The upload is gone (a stale marker: the placeholder, if any,
            // dangles).
            _ => {}
        }
        self.backend.delete(&marker.upload).await?;
        self.backend.delete(&marker_key(repo, digest)).await?;
        Ok(MoveStep::Cleaned)
    }

    /// Every parked blob's move, copy and clean-up, now, in this task
    /// (tests, and tools); returns how many markers there were.
    pub async fn move_parked_now(&self) -> Result<usize> {
        let parked = self.parked_blobs(Duration::ZERO).await?;
        for (repo, digest) in &parked {
            if self.finish_parked(repo, digest, Duration::ZERO).await? == MoveStep::Copied {
                self.finish_parked(repo, digest, Duration::ZERO).await?;
            }
        }
        Ok(parked.len())
    }

    /// The parked blobs whose markers are at least `min_age` old.
    async fn parked_blobs(&self, min_age: Duration) -> Result<Vec<(RepoName, Digest)>> {
        let mut out = Vec::new();
        for entry in self.backend.list(paths::PARKED).await? {
            if entry.is_dir {
                continue;
            }
            let Some(blob) = parse_marker_name(&entry.name) else {
                continue;
            };
            if !min_age.is_zero() {
                let key = format!("{}/{}", paths::PARKED, entry.name);
                let old = self
                    .backend
                    .age_secs(&key)
                    .await?
                    .is_some_and(|age| age >= min_age.as_secs());
                if !old {
                    continue;
                }
            }
            out.push(blob);
        }
        Ok(out)
    }

    /// The upload keys that markers name (kept by the upload sweep).
    pub(crate) async fn parked_uploads(&self) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for (repo, digest) in self.parked_blobs(Duration::ZERO).await? {
            if let Some(m) = self.marker(&repo, &digest).await? {
                out.insert(m.upload);
            }
        }
        Ok(out)
    }

    /// Queues the moves of the parked blobs whose markers are at least
    /// `min_age` old (a crashed instance's, say); returns how many were
    /// queued. Nothing is queued before [`Registry::start_parked_mover`].
    pub async fn resume_parked(&self, min_age: Duration) -> Result<usize> {
        if self.parked.tx.get().is_none() || !self.uses_placeholders() {
            return Ok(0);
        }
        let mut queued = 0;
        for (repo, digest) in self.parked_blobs(min_age).await? {
            if self.queue_move(&repo, &digest) {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Queues the move of `repo`'s parked `digest` unless it is queued
    /// already or no mover runs; whether it was queued.
    fn queue_move(&self, repo: &RepoName, digest: &Digest) -> bool {
        let Some(tx) = self.parked.tx.get() else {
            return false;
        };
        let fresh = self
            .parked
            .queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((repo.clone(), digest.clone()));
        fresh && tx.send((repo.clone(), digest.clone())).is_ok()
    }

    /// Starts the task that moves parked blobs, one at a time, in the
    /// order they were queued (once; later calls do nothing). It holds the
    /// registry weakly and ends with it.
    pub fn start_parked_mover(self: &Arc<Self>) {
        let (tx, rx) = mpsc::unbounded_channel();
        if self.parked.tx.set(tx).is_err() {
            return;
        }
        tokio::spawn(run_mover(Arc::downgrade(self), rx));
    }
}

async fn run_mover(reg: Weak<Registry>, mut rx: mpsc::UnboundedReceiver<(RepoName, Digest)>) {
    while let Some((repo, digest)) = rx.recv().await {
        let Some(r) = reg.upgrade() else {
            return;
        };
        // Off the queue once done, whatever happens (a panic included).
        let queued = Queued {
            reg: reg.clone(),
            repo,
            digest,
        };
        match r
            .finish_parked(&queued.repo, &queued.digest, CLEANUP_GRACE)
            .await
        {
            Ok(MoveStep::Copied | MoveStep::Waiting) => {
                // The clean-up, off the queue: the next moves go on.
                tokio::spawn(clean_up_later(queued));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(repo = %queued.repo, digest = %queued.digest, error = %e, "parked blob: move failed; retried by the next resume");
            }
        }
    }
}

/// A move in this process's queue, taken off it when dropped.
struct Queued {
    reg: Weak<Registry>,
    repo: RepoName,
    digest: Digest,
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(r) = self.reg.upgrade() {
            r.parked.done(&self.repo, &self.digest);
        }
    }
}

/// Waits for the grace period, then cleans up (a few more waits if the
/// blob key is younger than it, e.g. moved again after a new park).
async fn clean_up_later(queued: Queued) {
    for _ in 0..4 {
        tokio::time::sleep(CLEANUP_GRACE).await;
        let Some(r) = queued.reg.upgrade() else {
            return;
        };
        match r
            .finish_parked(&queued.repo, &queued.digest, CLEANUP_GRACE)
            .await
        {
            Ok(MoveStep::Copied | MoveStep::Waiting) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(repo = %queued.repo, digest = %queued.digest, error = %e, "parked blob: clean-up failed; retried by the next resume")
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_round_trip() {
        let long = "x".repeat(255);
        for name in ["a", "library/ubuntu", "a__b/c-d.e/f_g", long.as_str()] {
            let repo: RepoName = name.parse().expect("repo");
            let digest = Digest::sha256_of(name.as_bytes());
            let marker = marker_name(&repo, &digest);
            assert!(
                marker
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{marker}"
            );
            assert_eq!(parse_marker_name(&marker), Some((repo, digest)));
        }
    }

    #[test]
    fn foreign_names_are_not_markers() {
        let d = Digest::sha256_of(b"x");
        let names = [
            String::new(),
            "sha256".to_owned(),
            format!("sha256-{}", d.hex()),
            format!("sha256-{}-6", d.hex()),
            format!("sha256-{}-zz", d.hex()),
            format!("md5-{}-61", d.hex()),
            // "/": not a repository name.
            format!("sha256-{}-2f", d.hex()),
        ];
        for name in &names {
            assert_eq!(parse_marker_name(name), None, "{name}");
        }
    }
}

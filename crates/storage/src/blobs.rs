//! Blobs and blob uploads: reading, deleting, cross-repository mounts, and
//! upload sessions whose bodies stream to disk through incremental hashing.
//!
//! A blob becomes visible under `<repo>/blobs/` only once its digest has been
//! verified, by one atomic rename (or hard link, with dedupe; on S3 a
//! zero-byte placeholder, see `dedupe.rs`). A mismatch removes the
//! upload's data and stores nothing. Reads go through
//! [`Registry::locate_blob`], so a placeholder is served as its content.

use crate::backend::ByteStream;
use crate::error::{Result, StorageError};
use crate::paths;
use crate::registry::Registry;
use crate::upload_writer::{IoLock, StreamOutcome, WrittenHook};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io;
use zot_meta::Change;
use zot_oci::{Digest, RepoName};

/// Where an upload's chunk must start, when the client said so.
pub type ChunkStart = Option<u64>;

impl Registry {
    /// Size of a blob stored in `repo`, or `None` (a placeholder counts
    /// with its content's size, see `dedupe.rs`).
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.locate_blob(repo, digest).await?.map(|(_, size)| size))
    }

    /// The blob as an open file, blocking: for background work that reads
    /// whole blobs on a thread of its own (the vulnerability scanner), so
    /// the reads are that thread's work rather than the blocking pool's.
    /// `Ok(None)` when the backend keeps no local files (S3, or a
    /// placeholder's content elsewhere): use [`Registry::blob_stream`].
    pub fn blob_file(&self, repo: &RepoName, digest: &Digest) -> Result<Option<std::fs::File>> {
        if self.uses_placeholders() {
            return Ok(None);
        }
        match self.backend.open_file(&paths::blob(repo, digest)) {
            None => Ok(None),
            Some(Ok(file)) => Ok(Some(file)),
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::BlobUnknown),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// `len` bytes of the blob from `start`, as a stream of chunks.
    pub async fn blob_stream(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<ByteStream> {
        let own = paths::blob(repo, digest);
        // Without placeholders, or when the dedupe map says this repository
        // holds the content (no other origin), the object is read directly:
        // no extra request on the common path.
        // (A metadata store that cannot answer does not stop a read.)
        let direct = !self.uses_placeholders()
            || len == 0
            || self
                .meta
                .blob_origin(digest)
                .unwrap_or(None)
                .is_none_or(|o| o == repo.as_str());
        if direct {
            match self.backend.read_stream(&own, start, len).await {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StorageError::BlobUnknown);
                }
                Err(e) if !self.uses_placeholders() => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(%repo, %digest, error = %e, "reading the blob directly failed; resolving it")
                }
                Ok(stream) => return Ok(stream),
            }
        }
        // A placeholder (or content moved meanwhile by another holder's
        // removal: resolved again).
        let mut last = None;
        for _ in 0..3 {
            let Some((key, _)) = self.locate_blob(repo, digest).await? else {
                return Err(StorageError::BlobUnknown);
            };
            match self.backend.read_stream(&key, start, len).await {
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
                r => return Ok(r?),
            }
        }
        Err(last.map_or(StorageError::BlobUnknown, StorageError::from))
    }

    /// Removes the blob from `repo` only; other repositories sharing its
    /// content keep it.
    /// A manifest's digest is refused: a manifest is deleted through the
    /// manifests endpoint, which also updates `index.json` and the tags.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let _guard = self.lock_repo(repo).await;
        if self.meta.manifest(repo, digest)?.is_some() {
            return Err(StorageError::BlobIsManifest);
        }
        let deleted = {
            let _digest_guard = self.lock_digest(digest).await?;
            self.delete_blob_object(repo, digest).await?
        };
        if !deleted {
            return Err(StorageError::BlobUnknown);
        }
        self.apply_meta(repo, vec![Change::RemoveBlob(digest.clone())])
            .await
    }

    /// Makes the blob available in `repo` without an upload: from `from`
    /// when given, else from any repository holding it. Returns whether the
    /// blob is now in `repo`.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        if self.blob_size(repo, digest).await?.is_some() {
            return Ok(true);
        }
        let candidates: Vec<String> = match from {
            Some(f) => vec![f.as_str().to_owned()],
            None => self.meta.blob_repos(digest)?,
        };
        let mut guards = None;
        for source in candidates {
            let Ok(source) = source.parse::<RepoName>() else {
                continue;
            };
            if source == *repo {
                continue;
            }
            let Some((from_key, _)) = self.locate_blob(&source, digest).await? else {
                continue;
            };
            if guards.is_none() {
                // As a placement: the layout cannot go meanwhile, and GC
                // (which decides under the digest lock) sees the blob
                // recorded as fresh before its link exists.
                let repo_guard = self.placement_guard(repo).await?;
                guards = Some((repo_guard, self.lock_digest(digest).await?));
                // Found again under the guard: a removal (here or on
                // another instance) may have taken it meanwhile, and a
                // placeholder must not stand for content that is gone.
                if self.locate_blob(&source, digest).await?.is_none() {
                    continue;
                }
            }
            self.lifecycle
                .note_changes(repo, &[Change::AddBlob(digest.clone())]);
            self.mark_placed(repo, &[Change::AddBlob(digest.clone())])
                .await?;
            let to_key = paths::blob(repo, digest);
            let added = vec![Change::AddBlob(digest.clone())];
            let linked = if self.uses_placeholders() {
                self.mount_with_placeholders(repo, digest, &from_key).await
            } else if self.options.dedupe {
                self.backend.link(&from_key, &to_key).await.map(|()| added)
            } else {
                self.copy_blob(&from_key, &to_key, repo)
                    .await
                    .map(|()| added)
            };
            let changes = match linked {
                Ok(changes) => changes,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    vec![Change::AddBlob(digest.clone())]
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            self.apply_meta(repo, changes).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn copy_blob(&self, from: &str, to: &str, repo: &RepoName) -> io::Result<()> {
        let size = self
            .backend
            .size(from)
            .await?
            .ok_or(io::ErrorKind::NotFound)?;
        let tmp = paths::upload(repo, &uuid::Uuid::new_v4());
        let result = async {
            let chunks = self.backend.read_stream(from, 0, size).await?;
            let outcome = self
                .write_stream(&tmp, 0, IoLock::default(), chunks, (|_: &Bytes| {}, None))
                .await
                .map_err(io::Error::other)?;
            if let Some(e) = outcome.io_error {
                return Err(e);
            }
            if let Some(e) = outcome.body_error {
                return Err(io::Error::other(e));
            }
            self.backend.publish(&tmp, to).await
        }
        .await;
        if result.is_err() {
            let _ = self.backend.delete(&tmp).await;
        }
        result
    }

    /// The right to receive one upload body from `client` (its address, an
    /// IPv6 client by its /64, as the API layer identifies it), held while
    /// the body is read. Refused with `TooManyUploadBodies` beyond the
    /// configured bounds per client and in all.
    pub fn upload_body_permit(
        &self,
        client: Option<std::net::IpAddr>,
    ) -> Result<crate::upload_limits::BodyPermit> {
        self.upload_bodies.admit(client)
    }

    /// Opens an upload session in `repo`.
    /// The repository itself is created when its first blob or manifest is
    /// stored, so a failed or abandoned upload leaves no repository behind.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<uuid::Uuid> {
        if let Some(sh) = self.shared_uploads.get() {
            return self.shared_start(sh, repo).await;
        }
        let id = uuid::Uuid::new_v4();
        let caps = crate::uploads::Caps {
            per_repo: self.options.max_uploads_per_repo,
            total: self.options.max_uploads,
        };
        let session = self.uploads.open(id, repo, caps)?;
        // Create the data file now, so that the session survives a restart.
        if let Err(e) = self.backend.sink(&paths::upload(repo, &id), 0).await {
            self.uploads.close(repo, &mut *session.lock().await);
            self.uploads.remove(&id);
            return Err(e.into());
        }
        Ok(id)
    }

    /// The session `id` of `repo`, adopted from its data file after a restart.
    async fn session(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<crate::uploads::SessionRef> {
        if let Some(s) = self.uploads.get(repo, id) {
            return Ok(s);
        }
        match self.backend.size(&paths::upload(repo, id)).await? {
            Some(size) => self
                .uploads
                .get_or_insert(*id, repo, size)
                .ok_or(StorageError::UploadUnknown),
            None => Err(StorageError::UploadUnknown),
        }
    }

    /// The session, locked, unless it was closed meanwhile.
    pub(crate) async fn open_session(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<tokio::sync::OwnedMutexGuard<crate::uploads::Session>> {
        let session = self.session(repo, id).await?.lock_owned().await;
        if session.closed {
            return Err(StorageError::UploadUnknown);
        }
        Ok(session)
    }

    /// Bytes received so far by an upload session.
    pub async fn upload_size(&self, repo: &RepoName, id: &uuid::Uuid) -> Result<u64> {
        if let Some(sh) = self.shared_uploads.get() {
            return self.shared_size(sh, repo, id).await;
        }
        Ok(self.open_session(repo, id).await?.size)
    }

    /// Appends a chunk to an upload. `start`, when given, must equal the
    /// current size. Returns the new size.
    pub async fn append_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
        start: ChunkStart,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.append_upload_watched(repo, id, start, body, None)
            .await
    }

    /// Writes `body` at the session's acknowledged size (dropping anything
    /// a dropped request left past it) and acknowledges what was written.
    /// The running hash is taken out of the session while the body streams
    /// and put back only when it covers exactly the acknowledged bytes: a
    /// request dropped meanwhile leaves the session without one, and
    /// completion hashes the file.
    /// With `staged_at` (a session holding nothing yet, whose blob key is
    /// known), the bytes go straight to that key where the backend can
    /// ([`crate::Backend::staged_sink`]), seen there only once published.
    pub(crate) async fn stream_into<S, E>(
        &self,
        key: &str,
        s: &mut crate::uploads::Session,
        body: S,
        staged_at: Option<&str>,
        on_written: Option<WrittenHook>,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut hasher = s.hasher.take();
        // A write of a request dropped earlier may still be running.
        drop(s.io.lock().await);
        let staged = match staged_at {
            Some(target) if s.size == 0 => self.backend.staged_sink(key, target).await?,
            _ => None,
        };
        let was_staged = staged.is_some();
        let sink = match staged {
            Some(sink) => sink,
            None => self.backend.sink(key, s.size).await?,
        };
        let outcome = crate::upload_writer::write_stream_watched(
            sink,
            s.io.clone(),
            body,
            |chunk: &Bytes| {
                if let Some(h) = hasher.as_mut() {
                    h.update(chunk);
                }
            },
            on_written,
        )
        .await;
        if was_staged && (outcome.io_error.is_some() || outcome.body_error.is_some()) {
            // Nothing of a failed staged write is kept: a plain sink at 0
            // abandons it, and the session is empty again.
            drop(self.backend.sink(key, 0).await?);
            s.size = 0;
            s.hasher = Some(zot_oci::Algorithm::Sha256.hasher());
        } else if outcome.io_error.is_some() {
            // What reached the file is unknown: take its size, rehash later.
            s.size = self.backend.size(key).await?.unwrap_or(0);
        } else {
            s.size += outcome.written;
            s.hasher = hasher;
        }
        if let Some(e) = outcome.io_error {
            return Err(e.into());
        }
        match outcome.body_error {
            Some(e) => Err(StorageError::Body(e)),
            None => Ok(()),
        }
    }

    /// Writes a stream of chunks to `key` from byte `offset` on (see
    /// [`crate::upload_writer`]), its writes serialized by `io`.
    async fn write_stream<S, E>(
        &self,
        key: &str,
        offset: u64,
        io: IoLock,
        body: S,
        (on_chunk, on_written): (impl FnMut(&Bytes), Option<WrittenHook>),
    ) -> Result<StreamOutcome>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        // A write of a request dropped earlier may still be running.
        drop(io.lock().await);
        let sink = self.backend.sink(key, offset).await?;
        Ok(crate::upload_writer::write_stream_watched(sink, io, body, on_chunk, on_written).await)
    }

    /// Completes an upload with an optional last chunk: verifies `digest`
    /// against the whole content and stores the blob. On a mismatch the
    /// upload's data is removed and nothing is stored.
    pub async fn complete_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
        digest: &Digest,
        start: ChunkStart,
        body: Option<S>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if let Some(sh) = self.shared_uploads.get() {
            return self
                .shared_complete(sh, repo, id, digest, start, body)
                .await;
        }
        let mut s = self.open_session(repo, id).await?;
        let key = paths::upload(repo, id);
        if let Some(body) = body {
            if let Some(start) = start
                && start != s.size
            {
                return Err(StorageError::RangeInvalid { size: s.size });
            }
            // The digest is known before the body: when the session holds
            // nothing yet, the bytes are staged at the blob key itself (on
            // S3, no copy at the end), hashed with the digest's algorithm.
            let staged_at = (s.size == 0).then(|| paths::blob(repo, digest));
            if staged_at.is_some() {
                s.hasher = Some(digest.algorithm().hasher());
            }
            self.stream_into(&key, &mut s, body, staged_at.as_deref(), None)
                .await?;
        } else if s.hasher.is_none() {
            // After a dropped request or a restart (the only ways to lose
            // the running hash): drop whatever lies past the acknowledged size.
            drop(s.io.lock().await);
            drop(self.backend.sink(&key, s.size).await?);
        }
        // The content is exactly the stored file. With a running hash, every
        // write of the session completed, so the file is the acknowledged
        // bytes; without one, its size is checked, and the file itself is
        // hashed below (as it is when the digest's algorithm is another).
        if s.hasher.is_none() {
            let stored = self.backend.size(&key).await?.unwrap_or(0);
            if stored != s.size {
                return Err(std::io::Error::other(format!(
                    "upload file has {stored} bytes, the session {}",
                    s.size
                ))
                .into());
            }
        }
        let actual = match s.hasher.clone() {
            Some(h) if h.algorithm() == digest.algorithm() => h.finish(),
            _ => self.hash_object(&key, digest.algorithm(), s.size).await?,
        };
        // From here on the session is over, whatever happens. It leaves the
        // table only once its file is gone (published or removed): until
        // then a request for it finds it closed, and cannot adopt the file.
        // Should this request be dropped before that, the expiry sweep
        // removes the session and its file.
        self.uploads.close(repo, &mut s);
        let result = if actual != *digest {
            self.backend
                .delete(&key)
                .await
                .map_err(StorageError::from)
                .and(Err(StorageError::DigestInvalid(format!(
                    "content has digest {actual}"
                ))))
        } else {
            self.place_blob(repo, digest, &key, s.size).await
        };
        self.uploads.remove(id);
        result.map(|()| s.size)
    }

    pub(crate) async fn hash_object(
        &self,
        key: &str,
        alg: zot_oci::Algorithm,
        size: u64,
    ) -> Result<Digest> {
        let mut chunks = self.backend.read_stream(key, 0, size).await?;
        let mut hasher = alg.hasher();
        while let Some(chunk) = chunks.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }

    /// Stores a verified upload as blob `digest` of `repo`: linked to an
    /// existing copy when dedupe finds one, else renamed into place.
    pub(crate) async fn place_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        upload_key: &str,
        size: u64,
    ) -> Result<()> {
        // Shared repository lock: GC cannot remove the layout under us.
        let _repo_guard = self.placement_guard(repo).await?;
        // One placement of a digest at a time, so that concurrent pushes of
        // the same content to several repositories end up sharing one file.
        let _digest_guard = self.lock_digest(digest).await?;
        if self.uses_placeholders() {
            let changes = self
                .place_with_placeholders(repo, digest, upload_key, size)
                .await?;
            self.mark_placed(repo, &changes).await?;
            return self.apply_meta(repo, changes).await;
        }
        let target = paths::blob(repo, digest);
        let mut placed = self.backend.size(&target).await?.is_some();
        if !placed && self.options.dedupe {
            for other in self.meta.blob_repos(digest)? {
                let Ok(other) = other.parse::<RepoName>() else {
                    continue;
                };
                let source = paths::blob(&other, digest);
                // Only content that at least has the verified size is shared
                // (a layout written by another tool was never verified here).
                if other == *repo || self.backend.size(&source).await? != Some(size) {
                    continue;
                }
                match self.backend.link(&source, &target).await {
                    Ok(()) => {
                        placed = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        placed = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(%repo, %digest, source = %other, error = %e, "dedupe link failed")
                    }
                }
            }
        }
        if placed {
            self.backend.delete(upload_key).await?;
        } else {
            self.backend.publish(upload_key, &target).await?;
        }
        let added = vec![Change::AddBlob(digest.clone())];
        self.mark_placed(repo, &added).await?;
        self.apply_meta(repo, added).await?;
        Ok(())
    }

    /// Cancels an upload and removes its data.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &uuid::Uuid) -> Result<()> {
        if let Some(sh) = self.shared_uploads.get() {
            return self.shared_cancel(sh, repo, id).await;
        }
        let mut s = self.open_session(repo, id).await?;
        self.uploads.close(repo, &mut s);
        let deleted = self.backend.delete(&paths::upload(repo, id)).await;
        self.uploads.remove(id);
        deleted?;
        Ok(())
    }

    /// Removes upload sessions idle for longer than the configured time to
    /// live, and closed sessions left by a dropped request, with their
    /// data. With `sweep_disk`, also files in upload folders that no live
    /// session owns and that are older than that (left by an earlier run);
    /// this walks the folders under the root, so it is done rarely.
    pub async fn expire_uploads(&self, sweep_disk: bool) -> Result<usize> {
        let ttl = self.options.upload_ttl;
        let mut removed = 0;
        let swept = self.uploads.sweep(ttl);
        // A closed session's upload may hold a parked blob (a request
        // dropped between the park and the session's end).
        let parked = match !swept.is_empty() && self.uses_placeholders() {
            true => self.parked_uploads().await?,
            false => Default::default(),
        };
        for (id, repo) in swept {
            let key = paths::upload(&repo, &id);
            if parked.contains(&key) {
                self.uploads.remove(&id);
                continue;
            }
            let deleted = self.backend.delete(&key).await;
            self.uploads.remove(&id);
            deleted?;
            removed += 1;
        }
        if !sweep_disk {
            return Ok(removed);
        }
        let mut stale = Vec::new();
        for repo in self.walk().await?.upload_folders {
            let dir = paths::uploads_dir(&repo);
            for entry in self.backend.list(&dir).await? {
                let name = entry.name;
                let key = format!("{dir}/{name}");
                let live = match self.shared_uploads.get() {
                    Some(sh) => self.shared_upload_live(sh, &name).await?,
                    None => name
                        .parse::<uuid::Uuid>()
                        .is_ok_and(|id| self.uploads.get(&repo, &id).is_some()),
                };
                let old = self
                    .backend
                    .age_secs(&key)
                    .await?
                    .is_some_and(|age| age > ttl.as_secs());
                if !live && old {
                    stale.push(key);
                }
            }
        }
        // Completed uploads holding parked blobs' content (`parked.rs`),
        // read after the sessions were found gone: a session ends only once
        // its upload is parked, so none is missed.
        let parked = match !stale.is_empty() && self.uses_placeholders() {
            true => self.parked_uploads().await?,
            false => Default::default(),
        };
        for key in stale.into_iter().filter(|k| !parked.contains(k)) {
            self.backend.delete(&key).await?;
            removed += 1;
        }
        Ok(removed)
    }
}

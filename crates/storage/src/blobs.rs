//! Blobs and blob uploads: reading, deleting, cross-repository mounts, and
//! upload sessions whose bodies stream to disk through incremental hashing.
//!
//! A blob becomes visible under `<repo>/blobs/` only once its digest has been
//! verified, by one atomic rename (or hard link, with dedupe). A mismatch
//! removes the upload's data and stores nothing.

use crate::backend::BoxReader;
use crate::error::{Result, StorageError};
use crate::paths;
use crate::registry::Registry;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zot_meta::Change;
use zot_oci::{Digest, RepoName};

const WRITE_BUFFER: usize = 1 << 20;

/// Where an upload's chunk must start, when the client said so.
pub type ChunkStart = Option<u64>;

impl Registry {
    /// Size of a blob stored in `repo`, or `None`.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.backend.size(&paths::blob(repo, digest)).await?)
    }

    /// A reader of `len` bytes of the blob from `start`.
    pub async fn blob_reader(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<BoxReader> {
        match self
            .backend
            .reader(&paths::blob(repo, digest), start, len)
            .await
        {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::BlobUnknown),
            r => Ok(r?),
        }
    }

    /// Removes the blob from `repo` only; other repositories sharing its
    /// content keep it.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        if !self.backend.delete(&paths::blob(repo, digest)).await? {
            return Err(StorageError::BlobUnknown);
        }
        self.meta
            .apply(repo, &[Change::RemoveBlob(digest.clone())])?;
        Ok(())
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
        for source in candidates {
            let Ok(source) = source.parse::<RepoName>() else {
                continue;
            };
            if source == *repo || self.blob_size(&source, digest).await?.is_none() {
                continue;
            }
            self.ensure_layout(repo).await?;
            let from_key = paths::blob(&source, digest);
            let to_key = paths::blob(repo, digest);
            let linked = if self.options.dedupe {
                self.backend.link(&from_key, &to_key).await
            } else {
                self.copy_blob(&from_key, &to_key, repo).await
            };
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
            self.meta.apply(repo, &[Change::AddBlob(digest.clone())])?;
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
            let mut reader = self.backend.reader(from, 0, size).await?;
            let mut writer = self.backend.appender(&tmp).await?;
            tokio::io::copy(&mut reader, &mut writer).await?;
            writer.shutdown().await?;
            self.backend.publish(&tmp, to).await
        }
        .await;
        if result.is_err() {
            let _ = self.backend.delete(&tmp).await;
        }
        result
    }

    /// Opens an upload session in `repo`.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<uuid::Uuid> {
        self.ensure_layout(repo).await?;
        // The repository exists from its first upload on (as in zot).
        self.meta.apply(repo, &[])?;
        let id = uuid::Uuid::new_v4();
        // Create the data file now, so that the session survives a restart.
        let mut w = self.backend.appender(&paths::upload(repo, &id)).await?;
        w.shutdown().await?;
        self.uploads.insert(id, repo.clone(), 0, true);
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
            Some(size) => Ok(self.uploads.insert(*id, repo.clone(), size, size == 0)),
            None => Err(StorageError::UploadUnknown),
        }
    }

    /// Bytes received so far by an upload session.
    pub async fn upload_size(&self, repo: &RepoName, id: &uuid::Uuid) -> Result<u64> {
        let session = self.session(repo, id).await?;
        let s = session.lock().await;
        Ok(s.size)
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
        let session = self.session(repo, id).await?;
        let mut s = session.lock().await;
        if let Some(start) = start
            && start != s.size
        {
            return Err(StorageError::RangeInvalid { size: s.size });
        }
        let key = paths::upload(repo, id);
        let result = self.stream_into(&key, &mut s, body).await;
        s.touched = Instant::now();
        result.map(|()| s.size)
    }

    async fn stream_into<S, E>(
        &self,
        key: &str,
        s: &mut crate::uploads::Session,
        mut body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let writer = self.backend.appender(key).await?;
        let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, writer);
        let mut body_error = None;
        let mut written = 0u64;
        let mut io_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        io_error = Some(e);
                        break;
                    }
                    if let Some(h) = s.hasher.as_mut() {
                        h.update(&bytes);
                    }
                    written += bytes.len() as u64;
                }
                Err(e) => {
                    body_error = Some(e.to_string());
                    break;
                }
            }
        }
        let flushed = writer.shutdown().await;
        if io_error.is_some() || flushed.is_err() {
            // What reached the file is unknown: take its size, rehash later.
            s.size = self.backend.size(key).await?.unwrap_or(0);
            s.hasher = None;
        } else {
            s.size += written;
        }
        if let Some(e) = io_error {
            return Err(e.into());
        }
        flushed?;
        match body_error {
            Some(e) => Err(StorageError::Body(e)),
            None => Ok(()),
        }
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
        let session = self.session(repo, id).await?;
        let mut s = session.lock().await;
        let key = paths::upload(repo, id);
        if let Some(body) = body {
            if let Some(start) = start
                && start != s.size
            {
                return Err(StorageError::RangeInvalid { size: s.size });
            }
            self.stream_into(&key, &mut s, body).await?;
        }
        let actual = match s.hasher.clone() {
            Some(h) if h.algorithm() == digest.algorithm() => h.finish(),
            _ => self.hash_object(&key, digest.algorithm(), s.size).await?,
        };
        let size = s.size;
        self.uploads.remove(id);
        if actual != *digest {
            self.backend.delete(&key).await?;
            return Err(StorageError::DigestInvalid(format!(
                "content has digest {actual}"
            )));
        }
        self.place_blob(repo, digest, &key).await?;
        Ok(size)
    }

    async fn hash_object(&self, key: &str, alg: zot_oci::Algorithm, size: u64) -> Result<Digest> {
        let mut reader = self.backend.reader(key, 0, size).await?;
        let mut hasher = alg.hasher();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
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
    ) -> Result<()> {
        let target = paths::blob(repo, digest);
        let mut placed = self.backend.size(&target).await?.is_some();
        if !placed && self.options.dedupe {
            for other in self.meta.blob_repos(digest)? {
                let Ok(other) = other.parse::<RepoName>() else {
                    continue;
                };
                if other == *repo {
                    continue;
                }
                match self
                    .backend
                    .link(&paths::blob(&other, digest), &target)
                    .await
                {
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
        self.meta.apply(repo, &[Change::AddBlob(digest.clone())])?;
        Ok(())
    }

    /// Cancels an upload and removes its data.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &uuid::Uuid) -> Result<()> {
        let session = self.session(repo, id).await?;
        let _s = session.lock().await;
        self.uploads.remove(id);
        self.backend.delete(&paths::upload(repo, id)).await?;
        Ok(())
    }

    /// Removes upload sessions idle for longer than the configured time to
    /// live, with their data. With `sweep_disk`, also data files on disk that
    /// no live session owns and that are older than that (left by an earlier
    /// run); this lists every repository's upload folder, so it is done
    /// rarely.
    pub async fn expire_uploads(&self, sweep_disk: bool) -> Result<usize> {
        let ttl = self.options.upload_ttl;
        let mut removed = 0;
        for (id, repo) in self.uploads.take_expired(ttl) {
            self.backend.delete(&paths::upload(&repo, &id)).await?;
            removed += 1;
        }
        if !sweep_disk {
            return Ok(removed);
        }
        let (repos, _) = self.meta.repos(None, usize::MAX)?;
        for repo in repos {
            let Ok(repo) = repo.parse::<RepoName>() else {
                continue;
            };
            let dir = paths::uploads_dir(&repo);
            for entry in self.backend.list(&dir).await? {
                let name = entry.name;
                let key = format!("{dir}/{name}");
                let live = name
                    .parse::<uuid::Uuid>()
                    .is_ok_and(|id| self.uploads.get(&repo, &id).is_some());
                let old = self
                    .backend
                    .age_secs(&key)
                    .await?
                    .is_some_and(|age| age > ttl.as_secs());
                if !live && old {
                    self.backend.delete(&key).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

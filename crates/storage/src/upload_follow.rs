//! Following an upload while it is written: the streaming pull-through of
//! the sync extension stores a blob through an upload session and serves
//! clients from the same bytes as they reach the upload's file, so they
//! are written once.
//!
//! Invariants:
//! - [`Registry::upload_file`] is a read-only handle of the upload's own
//!   file, only where that file is the data (the local driver, sessions in
//!   this process); elsewhere (S3 multipart parts, sessions shared through
//!   Redis) there is none, and the caller keeps its own copy.
//! - The hook of [`Registry::append_upload_watched`] is called with a
//!   count only once that many bytes of the body are in the file, so a
//!   reader never reads past what was written. The handle stays valid when
//!   completion renames (or removes) the file.

use bytes::Bytes;
use futures_util::Stream;
use std::time::Instant;
use zot_oci::RepoName;

use crate::blobs::ChunkStart;
use crate::error::{Result, StorageError};
use crate::paths;
use crate::registry::Registry;

pub use crate::upload_writer::WrittenHook;

impl Registry {
    /// [`Registry::append_upload`], telling `on_written` (when given) how
    /// many bytes of `body` are in the upload's file after each write;
    /// with sessions shared through Redis, once, at the end.
    pub async fn append_upload_watched<S, E>(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
        start: ChunkStart,
        body: S,
        on_written: Option<WrittenHook>,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        if let Some(sh) = self.shared_uploads.get() {
            let before = self.shared_size(sh, repo, id).await?;
            let size = self.shared_append(sh, repo, id, start, body).await?;
            if let Some(hook) = on_written {
                hook(size.saturating_sub(before));
            }
            return Ok(size);
        }
        let mut s = self.open_session(repo, id).await?;
        if let Some(start) = start
            && start != s.size
        {
            return Err(StorageError::RangeInvalid { size: s.size });
        }
        let key = paths::upload(repo, id);
        let result = self.stream_into(&key, &mut s, body, None, on_written).await;
        s.touched = Instant::now();
        result.map(|()| s.size)
    }

    /// The upload's file, opened for reading, where readers can follow it
    /// (see the module doc); `None` elsewhere.
    pub async fn upload_file(
        &self,
        repo: &RepoName,
        id: &uuid::Uuid,
    ) -> Result<Option<std::fs::File>> {
        if self.shared_uploads.get().is_some() {
            return Ok(None);
        }
        let Some(path) = self.backend.local_path(&paths::upload(repo, id)) else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(path).await?;
        Ok(Some(file.into_std().await))
    }
}

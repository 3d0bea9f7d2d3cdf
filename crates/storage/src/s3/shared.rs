//! Shared uploads on S3: an upload that instances take turns to continue,
//! its state saved in the session record (`crate::backend::UploadState`)
//! rather than in one process's memory.
//!
//! The bytes of an upload are the parts of its multipart upload (each
//! `chunk_size` bytes) followed by a tail of fewer than `chunk_size` bytes,
//! kept as a small object `<upload key>.tail-<random>` in the bucket. A
//! writer reads the tail back, appends the request's bytes, uploads every
//! whole part, and at its flush writes what is left as a *new* tail object
//! (never over the old one): so the state before the write still describes
//! whole data until the caller has saved the new state (a compare-and-set
//! in Redis), and the loser of a race removes only its own objects.
//!
//! Invariants: `parts_len + tail_len` is the upload's length; a tail
//! object, once written, never changes; a part index is written only by
//! the holder of the session's lease (the writer checks the lease's `lost`
//! flag before each write), since S3 keeps the last upload of a part number.

use super::upload::{self, Pending, PendingRef};
use super::{S3Backend, Store, to_io};
use crate::backend::{Backend, SharedSink, UploadState};
use bytes::Bytes;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A writer appending to a shared upload (see the module doc).
struct Sink {
    inner: upload::Sink,
    state: PendingRef,
    store: Arc<Store>,
    tail_key: String,
    tail_path: Path,
    committed: Arc<Mutex<Option<UploadState>>>,
    lost: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
}

fn lease_lost() -> io::Error {
    io::Error::other("the upload session's lease was lost to another instance")
}

impl io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(lease_lost());
        }
        self.inner.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(lease_lost());
        }
        self.inner.flush()?;
        let p = upload::lock(&self.state).clone();
        let tail_len = p.tail.len() as u64;
        let tail = if p.tail.is_empty() {
            None
        } else {
            self.runtime
                .block_on(self.store.put(&self.tail_path, p.tail.clone()))?;
            Some(self.tail_key.clone())
        };
        let state = UploadState {
            multipart: p.multipart.clone(),
            parts: p.parts.iter().map(|id| id.content_id.clone()).collect(),
            parts_len: p.parts_len,
            tail,
            tail_len,
        };
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        Ok(())
    }
}

impl S3Backend {
    /// The tail bytes of `state`, read back (checked against its length).
    async fn read_tail(&self, state: &UploadState) -> io::Result<Bytes> {
        let Some(tail) = &state.tail else {
            return Ok(Bytes::new());
        };
        let got = self.store.s3.get(&self.path(tail)?).await.map_err(to_io)?;
        let bytes = got.bytes().await.map_err(to_io)?;
        if bytes.len() as u64 != state.tail_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "upload tail {tail} has {} bytes, its session {}",
                    bytes.len(),
                    state.tail_len
                ),
            ));
        }
        Ok(bytes)
    }

    pub(super) async fn shared_sink_s3(
        &self,
        key: &str,
        len: u64,
        state: &UploadState,
        lost: Arc<AtomicBool>,
    ) -> io::Result<SharedSink> {
        if len != state.parts_len + state.tail_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "upload state holds {} bytes, the session {len}",
                    state.parts_len + state.tail_len
                ),
            ));
        }
        let pending = Pending {
            dest: None,
            multipart: state.multipart.clone(),
            parts: state
                .parts
                .iter()
                .map(|c| PartId {
                    content_id: c.clone(),
                })
                .collect(),
            parts_len: state.parts_len,
            tail: self.read_tail(state).await?,
            created: std::time::SystemTime::now(),
            previous: None,
        };
        let pending: PendingRef = Arc::new(Mutex::new(pending));
        let inner = upload::Sink::open(
            self.store.clone(),
            self.path(key)?,
            self.chunk_size,
            pending.clone(),
            len,
        )?;
        let tail_key = format!("{key}.tail-{}", uuid::Uuid::new_v4().simple());
        let committed = Arc::new(Mutex::new(None));
        let sink = Sink {
            inner,
            state: pending,
            store: self.store.clone(),
            tail_path: self.path(&tail_key)?,
            tail_key,
            committed: committed.clone(),
            lost,
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(SharedSink {
            sink: Box::new(sink),
            committed,
        })
    }

    pub(super) async fn forget_shared_s3(
        &self,
        key: &str,
        old: &UploadState,
        new: Option<&UploadState>,
    ) -> io::Result<()> {
        if let Some(tail) = &old.tail
            && new.is_none_or(|n| n.tail.as_ref() != Some(tail))
        {
            self.delete(tail).await?;
        }
        if new.is_none() {
            if let Some(id) = &old.multipart {
                let _ = self.store.s3.abort_multipart(&self.path(key)?, id).await;
            }
            self.delete(key).await?;
        }
        Ok(())
    }

    pub(super) async fn finish_shared_s3(
        &self,
        key: &str,
        state: &UploadState,
    ) -> io::Result<String> {
        let path = self.path(key)?;
        let Some(id) = &state.multipart else {
            if let Some(tail) = &state.tail {
                return Ok(tail.clone());
            }
            self.store.put(&path, Bytes::new()).await?;
            return Ok(key.to_owned());
        };
        let mut parts: Vec<PartId> = state
            .parts
            .iter()
            .map(|c| PartId {
                content_id: c.clone(),
            })
            .collect();
        let tail = self.read_tail(state).await?;
        if !tail.is_empty() {
            let part = self
                .store
                .s3
                .put_part(&path, id, parts.len(), PutPayload::from_bytes(tail))
                .await
                .map_err(to_io)?;
            parts.push(part);
        }
        self.store
            .s3
            .complete_multipart(&path, id, parts)
            .await
            .map_err(to_io)?;
        if let Some(tail) = &state.tail {
            let _ = self.delete(tail).await;
        }
        Ok(key.to_owned())
    }
}

//! Upload data on S3: an object that grows by appends cannot exist there,
//! so an upload key being written (`<repo>/.uploads/<uuid>`) is a multipart
//! upload plus a tail of fewer than `chunk_size` bytes, kept in this
//! process's memory ([`Pending`]) until it is read, published or deleted.
//!
//! Invariants:
//! - Every part but the last has exactly `chunk_size` bytes (the server
//!   needs at least 5 MiB; some stores need equal sizes).
//! - The committed state ([`Pending`]) changes only when a sink is
//!   flushed (or cut when opened): a sink dropped without a flush (a
//!   dropped request) leaves it as it was, its extra parts replaced by the
//!   next writer (same part numbers) or left out when the upload completes,
//!   and the multipart upload it created, if any, aborted.
//! - A sink may start at any offset within the committed tail, or at the
//!   length committed before the last flush (the state before it is kept:
//!   a request dropped between its flush and its acknowledgement is cut
//!   off that way). Any other offset inside an uploaded part cannot be
//!   honoured (a part cannot be read back) and fails with `Unsupported`.
//! - The state lives in memory: after a restart the upload is unknown (its
//!   multipart upload is left to the bucket's lifecycle rules).
//! - A *staged* upload ([`Dest`], opened by [`Sink::open_staged`] when the
//!   digest, and so the blob key, is known before the body) has its
//!   multipart upload at the blob key itself. Nothing is seen there until
//!   the multipart upload is completed, which only the publish to that very
//!   key does (after the registry verified the digest): it cannot be read
//!   back, continued at another offset, or completed by a read (`settle`).
//!   A plain sink opened at offset 0 on it (the next request after one
//!   dropped mid-write) aborts its multipart upload and starts over.

use bytes::{Bytes, BytesMut};
use object_store::PutPayload;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{Store, to_io};

/// Where a staged upload's multipart upload lives: the key it may only be
/// published to, and that key's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dest {
    pub key: String,
    pub path: Path,
}

/// The committed state of one upload key.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// Set for a staged upload: its multipart upload is at this key.
    pub dest: Option<Dest>,
    pub multipart: Option<String>,
    pub parts: Vec<PartId>,
    pub parts_len: u64,
    pub tail: Bytes,
    pub created: SystemTime,
    /// The committed state before the last flush (its own `previous` empty).
    pub previous: Option<Box<Pending>>,
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            dest: None,
            multipart: None,
            parts: Vec::new(),
            parts_len: 0,
            tail: Bytes::new(),
            created: SystemTime::now(),
            previous: None,
        }
    }

    pub fn len(&self) -> u64 {
        self.parts_len + self.tail.len() as u64
    }

    /// Whether nothing was written (no byte, no multipart upload).
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.multipart.is_none()
    }

    /// Where the multipart upload lives: the staged key, else `own` (the
    /// upload key's path).
    pub fn path<'a>(&'a self, own: &'a Path) -> &'a Path {
        self.dest.as_ref().map_or(own, |d| &d.path)
    }
}

pub(super) type PendingRef = Arc<Mutex<Pending>>;

pub(super) fn lock(p: &PendingRef) -> std::sync::MutexGuard<'_, Pending> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking writer appending to a pending upload (see the module doc).
pub(super) struct Sink {
    store: Arc<Store>,
    /// Where the multipart upload lives (the staged key's path, if any).
    path: Path,
    dest: Option<Dest>,
    chunk: usize,
    state: PendingRef,
    multipart: Option<String>,
    /// Whether `multipart` was created by this sink and not yet committed.
    created_here: bool,
    parts: Vec<PartId>,
    parts_len: u64,
    buf: BytesMut,
    runtime: tokio::runtime::Handle,
}

impl Sink {
    /// A sink continuing the committed state of `state`, cut to `offset`
    /// (the cut is committed at once).
    pub fn open(
        store: Arc<Store>,
        path: Path,
        chunk: usize,
        state: PendingRef,
        offset: u64,
    ) -> io::Result<Sink> {
        let runtime = tokio::runtime::Handle::current();
        let mut p = lock(&state);
        if let Some(dest) = p.dest.clone() {
            // A staged upload is only ever written in one go: a request
            // dropped mid-write leaves it; the next one starts over.
            if offset != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a staged S3 upload cannot be continued",
                ));
            }
            if let Some(id) = p.multipart.take() {
                let store = store.clone();
                runtime.spawn(async move {
                    let _ = store.s3.abort_multipart(&dest.path, &id).await;
                });
            }
            *p = Pending {
                created: p.created,
                ..Pending::new()
            };
        }
        if offset > p.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("upload has {} bytes, not {offset}", p.len()),
            ));
        }
        if offset < p.parts_len
            && let Some(prev) = p.previous.take()
            && (prev.parts_len..=prev.len()).contains(&offset)
        {
            // Back to the state before the last flush, keeping the
            // multipart upload (its later parts are replaced or left out).
            let multipart = p.multipart.take();
            *p = *prev;
            if p.multipart.is_none() {
                p.multipart = multipart;
            }
        }
        if offset < p.parts_len {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "cannot cut an S3 upload of {} bytes to {offset}: that is inside an uploaded part",
                    p.len()
                ),
            ));
        }
        p.tail = p.tail.slice(..(offset - p.parts_len) as usize);
        let mut buf = BytesMut::with_capacity(chunk);
        buf.extend_from_slice(&p.tail);
        let sink = Sink {
            multipart: p.multipart.clone(),
            created_here: false,
            parts: p.parts.clone(),
            parts_len: p.parts_len,
            buf,
            store,
            path,
            dest: None,
            chunk,
            state: state.clone(),
            runtime,
        };
        drop(p);
        Ok(sink)
    }

    /// A sink writing the empty upload `state` straight to `dest` (see the
    /// module doc), or `None` when the upload holds anything already.
    pub fn open_staged(
        store: Arc<Store>,
        dest: Dest,
        chunk: usize,
        state: PendingRef,
    ) -> Option<Sink> {
        if !lock(&state).is_empty() {
            return None;
        }
        Some(Sink {
            multipart: None,
            created_here: false,
            parts: Vec::new(),
            parts_len: 0,
            buf: BytesMut::with_capacity(chunk),
            store,
            path: dest.path.clone(),
            dest: Some(dest),
            chunk,
            state,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Uploads the first `chunk` bytes of the buffer as the next part.
    fn upload_part(&mut self) -> io::Result<()> {
        let data = self.buf.split_to(self.chunk).freeze();
        let (store, path) = (self.store.clone(), self.path.clone());
        let id = match &self.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .runtime
                    .block_on(
                        store
                            .s3
                            .create_multipart_opts(&path, store.multipart_opts()),
                    )
                    .map_err(to_io)?;
                self.multipart = Some(id.clone());
                self.created_here = true;
                id
            }
        };
        let idx = self.parts.len();
        let len = data.len() as u64;
        let part = self
            .runtime
            .block_on(
                store
                    .s3
                    .put_part(&path, &id, idx, PutPayload::from_bytes(data)),
            )
            .map_err(to_io)?;
        self.parts.push(part);
        self.parts_len += len;
        Ok(())
    }
}

impl io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Fill the buffer up to one part at a time, so it never holds more.
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk {
            self.upload_part()?;
        }
        Ok(n)
    }

    /// Commits what was written: parts and tail become the upload's state.
    fn flush(&mut self) -> io::Result<()> {
        let mut p = lock(&self.state);
        let mut before = p.clone();
        before.previous = None;
        p.previous = Some(Box::new(before));
        p.dest = self.dest.clone();
        p.multipart = self.multipart.clone();
        p.parts = self.parts.clone();
        p.parts_len = self.parts_len;
        p.tail = Bytes::copy_from_slice(&self.buf);
        self.created_here = false;
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // A multipart upload nobody committed would linger in the bucket.
        if self.created_here
            && let Some(id) = self.multipart.take()
        {
            let (store, path) = (self.store.clone(), self.path.clone());
            self.runtime.spawn(async move {
                let _ = store.s3.abort_multipart(&path, &id).await;
            });
        }
    }
}

/// Makes the pending upload `p` an object at `path`: one PUT when it never
/// filled a part, else the tail as the last part and the multipart upload
/// completed.
/// `path` is the upload key's; a staged upload is completed at its own.
pub(super) async fn complete(store: &Store, path: &Path, p: Pending) -> io::Result<()> {
    let path = p.path(path).clone();
    let path = &path;
    let Some(id) = p.multipart else {
        store.put(path, p.tail).await?;
        return Ok(());
    };
    let mut parts = p.parts;
    if !p.tail.is_empty() {
        let part = store
            .s3
            .put_part(path, &id, parts.len(), PutPayload::from_bytes(p.tail))
            .await
            .map_err(to_io)?;
        parts.push(part);
    }
    store
        .s3
        .complete_multipart(path, &id, parts)
        .await
        .map_err(to_io)?;
    Ok(())
}

/// Gives up the pending upload `p` (its multipart upload aborted).
pub(super) async fn abort(store: &Store, path: &Path, p: Pending) {
    if let Some(id) = &p.multipart {
        let _ = store.s3.abort_multipart(p.path(path), id).await;
    }
}

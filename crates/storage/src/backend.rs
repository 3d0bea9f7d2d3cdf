//! The storage driver: the dozen operations on named objects that the
//! registry semantics need. Keys are `/`-separated relative paths built only
//! by [`crate::paths`]; a driver never interprets them beyond that.
//!
//! Contract every driver keeps:
//! - `write_atomic` and `publish` are all-or-nothing: a reader sees the old
//!   object or the complete new one, never a part.
//! - With `commit` on, an operation that returns has made its result durable.
//! - A sink's writes count once it is flushed: a sink dropped without a
//!   flush may have left a prefix of its data (local disk) or nothing (S3);
//!   either way the next `sink` at the acknowledged offset cuts it off.
//! - `delete_prefix` removes every object under the prefix; `list` may
//!   still report an emptied folder on object stores that keep folder
//!   entries, so callers treat a listed folder as a hint, not a promise.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::io;
use std::pin::Pin;
use zot_meta::Fingerprint;

/// Where a shared upload's data stands (see `shared/sessions.rs`): saved
/// in the session record, so that any process can continue the upload. The
/// local driver keeps everything in the upload's file (on a file system
/// all instances mount) and leaves it empty; the S3 driver keeps the
/// multipart upload, its parts and the object holding the tail (the bytes
/// after the last whole part).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    /// Content ids (ETags) of the parts, in order, each `chunk_size` bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    #[serde(default)]
    pub parts_len: u64,
    /// Key of the object holding the bytes after the parts (fewer than a
    /// part), if there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    #[serde(default)]
    pub tail_len: u64,
}

/// The writer of a shared upload ([`Backend::shared_sink`]): once its
/// `flush` returned, `committed` holds the upload's new state.
pub struct SharedSink {
    pub sink: BoxSink,
    pub committed: std::sync::Arc<std::sync::Mutex<Option<UploadState>>>,
}

/// The content of an object as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;
pub type BoxSink = Box<dyn std::io::Write + Send>;

/// An object read with its version (see [`Backend::read_versioned`]).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub data: Vec<u8>,
    pub version: String,
    pub fingerprint: Fingerprint,
}

/// A child of a listed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// A prefix with children of its own (a folder), not an object.
    pub is_dir: bool,
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Size of the object, or `None` when it does not exist.
    async fn size(&self, key: &str) -> io::Result<Option<u64>>;
    /// The whole object; only for small objects (index files, manifests).
    async fn read(&self, key: &str) -> io::Result<Vec<u8>>;
    /// The whole object if it has at most `max` bytes; else an error of
    /// kind `FileTooLarge`, having read nothing more than `max + 1` bytes.
    async fn read_at_most(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        use futures_util::StreamExt;
        let size = self
            .size(key)
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        if size > max {
            return Err(too_large(size, max));
        }
        let mut stream = self.read_stream(key, 0, size).await?;
        let mut out = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
    /// [`Backend::read_at_most`] of several objects, in order, in one round
    /// trip where the backend can (background work reading many small
    /// objects). Once `budget` bytes have been read, the remaining objects
    /// are not read (`None`), so memory stays bounded whatever the keys.
    async fn read_many_at_most(
        &self,
        keys: Vec<String>,
        max: u64,
        budget: u64,
    ) -> Vec<Option<io::Result<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut total = 0u64;
        for key in &keys {
            if total >= budget {
                out.push(None);
                continue;
            }
            let read = self.read_at_most(key, max).await;
            total += read.as_ref().map_or(0, |b| b.len() as u64);
            out.push(Some(read));
        }
        out
    }
    /// `len` bytes from `start`, as a stream of chunks (the object must
    /// exist when this returns).
    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream>;
    /// The object as a file opened for reading, blocking (for a caller on
    /// a thread of its own, not the runtime's); `None` when the backend
    /// keeps no local files (object storage), and then only
    /// [`Backend::read_stream`] reads it.
    fn open_file(&self, _key: &str) -> Option<io::Result<std::fs::File>> {
        None
    }
    /// Replaces the object with `data`, atomically.
    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()>;
    /// Whether [`Backend::write_atomic_if`] is one atomic conditional write
    /// (so that writers in several processes can use it).
    fn conditional_writes(&self) -> bool {
        false
    }
    /// The whole object (small ones only), its version (a token that
    /// changes with every write: S3's ETag; on local disk, the fingerprint
    /// rendered) and its fingerprint, all of the same read.
    async fn read_versioned(&self, key: &str) -> io::Result<Versioned> {
        let fingerprint = self
            .fingerprint(key)
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Versioned {
            data: self.read(key).await?,
            version: local_version(&fingerprint),
            fingerprint,
        })
    }
    /// [`Backend::write_atomic`] only if the object's version is still
    /// `expected` (`None`: only if it does not exist). Returns the new
    /// object's fingerprint, or `None`, having written nothing, when the
    /// version was another. On S3 the check and the write are one
    /// conditional PUT (`If-Match` / `If-None-Match`) and the fingerprint
    /// comes from its answer, so writers in several processes cannot lose
    /// each other's update nor take the other's version for their own; the
    /// default checks, writes, then looks, which is only safe under the
    /// caller's lock in one process (the local disk, whose root one
    /// process holds).
    async fn write_atomic_if(
        &self,
        key: &str,
        data: &[u8],
        expected: Option<&str>,
    ) -> io::Result<Option<Fingerprint>> {
        let current = self.fingerprint(key).await?.map(|f| local_version(&f));
        if current.as_deref() != expected {
            return Ok(None);
        }
        self.write_atomic(key, data).await?;
        self.fingerprint(key).await
    }
    /// A blocking writer that writes the object from byte `offset` on,
    /// after cutting the object to `offset` bytes (it is created, empty,
    /// if missing); it is used from a blocking thread (it may block on the
    /// network). Fails with `UnexpectedEof` when the object is shorter than
    /// `offset`; an S3 upload fails with `Unsupported` when `offset` lies
    /// inside a part already uploaded, unless it is the length before the
    /// last flush (see `s3/upload.rs`). Written data is
    /// committed by `flush`, and not visible under any other key until
    /// [`Backend::publish`].
    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink>;
    /// A writer like [`Backend::sink`] at offset 0 of the upload at `key`
    /// (which must hold nothing yet), whose data goes straight to `target`
    /// but is seen there only once [`Backend::publish`]`(key, target)`
    /// commits it (on S3: a multipart upload at `target`, completed by the
    /// publish, so the usual copy from the upload key is saved). Until
    /// then it is the upload at `key` for [`Backend::size`] and
    /// [`Backend::delete`] (which abandons it), but cannot be read back or
    /// published elsewhere. `None` when the backend has no such thing or
    /// the upload holds data; the caller then uses [`Backend::sink`].
    async fn staged_sink(&self, key: &str, target: &str) -> io::Result<Option<BoxSink>> {
        let _ = (key, target);
        Ok(None)
    }
    /// A blocking writer continuing the shared upload at `key`, whose first
    /// `len` bytes are acknowledged and stand at `state`; anything a dropped
    /// writer left past `len` is cut off. Its flush commits what was
    /// written and leaves the new state in [`SharedSink::committed`] for
    /// the caller to save; objects of the old state it no longer needs are
    /// left for [`Backend::forget_shared`], so a state not saved (a lost
    /// race) still describes whole data. When `lost` turns true (the
    /// session's lease was lost) it writes nothing more. The default suits
    /// a driver whose [`Backend::sink`] works across processes (a file on
    /// a shared file system).
    async fn shared_sink(
        &self,
        key: &str,
        len: u64,
        state: &UploadState,
        lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> io::Result<SharedSink> {
        let _ = lost;
        let sink = self.sink(key, len).await?;
        let committed = std::sync::Arc::new(std::sync::Mutex::new(None));
        Ok(SharedSink {
            sink: Box::new(crate::backend::CommitOnFlush {
                sink,
                state: state.clone(),
                committed: committed.clone(),
            }),
            committed,
        })
    }
    /// Removes what `old` holds and `new` does not (a replaced tail); with
    /// `new` absent, the whole upload at `key` (a cancelled or expired one).
    async fn forget_shared(
        &self,
        key: &str,
        old: &UploadState,
        new: Option<&UploadState>,
    ) -> io::Result<()> {
        let _ = old;
        if new.is_none() {
            self.delete(key).await?;
        }
        Ok(())
    }
    /// Makes the shared upload at `key` one object and returns its key
    /// (read it, publish it, delete it like any object).
    async fn finish_shared(&self, key: &str, state: &UploadState) -> io::Result<String> {
        let _ = state;
        Ok(key.to_owned())
    }
    /// The file holding the object, where the driver keeps objects as
    /// files on a local file system (so that a reader may follow one being
    /// written); `None` for object stores.
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let _ = key;
        None
    }
    /// Moves the object at `from` to `to`, atomically, replacing `to`.
    async fn publish(&self, from: &str, to: &str) -> io::Result<()>;
    /// Whether [`Backend::publish`] of the upload at `from` would write its
    /// bytes again (an object store, which has no rename: a server-side
    /// copy); if so, the upload is made a complete object where it is
    /// (`true`), so that it can be read at `from` and moved later (parked
    /// blobs, `parked.rs`). `false` (nothing done) when publishing costs no
    /// copy: a local rename, an upload staged at its blob key, or one under
    /// a part (a single `PUT` at the target).
    async fn settle_for_move(&self, from: &str) -> io::Result<bool> {
        let _ = from;
        Ok(false)
    }
    /// Makes `to` share the content of `from` (a hard link on disk), so that
    /// identical content is stored once. Fails with `AlreadyExists` if `to` exists.
    async fn link(&self, from: &str, to: &str) -> io::Result<()>;
    /// Whether identical content is shared by zero-byte placeholders that
    /// the registry resolves through the dedupe map (an object store, which
    /// has no hard links; see `dedupe.rs`) rather than by [`Backend::link`].
    /// A store answering yes also serves [`Backend::copy_over`].
    fn placeholders(&self) -> bool {
        false
    }
    /// Replaces `to` with a copy of `from` in one step (a server-side copy):
    /// moves shared content onto a placeholder. Only asked of a backend
    /// with [`Backend::placeholders`].
    async fn copy_over(&self, from: &str, to: &str) -> io::Result<()> {
        let _ = (from, to);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The objects directly under a prefix with their sizes, sorted by
    /// name (folders left out), in one listing where the backend can.
    async fn list_sizes(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for entry in self.list(prefix).await? {
            if entry.is_dir {
                continue;
            }
            let key = format!("{}/{}", prefix.trim_end_matches('/'), entry.name);
            if let Some(size) = self.size(&key).await? {
                out.push((entry.name, size));
            }
        }
        Ok(out)
    }
    /// Removes the object; `Ok(false)` when it did not exist.
    async fn delete(&self, key: &str) -> io::Result<bool>;
    /// Removes everything under the prefix.
    async fn delete_prefix(&self, prefix: &str) -> io::Result<()>;
    /// The direct children of a prefix, sorted by name.
    async fn list(&self, prefix: &str) -> io::Result<Vec<Entry>>;
    /// Identity of an object's current version, to detect changes made
    /// behind the registry's back.
    async fn fingerprint(&self, key: &str) -> io::Result<Option<Fingerprint>>;
    /// [`Backend::fingerprint`] of several objects, in order, in one round
    /// trip where the backend can (start-up checks every `index.json`).
    async fn fingerprints(&self, keys: Vec<String>) -> Vec<io::Result<Option<Fingerprint>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in &keys {
            out.push(self.fingerprint(key).await);
        }
        out
    }
    /// Seconds since the object was last modified.
    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>>;
    /// Whether the store answers now, as far as this driver knows without a
    /// request (an object store's recent connection failures or server
    /// errors); a local disk always does.
    fn reachable(&self) -> bool {
        true
    }
}

/// An error of a store that could not be reached, or answered a server
/// error (5xx): a passing condition, which the API answers `503` with
/// `Retry-After` rather than as an internal error. Drivers wrap such
/// errors in it (as the `source` of an [`io::Error`]).
#[derive(Debug, thiserror::Error)]
#[error("storage unavailable: {0}")]
pub struct Unavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Whether `e` (or an error it wraps) is [`Unavailable`].
pub fn is_unavailable(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
    while let Some(err) = cur {
        if err.is::<Unavailable>() {
            return true;
        }
        cur = match err.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|e| e as _),
            None => err.source(),
        };
    }
    false
}

/// The default shared sink: a sink whose state is the file itself.
struct CommitOnFlush {
    sink: BoxSink,
    state: UploadState,
    committed: std::sync::Arc<std::sync::Mutex<Option<UploadState>>>,
}

impl std::io::Write for CommitOnFlush {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.sink.write(data)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.sink.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()?;
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.state.clone());
        Ok(())
    }
}

/// The error of [`Backend::read_at_most`] for an object over the limit.
pub(crate) fn too_large(size: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("{size} bytes, more than the {max} that may be read whole"),
    )
}

/// The version token of the default [`Backend::read_versioned`].
fn local_version(f: &Fingerprint) -> String {
    format!("{}-{}-{}", f.size, f.mtime_ns, f.inode)
}

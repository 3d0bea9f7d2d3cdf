//! The storage driver: the dozen operations on named objects that the
//! registry semantics need. Keys are `/`-separated relative paths built only
//! by [`crate::paths`]; a driver never interprets them beyond that.
//!
//! Contract every driver keeps:
//! - `write_atomic` and `publish` are all-or-nothing: a reader sees the old
//!   object or the complete new one, never a part.
//! - With `commit` on, an operation that returns has made its result durable.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::io;
use std::pin::Pin;
use zot_meta::Fingerprint;

/// The content of an object as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;
pub type BoxSink = Box<dyn std::io::Write + Send>;

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
    /// Replaces the object with `data`, atomically.
    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()>;
    /// A blocking writer that writes the object from byte `offset` on,
    /// after cutting the object to `offset` bytes (it is created, empty,
    /// if missing); it is used from a blocking thread. Fails with
    /// `UnexpectedEof` when the object is shorter than `offset`. Written
    /// data is not visible under any other key until [`Backend::publish`].
    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink>;
    /// Moves the object at `from` to `to`, atomically, replacing `to`.
    async fn publish(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes `to` share the content of `from` (a hard link on disk), so that
    /// identical content is stored once. Fails with `AlreadyExists` if `to` exists.
    async fn link(&self, from: &str, to: &str) -> io::Result<()>;
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
}

/// The error of [`Backend::read_at_most`] for an object over the limit.
pub(crate) fn too_large(size: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("{size} bytes, more than the {max} that may be read whole"),
    )
}

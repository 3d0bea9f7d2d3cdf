//! The S3 driver (over `object_store`): every key is an object under the
//! store's prefix in one bucket, so each repository is still an OCI image
//! layout (`<prefix>/<repo>/index.json`, `.../blobs/sha256/<hex>`).
//!
//! How it keeps the [`Backend`] contract where S3 differs from a disk:
//! - `write_atomic` is one PUT: readers see the old or the new object;
//!   `write_atomic_if` a conditional one (`If-Match` on the ETag that
//!   `read_versioned` returned, or `If-None-Match: *`).
//! - `sink` appends to a multipart upload held in memory ([`upload`]): parts
//!   of `chunk_size`, small chunks buffered up to a part, committed at
//!   flush; an offset inside an uploaded part is refused (`Unsupported`)
//!   unless it is the length before the last flush.
//! - `publish` of an upload that never filled a part is one PUT of its
//!   bytes at the target; a larger one is completed at its upload key,
//!   then copied server-side to the target and deleted (S3 has no rename),
//!   unless it was *staged* (`staged_sink`, the digest known before the
//!   body): then its multipart upload is at the target already, and the
//!   publish completes it there (no copy). A staged upload is never
//!   completed otherwise, so nothing unverified is ever seen at a blob key.
//! - `link` and `copy_over` are server-side copies; with dedupe the
//!   registry shares content by zero-byte placeholders instead
//!   (`placeholders()`, see `crate::dedupe`).
//! - `fingerprint` is the size and a hash of the ETag.
//! - Folders are key prefixes: `list` lists with the `/` delimiter, and
//!   a folder exists while an object lies under it.
//!
//! A store that cannot be reached, or answers server errors, fails
//! requests with [`crate::backend::Unavailable`] (answered `503`) after a
//! few seconds of retries, and reports itself unreachable ([`reach`]).
//!
//! Reading an upload key that is still pending completes it first: it is
//! an ordinary object from then on. Uploads shared between instances keep
//! their state in the session record instead of this process's memory
//! ([`shared`]).

mod open;
mod reach;
mod shared;
mod upload;

pub use open::S3Options;

use crate::backend::{Backend, BoxSink, ByteStream, Entry, SharedSink, UploadState, Versioned};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, UpdateVersion,
};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use upload::{Dest, Pending, PendingRef};
use zot_meta::Fingerprint;

/// The bucket and how objects are written to it.
pub(crate) struct Store {
    s3: AmazonS3,
    /// The same bucket with a request timeout for server-side copies,
    /// which take a while for large objects (SeaweedFS copies about
    /// 200 MB/s here): [`open::COPY_TIMEOUT`] instead of the 30 s of a
    /// request.
    copier: AmazonS3,
    storage_class: Option<String>,
}

impl Store {
    fn attributes(&self) -> Attributes {
        let mut a = Attributes::new();
        if let Some(c) = &self.storage_class {
            a.insert(Attribute::StorageClass, c.clone().into());
        }
        a
    }

    fn multipart_opts(&self) -> PutMultipartOptions {
        PutMultipartOptions {
            attributes: self.attributes(),
            ..Default::default()
        }
    }

    async fn put(&self, path: &Path, data: Bytes) -> io::Result<object_store::PutResult> {
        let opts = PutOptions {
            attributes: self.attributes(),
            ..Default::default()
        };
        self.s3
            .put_opts(path, PutPayload::from_bytes(data), opts)
            .await
            .map_err(to_io)
    }
}

/// An `object_store` error as an I/O error of the matching kind.
pub(crate) fn to_io(e: object_store::Error) -> io::Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        E::NotSupported { .. } | E::NotImplemented { .. } => io::ErrorKind::Unsupported,
        _ if reach::is_unavailable(&e) => {
            return io::Error::other(crate::backend::Unavailable(Box::new(e)));
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// FNV-1a: a stable 64-bit identity of an ETag (stored in fingerprints).
fn etag_id(etag: &str) -> u64 {
    etag.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An object's fingerprint: its size and ETag (no time, so that a write's
/// answer gives the same fingerprint as a later HEAD).
fn fingerprint_of(size: u64, etag: Option<&str>) -> Fingerprint {
    Fingerprint {
        size,
        mtime_ns: 0,
        inode: etag.map(etag_id).unwrap_or(0),
    }
}

pub struct S3Backend {
    store: Arc<Store>,
    /// Key prefix of the store in the bucket ("" or without slashes at the ends).
    prefix: String,
    chunk_size: usize,
    /// Upload keys being written, by key.
    pending: Mutex<HashMap<String, PendingRef>>,
    /// Whether the store answered its latest request.
    reach: Arc<reach::Reachability>,
}

impl S3Backend {
    fn path(&self, key: &str) -> io::Result<Path> {
        let full = match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        };
        Path::parse(&full).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingRef>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self, key: &str) -> Option<PendingRef> {
        self.pending_map().get(key).cloned()
    }

    /// Completes the pending upload at `key`, if any: it is an object then.
    /// A failed completion keeps the upload pending (it can be retried).
    async fn settle(&self, key: &str) -> io::Result<()> {
        let Some(p) = self.pending(key) else {
            return Ok(());
        };
        let state = upload::lock(&p).clone();
        if state.dest.is_some() {
            // Completing it would make it visible at the blob key unverified.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{key} is a staged upload: only its publish completes it"),
            ));
        }
        upload::complete(&self.store, &self.path(key)?, state).await?;
        let mut map = self.pending_map();
        if map.get(key).is_some_and(|q| Arc::ptr_eq(q, &p)) {
            map.remove(key);
        }
        Ok(())
    }

    async fn head(&self, key: &str) -> io::Result<Option<object_store::ObjectMeta>> {
        not_found_is_none(self.store.s3.head(&self.path(key)?).await.map_err(to_io))
    }

    /// The chunk size of multipart parts (`chunksize`).
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }
}

#[async_trait]
impl Backend for S3Backend {
    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        if let Some(p) = self.pending(key) {
            return Ok(Some(upload::lock(&p).len()));
        }
        Ok(self.head(key).await?.map(|m| m.size))
    }

    async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        self.settle(key).await?;
        let got = self.store.s3.get(&self.path(key)?).await.map_err(to_io)?;
        Ok(got.bytes().await.map_err(to_io)?.to_vec())
    }

    async fn read_at_most(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        self.settle(key).await?;
        let got = self.store.s3.get(&self.path(key)?).await.map_err(to_io)?;
        if got.meta.size > max {
            return Err(crate::backend::too_large(got.meta.size, max));
        }
        let mut out = Vec::with_capacity(got.meta.size as usize);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(to_io)?);
            if out.len() as u64 > max {
                return Err(crate::backend::too_large(out.len() as u64, max));
            }
        }
        Ok(out)
    }

    async fn read_many_at_most(
        &self,
        keys: Vec<String>,
        max: u64,
        budget: u64,
    ) -> Vec<Option<io::Result<Vec<u8>>>> {
        // Several requests in flight (one round trip per object is the
        // cost), a group at a time: a group starts only while under the
        // budget, so it is passed by at most one group's reads.
        const GROUP: usize = 16;
        let mut out = Vec::with_capacity(keys.len());
        let mut total = 0u64;
        for group in keys.chunks(GROUP) {
            if total >= budget {
                out.extend(group.iter().map(|_| None));
                continue;
            }
            // Owned keys: futures borrowing the items would not be `Send`
            // for every lifetime (async_trait needs it).
            let read: Vec<io::Result<Vec<u8>>> = futures_util::stream::iter(group.to_vec())
                .map(|k| async move { self.read_at_most(&k, max).await })
                .buffered(GROUP)
                .collect()
                .await;
            total += read
                .iter()
                .map(|r| r.as_ref().map_or(0, |b| b.len() as u64))
                .sum::<u64>();
            out.extend(read.into_iter().map(Some));
        }
        out
    }

    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream> {
        self.settle(key).await?;
        let path = self.path(key)?;
        if len == 0 {
            // An empty range cannot be asked for; the object must exist.
            self.store.s3.head(&path).await.map_err(to_io)?;
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..Default::default()
        };
        let got = self.store.s3.get_opts(&path, opts).await.map_err(to_io)?;
        let mut left = len;
        let body = got.into_stream().map_err(to_io);
        // Exactly `len` bytes, or an error: never a silently short body.
        let exact = body
            .map(move |chunk| {
                let chunk = chunk?;
                left = left.checked_sub(chunk.len() as u64).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "object longer than the range")
                })?;
                Ok((chunk, left))
            })
            .chain(futures_util::stream::once(async {
                Ok((Bytes::new(), u64::MAX))
            }))
            .scan(false, |done, item: io::Result<(Bytes, u64)>| {
                let out = match item {
                    _ if *done => None,
                    Err(e) => {
                        *done = true;
                        Some(Err(e))
                    }
                    // The end marker: reached only when the body ran short.
                    Ok((_, u64::MAX)) => {
                        *done = true;
                        Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "object shorter than expected",
                        )))
                    }
                    Ok((chunk, 0)) => {
                        *done = true;
                        Some(Ok(chunk))
                    }
                    Ok((chunk, _)) => Some(Ok(chunk)),
                };
                futures_util::future::ready(out)
            });
        Ok(Box::pin(exact))
    }

    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        self.store
            .put(&self.path(key)?, Bytes::copy_from_slice(data))
            .await
            .map(|_| ())
    }

    fn conditional_writes(&self) -> bool {
        true
    }

    async fn read_versioned(&self, key: &str) -> io::Result<Versioned> {
        let got = self.store.s3.get(&self.path(key)?).await.map_err(to_io)?;
        let etag =
            got.meta.e_tag.clone().ok_or_else(|| {
                io::Error::new(io::ErrorKind::Unsupported, "the server sent no ETag")
            })?;
        let fingerprint = fingerprint_of(got.meta.size, Some(&etag));
        Ok(Versioned {
            data: got.bytes().await.map_err(to_io)?.to_vec(),
            version: etag,
            fingerprint,
        })
    }

    async fn write_atomic_if(
        &self,
        key: &str,
        data: &[u8],
        expected: Option<&str>,
    ) -> io::Result<Option<Fingerprint>> {
        let mode = match expected {
            None => PutMode::Create,
            Some(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.to_owned()),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            attributes: self.store.attributes(),
            ..Default::default()
        };
        let payload = PutPayload::from_bytes(Bytes::copy_from_slice(data));
        match self
            .store
            .s3
            .put_opts(&self.path(key)?, payload, opts)
            .await
        {
            Ok(put) => Ok(Some(fingerprint_of(
                data.len() as u64,
                put.e_tag.as_deref(),
            ))),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink> {
        let path = self.path(key)?;
        let state = match self.pending(key) {
            Some(p) => p,
            None if offset == 0 => {
                let p: PendingRef = Arc::new(Mutex::new(Pending::new()));
                self.pending_map()
                    .entry(key.to_owned())
                    .or_insert(p)
                    .clone()
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("no upload in progress at {key} to continue at {offset}"),
                ));
            }
        };
        let sink = upload::Sink::open(self.store.clone(), path, self.chunk_size, state, offset)?;
        Ok(Box::new(sink))
    }

    async fn staged_sink(&self, key: &str, target: &str) -> io::Result<Option<BoxSink>> {
        let dest = Dest {
            key: target.to_owned(),
            path: self.path(target)?,
        };
        let state = {
            let mut map = self.pending_map();
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(Pending::new())))
                .clone()
        };
        let sink = upload::Sink::open_staged(self.store.clone(), dest, self.chunk_size, state);
        Ok(sink.map(|s| Box::new(s) as BoxSink))
    }

    async fn shared_sink(
        &self,
        key: &str,
        len: u64,
        state: &UploadState,
        lost: Arc<std::sync::atomic::AtomicBool>,
    ) -> io::Result<SharedSink> {
        self.shared_sink_s3(key, len, state, lost).await
    }

    async fn forget_shared(
        &self,
        key: &str,
        old: &UploadState,
        new: Option<&UploadState>,
    ) -> io::Result<()> {
        self.forget_shared_s3(key, old, new).await
    }

    async fn finish_shared(&self, key: &str, state: &UploadState) -> io::Result<String> {
        self.finish_shared_s3(key, state).await
    }

    async fn publish(&self, from: &str, to: &str) -> io::Result<()> {
        let to_path = self.path(to)?;
        if let Some(p) = self.pending(from) {
            let state = upload::lock(&p).clone();
            if let Some(dest) = &state.dest {
                if dest.key != to {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{from} is staged for {}, not {to}", dest.key),
                    ));
                }
                // The commit: the multipart upload at `to` completed (or,
                // under a part, one PUT there).
                upload::complete(&self.store, &to_path, state).await?;
                let mut map = self.pending_map();
                if map.get(from).is_some_and(|q| Arc::ptr_eq(q, &p)) {
                    map.remove(from);
                }
                return Ok(());
            }
        }
        let small = self.pending(from).and_then(|p| {
            let state = upload::lock(&p);
            state.multipart.is_none().then(|| state.tail.clone())
        });
        if let Some(data) = small {
            self.store.put(&to_path, data).await?;
            self.pending_map().remove(from);
            return Ok(());
        }
        self.settle(from).await?;
        let from_path = self.path(from)?;
        self.store
            .copier
            .copy(&from_path, &to_path)
            .await
            .map_err(to_io)?;
        self.store.s3.delete(&from_path).await.map_err(to_io)
    }

    async fn settle_for_move(&self, from: &str) -> io::Result<bool> {
        if let Some(p) = self.pending(from) {
            let copies = {
                let state = upload::lock(&p);
                state.dest.is_none() && state.multipart.is_some()
            };
            if !copies {
                return Ok(false);
            }
            self.settle(from).await?;
            return Ok(true);
        }
        // A completed object (a finished shared upload): publishing copies.
        Ok(self.head(from).await?.is_some())
    }

    async fn link(&self, from: &str, to: &str) -> io::Result<()> {
        if self.head(to).await?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.copy_over(from, to).await
    }

    fn placeholders(&self) -> bool {
        true
    }

    async fn copy_over(&self, from: &str, to: &str) -> io::Result<()> {
        self.settle(from).await?;
        self.store
            .copier
            .copy(&self.path(from)?, &self.path(to)?)
            .await
            .map_err(to_io)
    }

    async fn list_sizes(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let path = self.path(prefix)?;
        let listed = self
            .store
            .s3
            .list_with_delimiter(Some(&path))
            .await
            .map_err(to_io)?;
        let mut out: Vec<(String, u64)> = listed
            .objects
            .iter()
            .filter(|m| m.location != path)
            .filter_map(|m| Some((m.location.filename()?.to_owned(), m.size)))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key)?;
        let pending = self.pending_map().remove(key);
        let was_pending = pending.is_some();
        if let Some(p) = pending {
            let state = upload::lock(&p).clone();
            upload::abort(&self.store, &path, state).await;
        }
        // S3 answers a delete of a missing key as a success: look first.
        let existed = self.head(key).await?.is_some();
        if existed {
            self.store.s3.delete(&path).await.map_err(to_io)?;
        }
        Ok(existed || was_pending)
    }

    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        let path = self.path(prefix)?;
        let under = format!("{}/", prefix.trim_end_matches('/'));
        let gone: Vec<(String, PendingRef)> = {
            let mut map = self.pending_map();
            let keys: Vec<String> = map
                .keys()
                .filter(|k| k.starts_with(&under))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|p| (k, p)))
                .collect()
        };
        for (key, p) in gone {
            let state = upload::lock(&p).clone();
            upload::abort(&self.store, &self.path(&key)?, state).await;
        }
        let locations = self
            .store
            .s3
            .list(Some(&path))
            .map_ok(|m| m.location)
            .boxed();
        let mut deleted = self.store.s3.delete_stream(locations);
        while let Some(r) = deleted.next().await {
            match r.map_err(to_io) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<Entry>> {
        let path = self.path(prefix)?;
        let root = (!path.as_ref().is_empty()).then_some(&path);
        let listed = self
            .store
            .s3
            .list_with_delimiter(root)
            .await
            .map_err(to_io)?;
        let name = |p: &Path| p.filename().map(str::to_owned);
        let mut out: Vec<Entry> = listed
            .common_prefixes
            .iter()
            .filter_map(name)
            .map(|name| Entry { name, is_dir: true })
            .chain(
                listed
                    .objects
                    .iter()
                    // A folder's own marker (`<prefix>/`, kept by some
                    // servers, SeaweedFS among them) is not a child.
                    .filter(|m| m.location != path)
                    .filter_map(|m| name(&m.location))
                    .map(|name| Entry {
                        name,
                        is_dir: false,
                    }),
            )
            .collect();
        // Uploads being written are objects too, though not in the bucket yet.
        let under = if prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", prefix.trim_end_matches('/'))
        };
        for key in self.pending_map().keys() {
            if let Some(rest) = key.strip_prefix(&under) {
                let (name, is_dir) = match rest.split_once('/') {
                    Some((dir, _)) => (dir, true),
                    None => (rest, false),
                };
                if !out.iter().any(|e| e.name == name) {
                    out.push(Entry {
                        name: name.to_owned(),
                        is_dir,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn fingerprint(&self, key: &str) -> io::Result<Option<Fingerprint>> {
        Ok(self
            .head(key)
            .await?
            .map(|m| fingerprint_of(m.size, m.e_tag.as_deref())))
    }

    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>> {
        if let Some(p) = self.pending(key) {
            let created = upload::lock(&p).created;
            return Ok(Some(created.elapsed().map(|d| d.as_secs()).unwrap_or(0)));
        }
        Ok(self.head(key).await?.map(|m| {
            let age = chrono_now_secs() - m.last_modified.timestamp();
            age.max(0) as u64
        }))
    }

    fn reachable(&self) -> bool {
        self.reach.reachable()
    }
}

fn chrono_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

//! The local-disk driver. Atomic writes go to a temporary file in
//! `<root>/_zot/tmp/` (or, when the target is on another file system, a
//! `.tmp-<uuid>` beside it), then `rename`. With `commit` on, the file is
//! fsynced before the rename and its folder after it, so an acknowledged
//! write survives a power cut, not only a crash. The temporary folder is
//! emptied when the driver starts, which the caller does only while holding
//! the root's metadata-store lock ([`crate::open_local`]): no other process
//! can have a write in flight then. A write that fails removes its
//! temporary file.

use crate::backend::{Backend, BoxSink, ByteStream, Entry};
use crate::paths::{TMP_DIR, TMP_PREFIX};
use async_trait::async_trait;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use zot_meta::Fingerprint;

pub struct LocalBackend {
    root: PathBuf,
    tmp: PathBuf,
    commit: bool,
    /// fsyncs (files and folders) done so far.
    fsyncs: Arc<AtomicU64>,
}

impl LocalBackend {
    pub fn new(root: PathBuf, commit: bool) -> io::Result<LocalBackend> {
        let tmp = root.join(TMP_DIR);
        match std::fs::remove_dir_all(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(LocalBackend {
            root,
            tmp,
            commit,
            fsyncs: Arc::default(),
        })
    }

    /// How many files and folders this driver has fsynced (none without
    /// `commit`).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        debug_assert!(!key.split('/').any(|c| c == ".." || c == "."));
        self.root.join(key)
    }

    /// Creates the parent folder of `path`; with commit, makes the new
    /// folder entries durable.
    async fn ensure_parent(&self, path: &Path) -> io::Result<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if tokio::fs::metadata(parent).await.is_ok() {
            return Ok(());
        }
        tokio::fs::create_dir_all(parent).await?;
        if self.commit {
            let mut dir = parent.to_path_buf();
            while dir.starts_with(&self.root) && dir != self.root {
                let Some(up) = dir.parent() else { break };
                sync_dir(up, &self.fsyncs).await?;
                dir = up.to_path_buf();
            }
        }
        Ok(())
    }

    async fn sync_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.commit => sync_dir(p, &self.fsyncs).await,
            _ => Ok(()),
        }
    }
}

async fn sync_dir(dir: &Path, fsyncs: &AtomicU64) -> io::Result<()> {
    let dir = dir.to_path_buf();
    fsyncs.fetch_add(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

/// Writes a temporary file with `fill`, fsyncs it with `commit`, and
/// renames it to `target`. On any failure the temporary file is removed.
fn write_then_rename(
    tmp: &Path,
    target: &Path,
    commit: bool,
    fsyncs: &AtomicU64,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let mut created = false;
    let result = (|| {
        let mut f = std::fs::File::create(tmp)?;
        created = true;
        fill(&mut f)?;
        if commit {
            fsyncs.fetch_add(1, Ordering::Relaxed);
            f.sync_all()?;
        }
        std::fs::rename(tmp, target)
    })();
    if result.is_err() && created {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The whole file if it has at most `max` bytes (see [`Backend::read_at_most`]).
fn fingerprint_of(m: &std::fs::Metadata) -> Fingerprint {
    Fingerprint {
        size: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        inode: m.ino(),
    }
}

fn read_file_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > max {
        return Err(crate::backend::too_large(size, max));
    }
    let mut out = Vec::with_capacity(size as usize);
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(crate::backend::too_large(out.len() as u64, max));
    }
    Ok(out)
}

#[async_trait]
impl Backend for LocalBackend {
    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        let m = not_found_is_none(tokio::fs::metadata(self.path(key)).await)?;
        Ok(m.filter(|m| m.is_file()).map(|m| m.len()))
    }

    async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)).await
    }

    async fn read_at_most(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        let path = self.path(key);
        // One trip to the blocking pool: open, size, read.
        tokio::task::spawn_blocking(move || read_file_at_most(&path, max))
            .await
            .map_err(io::Error::other)?
    }

    async fn read_many_at_most(
        &self,
        keys: Vec<String>,
        max: u64,
        budget: u64,
    ) -> Vec<Option<io::Result<Vec<u8>>>> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        let n = paths.len();
        // One trip to the blocking pool for all of them.
        let read = tokio::task::spawn_blocking(move || {
            let mut total = 0u64;
            paths
                .iter()
                .map(|p| {
                    if total >= budget {
                        return None;
                    }
                    let read = read_file_at_most(p, max);
                    total += read.as_ref().map_or(0, |b| b.len() as u64);
                    Some(read)
                })
                .collect::<Vec<_>>()
        })
        .await;
        read.unwrap_or_else(|_| (0..n).map(|_| None).collect())
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.path(key))
    }

    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream> {
        let file = tokio::fs::File::open(self.path(key))
            .await?
            .into_std()
            .await;
        Ok(Box::pin(FileChunks::new(file, start, len)))
    }

    fn open_file(&self, key: &str) -> Option<io::Result<std::fs::File>> {
        Some(std::fs::File::open(self.path(key)))
    }

    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        self.ensure_parent(&path).await?;
        let name = format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4());
        let (shared_tmp, beside) = (self.tmp.join(&name), path.with_file_name(&name));
        let commit = self.commit;
        let data = data.to_vec();
        let target = path.clone();
        let fsyncs = self.fsyncs.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let write = |tmp: &Path| {
                write_then_rename(tmp, &target, commit, &fsyncs, |f| {
                    use std::io::Write;
                    f.write_all(&data)
                })
            };
            match write(&shared_tmp) {
                // EXDEV: the target is on another file system.
                Err(e) if e.raw_os_error() == Some(18) => write(&beside),
                r => r,
            }
        })
        .await
        .map_err(io::Error::other)??;
        self.sync_parent(&path).await
    }

    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink> {
        let path = self.path(key);
        self.ensure_parent(&path).await?;
        tokio::task::spawn_blocking(move || -> io::Result<BoxSink> {
            use std::io::Seek;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            let len = f.metadata()?.len();
            if len < offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("object has {len} bytes, not {offset}"),
                ));
            }
            if len > offset {
                f.set_len(offset)?;
            }
            f.seek(io::SeekFrom::Start(offset))?;
            Ok(Box::new(f))
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn publish(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from), self.path(to));
        if self.commit {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            tokio::fs::File::open(&from).await?.sync_all().await?;
        }
        self.ensure_parent(&to).await?;
        tokio::fs::rename(&from, &to).await?;
        self.sync_parent(&to).await
    }

    async fn link(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from), self.path(to));
        self.ensure_parent(&to).await?;
        tokio::fs::hard_link(&from, &to).await?;
        self.sync_parent(&to).await
    }

    async fn delete(&self, key: &str) -> io::Result<bool> {
        let path = self.path(key);
        let existed = not_found_is_none(tokio::fs::remove_file(&path).await)?.is_some();
        if existed {
            self.sync_parent(&path).await?;
        }
        Ok(existed)
    }

    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        not_found_is_none(tokio::fs::remove_dir_all(self.path(prefix)).await).map(|_| ())
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<Entry>> {
        let rd = match tokio::fs::read_dir(self.path(prefix)).await {
            // An object has no children.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
            r => not_found_is_none(r)?,
        };
        let Some(mut rd) = rd else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while let Some(e) = rd.next_entry().await? {
            if let Ok(name) = e.file_name().into_string() {
                let is_dir = e.file_type().await?.is_dir();
                out.push(Entry { name, is_dir });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn fingerprint(&self, key: &str) -> io::Result<Option<Fingerprint>> {
        let m = not_found_is_none(tokio::fs::metadata(self.path(key)).await)?;
        Ok(m.as_ref().map(fingerprint_of))
    }

    async fn fingerprints(&self, keys: Vec<String>) -> Vec<io::Result<Option<Fingerprint>>> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        let n = paths.len();
        let stat = move || {
            paths
                .iter()
                .map(|p| {
                    Ok(not_found_is_none(std::fs::metadata(p))?
                        .as_ref()
                        .map(fingerprint_of))
                })
                .collect::<Vec<_>>()
        };
        match tokio::task::spawn_blocking(stat).await {
            Ok(out) => out,
            Err(e) => {
                let e = io::Error::other(e.to_string());
                (0..n)
                    .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                    .collect()
            }
        }
    }

    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>> {
        let m = not_found_is_none(tokio::fs::metadata(self.path(key)).await)?;
        Ok(m.and_then(|m| m.modified().ok())
            .map(|t| t.elapsed().map(|d| d.as_secs()).unwrap_or(0)))
    }
}

/// Chunk size of [`FileChunks`]: large reads, few thread hops.
const READ_CHUNK: usize = 1 << 20;

/// A file range as a stream of chunks. Each chunk is read with `pread` on the
/// blocking pool straight into its own buffer (no copy), and the next read
/// starts as soon as a chunk is handed out, so the disk read of one chunk
/// overlaps the sending of the previous one. No thread is held between
/// chunks, so a slow client costs no thread; at most two chunks are in
/// memory per stream.
struct FileChunks {
    file: std::sync::Arc<std::fs::File>,
    offset: u64,
    remaining: u64,
    pending: Option<tokio::task::JoinHandle<io::Result<bytes::Bytes>>>,
}

impl FileChunks {
    fn new(file: std::fs::File, start: u64, len: u64) -> FileChunks {
        let mut chunks = FileChunks {
            file: std::sync::Arc::new(file),
            offset: start,
            remaining: len,
            pending: None,
        };
        chunks.start_read();
        chunks
    }

    fn start_read(&mut self) {
        if self.remaining == 0 {
            return;
        }
        let n = self.remaining.min(READ_CHUNK as u64) as usize;
        let (file, offset) = (self.file.clone(), self.offset);
        self.offset += n as u64;
        self.remaining -= n as u64;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = read_buffers::take();
            let mut filled = 0;
            while filled < n {
                match file.read_at(&mut buf[filled..n], offset + filled as u64)? {
                    0 => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shorter than expected",
                        ));
                    }
                    k => filled += k,
                }
            }
            Ok(read_buffers::into_bytes(buf, n))
        }));
    }
}

/// Read buffers of [`READ_CHUNK`] bytes, reused: a chunk handed to the HTTP
/// layer returns its buffer here when it has been sent, so a download costs
/// no fresh allocation (nor zeroing) per chunk, and at most [`KEEP`] idle
/// buffers are kept.
mod read_buffers {
    use super::READ_CHUNK;
    use std::sync::Mutex;

    const KEEP: usize = 4;
    static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    pub fn take() -> Vec<u8> {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.unwrap_or_else(|| vec![0; READ_CHUNK])
    }

    struct Pooled {
        buf: Vec<u8>,
        len: usize,
    }

    impl AsRef<[u8]> for Pooled {
        fn as_ref(&self) -> &[u8] {
            &self.buf[..self.len]
        }
    }

    impl Drop for Pooled {
        fn drop(&mut self) {
            let buf = std::mem::take(&mut self.buf);
            let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP {
                idle.push(buf);
            }
        }
    }

    /// The first `len` bytes of `buf`, as `Bytes` that give the buffer back.
    pub fn into_bytes(buf: Vec<u8>, len: usize) -> bytes::Bytes {
        bytes::Bytes::from_owner(Pooled { buf, len })
    }
}

impl futures_util::Stream for FileChunks {
    type Item = io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let result = match std::pin::Pin::new(pending).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r.map_err(io::Error::other).and_then(|r| r),
        };
        self.pending = None;
        match result {
            Ok(chunk) => {
                self.start_read();
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(e) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_atomic_write_removes_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (tmp, target) = (dir.path().join(".tmp-x"), dir.path().join("index.json"));
        let fsyncs = AtomicU64::new(0);
        let failed = write_then_rename(&tmp, &target, true, &fsyncs, |f| {
            use std::io::Write;
            f.write_all(b"half")?;
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        });
        assert!(failed.is_err());
        assert!(!tmp.exists(), "the temporary file of a failed write stays");
        assert!(!target.exists());

        // A failed rename (the target is a non-empty folder) cleans up too.
        std::fs::create_dir_all(target.join("x")).unwrap_or_else(|e| panic!("{e}"));
        let failed = write_then_rename(&tmp, &target, false, &fsyncs, |_| Ok(()));
        assert!(failed.is_err());
        assert!(!tmp.exists());
        assert_eq!(
            fsyncs.load(Ordering::Relaxed),
            0,
            "fsynced a file never written"
        );
    }

    #[tokio::test]
    async fn read_at_most_refuses_larger_objects() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let backend =
            LocalBackend::new(dir.path().to_path_buf(), false).unwrap_or_else(|e| panic!("{e}"));
        backend
            .write_atomic("a/b", b"0123456789")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let read = |max| backend.read_at_most("a/b", max);
        assert_eq!(read(10).await.ok().as_deref(), Some(&b"0123456789"[..]));
        let err = read(9).await.err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::FileTooLarge));
        let missing = backend
            .read_at_most("a/c", 10)
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(missing, Some(io::ErrorKind::NotFound));
        let keys = || vec!["a/b".into(), "a/c".into(), "a/b".into()];
        let kinds = |many: Vec<Option<io::Result<Vec<u8>>>>| -> Vec<_> {
            many.into_iter()
                .map(|r| r.map(|r| r.map_err(|e| e.kind())))
                .collect()
        };
        let found = Some(Ok(b"0123456789".to_vec()));
        let all = backend.read_many_at_most(keys(), 10, 100).await;
        let missing = Some(Err(io::ErrorKind::NotFound));
        assert_eq!(kinds(all), vec![found.clone(), missing, found.clone()]);
        // The budget is spent by the first: nothing more is read.
        let bounded = backend.read_many_at_most(keys(), 10, 10).await;
        assert_eq!(kinds(bounded), vec![found, None, None]);
    }
}

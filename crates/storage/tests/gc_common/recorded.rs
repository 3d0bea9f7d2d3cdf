//! The local backend with a record of what was asked of it: the largest
//! object read whole, and every removal in order.

use async_trait::async_trait;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use zot_meta::Fingerprint;
use zot_storage::{
    Backend, BoxSink, ByteStream, Entry, LocalBackend, MetaStore, Options, Registry, paths,
};

#[derive(Default)]
pub struct Record {
    /// The largest object read whole with `read`.
    pub largest_read: AtomicU64,
    /// The keys removed with `delete`, in order.
    pub deletes: Mutex<Vec<String>>,
}

pub struct Recorded {
    inner: LocalBackend,
    record: Arc<Record>,
}

#[async_trait]
impl Backend for Recorded {
    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.size(key).await
    }
    async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        let data = self.inner.read(key).await?;
        self.record
            .largest_read
            .fetch_max(data.len() as u64, Ordering::SeqCst);
        Ok(data)
    }
    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream> {
        self.inner.read_stream(key, start, len).await
    }
    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        self.inner.write_atomic(key, data).await
    }
    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink> {
        self.inner.sink(key, offset).await
    }
    async fn publish(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.publish(from, to).await
    }
    async fn link(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.link(from, to).await
    }
    async fn delete(&self, key: &str) -> io::Result<bool> {
        self.record.deletes.lock().unwrap().push(key.to_owned());
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn list(&self, prefix: &str) -> io::Result<Vec<Entry>> {
        self.inner.list(prefix).await
    }
    async fn fingerprint(&self, key: &str) -> io::Result<Option<Fingerprint>> {
        self.inner.fingerprint(key).await
    }
    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.age_secs(key).await
    }
}

/// Opens the registry on `root` through a [`Recorded`] local backend.
pub async fn open_recorded(root: &Path, options: Options) -> (Registry, Arc<Record>) {
    let record = Arc::new(Record::default());
    let backend = Recorded {
        inner: LocalBackend::new(root.to_path_buf(), false).unwrap(),
        record: record.clone(),
    };
    std::fs::create_dir_all(root.join(paths::META_DIR)).unwrap();
    let meta = MetaStore::open(&root.join(paths::META_DB)).unwrap();
    let reg = Registry::new(Arc::new(backend), meta, options);
    reg.sync_from_disk().await.unwrap();
    (reg, record)
}

//! A driver over another that stops one chosen operation until the test
//! lets it go (a placement half-way, a GC round after reading
//! `index.json` or before writing it); everything else is passed through.
#![allow(dead_code, reason = "each test binary including this uses part of it")]

use async_trait::async_trait;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use zot_meta::Fingerprint;
use zot_storage::{Backend, BoxSink, ByteStream, Entry, SharedSink, UploadState, Versioned};

/// Where the driver stops, on the first key ending with the given text.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Stop {
    /// Before a `publish` to it.
    BeforePublish,
    /// After a `link` to it.
    AfterLink,
    /// After a versioned read (of `index.json`) returned.
    AfterRead,
    /// Before a conditional write (of `index.json`).
    BeforeWrite,
}

pub struct Pausing {
    inner: Arc<dyn Backend>,
    stop: Mutex<Option<(Stop, String)>>,
    /// Told when the driver stopped.
    pub reached: Notify,
    /// Lets it go on.
    pub go: Notify,
}

impl Pausing {
    pub fn new(inner: Arc<dyn Backend>) -> Pausing {
        Pausing {
            inner,
            stop: Mutex::new(None),
            reached: Notify::new(),
            go: Notify::new(),
        }
    }

    /// Stops once at `at` on a key ending with `suffix`.
    pub fn stop_at(&self, at: Stop, suffix: &str) {
        *self.stop.lock().unwrap() = Some((at, suffix.to_owned()));
    }

    async fn maybe_stop(&self, at: Stop, key: &str) {
        let hit = {
            let mut stop = self.stop.lock().unwrap();
            let hit = stop
                .as_ref()
                .is_some_and(|(s, suffix)| *s == at && key.ends_with(suffix.as_str()));
            if hit {
                *stop = None;
            }
            hit
        };
        if hit {
            self.reached.notify_one();
            self.go.notified().await;
        }
    }
}

#[async_trait]
impl Backend for Pausing {
    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.size(key).await
    }
    async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.read(key).await
    }
    async fn read_at_most(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        self.inner.read_at_most(key, max).await
    }
    async fn read_many_at_most(
        &self,
        keys: Vec<String>,
        max: u64,
        budget: u64,
    ) -> Vec<Option<io::Result<Vec<u8>>>> {
        self.inner.read_many_at_most(keys, max, budget).await
    }
    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream> {
        self.inner.read_stream(key, start, len).await
    }
    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        self.inner.write_atomic(key, data).await
    }
    fn conditional_writes(&self) -> bool {
        self.inner.conditional_writes()
    }
    async fn read_versioned(&self, key: &str) -> io::Result<Versioned> {
        let read = self.inner.read_versioned(key).await;
        self.maybe_stop(Stop::AfterRead, key).await;
        read
    }
    async fn write_atomic_if(
        &self,
        key: &str,
        data: &[u8],
        expected: Option<&str>,
    ) -> io::Result<Option<Fingerprint>> {
        self.maybe_stop(Stop::BeforeWrite, key).await;
        self.inner.write_atomic_if(key, data, expected).await
    }
    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink> {
        self.inner.sink(key, offset).await
    }
    async fn staged_sink(&self, key: &str, target: &str) -> io::Result<Option<BoxSink>> {
        self.inner.staged_sink(key, target).await
    }
    async fn shared_sink(
        &self,
        key: &str,
        len: u64,
        state: &UploadState,
        lost: Arc<std::sync::atomic::AtomicBool>,
    ) -> io::Result<SharedSink> {
        self.inner.shared_sink(key, len, state, lost).await
    }
    async fn forget_shared(
        &self,
        key: &str,
        old: &UploadState,
        new: Option<&UploadState>,
    ) -> io::Result<()> {
        self.inner.forget_shared(key, old, new).await
    }
    async fn finish_shared(&self, key: &str, state: &UploadState) -> io::Result<String> {
        self.inner.finish_shared(key, state).await
    }
    async fn publish(&self, from: &str, to: &str) -> io::Result<()> {
        self.maybe_stop(Stop::BeforePublish, to).await;
        self.inner.publish(from, to).await
    }
    async fn link(&self, from: &str, to: &str) -> io::Result<()> {
        let linked = self.inner.link(from, to).await;
        self.maybe_stop(Stop::AfterLink, to).await;
        linked
    }
    fn placeholders(&self) -> bool {
        self.inner.placeholders()
    }
    async fn copy_over(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.copy_over(from, to).await
    }
    async fn list_sizes(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        self.inner.list_sizes(prefix).await
    }
    async fn delete(&self, key: &str) -> io::Result<bool> {
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
    async fn fingerprints(&self, keys: Vec<String>) -> Vec<io::Result<Option<Fingerprint>>> {
        self.inner.fingerprints(keys).await
    }
    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.age_secs(key).await
    }
    fn reachable(&self) -> bool {
        self.inner.reachable()
    }
    fn open_file(&self, key: &str) -> Option<io::Result<std::fs::File>> {
        self.inner.open_file(key)
    }
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }
}

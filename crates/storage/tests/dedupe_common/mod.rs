//! Registries on a SeaweedFS bucket for the dedupe and lifecycle tests:
//! one or two instances sharing a bucket and a metadata store, a raw view
//! of the bucket (to look at objects and to damage them), and a restart
//! on a fresh metadata store (a rebuild from the bucket).
#![allow(dead_code, reason = "each test file uses a part")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use crate::s3_common::seaweed;
use std::sync::Arc;
use zot_oci::{Digest, RepoName};
use zot_storage::{Backend, MetaStore, Options, Registry, S3Backend, S3Options, paths};

/// S3's smallest part.
pub const CHUNK: u64 = 5 << 20;

/// A fresh bucket, with the folder its metadata stores live in.
pub struct Bucket {
    pub config: zot_config::S3Config,
    pub dir: tempfile::TempDir,
    /// Metadata stores opened so far (each restart takes a new one).
    stores: std::sync::atomic::AtomicU32,
}

impl Bucket {
    pub fn new() -> Bucket {
        let server = seaweed::shared();
        Bucket {
            config: server.config(&server.bucket(), "zot", CHUNK),
            dir: tempfile::tempdir().unwrap(),
            stores: Default::default(),
        }
    }

    /// A fresh prefix (`rootdirectory`) in one bucket shared by the test
    /// binary: for tests that need many stores (a SeaweedFS server gives
    /// each bucket volumes of its own).
    pub fn new_prefix() -> Bucket {
        static SHARED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        static PREFIXES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server = seaweed::shared();
        let bucket = SHARED.get_or_init(|| server.bucket());
        let n = PREFIXES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Bucket {
            config: server.config(bucket, &format!("zot/case-{n}"), CHUNK),
            dir: tempfile::tempdir().unwrap(),
            stores: Default::default(),
        }
    }

    /// The bucket as the registry's driver sees it (same prefix).
    pub fn raw(&self) -> S3Backend {
        S3Backend::open(&self.config, &S3Options::default()).unwrap()
    }

    /// A new, empty metadata store.
    pub fn fresh_meta(&self) -> Arc<MetaStore> {
        let n = self
            .stores
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Arc::new(MetaStore::open(&self.dir.path().join(format!("meta-{n}.redb"))).unwrap())
    }

    /// `n` registries on the bucket sharing `meta`, synchronised with the
    /// bucket (a rebuild when `meta` is new).
    pub async fn registries(
        &self,
        meta: &Arc<MetaStore>,
        options: &Options,
        n: usize,
    ) -> Vec<Registry> {
        let mut out = Vec::new();
        for _ in 0..n {
            let backend = Arc::new(self.raw());
            out.push(Registry::new(backend, meta.clone(), options.clone()));
        }
        out[0].sync_from_disk().await.unwrap();
        out
    }

    /// One registry on a new metadata store: a restart that rebuilds
    /// everything from the bucket.
    pub async fn open(&self, options: Options) -> Registry {
        let meta = self.fresh_meta();
        self.registries(&meta, &options, 1).await.pop().unwrap()
    }

    /// Size of `repo`'s object of `digest` in the bucket.
    pub async fn object_size(&self, repo: &str, digest: &Digest) -> Option<u64> {
        let r: RepoName = repo.parse().unwrap();
        self.raw().size(&paths::blob(&r, digest)).await.unwrap()
    }
}

pub fn dedupe(on: bool) -> Options {
    Options {
        dedupe: on,
        ..Options::default()
    }
}

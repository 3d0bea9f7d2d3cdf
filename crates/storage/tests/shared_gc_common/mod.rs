//! Two registries on one bucket sharing state in one Redis and one
//! metadata store, each with GC on (`gcDelay` of [`DELAY`] tracked), the
//! first over a driver that can stop at a chosen point
//! (`pausing_common`): the set-up of the tests of GC on one instance
//! racing pushes on another (`shared_gc.rs`, `shared_retention.rs`). The
//! including crate declares `mod s3_common` and `mod pausing_common`.
#![allow(dead_code, reason = "each test binary including this uses part of it")]

use crate::pausing_common::Pausing;
use crate::s3_common::redis::Redis;
use crate::s3_common::seaweed;
use bytes::Bytes;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use zot_oci::{Digest, RepoName};
use zot_storage::shared::SharedState;
use zot_storage::shared::lease::{LeaseGuard, Leases};
use zot_storage::{
    GcOptions, MetaStore, Options, Registry, S3Backend, S3Options, StorageError, paths,
};

pub const DELAY: Duration = Duration::from_secs(3);

/// Instances A and B, and the Redis they share.
pub struct Pair {
    pub redis: Redis,
    pub a: Registry,
    pub b: Registry,
    /// A's driver.
    pub gate: Arc<Pausing>,
    config: zot_config::S3Config,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// With `gcDelay` [`DELAY`].
    pub async fn start() -> Pair {
        Pair::start_with(DELAY).await
    }

    /// With `gcDelay` `delay` (how long the placement marks live).
    pub async fn start_with(delay: Duration) -> Pair {
        let redis = Redis::start();
        let server = seaweed::shared();
        let config = server.config(&server.bucket(), "zot", 5 << 20);
        // One metadata store, as instances sharing a Redis one have.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(paths::META_DIR)).unwrap();
        let meta = Arc::new(MetaStore::open(&dir.path().join(paths::META_DB)).unwrap());
        let open = async |gate: Option<&Arc<Pausing>>| {
            let backend: Arc<dyn zot_storage::Backend> = match gate {
                Some(g) => g.clone(),
                None => Arc::new(S3Backend::open(&config, &S3Options::default()).unwrap()),
            };
            let reg = Registry::new(backend, meta.clone(), Options::default());
            reg.sync_from_disk().await.unwrap();
            let shared = SharedState::connect(&redis.url, "gc").await.unwrap();
            assert!(reg.share_state(shared));
            reg.track_placements(delay);
            reg
        };
        let s3 = Arc::new(S3Backend::open(&config, &S3Options::default()).unwrap());
        let gate = Arc::new(Pausing::new(s3));
        let a = open(Some(&gate)).await;
        let b = open(None).await;
        Pair {
            redis,
            a,
            b,
            gate,
            config,
            _dir: dir,
        }
    }

    /// A third registry on the bucket, with a metadata store of its own
    /// built from the layouts: what the bucket holds, no cache involved.
    pub async fn fresh(&self) -> (Registry, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _) = zot_storage::open_s3(
            dir.path(),
            &self.config,
            &S3Options::default(),
            Options::default(),
        )
        .await
        .unwrap();
        (reg, dir)
    }

    /// The lease `name`, taken as another instance would.
    pub async fn hold(&self, name: &str) -> LeaseGuard {
        let leases = Leases::redis(SharedState::connect(&self.redis.url, "gc").await.unwrap());
        leases.try_acquire(name).await.unwrap().unwrap()
    }

    /// Removes every placement mark, as if `gcDelay` had passed since the
    /// pushes so far (without waiting for it).
    pub async fn forget_marks(&self) {
        let mut conn = self.conn().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("gc:placed:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }

    /// A connection of the test's own to the Redis.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

/// GC with `gcDelay` [`DELAY`] (retention: the default policy).
pub fn gc() -> GcOptions {
    GcOptions {
        delay: DELAY,
        ..Default::default()
    }
}

/// Uploads `data` as a blob of `r` in one request.
pub async fn push(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    let body = futures_util::stream::iter(vec![Ok::<_, Infallible>(Bytes::copy_from_slice(data))]);
    reg.complete_upload(r, &id, &d, None, Some(body))
        .await
        .unwrap();
    d
}

/// An image manifest naming `config` (2 bytes) and one layer.
pub fn manifest(config: &Digest, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size }],
    })
    .to_string()
    .into_bytes()
}

/// An index naming the image manifest `child` (`size` bytes).
pub fn index(child: &Digest, size: usize) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": child,
            "size": size,
            "platform": { "architecture": "amd64", "os": "linux" },
        }],
    })
    .to_string()
    .into_bytes()
}

/// After a removal of `child` that a push of an index tagged `tag` met
/// (it waited): the push was refused with `MANIFEST_BLOB_UNKNOWN`, and
/// neither instance nor a registry rebuilt from the bucket lists the index
/// or holds the child.
pub async fn push_refused_everywhere<T: std::fmt::Debug>(
    pair: &Pair,
    r: &RepoName,
    pushed: Result<T, StorageError>,
    child: &Digest,
    tag: &str,
) {
    match pushed {
        Err(StorageError::ManifestBlobUnknown(d)) => assert_eq!(&d, child),
        other => panic!("expected MANIFEST_BLOB_UNKNOWN, got {other:?}"),
    }
    let tag: zot_oci::Reference = tag.parse().unwrap();
    let (fresh, _dir) = pair.fresh().await;
    for reg in [&pair.a, &pair.b, &fresh] {
        assert!(reg.manifest_record(r, &tag).is_err());
        assert_eq!(reg.blob_size(r, child).await.unwrap(), None);
    }
}

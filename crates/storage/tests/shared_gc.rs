//! GC on one instance and blob placements on another (issue 9, point 3):
//! two registries on one bucket sharing state in Redis, each with GC on
//! (`gcDelay` tracked). A blob placed again through one instance over an
//! old object (a re-push of an unreferenced blob: nothing new is written,
//! so the object's age says nothing) must survive GC on the other for
//! `gcDelay`, as it does on one instance; afterwards GC removes it. And a
//! placement waits while another instance holds the digest's lease.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use bytes::Bytes;
use s3_common::redis::Redis;
use s3_common::seaweed;
use std::convert::Infallible;
use std::time::Duration;
use zot_oci::{Digest, RepoName};
use zot_storage::shared::SharedState;
use zot_storage::shared::lease::Leases;
use zot_storage::{GcOptions, Options, Registry, S3Options, open_s3};

const DELAY: Duration = Duration::from_secs(3);

async fn push(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    let body = futures_util::stream::iter(vec![Ok::<_, Infallible>(Bytes::copy_from_slice(data))]);
    reg.complete_upload(r, &id, &d, None, Some(body))
        .await
        .unwrap();
    d
}

/// Two registries on one bucket, sharing state in `redis`, GC on.
async fn two(redis: &Redis) -> (Vec<Registry>, Vec<tempfile::TempDir>) {
    let server = seaweed::shared();
    let config = server.config(&server.bucket(), "zot", 5 << 20);
    let mut regs = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _) = open_s3(
            dir.path(),
            &config,
            &S3Options::default(),
            Options::default(),
        )
        .await
        .unwrap();
        assert!(reg.share_state(SharedState::connect(&redis.url, "gc").await.unwrap()));
        reg.track_placements(DELAY);
        regs.push(reg);
        dirs.push(dir);
    }
    (regs, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_placed_again_elsewhere_survives_gc_for_gc_delay() {
    let redis = Redis::start();
    let (regs, _dirs) = two(&redis).await;
    let (a, b) = (&regs[0], &regs[1]);
    let r: RepoName = "shared/gc".parse().unwrap();
    let gc = GcOptions {
        delay: DELAY,
        ..Default::default()
    };

    // An unreferenced blob, older than gcDelay (and both instances too).
    let d = push(a, &r, b"an old layer").await;
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;

    // Pushed again through B: the object stays the old one.
    assert_eq!(push(b, &r, b"an old layer").await, d);
    let report = a.gc_repo(&r, &gc).await.unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    assert_eq!(b.blob_size(&r, &d).await.unwrap(), Some(12));

    // Once gcDelay has passed without a manifest, GC removes it.
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let report = a.gc_repo(&r, &gc).await.unwrap();
    assert_eq!(report.blobs_removed, 1, "{report:?}");
    assert_eq!(b.blob_size(&r, &d).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_waits_for_the_digests_lease_held_elsewhere() {
    let redis = Redis::start();
    let (regs, _dirs) = two(&redis).await;
    let r: RepoName = "shared/lease".parse().unwrap();
    let data = b"a layer".to_vec();
    let d = Digest::sha256_of(&data);

    // Another instance (GC removing the digest, say) holds its lease.
    let leases = Leases::redis(SharedState::connect(&redis.url, "gc").await.unwrap());
    let held = leases
        .try_acquire(&format!("digest:{d}"))
        .await
        .unwrap()
        .unwrap();
    let reg = &regs[0];
    let placing = push(reg, &r, &data);
    tokio::pin!(placing);
    // The upload is received, but not placed while the lease is held.
    let waited = tokio::time::timeout(Duration::from_secs(2), &mut placing).await;
    assert!(
        waited.is_err(),
        "placed while another instance held the digest"
    );
    assert_eq!(regs[1].blob_size(&r, &d).await.unwrap(), None);
    held.release().await.unwrap();
    assert_eq!(placing.await, d);
    assert_eq!(regs[1].blob_size(&r, &d).await.unwrap(), Some(7));
}

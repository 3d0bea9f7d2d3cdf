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

/// An image manifest naming `config` (2 bytes) and one layer.
fn manifest(config: &Digest, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size }],
    })
    .to_string()
    .into_bytes()
}

/// How many `SET` commands `redis` has run (leases are taken with them).
async fn set_calls(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

async fn redis_conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// GC on A reads `index.json`, then a manifest naming an old unreferenced
/// blob (present, so not uploaded again) is pushed through B before A's
/// sweep reaches that blob: the blob must stay, as on one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pushed_elsewhere_during_gc_keeps_its_old_blob() {
    let redis = Redis::start();
    let mut stats = redis_conn(&redis).await;
    let (regs, _dirs) = two(&redis).await;
    let (a, b) = (&regs[0], &regs[1]);
    let r: RepoName = "shared/manifest".parse().unwrap();
    let gc = GcOptions {
        delay: DELAY,
        ..Default::default()
    };

    // An unreferenced layer, older than gcDelay (and both instances too).
    let layer = push(a, &r, b"an old layer, pushed long ago").await;
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let config = push(b, &r, b"{}").await;

    // A's round stops at the layer: the test holds its lease, as another
    // removal or placement would.
    let leases = Leases::redis(SharedState::connect(&redis.url, "gc").await.unwrap());
    let held = leases
        .try_acquire(&format!("digest:{layer}"))
        .await
        .unwrap()
        .unwrap();
    let before = set_calls(&mut stats).await;
    let body = manifest(&config, &layer, 29);
    let tag: zot_oci::Reference = "1.0".parse().unwrap();
    let elsewhere = async {
        // Waiting for the layer's lease (polled with SET NX): index.json
        // read. At most 2 SETs come from the config's lease and claim.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while set_calls(&mut stats).await < before + 6 {
            assert!(
                std::time::Instant::now() < deadline,
                "GC never reached the layer"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The push through B, during A's round.
        b.put_manifest(&r, &tag, None, &body).await.unwrap();
        held.release().await.unwrap();
    };
    let (report, ()) = tokio::join!(a.gc_repo(&r, &gc), elsewhere);
    let report = report.unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    assert_eq!(a.blob_size(&r, &layer).await.unwrap(), Some(29));
    assert_eq!(b.blob_size(&r, &config).await.unwrap(), Some(2));

    // Later rounds keep it: the manifest references it now.
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let report = a.gc_repo(&r, &gc).await.unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    let record = a.manifest_record(&r, &tag).unwrap();
    assert_eq!(a.manifest_bytes(&r, &record).await.unwrap(), body);
    assert_eq!(a.blob_size(&r, &layer).await.unwrap(), Some(29));
}

/// A manifest push that finds GC's removal claim on a blob it names waits
/// for the removal (the digest's lease) before it checks the blob present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_push_waits_for_a_removal_in_progress_elsewhere() {
    let redis = Redis::start();
    let mut conn = redis_conn(&redis).await;
    let (regs, _dirs) = two(&redis).await;
    let (a, b) = (&regs[0], &regs[1]);
    let r: RepoName = "shared/claimed".parse().unwrap();
    let layer = push(a, &r, b"a layer being collected").await;
    let config = push(a, &r, b"{}").await;

    // Another instance's GC, removing the layer: its lease and its claim.
    let leases = Leases::redis(SharedState::connect(&redis.url, "gc").await.unwrap());
    let held = leases
        .try_acquire(&format!("digest:{layer}"))
        .await
        .unwrap()
        .unwrap();
    let mark = format!("gc:placed:{r}@{layer}");
    let () = redis::cmd("SET")
        .arg(&mark)
        .arg("gc:another-instance")
        .query_async(&mut conn)
        .await
        .unwrap();

    let body = manifest(&config, &layer, 23);
    let tag: zot_oci::Reference = "1.0".parse().unwrap();
    let pushing = b.put_manifest(&r, &tag, None, &body);
    tokio::pin!(pushing);
    let waited = tokio::time::timeout(Duration::from_secs(2), &mut pushing).await;
    assert!(
        waited.is_err(),
        "pushed while a removal of its blob was in progress"
    );
    assert!(b.manifest_record(&r, &tag).is_err());

    // The removal ends (here without removing): the push goes on, and its
    // mark has replaced the claim.
    held.release().await.unwrap();
    pushing.await.unwrap();
    let now: String = redis::cmd("GET")
        .arg(&mark)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(now, "1");
    assert!(b.manifest_record(&r, &tag).is_ok());
}

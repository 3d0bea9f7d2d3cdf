//! GC on one instance and blob placements on another (issue 9, point 3):
//! two registries on one bucket sharing state in Redis, each with GC on
//! (`gcDelay` tracked). A blob placed again through one instance over an
//! old object (a re-push of an unreferenced blob: nothing new is written,
//! so the object's age says nothing) must survive GC on the other for
//! `gcDelay`, as it does on one instance; afterwards GC removes it. And a
//! placement waits while another instance holds the digest's lease.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod pausing_common;
mod s3_common;
mod shared_gc_common;

use shared_gc_common::{DELAY, Pair, gc, manifest, push};
use std::time::Duration;
use zot_oci::{Digest, RepoName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_placed_again_elsewhere_survives_gc_for_gc_delay() {
    let pair = Pair::start().await;
    let (a, b) = (&pair.a, &pair.b);
    let r: RepoName = "shared/gc".parse().unwrap();
    let gc = gc();

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
    let pair = Pair::start().await;
    let r: RepoName = "shared/lease".parse().unwrap();
    let data = b"a layer".to_vec();
    let d = Digest::sha256_of(&data);

    // Another instance (GC removing the digest, say) holds its lease.
    let held = pair.hold(&format!("digest:{d}")).await;
    let reg = &pair.a;
    let placing = push(reg, &r, &data);
    tokio::pin!(placing);
    // The upload is received, but not placed while the lease is held.
    let waited = tokio::time::timeout(Duration::from_secs(2), &mut placing).await;
    assert!(
        waited.is_err(),
        "placed while another instance held the digest"
    );
    assert_eq!(pair.b.blob_size(&r, &d).await.unwrap(), None);
    held.release().await.unwrap();
    assert_eq!(placing.await, d);
    assert_eq!(pair.b.blob_size(&r, &d).await.unwrap(), Some(7));
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

/// GC on A reads `index.json`, then a manifest naming an old unreferenced
/// blob (present, so not uploaded again) is pushed through B before A's
/// sweep reaches that blob: the blob must stay, as on one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pushed_elsewhere_during_gc_keeps_its_old_blob() {
    let pair = Pair::start().await;
    let mut stats = pair.conn().await;
    let (a, b) = (&pair.a, &pair.b);
    let r: RepoName = "shared/manifest".parse().unwrap();
    let gc = gc();

    // An unreferenced layer, older than gcDelay (and both instances too).
    let layer = push(a, &r, b"an old layer, pushed long ago").await;
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    let config = push(b, &r, b"{}").await;

    // A's round stops at the layer: the test holds its lease, as another
    // removal or placement would.
    let held = pair.hold(&format!("digest:{layer}")).await;
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
    let pair = Pair::start().await;
    let mut conn = pair.conn().await;
    let (a, b) = (&pair.a, &pair.b);
    let r: RepoName = "shared/claimed".parse().unwrap();
    let layer = push(a, &r, b"a layer being collected").await;
    let config = push(a, &r, b"{}").await;

    // Another instance's GC, removing the layer: its lease and its claim.
    let held = pair.hold(&format!("digest:{layer}")).await;
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

    // The removal ends (here without removing; the claim released as GC
    // releases it, then the lease): the push goes on, and marks the blob
    // again (the claim was never overwritten).
    let claim: String = redis::cmd("GET")
        .arg(&mark)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(claim, "gc:another-instance", "a push overwrote the claim");
    let () = redis::cmd("DEL")
        .arg(&mark)
        .query_async(&mut conn)
        .await
        .unwrap();
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

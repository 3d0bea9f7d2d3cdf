//! Garbage collection below the HTTP layer: shared and unique blobs, with
//! and without dedupe; the gcDelay that protects blobs of pushes in flight;
//! missing blobs; empty repositories, removed so that a crash half-way
//! leaves no repository behind.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::*;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;
use zot_oci::{Digest, Reference};
use zot_storage::{GcOptions, Options, StorageError, open_local};

/// No delay at all: everything unreferenced goes.
fn now_gc() -> GcOptions {
    GcOptions {
        delay: Duration::ZERO,
        retention: zot_storage::retention::Retention {
            delay: Duration::ZERO,
            ..Default::default()
        },
    }
}

async fn shared_and_unique(dedupe: bool) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        dedupe,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let (a, b) = (repo("a"), repo("b"));
    let m1 = push_image(&reg, &a, "1", &[b"shared", b"unique-a1"]).await;
    push_image(&reg, &a, "2", &[b"unique-a2"]).await;
    push_image(&reg, &b, "1", &[b"shared", b"unique-b"]).await;
    let shared = Digest::sha256_of(b"shared");
    let blob = |r: &str, d: &Digest| dir.path().join(format!("{r}/blobs/sha256/{}", d.hex()));
    assert_eq!(
        std::fs::metadata(blob("a", &shared)).unwrap().nlink(),
        if dedupe { 2 } else { 1 }
    );

    // Nothing is garbage yet.
    let r = reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!((r.manifests_removed, r.blobs_removed), (0, 0), "{r:?}");

    reg.delete_manifest(&a, &Reference::Digest(m1.clone()))
        .await
        .unwrap();
    let r = reg.gc_repo(&a, &now_gc()).await.unwrap();
    assert_eq!(r.blobs_removed, 2, "shared and unique-a1 leave a: {r:?}");
    assert!(!blob("a", &shared).exists());
    assert!(!blob("a", &Digest::sha256_of(b"unique-a1")).exists());
    assert!(blob("a", &Digest::sha256_of(b"unique-a2")).exists());
    assert!(
        blob("a", &Digest::sha256_of(b"{}")).exists(),
        "config still used by a:2"
    );
    // b keeps its content and serves it.
    assert_eq!(read_blob(&reg, &b, &shared).await, b"shared");
    assert_eq!(std::fs::metadata(blob("b", &shared)).unwrap().nlink(), 1);
    assert!(reg.metadata().blob_repos(&shared).unwrap() == vec!["b".to_string()]);
    pull_image(&reg, &b, "1").await;
    pull_image(&reg, &a, "2").await;
}

#[tokio::test]
async fn shared_and_unique_blobs_with_dedupe() {
    shared_and_unique(true).await;
}

#[tokio::test]
async fn shared_and_unique_blobs_without_dedupe() {
    shared_and_unique(false).await;
}

#[tokio::test]
async fn blobs_of_pushes_in_flight_survive_gc_delay() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let delay = Duration::from_secs(1);
    reg.track_placements(delay);
    let options = GcOptions {
        delay,
        ..GcOptions::default()
    };
    let (a, b) = (repo("a"), repo("b"));
    push_image(&reg, &b, "1", &[b"layer-old"]).await;
    let stale = push_blob(&reg, &a, b"stale").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // A dedupe link to b's old file, a fresh blob and an open upload.
    let linked = push_blob(&reg, &a, b"layer-old").await;
    let fresh = push_blob(&reg, &a, b"fresh").await;
    let id = reg.start_upload(&a).await.unwrap();
    reg.append_upload(&a, &id, Some(0), body(b"partial"))
        .await
        .unwrap();
    let r = reg.gc_repo(&a, &options).await.unwrap();
    assert_eq!(r.blobs_removed, 1, "only the stale blob: {r:?}");
    assert_eq!(reg.blob_size(&a, &stale).await.unwrap(), None);
    assert_eq!(reg.upload_size(&a, &id).await.unwrap(), 7);

    // The manifest pushed right after its blobs is accepted and keeps them.
    push_blob(&reg, &a, b"{}").await;
    let manifest = image_manifest(&[b"layer-old", b"fresh"]);
    reg.put_manifest(&a, &tag("t"), None, manifest.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = reg.gc_repo(&a, &options).await.unwrap();
    assert_eq!(r.blobs_removed, 0, "{r:?}");
    for d in [&linked, &fresh] {
        assert!(reg.blob_size(&a, d).await.unwrap().is_some());
    }
    pull_image(&reg, &a, "t").await;
}

#[tokio::test]
async fn a_manifest_whose_blob_gc_removed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let a = repo("a");
    push_blob(&reg, &a, b"{}").await;
    push_blob(&reg, &a, b"l").await;
    reg.gc_repo(&a, &now_gc()).await.unwrap();
    let err = reg
        .put_manifest(&a, &tag("t"), None, image_manifest(&[b"l"]).as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::ManifestBlobUnknown(_)), "{err}");
}

#[tokio::test]
async fn missing_blobs_do_not_stop_gc() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let a = repo("a");
    push_image(&reg, &a, "1", &[b"gone"]).await;
    let untagged = push_image(&reg, &a, "2", &[b"kept"]).await;
    reg.delete_manifest(&a, &Reference::Tag("2".parse().unwrap()))
        .await
        .unwrap();
    push_blob(&reg, &a, b"garbage").await;
    let hex = |b: &[u8]| Digest::sha256_of(b).hex().to_owned();
    std::fs::remove_file(dir.path().join(format!("a/blobs/sha256/{}", hex(b"gone")))).unwrap();
    let r = reg.gc_repo(&a, &now_gc()).await.unwrap();
    assert_eq!(r.manifests_removed, 1, "the untagged manifest: {r:?}");
    assert_eq!(r.blobs_removed, 2, "garbage and kept: {r:?}");
    assert!(reg.metadata().manifest(&a, &untagged).unwrap().is_none());
    assert!(
        reg.manifest_record(&a, &tag("1")).is_ok(),
        "tag 1 stays listed"
    );
}

#[tokio::test]
async fn empty_repositories_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let (a, b) = (repo("a/x"), repo("a"));
    let m = push_image(&reg, &a, "1", &[b"l"]).await;
    push_image(&reg, &b, "1", &[b"l"]).await;
    reg.delete_manifest(&a, &Reference::Digest(m))
        .await
        .unwrap();
    let r = reg.gc_all(&now_gc()).await.unwrap();
    assert!(r.repository_removed, "{r:?}");
    assert_eq!(reg.catalog(None, 10).unwrap().0, vec!["a".to_string()]);
    assert!(!dir.path().join("a/x/index.json").exists());
    assert!(!dir.path().join("a/x/oci-layout").exists());
    pull_image(&reg, &b, "1").await;
    // A push to the removed repository recreates it.
    push_image(&reg, &a, "2", &[b"m"]).await;
    assert!(dir.path().join("a/x/oci-layout").exists());
    pull_image(&reg, &a, "2").await;
    // And a restart finds both.
    drop(reg);
    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(report.repositories, 2);
    pull_image(&reg, &a, "2").await;
}

/// `oci-layout` (what makes a folder a repository) is removed before
/// `index.json`, so a crash between the two leaves no repository.
#[tokio::test]
async fn an_empty_repository_loses_its_oci_layout_first() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, record) = recorded::open_recorded(dir.path(), Options::default()).await;
    let a = repo("a");
    let m = push_image(&reg, &a, "1", &[b"l"]).await;
    reg.delete_manifest(&a, &Reference::Digest(m))
        .await
        .unwrap();
    record.deletes.lock().unwrap().clear();
    let r = reg.gc_repo(&a, &now_gc()).await.unwrap();
    assert!(r.repository_removed, "{r:?}");
    let deletes = record.deletes.lock().unwrap().clone();
    let at = |key: &str| {
        deletes
            .iter()
            .position(|k| k == key)
            .unwrap_or_else(|| panic!("{key} not removed: {deletes:?}"))
    };
    assert!(at("a/oci-layout") < at("a/index.json"), "{deletes:?}");
}

/// The state a crash between the two removals leaves: not a repository
/// after a restart, and a push to the name works.
#[tokio::test]
async fn a_half_removed_repository_is_not_served_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = repo("a");
    {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        push_image(&reg, &repo("b"), "1", &[b"l"]).await;
        let m = push_image(&reg, &a, "1", &[b"l"]).await;
        reg.delete_manifest(&a, &Reference::Digest(m))
            .await
            .unwrap();
        reg.gc_repo(&a, &now_gc()).await.unwrap();
    }
    // Put back what the crash would have left: the empty index.json.
    std::fs::write(
        dir.path().join("a/index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(report.repositories, 1, "{report:?}");
    assert_eq!(reg.catalog(None, 10).unwrap().0, vec!["b".to_string()]);
    push_image(&reg, &a, "2", &[b"m"]).await;
    pull_image(&reg, &a, "2").await;
    assert_eq!(reg.tags(&a, None, 10).unwrap().0, vec!["2".to_string()]);
}

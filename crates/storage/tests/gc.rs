//! Garbage collection below the HTTP layer, on disk: missing blobs; a
//! manifest whose blob GC removed; empty repositories, removed so that a
//! crash half-way leaves no repository behind. (Shared and unique blobs,
//! with and without dedupe, gcDelay and the removal of empty repositories
//! run on both drivers in `lifecycle_both.rs`.)

mod gc_common;

use gc_common::*;
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

//! Dedupe on S3 (SeaweedFS) with zero-byte placeholders, as zot does it:
//! content stored once, placeholders resolved for reads, ranges, mounts
//! and manifests; content handed to the next holder when its holder goes;
//! the real empty blob never taken for a placeholder; the dedupe map
//! recovered from the bucket; a bucket written with dedupe on served with
//! it off.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod dedupe_common;
mod gc_common;
mod s3_common;

use dedupe_common::{Bucket, dedupe};
use gc_common::*;
use std::time::Duration;
use zot_oci::{Digest, Reference};
use zot_storage::{Backend, GcOptions, ScrubFault, ScrubItem};

fn now_gc() -> GcOptions {
    GcOptions {
        delay: Duration::ZERO,
        ..GcOptions::default()
    }
}

/// A layer of `n` bytes that differs by `seed`.
fn layer(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

async fn range(reg: &zot_storage::Registry, r: &str, d: &Digest, start: u64, len: u64) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut s = reg.blob_stream(&repo(r), d, start, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_stored_once_and_placeholders_resolve() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let shared = layer(3000, 1);
    let d = Digest::sha256_of(&shared);
    push_image(&reg, &repo("a"), "1", &[&shared]).await;
    push_image(&reg, &repo("b"), "1", &[&shared, b"own"]).await;
    assert_eq!(b.object_size("a", &d).await, Some(3000));
    assert_eq!(
        b.object_size("b", &d).await,
        Some(0),
        "b holds a placeholder"
    );
    assert_eq!(
        reg.metadata().blob_origin(&d).unwrap().as_deref(),
        Some("a")
    );
    // HEAD, GET and ranges through the placeholder.
    assert_eq!(reg.blob_size(&repo("b"), &d).await.unwrap(), Some(3000));
    assert_eq!(read_blob(&reg, &repo("b"), &d).await, shared);
    assert_eq!(range(&reg, "b", &d, 100, 50).await, &shared[100..150]);
    // A mount from the placeholder's repository is a placeholder too.
    assert!(
        reg.mount_blob(&repo("c"), &d, Some(&repo("b")))
            .await
            .unwrap()
    );
    assert_eq!(b.object_size("c", &d).await, Some(0));
    // A manifest pushed over the placeholder only (no upload) is accepted.
    push_blob(&reg, &repo("c"), b"{}").await;
    let m = image_manifest(&[&shared]);
    reg.put_manifest(&repo("c"), &tag("1"), None, m.as_bytes())
        .await
        .unwrap();
    pull_image(&reg, &repo("c"), "1").await;
    // The config `{}` is shared as well, and parsed through its placeholder.
    let config = Digest::sha256_of(b"{}");
    assert_eq!(b.object_size("c", &config).await, Some(0));
    // Scrub hashes what the placeholders stand for: nothing is wrong.
    for r in ["a", "b", "c"] {
        let report = reg.scrub_repo(&repo(r)).await;
        assert!(report.problems.is_empty(), "{r}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_holder_moves_the_content_to_the_next() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let shared = layer(5000, 2);
    let d = Digest::sha256_of(&shared);
    let ma = push_image(&reg, &repo("a"), "1", &[&shared]).await;
    let mb = push_image(&reg, &repo("b"), "1", &[&shared]).await;
    push_image(&reg, &repo("c"), "1", &[&shared]).await;

    // The holder's manifest goes and GC collects its blobs.
    reg.delete_manifest(&repo("a"), &Reference::Digest(ma))
        .await
        .unwrap();
    let r = reg.gc_all(&now_gc()).await.unwrap();
    assert!(r.repository_removed, "{r:?}");
    assert_eq!(b.object_size("a", &d).await, None);
    let holder = reg.metadata().blob_origin(&d).unwrap().unwrap();
    assert_ne!(holder, "a");
    assert_eq!(b.object_size(&holder, &d).await, Some(5000));
    pull_image(&reg, &repo("b"), "1").await;
    pull_image(&reg, &repo("c"), "1").await;

    // A blob delete of the new holder (its manifest first) moves it again.
    reg.delete_manifest(&repo("b"), &Reference::Digest(mb))
        .await
        .unwrap();
    reg.delete_blob(&repo("b"), &d).await.unwrap();
    assert_eq!(b.object_size("b", &d).await, None);
    assert_eq!(b.object_size("c", &d).await, Some(5000));
    assert_eq!(
        reg.metadata().blob_origin(&d).unwrap().as_deref(),
        Some("c")
    );
    pull_image(&reg, &repo("c"), "1").await;
    // The last holder's content simply goes.
    let mc = reg.manifest_record(&repo("c"), &tag("1")).unwrap().digest;
    reg.delete_manifest(&repo("c"), &Reference::Digest(mc))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!(b.object_size("c", &d).await, None);
    assert_eq!(reg.metadata().blob_origin(&d).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_empty_blob_is_content_never_a_placeholder() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let empty = Digest::sha256_of(b"");
    let ma = push_image(&reg, &repo("a"), "1", &[b"", b"x"]).await;
    push_image(&reg, &repo("b"), "1", &[b""]).await;
    assert_eq!(b.object_size("a", &empty).await, Some(0));
    assert_eq!(b.object_size("b", &empty).await, Some(0));
    assert_eq!(read_blob(&reg, &repo("b"), &empty).await, b"");
    // Deleting one copy leaves the other as it is (nothing to move).
    reg.delete_manifest(&repo("a"), &Reference::Digest(ma))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!(b.object_size("a", &empty).await, None);
    // A rebuild takes it for content, and scrub agrees.
    let reg = b.open(dedupe(true)).await;
    assert_eq!(reg.blob_size(&repo("b"), &empty).await.unwrap(), Some(0));
    pull_image(&reg, &repo("b"), "1").await;
    let report = reg.scrub_repo(&repo("b")).await;
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_recovers_the_dedupe_map_from_the_bucket() {
    let b = Bucket::new();
    let shared = layer(4000, 3);
    let d = Digest::sha256_of(&shared);
    let ma = {
        let reg = b.open(dedupe(true)).await;
        let ma = push_image(&reg, &repo("a"), "1", &[&shared]).await;
        push_image(&reg, &repo("b/x"), "1", &[&shared]).await;
        ma
    };
    // The metadata store is gone: everything is read from the bucket.
    let reg = b.open(dedupe(true)).await;
    assert_eq!(
        reg.metadata().blob_origin(&d).unwrap().as_deref(),
        Some("a")
    );
    pull_image(&reg, &repo("b/x"), "1").await;
    // And the recovered map still moves content when its holder goes.
    reg.delete_manifest(&repo("a"), &Reference::Digest(ma))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!(b.object_size("b/x", &d).await, Some(4000));
    pull_image(&reg, &repo("b/x"), "1").await;
}

/// The decision for a bucket written with dedupe on and served with it
/// off: placeholders keep resolving (no restore pass rewrites them), new
/// placements and mounts are server-side copies, and deleting a holder
/// still moves its content to a placeholder holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_written_with_dedupe_is_served_with_it_off() {
    let b = Bucket::new();
    let shared = layer(2500, 4);
    let d = Digest::sha256_of(&shared);
    let ma = {
        let reg = b.open(dedupe(true)).await;
        let ma = push_image(&reg, &repo("a"), "1", &[&shared]).await;
        push_image(&reg, &repo("b"), "1", &[&shared]).await;
        ma
    };
    let reg = b.open(dedupe(false)).await;
    pull_image(&reg, &repo("b"), "1").await;
    assert_eq!(b.object_size("b", &d).await, Some(0), "not rewritten");
    push_image(&reg, &repo("c"), "1", &[&shared]).await;
    assert_eq!(b.object_size("c", &d).await, Some(2500), "a copy");
    assert!(
        reg.mount_blob(&repo("d"), &d, Some(&repo("b")))
            .await
            .unwrap()
    );
    assert_eq!(
        b.object_size("d", &d).await,
        Some(2500),
        "a server-side copy"
    );
    // a and c hold content: when a goes, b's placeholder resolves to c.
    reg.delete_manifest(&repo("a"), &Reference::Digest(ma))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!(b.object_size("a", &d).await, None);
    pull_image(&reg, &repo("b"), "1").await;
    let mc = reg.manifest_record(&repo("c"), &tag("1")).unwrap().digest;
    reg.delete_manifest(&repo("c"), &Reference::Digest(mc))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    pull_image(&reg, &repo("b"), "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_sees_damaged_content_through_placeholders() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let shared = layer(1500, 5);
    let d = Digest::sha256_of(&shared);
    push_image(&reg, &repo("a"), "1", &[&shared]).await;
    push_image(&reg, &repo("b"), "1", &[&shared]).await;
    let mut flipped = shared.clone();
    flipped[7] ^= 1;
    b.raw()
        .write_atomic(&zot_storage::paths::blob(&repo("a"), &d), &flipped)
        .await
        .unwrap();
    let found = |report: zot_storage::ScrubReport| -> Vec<ScrubFault> {
        report
            .problems
            .iter()
            .filter(|p| p.item == ScrubItem::Blob(d.clone()))
            .map(|p| p.fault)
            .collect()
    };
    assert!(found(reg.scrub_repo(&repo("b")).await).contains(&ScrubFault::Corrupt));
    // Content gone from under the placeholders: missing, not empty.
    b.raw()
        .delete(&zot_storage::paths::blob(&repo("a"), &d))
        .await
        .unwrap();
    assert!(found(reg.scrub_repo(&repo("b")).await).contains(&ScrubFault::Missing));
    assert!(reg.blob_size(&repo("b"), &d).await.unwrap().is_none());
}

/// A dedupe map that lost its entry (the holder is still recorded): a
/// read through a placeholder finds the holder and records it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_without_the_origin_is_repaired_by_a_read() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let shared = layer(2048, 6);
    let d = Digest::sha256_of(&shared);
    push_image(&reg, &repo("a"), "1", &[&shared]).await;
    push_image(&reg, &repo("b"), "1", &[&shared]).await;
    reg.metadata()
        .apply(
            &repo("a"),
            &[
                zot_storage::Change::RemoveBlob(d.clone()),
                zot_storage::Change::AddBlob(d.clone()),
            ],
        )
        .unwrap();
    assert_eq!(reg.metadata().blob_origin(&d).unwrap(), None);
    // Straight to the stream (no HEAD first): the placeholder is not
    // served as the blob.
    assert_eq!(range(&reg, "b", &d, 0, 2048).await, shared);
    assert_eq!(
        reg.metadata().blob_origin(&d).unwrap().as_deref(),
        Some("a")
    );
    pull_image(&reg, &repo("b"), "1").await;
}

/// A placeholder whose content is nowhere (left by a crash, or written by
/// hand) is a missing blob, and the next upload of the digest replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_placeholder_is_missing_and_replaced_by_an_upload() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let data = layer(700, 7);
    let d = Digest::sha256_of(&data);
    push_image(&reg, &repo("c"), "1", &[b"other"]).await;
    b.raw()
        .write_atomic(&zot_storage::paths::blob(&repo("c"), &d), b"")
        .await
        .unwrap();
    assert_eq!(reg.blob_size(&repo("c"), &d).await.unwrap(), None);
    assert!(matches!(
        reg.blob_stream(&repo("c"), &d, 0, 700).await,
        Err(zot_storage::StorageError::BlobUnknown)
    ));
    push_blob(&reg, &repo("c"), &data).await;
    assert_eq!(b.object_size("c", &d).await, Some(700));
    assert_eq!(read_blob(&reg, &repo("c"), &d).await, data);
}

/// The repositories `many/r<i>`, `i < n`, whose object of `d` has content.
async fn holders(b: &Bucket, d: &Digest, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..n {
        if b.object_size(&format!("many/r{i}"), d)
            .await
            .is_some_and(|s| s > 0)
        {
            out.push(i);
        }
    }
    out
}

/// Pushes of one image to many repositories at once, then removals of
/// half of them (manifest delete and GC) while others push: the content
/// is stored once throughout, and every remaining image pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_and_removals_store_the_content_once() {
    let b = Bucket::new();
    let reg = std::sync::Arc::new(b.open(dedupe(true)).await);
    let shared = layer(4096, 9);
    let d = Digest::sha256_of(&shared);
    let name = |i: usize| format!("many/r{i}");
    let push = |i: usize| {
        let (reg, shared) = (reg.clone(), shared.clone());
        tokio::spawn(async move { push_image(&reg, &repo(&name(i)), "1", &[&shared]).await })
    };
    let mut digests = Vec::new();
    for task in (0..8).map(push).collect::<Vec<_>>() {
        digests.push(task.await.unwrap());
    }
    assert_eq!(holders(&b, &d, 8).await.len(), 1, "stored once");

    let mut tasks = Vec::new();
    for (i, m) in digests.iter().enumerate().take(4) {
        let (reg, m) = (reg.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            let r = repo(&name(i));
            reg.delete_manifest(&r, &Reference::Digest(m))
                .await
                .unwrap();
            reg.gc_repo(&r, &now_gc()).await.unwrap();
        }));
    }
    let pushes: Vec<_> = (8..12).map(push).collect();
    for t in tasks {
        t.await.unwrap();
    }
    for t in pushes {
        t.await.unwrap();
    }
    assert_eq!(
        holders(&b, &d, 12).await.len(),
        1,
        "stored once: {:?}",
        holders(&b, &d, 12).await
    );
    for i in 4..12 {
        pull_image(&reg, &repo(&name(i)), "1").await;
    }
    for i in 0..4 {
        assert_eq!(b.object_size(&name(i), &d).await, None);
    }
}

/// A placeholder no placement recorded (a crash between its write and its
/// record) that a manifest then relies on: the manifest push records it,
/// so removing the holder moves the content there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_a_manifest_relies_on_is_recorded() {
    let b = Bucket::new();
    let reg = b.open(dedupe(true)).await;
    let data = layer(900, 8);
    let d = Digest::sha256_of(&data);
    let ma = push_image(&reg, &repo("a"), "1", &[&data]).await;
    push_blob(&reg, &repo("z"), b"{}").await;
    b.raw()
        .write_atomic(&zot_storage::paths::blob(&repo("z"), &d), b"")
        .await
        .unwrap();
    assert!(
        !reg.metadata()
            .blob_repos(&d)
            .unwrap()
            .contains(&"z".to_string())
    );
    // The client's HEAD finds the blob (through the placeholder): no upload.
    assert_eq!(reg.blob_size(&repo("z"), &d).await.unwrap(), Some(900));
    let m = image_manifest(&[&data]);
    reg.put_manifest(&repo("z"), &tag("1"), None, m.as_bytes())
        .await
        .unwrap();
    reg.delete_manifest(&repo("a"), &Reference::Digest(ma))
        .await
        .unwrap();
    reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!(b.object_size("z", &d).await, Some(900));
    pull_image(&reg, &repo("z"), "1").await;
}

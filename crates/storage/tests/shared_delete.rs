//! An explicit manifest delete on one instance and an index push on
//! another (issue 9, point 4): two registries on one bucket sharing state
//! in Redis. A manifest an index names is not deleted (`405 DENIED`, as
//! zot answers); the delete, stopped by A's driver after reading
//! `index.json` (or before writing it) while B pushes an index naming the
//! manifest, must be refused, or B's push fail with
//! `MANIFEST_BLOB_UNKNOWN`: never an index naming a missing child.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod pausing_common;
mod s3_common;
mod shared_gc_common;

use pausing_common::Stop;
use shared_gc_common::{Pair, index, manifest, push, push_refused_everywhere};
use std::time::Duration;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{Registry, StorageError};

/// An image manifest pushed by digest through A: its digest and size.
async fn image(pair: &Pair, r: &RepoName) -> (Digest, usize) {
    let layer = push(&pair.a, r, b"a layer of a platform image").await;
    let config = push(&pair.a, r, b"{}").await;
    let body = manifest(&config, &layer, 27);
    let digest = Digest::sha256_of(&body);
    pair.a
        .put_manifest(r, &Reference::Digest(digest.clone()), None, &body)
        .await
        .unwrap();
    (digest, body.len())
}

fn tag(t: &str) -> Reference {
    t.parse().unwrap()
}

fn by_digest(d: &Digest) -> Reference {
    Reference::Digest(d.clone())
}

/// The error is the refusal of deleting `child`, named by `parent`.
fn refused<T: std::fmt::Debug>(got: Result<T, StorageError>, child: &Digest, parent: &Digest) {
    match got {
        Err(StorageError::ManifestReferenced { digest, index }) => {
            assert_eq!(&digest, child);
            assert_eq!(index.as_ref(), Some(parent));
        }
        other => panic!("expected the delete refused (part of an index), got {other:?}"),
    }
}

/// Every child of the index tagged `t` in `r`, through `reg`, is present.
async fn children_present(reg: &Registry, r: &RepoName, t: &str) {
    let record = reg.manifest_record(r, &tag(t)).unwrap();
    let body = reg.manifest_bytes(r, &record).await.unwrap();
    let parsed = zot_oci::ParsedManifest::parse(&body, None, true).unwrap();
    assert!(!parsed.manifests.is_empty());
    for child in &parsed.manifests {
        assert_eq!(
            reg.blob_size(r, &child.digest).await.unwrap(),
            Some(child.size),
            "the index names a missing child {}",
            child.digest
        );
    }
}

/// Removes the marks index pushes wrote on their children, as if
/// `NAMED_TTL` had passed: what refuses a delete then is the stored index.
async fn forget_named(pair: &Pair) {
    let mut conn = pair.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("gc:named:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "an index push marks its children");
    let () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// The child deleted through either instance: gone everywhere.
async fn gone(pair: &Pair, r: &RepoName, child: &Digest) {
    for reg in [&pair.a, &pair.b, &pair.fresh().await.0] {
        assert_eq!(reg.blob_size(r, child).await.unwrap(), None);
        assert!(reg.manifest_record(r, &by_digest(child)).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_a_stored_index_names_is_not_deleted() {
    let pair = Pair::start().await;
    let r: RepoName = "delete/stored".parse().unwrap();
    let (child, size) = image(&pair, &r).await;
    let body = index(&child, size);
    let parent = Digest::sha256_of(&body);
    pair.a
        .put_manifest(&r, &tag("multi"), None, &body)
        .await
        .unwrap();
    forget_named(&pair).await;

    refused(
        pair.b.delete_manifest(&r, &by_digest(&child)).await,
        &child,
        &parent,
    );
    children_present(&pair.b, &r, "multi").await;
    // Deleting by tag leaves the index listed (untagged): still refused.
    pair.b.delete_manifest(&r, &tag("multi")).await.unwrap();
    refused(
        pair.a.delete_manifest(&r, &by_digest(&child)).await,
        &child,
        &parent,
    );
    pair.b
        .delete_manifest(&r, &by_digest(&parent))
        .await
        .unwrap();
    pair.a
        .delete_manifest(&r, &by_digest(&child))
        .await
        .unwrap();
    gone(&pair, &r, &child).await;
}

/// Deleting an index removes its marks on its children: they can be
/// deleted at once, not only once the marks expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_goes_at_once_after_its_index() {
    let pair = Pair::start().await;
    let r: RepoName = "delete/after".parse().unwrap();
    let (child, size) = image(&pair, &r).await;
    let body = index(&child, size);
    let parent = Digest::sha256_of(&body);
    pair.b
        .put_manifest(&r, &tag("multi"), None, &body)
        .await
        .unwrap();
    pair.a
        .delete_manifest(&r, &by_digest(&parent))
        .await
        .unwrap();
    pair.b
        .delete_manifest(&r, &by_digest(&child))
        .await
        .unwrap();
    gone(&pair, &r, &child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_pushed_elsewhere_while_a_delete_reads_refuses_it() {
    let pair = Pair::start().await;
    let r: RepoName = "delete/reading".parse().unwrap();
    let (child, size) = image(&pair, &r).await;
    let body = index(&child, size);
    let parent = Digest::sha256_of(&body);

    // A's delete has read index.json, where no index names the child yet.
    pair.gate
        .stop_at(Stop::AfterRead, &format!("{r}/index.json"));
    let elsewhere = async {
        pair.gate.reached.notified().await;
        let pushed = pair.b.put_manifest(&r, &tag("multi"), None, &body).await;
        pair.gate.go.notify_one();
        pushed
    };
    let reference = by_digest(&child);
    let deleting = pair.a.delete_manifest(&r, &reference);
    let (deleted, pushed) = tokio::join!(deleting, elsewhere);
    pushed.unwrap();
    refused(deleted, &child, &parent);
    children_present(&pair.a, &r, "multi").await;
    children_present(&pair.fresh().await.0, &r, "multi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_pushed_elsewhere_during_a_delete_waits_and_fails() {
    let pair = Pair::start().await;
    let r: RepoName = "delete/writing".parse().unwrap();
    let (child, size) = image(&pair, &r).await;
    let body = index(&child, size);

    // A's delete has decided, not written index.json yet.
    pair.gate
        .stop_at(Stop::BeforeWrite, &format!("{r}/index.json"));
    let elsewhere = async {
        pair.gate.reached.notified().await;
        let multi = tag("multi");
        let pushing = pair.b.put_manifest(&r, &multi, None, &body);
        tokio::pin!(pushing);
        let waited = tokio::time::timeout(Duration::from_secs(2), &mut pushing).await;
        assert!(
            waited.is_err(),
            "pushed an index naming a manifest being deleted: {waited:?}"
        );
        pair.gate.go.notify_one();
        pushing.await
    };
    let reference = by_digest(&child);
    let deleting = pair.a.delete_manifest(&r, &reference);
    let (deleted, pushed) = tokio::join!(deleting, elsewhere);
    deleted.unwrap();
    push_refused_everywhere(&pair, &r, pushed, &child, "multi").await;
}

/// The manifest pushed again by tag through A (stopped before writing
/// `index.json`, its file found present) while B deletes it: the push's
/// write comes last, so the manifest stays, its file too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pushed_again_while_deleted_elsewhere_stays_whole() {
    let pair = Pair::start().await;
    let r: RepoName = "delete/again".parse().unwrap();
    let (digest, _) = image(&pair, &r).await;
    let record = pair.a.manifest_record(&r, &by_digest(&digest)).unwrap();
    let body = pair.a.manifest_bytes(&r, &record).await.unwrap();

    pair.gate
        .stop_at(Stop::BeforeWrite, &format!("{r}/index.json"));
    let elsewhere = async {
        pair.gate.reached.notified().await;
        let deleted = pair.b.delete_manifest(&r, &by_digest(&digest)).await;
        pair.gate.go.notify_one();
        deleted
    };
    let again = tag("again");
    let pushing = pair.a.put_manifest(&r, &again, None, &body);
    let (pushed, deleted) = tokio::join!(pushing, elsewhere);
    deleted.unwrap();
    assert_eq!(pushed.unwrap().digest, digest);
    let (fresh, _dir) = pair.fresh().await;
    for reg in [&pair.a, &pair.b, &fresh] {
        let record = reg.manifest_record(&r, &again).unwrap();
        assert_eq!(reg.manifest_bytes(&r, &record).await.unwrap(), body);
    }
}

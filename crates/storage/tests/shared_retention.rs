//! Retention on one instance and manifest pushes on another (issue 9,
//! point 4): two registries on one bucket sharing state in Redis. A's GC
//! round is stopped by its driver after reading `index.json` (or before
//! writing it), a manifest push goes through B meanwhile, then the round
//! goes on. A round deciding on the index it read would remove an untagged
//! manifest that B's index names as a child (the conditional write merges
//! its removal into B's newer index), or that B pushed again by tag: the
//! child must survive, or B's push fail with `MANIFEST_BLOB_UNKNOWN`;
//! never an index naming a missing child, nor a tag acknowledged and gone.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod pausing_common;
mod s3_common;
mod shared_gc_common;

use pausing_common::Stop;
use shared_gc_common::{Pair, index, manifest, push, push_refused_everywhere};
use std::time::Duration;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::retention::Retention;
use zot_storage::{GcOptions, GcReport, Registry};

/// `gcDelay` here: long enough for a round held up while B pushes to
/// stay within half of it (the marks live `gcDelay`) even on a loaded
/// machine — a round past half of it removes nothing, and the tests
/// asserting that nothing was removed would then pass for that reason;
/// the tests remove the marks of earlier pushes rather than wait for
/// them to expire.
const GC_DELAY: Duration = Duration::from_secs(40);

/// Two instances with `gcDelay` [`GC_DELAY`].
async fn pair() -> Pair {
    Pair::start_with(GC_DELAY).await
}

/// GC whose retention (zot's default policy: untagged manifests go)
/// removes manifests pushed over a second ago.
fn retention() -> GcOptions {
    GcOptions {
        delay: GC_DELAY,
        retention: Retention {
            delay: Duration::from_secs(1),
            ..Retention::default()
        },
    }
}

/// An untagged image manifest pushed through A, older than the retention
/// delay, its push's marks gone: its digest and body.
async fn untagged(pair: &Pair, r: &RepoName) -> (Digest, Vec<u8>) {
    let layer = push(&pair.a, r, b"a layer of an untagged image").await;
    let config = push(&pair.a, r, b"{}").await;
    let body = manifest(&config, &layer, 28);
    let digest = Digest::sha256_of(&body);
    let reference = Reference::Digest(digest.clone());
    pair.a
        .put_manifest(r, &reference, None, &body)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    pair.forget_marks().await;
    (digest, body)
}

fn tag(t: &str) -> Reference {
    t.parse().unwrap()
}

/// A's retention round on `r`, stopped at `stop` on its `index.json`
/// while `meanwhile` (B's push) runs: the round's report, and what
/// `meanwhile` gave.
async fn round_while<T>(
    pair: &Pair,
    r: &RepoName,
    stop: Stop,
    meanwhile: impl Future<Output = T>,
) -> (GcReport, T) {
    pair.gate.stop_at(stop, &format!("{r}/index.json"));
    let elsewhere = async {
        pair.gate.reached.notified().await;
        let out = meanwhile.await;
        pair.gate.go.notify_one();
        out
    };
    let gc = retention();
    let (report, out) = tokio::join!(pair.a.gc_repo(r, &gc), elsewhere);
    (report.unwrap(), out)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_pushed_elsewhere_during_retention_keeps_its_child() {
    let pair = pair().await;
    let r: RepoName = "retention/child".parse().unwrap();
    let (child, body) = untagged(&pair, &r).await;

    // A's round has read index.json, where the child is untagged.
    let (multi, index) = (tag("multi"), index(&child, body.len()));
    let push = pair.b.put_manifest(&r, &multi, None, &index);
    let (report, pushed) = round_while(&pair, &r, Stop::AfterRead, push).await;
    pushed.unwrap();
    assert_eq!(report.manifests_removed, 0, "{report:?}");
    children_present(&pair.b, &r, "multi").await;
    children_present(&pair.fresh().await.0, &r, "multi").await;

    // Later rounds keep it: the index names it now.
    pair.forget_marks().await;
    let report = pair.a.gc_repo(&r, &retention()).await.unwrap();
    assert_eq!(report.manifests_removed, 0, "{report:?}");
    children_present(&pair.a, &r, "multi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_naming_a_manifest_being_removed_elsewhere_fails() {
    let pair = pair().await;
    let r: RepoName = "retention/removing".parse().unwrap();
    let (child, body) = untagged(&pair, &r).await;

    pair.gate
        .stop_at(Stop::BeforeWrite, &format!("{r}/index.json"));
    let (index, multi) = (index(&child, body.len()), tag("multi"));
    let elsewhere = async {
        // A's round has decided to remove the child, not written yet.
        pair.gate.reached.notified().await;
        let pushing = pair.b.put_manifest(&r, &multi, None, &index);
        tokio::pin!(pushing);
        let waited = tokio::time::timeout(Duration::from_secs(2), &mut pushing).await;
        assert!(
            waited.is_err(),
            "pushed an index naming a manifest being removed: {waited:?}"
        );
        pair.gate.go.notify_one();
        pushing.await
    };
    let gc = retention();
    let (report, pushed) = tokio::join!(pair.a.gc_repo(&r, &gc), elsewhere);
    let report = report.unwrap();
    assert_eq!(report.manifests_removed, 1, "{report:?}");
    push_refused_everywhere(&pair, &r, pushed, &child, "multi").await;
}

/// The manifest pushed again by tag through B: kept with its tag. (Here
/// the round reads the push times after B's push, which keep it; a round
/// that read them before is held back by the manifest's own mark.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pushed_again_elsewhere_during_retention_keeps_its_tag() {
    let pair = pair().await;
    let r: RepoName = "retention/again".parse().unwrap();
    let (digest, body) = untagged(&pair, &r).await;

    let again = tag("again");
    let push = pair.b.put_manifest(&r, &again, None, &body);
    let (report, pushed) = round_while(&pair, &r, Stop::AfterRead, push).await;
    assert_eq!(pushed.unwrap().digest, digest);
    assert_eq!(report.manifests_removed, 0, "{report:?}");
    let (fresh, _dir) = pair.fresh().await;
    for reg in [&pair.b, &fresh] {
        let record = reg.manifest_record(&r, &tag("again")).unwrap();
        assert_eq!(reg.manifest_bytes(&r, &record).await.unwrap(), body);
    }
}

//! Parked blobs on S3 (`parked.rs`): a chunked upload whose move to its
//! blob key would be a copy is acknowledged first, with a marker naming the
//! completed upload and a placeholder at the blob key; every read resolves
//! it to the upload until the move. Checked on SeaweedFS, the bucket read
//! directly by a second driver (what another tool would see): the parked
//! state, reads (whole and ranges, by the origin and through another
//! repository's placeholder), the move (the blob key then holds exactly
//! the bytes; upload and marker gone), a restart before the move (another
//! registry on the same bucket and metadata moves it), removals of a
//! parked blob (nothing left; content handed over to a placeholder
//! holder), a second push of parked content, the mover task, and the
//! size threshold.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use futures_util::StreamExt;
use s3_common::seaweed::{self, Seaweed};
use s3_common::uploads::{await_none_pending, body, content, no_body};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zot_oci::{Digest, RepoName};
use zot_storage::{Backend, MoveStep, Options, Registry, S3Backend, S3Options, open_s3};

/// Parts of 5 MiB (the least S3 takes).
const CHUNK: u64 = 5 << 20;
const ROOT: &str = "zot";
/// Two whole parts and a tail: a multipart upload, so a copy to publish.
const SIZE: usize = 2 * CHUNK as usize + 4097;

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn blob_key(r: &RepoName, d: &Digest) -> String {
    format!("{r}/blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

fn marker_key(r: &RepoName, d: &Digest) -> String {
    let hex: String = r.as_str().bytes().map(|b| format!("{b:02x}")).collect();
    format!(".parked/{}-{}-{hex}", d.algorithm().as_str(), d.hex())
}

struct Setup {
    config: zot_config::S3Config,
    /// The bucket read directly: what another OCI tool would see.
    raw: S3Backend,
    reg: Arc<Registry>,
    meta: tempfile::TempDir,
    park_min: Option<u64>,
}

async fn open(
    config: &zot_config::S3Config,
    meta: &std::path::Path,
    park_min: Option<u64>,
) -> Registry {
    let options = Options {
        park_min_bytes: park_min,
        ..Options::default()
    };
    open_s3(meta, config, &S3Options::default(), options)
        .await
        .unwrap()
        .0
}

async fn setup_with(server: &Seaweed, park_min: Option<u64>) -> Setup {
    let bucket = server.bucket();
    let config = server.config(&bucket, ROOT, CHUNK);
    let meta = tempfile::tempdir().unwrap();
    let reg = Arc::new(open(&config, meta.path(), park_min).await);
    Setup {
        raw: S3Backend::open(&config, &S3Options::default()).unwrap(),
        config,
        reg,
        meta,
        park_min,
    }
}

/// Parks every multipart upload, whatever its size.
async fn setup(server: &Seaweed) -> Setup {
    setup_with(server, Some(1)).await
}

struct Pushed {
    data: Vec<u8>,
    digest: Digest,
    upload: String,
}

impl Setup {
    /// POST, one streamed PATCH, `PUT ?digest` without a body.
    async fn push_chunked(&self, r: &RepoName, data: &[u8]) -> Pushed {
        let d = Digest::sha256_of(data);
        let id = self.reg.start_upload(r).await.unwrap();
        self.reg
            .append_upload(r, &id, None, body(data))
            .await
            .unwrap();
        let size = self
            .reg
            .complete_upload(r, &id, &d, None, no_body())
            .await
            .unwrap();
        assert_eq!(size, data.len() as u64);
        Pushed {
            data: data.to_vec(),
            digest: d,
            upload: format!("{r}/.uploads/{}", id.as_hyphenated()),
        }
    }

    /// The object at `key` as stored (no placeholder resolution).
    async fn raw_bytes(&self, key: &str) -> Option<Vec<u8>> {
        s3_common::uploads::raw_bytes(&self.raw, key).await
    }

    /// Parked: a placeholder at the blob key, the marker, the upload whole.
    async fn assert_parked(&self, r: &RepoName, p: &Pushed) {
        assert_eq!(
            self.raw.size(&blob_key(r, &p.digest)).await.unwrap(),
            Some(0),
            "{r}: the blob key holds the placeholder"
        );
        assert!(
            self.raw
                .size(&marker_key(r, &p.digest))
                .await
                .unwrap()
                .is_some(),
            "{r}: the marker"
        );
        assert!(
            self.raw_bytes(&p.upload).await.as_deref() == Some(&p.data[..]),
            "{r}: the upload holds the content"
        );
    }

    /// Moved: the blob key holds exactly the content; upload and marker gone.
    async fn assert_moved(&self, r: &RepoName, p: &Pushed) {
        assert!(
            self.raw_bytes(&blob_key(r, &p.digest)).await.as_deref() == Some(&p.data[..]),
            "{r}: the blob key holds the content"
        );
        assert_eq!(
            self.raw.size(&p.upload).await.unwrap(),
            None,
            "{r}: upload left"
        );
        assert_eq!(
            self.raw.size(&marker_key(r, &p.digest)).await.unwrap(),
            None,
            "{r}: marker left"
        );
    }

    /// Removed: nothing left at the blob key, the upload or the marker.
    async fn assert_gone(&self, r: &RepoName, p: &Pushed) {
        for key in [
            blob_key(r, &p.digest),
            p.upload.clone(),
            marker_key(r, &p.digest),
        ] {
            assert_eq!(self.raw.size(&key).await.unwrap(), None, "{key} left");
        }
    }

    /// Whole, and ranges at the start, across a part boundary, the end.
    async fn assert_served(&self, r: &RepoName, p: &Pushed) {
        assert_served(&self.reg, r, p).await;
    }
}

async fn read(reg: &Registry, r: &RepoName, d: &Digest, start: u64, len: u64) -> Vec<u8> {
    let mut s = reg.blob_stream(r, d, start, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

async fn assert_served(reg: &Registry, r: &RepoName, p: &Pushed) {
    let n = p.data.len() as u64;
    assert_eq!(reg.blob_size(r, &p.digest).await.unwrap(), Some(n), "{r}");
    assert!(read(reg, r, &p.digest, 0, n).await == p.data, "{r}: whole");
    for (start, len) in [(0, 1), (CHUNK - 3, 7), (n - 1, 1), (1000, 3 * 4096)] {
        let got = read(reg, r, &p.digest, start, len).await;
        assert!(
            got[..] == p.data[start as usize..(start + len) as usize],
            "{r}: range {start}+{len}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_is_parked_served_and_then_moved() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/one");
    let p = t.push_chunked(&r, &content(SIZE, 1)).await;
    t.assert_parked(&r, &p).await;
    t.assert_served(&r, &p).await;

    let hour = Duration::from_secs(3600);
    let step = |grace| t.reg.finish_parked(&r, &p.digest, grace);
    assert_eq!(step(hour).await.unwrap(), MoveStep::Copied);
    // Copied, not yet cleaned up: both hold the content meanwhile, until
    // the blob key's content is as old as the grace asked for.
    assert!(t.raw_bytes(&blob_key(&r, &p.digest)).await.as_deref() == Some(&p.data[..]));
    assert!(t.raw_bytes(&p.upload).await.as_deref() == Some(&p.data[..]));
    t.assert_served(&r, &p).await;
    assert_eq!(step(hour).await.unwrap(), MoveStep::Waiting);
    assert!(t.raw_bytes(&p.upload).await.as_deref() == Some(&p.data[..]));
    assert_eq!(step(Duration::ZERO).await.unwrap(), MoveStep::Cleaned);
    t.assert_moved(&r, &p).await;
    t.assert_served(&r, &p).await;
    assert_eq!(step(Duration::ZERO).await.unwrap(), MoveStep::Gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_repository_reads_parked_content_through_its_placeholder() {
    let t = setup(seaweed::shared()).await;
    let (a, b) = (repo("parked/origin"), repo("parked/mounted"));
    let p = t.push_chunked(&a, &content(SIZE, 2)).await;
    assert!(t.reg.mount_blob(&b, &p.digest, Some(&a)).await.unwrap());
    assert_eq!(t.raw.size(&blob_key(&b, &p.digest)).await.unwrap(), Some(0));
    assert_served(&t.reg, &b, &p).await;
    // A chunked push of the same content to a third repository: a
    // placeholder there too, nothing more parked.
    let c = repo("parked/again");
    let q = t.push_chunked(&c, &p.data).await;
    assert_eq!(t.raw.size(&blob_key(&c, &p.digest)).await.unwrap(), Some(0));
    assert_eq!(t.raw.size(&marker_key(&c, &p.digest)).await.unwrap(), None);
    assert_eq!(t.raw.size(&q.upload).await.unwrap(), None);
    assert_served(&t.reg, &c, &p).await;

    assert_eq!(t.reg.move_parked_now().await.unwrap(), 1);
    t.assert_moved(&a, &p).await;
    for r in [&a, &b, &c] {
        assert_served(&t.reg, r, &p).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_of_parked_content_keeps_the_first_upload() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/twice");
    let p = t.push_chunked(&r, &content(SIZE, 3)).await;
    let again = t.push_chunked(&r, &p.data).await;
    // The second upload is dropped; the marker still names the first.
    assert_eq!(t.raw.size(&again.upload).await.unwrap(), None);
    t.assert_parked(&r, &p).await;
    t.assert_served(&r, &p).await;
    t.reg.move_parked_now().await.unwrap();
    t.assert_moved(&r, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_started_after_a_crash_serves_and_moves_parked_blobs() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/crash");
    let p = t.push_chunked(&r, &content(SIZE, 4)).await;
    // The process ends before its move (no mover ran): the bucket and the
    // metadata store are all a new one finds.
    let Setup {
        config,
        raw,
        reg,
        meta,
        park_min,
    } = t;
    drop(reg);
    let reg = Arc::new(open(&config, meta.path(), park_min).await);
    let t = Setup {
        config,
        raw,
        reg,
        meta,
        park_min,
    };
    t.assert_parked(&r, &p).await;
    t.assert_served(&r, &p).await;
    // Its mover, resumed: the copy is made; the clean-up waits for the
    // grace period (a read that resolved to the upload key keeps it).
    t.reg.start_parked_mover();
    // Markers younger than the age asked for are left to their instance.
    let hour = Duration::from_secs(3600);
    assert_eq!(t.reg.resume_parked(hour).await.unwrap(), 0);
    assert_eq!(t.reg.resume_parked(Duration::ZERO).await.unwrap(), 1);
    // Queued already: not queued twice.
    assert_eq!(t.reg.resume_parked(Duration::ZERO).await.unwrap(), 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.raw.size(&blob_key(&r, &p.digest)).await.unwrap() != Some(SIZE as u64) {
        assert!(Instant::now() < deadline, "never moved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.raw_bytes(&blob_key(&r, &p.digest)).await.as_deref() == Some(&p.data[..]));
    assert!(
        t.raw.size(&p.upload).await.unwrap().is_some(),
        "cleaned up before the grace"
    );
    t.assert_served(&r, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_blob_deleted_before_its_move_leaves_nothing() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/deleted");
    let p = t.push_chunked(&r, &content(SIZE, 5)).await;
    t.reg.delete_blob(&r, &p.digest).await.unwrap();
    assert_eq!(t.raw.size(&blob_key(&r, &p.digest)).await.unwrap(), None);
    assert_eq!(t.raw.size(&p.upload).await.unwrap(), None);
    assert_eq!(t.raw.size(&marker_key(&r, &p.digest)).await.unwrap(), None);
    assert_eq!(t.reg.blob_size(&r, &p.digest).await.unwrap(), None);
    assert_eq!(t.reg.move_parked_now().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_parked_origin_hands_its_content_to_a_placeholder() {
    let t = setup(seaweed::shared()).await;
    let (a, b) = (repo("parked/leaving"), repo("parked/heir"));
    let p = t.push_chunked(&a, &content(SIZE, 6)).await;
    assert!(t.reg.mount_blob(&b, &p.digest, Some(&a)).await.unwrap());
    t.reg.delete_blob(&a, &p.digest).await.unwrap();
    assert!(
        t.raw_bytes(&blob_key(&b, &p.digest)).await.as_deref() == Some(&p.data[..]),
        "the heir holds the content"
    );
    t.assert_gone(&a, &p).await;
    assert_served(&t.reg, &b, &p).await;
    assert_eq!(t.reg.blob_size(&a, &p.digest).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_after_the_copy_and_before_the_clean_up_leaves_nothing() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/late-delete");
    let p = t.push_chunked(&r, &content(SIZE, 7)).await;
    let hour = Duration::from_secs(3600);
    let step = |grace| t.reg.finish_parked(&r, &p.digest, grace);
    assert_eq!(step(hour).await.unwrap(), MoveStep::Copied);
    t.reg.delete_blob(&r, &p.digest).await.unwrap();
    // The marker still stood: the removal took the upload with it.
    t.assert_gone(&r, &p).await;
    assert_eq!(step(hour).await.unwrap(), MoveStep::Gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_under_the_threshold_and_monolithic_pushes_are_not_parked() {
    let t = setup_with(seaweed::shared(), Some(SIZE as u64 + 1)).await;
    let r = repo("parked/small");
    let p = t.push_chunked(&r, &content(SIZE, 8)).await;
    t.assert_moved(&r, &p).await;

    // Parking on, but a monolithic push is staged at its blob key: no copy.
    let t = setup(seaweed::shared()).await;
    let data = content(SIZE, 9);
    let d = Digest::sha256_of(&data);
    let id = t.reg.start_upload(&r).await.unwrap();
    t.reg
        .complete_upload(&r, &id, &d, None, Some(body(&data)))
        .await
        .unwrap();
    assert!(t.raw_bytes(&blob_key(&r, &d)).await.as_deref() == Some(&data[..]));
    assert_eq!(t.raw.size(&marker_key(&r, &d)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_left_by_a_removal_cut_short_is_replaced_without_a_leak() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/cut-short");
    let p = t.push_chunked(&r, &content(SIZE, 10)).await;
    // The removal got as far as the blob key.
    t.raw.delete(&blob_key(&r, &p.digest)).await.unwrap();
    let again = t.push_chunked(&r, &p.data).await;
    t.assert_parked(&r, &again).await;
    assert_eq!(
        t.raw.size(&p.upload).await.unwrap(),
        None,
        "the old upload leaked"
    );
    t.assert_served(&r, &again).await;
    t.reg.move_parked_now().await.unwrap();
    t.assert_moved(&r, &again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_killed_while_parking_never_acknowledges_what_is_not_served() {
    // A server of its own: it is killed and started again.
    let server = &Seaweed::start();
    let t = setup(server).await;
    let bucket = t.config.bucket.clone();
    for round in 0..3u8 {
        let r = repo(&format!("parked/killed-{round}"));
        let data = content(SIZE + usize::from(round) * 1000, 20 + round);
        let d = Digest::sha256_of(&data);
        let id = t.reg.start_upload(&r).await.unwrap();
        t.reg
            .append_upload(&r, &id, None, body(&data))
            .await
            .unwrap();
        // Killed once the upload is completed at its key: while the marker
        // and the placeholder are written (or just after).
        let uploads = format!("{ROOT}/{r}/.uploads");
        let reg = t.reg.clone();
        let (r2, d2) = (r.clone(), d.clone());
        let put =
            tokio::spawn(async move { reg.complete_upload(&r2, &id, &d2, None, no_body()).await });
        tokio::task::block_in_place(|| {
            await_none_pending(server, &bucket, &uploads);
            std::thread::sleep(Duration::from_millis(u64::from(round) * 3));
            server.stop_server();
        });
        let answered = put.await.unwrap();
        tokio::task::block_in_place(|| server.restart());
        eprintln!(
            "round {round}: the PUT {}",
            if answered.is_ok() {
                "succeeded"
            } else {
                "failed"
            }
        );
        if answered.is_ok() {
            let p = Pushed {
                data: data.clone(),
                digest: d.clone(),
                upload: format!("{r}/.uploads/{}", id.as_hyphenated()),
            };
            assert_served(&t.reg, &r, &p).await;
        } else {
            // A retry completes, and is served.
            let p = t.push_chunked(&r, &data).await;
            assert_served(&t.reg, &r, &p).await;
        }
        t.reg.move_parked_now().await.unwrap();
        assert!(
            t.raw_bytes(&blob_key(&r, &d)).await.as_deref() == Some(&data[..]),
            "round {round}: after the move, the blob key holds the content"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_whose_upload_is_gone_parks_nothing() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/stale");
    let p = t.push_chunked(&r, &content(SIZE, 11)).await;
    // Its upload deleted behind the registry's back (a failed step elsewhere).
    t.raw.delete(&p.upload).await.unwrap();
    // Missing, not served as a blob whose reads fail.
    assert_eq!(t.reg.blob_size(&r, &p.digest).await.unwrap(), None);
    // A push replaces the dangling placeholder and parks again.
    let again = t.push_chunked(&r, &p.data).await;
    t.assert_parked(&r, &again).await;
    t.assert_served(&r, &again).await;
    // A stale marker is removed by the move, the placeholder left.
    let r2 = repo("parked/stale2");
    let q = t.push_chunked(&r2, &content(SIZE, 12)).await;
    t.raw.delete(&q.upload).await.unwrap();
    let step = t.reg.finish_parked(&r2, &q.digest, Duration::ZERO).await;
    assert_eq!(step.unwrap(), MoveStep::Cleaned);
    assert_eq!(t.raw.size(&marker_key(&r2, &q.digest)).await.unwrap(), None);
    assert_eq!(
        t.raw.size(&blob_key(&r2, &q.digest)).await.unwrap(),
        Some(0)
    );
    assert_eq!(t.reg.blob_size(&r2, &q.digest).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_an_unreferenced_parked_blob_whole() {
    let t = setup(seaweed::shared()).await;
    let r = repo("parked/gc");
    let p = t.push_chunked(&r, &content(SIZE, 13)).await;
    let gc = zot_storage::GcOptions {
        delay: Duration::ZERO,
        ..zot_storage::GcOptions::default()
    };
    let report = t.reg.gc_all(&gc).await.unwrap();
    assert_eq!(report.problems, 0, "{report:?}");
    t.assert_gone(&r, &p).await;
    assert_eq!(t.reg.move_parked_now().await.unwrap(), 0);
}

//! Monolithic uploads on S3 (`PUT ?digest=` with the body, `POST
//! ?digest=`): the digest is known before the body, so the bytes go to a
//! multipart upload at the blob key itself, completed only once the digest
//! is verified (no server-side copy at the end). Checked on SeaweedFS with
//! its pending multipart uploads listed: the data is staged at the blob
//! key; nothing is seen there until it is verified; a wrong digest or a
//! failed body leaves nothing there, pending or complete.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use bytes::Bytes;
use futures_util::StreamExt;
use s3_common::seaweed;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use zot_oci::{Digest, RepoName};
use zot_storage::{Backend, Options, Registry, S3Backend, S3Options, StorageError, open_s3};

/// Parts of 5 MiB: a 12 MiB blob is two parts and a tail.
const CHUNK: u64 = 5 << 20;
const ROOT: &str = "zot";

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

/// A body fed by the test: frames sent to the returned sender (a channel
/// of one frame, so a send returns once the upload took the one before).
type Frame = Result<Bytes, String>;
fn fed_body() -> (
    tokio::sync::mpsc::Sender<Frame>,
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Frame> + Send>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Frame>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    (tx, Box::pin(stream))
}

async fn feed(tx: &tokio::sync::mpsc::Sender<Frame>, data: &[u8]) {
    for c in data.chunks(64 << 10) {
        tx.send(Ok(Bytes::copy_from_slice(c))).await.unwrap();
    }
}

struct Setup {
    server: &'static seaweed::Seaweed,
    bucket: String,
    raw: S3Backend,
    reg: std::sync::Arc<Registry>,
    _meta: tempfile::TempDir,
}

async fn setup() -> Setup {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let config = server.config(&bucket, ROOT, CHUNK);
    let meta = tempfile::tempdir().unwrap();
    let reg = open_s3(
        meta.path(),
        &config,
        &S3Options::default(),
        Options::default(),
    )
    .await
    .unwrap()
    .0;
    let reg = std::sync::Arc::new(reg);
    Setup {
        server,
        raw: S3Backend::open(&config, &S3Options::default()).unwrap(),
        bucket,
        reg,
        _meta: meta,
    }
}

impl Setup {
    fn uploads_at(&self, key: &str) -> Vec<String> {
        self.server
            .multipart_uploads(&self.bucket, &format!("{ROOT}/{key}"))
    }

    /// Waits until the multipart uploads pending at `key` are `n`.
    async fn await_uploads_at(&self, key: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.uploads_at(key).len();
            if found == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{found} multipart uploads pending at {key}, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn blob_key(r: &RepoName, d: &Digest) -> String {
    format!("{r}/blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

async fn read_all(reg: &Registry, r: &RepoName, d: &Digest, len: u64) -> Vec<u8> {
    let mut s = reg.blob_stream(r, d, 0, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monolithic_push_is_staged_at_its_blob_key_and_seen_only_once_verified() {
    let t = setup().await;
    let r: RepoName = "staged/ok".parse().unwrap();
    let data = content(12 << 20, 1);
    let d = Digest::sha256_of(&data);
    let key = blob_key(&r, &d);

    let id = t.reg.start_upload(&r).await.unwrap();
    let (tx, body) = fed_body();
    let reg = t.reg.clone();
    let (r2, d2) = (r.clone(), d.clone());
    let put = tokio::spawn(async move {
        reg.complete_upload(&r2, &id, &d2, None, Some(body))
            .await
            .map_err(|e| e.to_string())
    });
    // Two parts' worth sent: the multipart upload exists, at the blob key.
    feed(&tx, &data[..11 << 20]).await;
    t.await_uploads_at(&key, 1).await;
    // ... but nothing is seen there yet.
    assert_eq!(t.raw.size(&key).await.unwrap(), None);
    assert_eq!(t.reg.blob_size(&r, &d).await.unwrap(), None);
    assert!(matches!(
        t.reg.blob_stream(&r, &d, 0, 1).await,
        Err(StorageError::BlobUnknown)
    ));

    feed(&tx, &data[11 << 20..]).await;
    drop(tx);
    assert_eq!(put.await.unwrap().unwrap(), 12 << 20);
    assert_eq!(t.raw.size(&key).await.unwrap(), Some(12 << 20));
    assert!(read_all(&t.reg, &r, &d, 12 << 20).await == data);
    // Completed there, not copied: nothing pending, nothing in the uploads.
    assert!(t.uploads_at(&key).is_empty());
    assert!(t.uploads_at(&format!("{r}/.uploads")).is_empty());
    assert!(
        t.raw
            .list(&format!("{r}/.uploads"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_leaves_nothing_at_the_blob_key() {
    let t = setup().await;
    let r: RepoName = "staged/wrong".parse().unwrap();
    let data = content(12 << 20, 2);
    let claimed = Digest::sha256_of(b"something else");
    let key = blob_key(&r, &claimed);

    let id = t.reg.start_upload(&r).await.unwrap();
    let body = futures_util::stream::iter(
        data.chunks(64 << 10)
            .map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let bad = t
        .reg
        .complete_upload(&r, &id, &claimed, None, Some(body))
        .await;
    assert!(
        matches!(bad, Err(StorageError::DigestInvalid(_))),
        "{bad:?}"
    );
    assert_eq!(t.raw.size(&key).await.unwrap(), None);
    assert_eq!(t.reg.blob_size(&r, &claimed).await.unwrap(), None);
    // Its multipart upload at the blob key was aborted.
    t.await_uploads_at(&key, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_body_starts_the_session_over_and_a_retry_completes() {
    let t = setup().await;
    let r: RepoName = "staged/retry".parse().unwrap();
    let data = content(12 << 20, 3);
    let d = Digest::sha256_of(&data);
    let key = blob_key(&r, &d);

    let id = t.reg.start_upload(&r).await.unwrap();
    let (tx, body) = fed_body();
    let reg = t.reg.clone();
    let (r2, d2) = (r.clone(), d.clone());
    let put = tokio::spawn(async move {
        reg.complete_upload(&r2, &id, &d2, None, Some(body))
            .await
            .map_err(|e| e.to_string())
    });
    feed(&tx, &data[..11 << 20]).await;
    t.await_uploads_at(&key, 1).await;
    // The client's connection breaks mid-body.
    tx.send(Err("connection reset".into())).await.unwrap();
    drop(tx);
    let failed = put.await.unwrap();
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(t.raw.size(&key).await.unwrap(), None);
    assert_eq!(t.reg.blob_size(&r, &d).await.unwrap(), None);
    t.await_uploads_at(&key, 0).await;
    // Nothing of it counts: the session is empty, and the whole body again
    // completes it.
    assert_eq!(t.reg.upload_size(&r, &id).await.unwrap(), 0);
    let body = futures_util::stream::iter(
        data.chunks(64 << 10)
            .map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let size = t
        .reg
        .complete_upload(&r, &id, &d, None, Some(body))
        .await
        .unwrap();
    assert_eq!(size, 12 << 20);
    assert!(read_all(&t.reg, &r, &d, 12 << 20).await == data);
    assert!(t.uploads_at(&key).is_empty());
}

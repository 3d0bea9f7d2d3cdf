//! Chunked uploads on S3 (POST, PATCH…, `PUT ?digest` without a body):
//! the digest arrives last, so the bytes are a multipart upload at the
//! upload key, completed there and moved (server-side copy, then delete)
//! to the blob key at the `PUT`. Checked on SeaweedFS by reading the
//! bucket directly (a second driver, not the registry's resolution): the
//! object at the blob key is exactly the content, for an upload under one
//! part, of whole parts, and of parts and a tail, sent as one streamed
//! PATCH or as PATCHes that do not end on a part; nothing is left at the
//! upload key; a move that fails (the server killed before or during it)
//! leaves the blob key empty or whole, never anything else, and a retry
//! completes. (Parking, which answers before the copy for uploads of 16
//! MiB and more, is turned off here; `s3_parked.rs` checks it.)
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use s3_common::seaweed::{self, Seaweed};
use s3_common::uploads::{await_none_pending, body, content, no_body};
use std::sync::Arc;
use zot_oci::{Digest, RepoName};
use zot_storage::{Backend, Options, Registry, S3Backend, S3Options, open_s3};

/// Parts of 5 MiB (the least S3 takes).
const CHUNK: u64 = 5 << 20;
const ROOT: &str = "zot";

struct Setup<'a> {
    server: &'a Seaweed,
    bucket: String,
    /// The bucket read directly: what another OCI tool would see.
    raw: S3Backend,
    reg: Arc<Registry>,
    _meta: tempfile::TempDir,
}

async fn setup(server: &Seaweed) -> Setup<'_> {
    let bucket = server.bucket();
    let config = server.config(&bucket, ROOT, CHUNK);
    let meta = tempfile::tempdir().unwrap();
    // The copy before the answer, whatever the size: parking (which
    // answers before it) is `s3_parked.rs`'s.
    let options = Options {
        park_min_bytes: None,
        ..Options::default()
    };
    let (reg, _) = open_s3(meta.path(), &config, &S3Options::default(), options)
        .await
        .unwrap();
    Setup {
        server,
        raw: S3Backend::open(&config, &S3Options::default()).unwrap(),
        bucket,
        reg: Arc::new(reg),
        _meta: meta,
    }
}

/// Where an upload's bytes are written (`<repo>/.uploads/<uuid>`). Looked
/// at by key: SeaweedFS leaves folders named `.uploads` (its own name for
/// pending multipart uploads) out of every listing.
fn upload_key(r: &RepoName, id: &uuid::Uuid) -> String {
    format!("{r}/.uploads/{}", id.as_hyphenated())
}

fn blob_key(r: &RepoName, d: &Digest) -> String {
    format!("{r}/blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

impl Setup<'_> {
    /// An upload to `r` holding `len` bytes of [`content`] (`seed`), not
    /// completed: the bytes, their digest, the blob key, the session.
    async fn appended(
        &self,
        r: &RepoName,
        len: usize,
        seed: u8,
    ) -> (Vec<u8>, Digest, String, uuid::Uuid) {
        let data = content(len, seed);
        let d = Digest::sha256_of(&data);
        let key = blob_key(r, &d);
        let id = self.reg.start_upload(r).await.unwrap();
        self.reg
            .append_upload(r, &id, None, body(&data))
            .await
            .unwrap();
        (data, d, key, id)
    }

    fn pending_under(&self, key: &str) -> Vec<String> {
        self.server
            .multipart_uploads(&self.bucket, &format!("{ROOT}/{key}"))
    }

    /// The object at `key` as stored (no placeholder resolution).
    async fn raw_bytes(&self, key: &str) -> Option<Vec<u8>> {
        s3_common::uploads::raw_bytes(&self.raw, key).await
    }

    /// POST, the PATCHes of `data` cut every `patch` bytes (one streamed
    /// PATCH when `None`), `PUT ?digest` without a body; the size and the
    /// upload key.
    async fn push_chunked(
        &self,
        r: &RepoName,
        data: &[u8],
        patch: Option<usize>,
    ) -> zot_storage::Result<(u64, String)> {
        let d = Digest::sha256_of(data);
        let id = self.reg.start_upload(r).await?;
        for piece in data.chunks(patch.unwrap_or(data.len().max(1))) {
            self.reg.append_upload(r, &id, None, body(piece)).await?;
        }
        let size = self
            .reg
            .complete_upload(r, &id, &d, None, no_body())
            .await?;
        Ok((size, upload_key(r, &id)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blob_key_holds_exactly_the_upload_and_nothing_is_left() {
    let t = setup(seaweed::shared()).await;
    let sizes = [
        ("under-a-part", (1 << 20) + 7),
        ("whole-parts", 2 * CHUNK as usize),
        ("parts-and-tail", 2 * CHUNK as usize + 3),
    ];
    for (i, (name, size)) in sizes.into_iter().enumerate() {
        for (j, (how, patch)) in [("streamed", None), ("patches", Some(3 << 20))]
            .into_iter()
            .enumerate()
        {
            let r: RepoName = format!("chunked/{name}-{how}").parse().unwrap();
            // Content of its own (the same bytes in a second repository
            // would be a dedupe placeholder there).
            let data = content(size, (2 * i + j) as u8);
            let d = Digest::sha256_of(&data);
            let (got, upload) = t.push_chunked(&r, &data, patch).await.unwrap();
            assert_eq!(got, size as u64, "{r}");
            let key = blob_key(&r, &d);
            let stored = t.raw_bytes(&key).await;
            assert!(
                stored.as_deref() == Some(&data[..]),
                "{r}: the blob key holds {:?} bytes, not the {size} pushed",
                stored.map(|s| s.len())
            );
            assert_eq!(t.reg.blob_size(&r, &d).await.unwrap(), Some(size as u64));
            // Moved, not left behind: no object and no multipart upload at
            // the upload key, none pending at the blob key.
            assert_eq!(
                t.raw.size(&upload).await.unwrap(),
                None,
                "{r}: {upload} left"
            );
            assert!(t.pending_under(&upload).is_empty(), "{r}");
            assert!(t.pending_under(&key).is_empty(), "{r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_move_leaves_the_blob_key_empty_or_whole_and_a_retry_completes() {
    // A server of its own: it is killed and started again.
    let server = &Seaweed::start();
    let t = setup(server).await;

    // Killed before the PUT: the completion fails, nothing at the blob key.
    let r: RepoName = "moved/before".parse().unwrap();
    let (data, d, key, id) = t.appended(&r, 3 * CHUNK as usize + 11, 7).await;
    tokio::task::block_in_place(|| server.stop_server());
    let failed = t.reg.complete_upload(&r, &id, &d, None, no_body()).await;
    assert!(failed.is_err(), "{failed:?}");
    tokio::task::block_in_place(|| server.restart());
    assert_eq!(t.raw.size(&key).await.unwrap(), None);
    assert_eq!(t.reg.blob_size(&r, &d).await.unwrap(), None);
    assert!(t.pending_under(&key).is_empty());
    // The client pushes again: the blob key holds exactly the content.
    let (_, upload) = t.push_chunked(&r, &data, None).await.unwrap();
    assert!(t.raw_bytes(&key).await.as_deref() == Some(&data[..]));
    assert_eq!(t.raw.size(&upload).await.unwrap(), None);

    // Killed once the upload is completed at its upload key, i.e. during
    // (or just after) the copy: the blob key is empty or whole.
    let r: RepoName = "moved/during".parse().unwrap();
    let (data, d, key, id) = t.appended(&r, 12 * CHUNK as usize + 5, 9).await;
    let uploads = format!("{ROOT}/{r}/.uploads");
    assert_eq!(server.multipart_uploads(&t.bucket, &uploads).len(), 1);
    let reg = t.reg.clone();
    let (r2, d2) = (r.clone(), d.clone());
    let put =
        tokio::spawn(async move { reg.complete_upload(&r2, &id, &d2, None, no_body()).await });
    tokio::task::block_in_place(|| {
        await_none_pending(server, &t.bucket, &uploads);
        server.stop_server();
    });
    let answered = put.await.unwrap();
    tokio::task::block_in_place(|| server.restart());
    let stored = t.raw_bytes(&key).await;
    eprintln!(
        "killed after the completion: the PUT {}, the blob key {}",
        if answered.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
        if stored.is_some() { "whole" } else { "empty" }
    );
    match &stored {
        None => assert!(
            answered.is_err(),
            "acknowledged, but nothing at the blob key"
        ),
        Some(s) => assert!(
            s[..] == data[..],
            "the blob key holds {} bytes that are not the {} pushed",
            s.len(),
            data.len()
        ),
    }
    assert!(t.pending_under(&key).is_empty());
    if answered.is_err() {
        t.push_chunked(&r, &data, None).await.unwrap();
    }
    assert!(t.raw_bytes(&key).await.as_deref() == Some(&data[..]));
    assert_eq!(
        t.reg.blob_size(&r, &d).await.unwrap(),
        Some(data.len() as u64)
    );
}

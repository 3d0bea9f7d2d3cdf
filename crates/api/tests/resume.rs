//! Resuming an upload after a lost `PATCH`: the client asks where the
//! upload stands and sends the rest from there; the stored blob must be
//! exactly the content its digest names, with SHA-256 or SHA-512, and
//! across a restart.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use common::{TestApp, sha256, sha512};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const FIRST: usize = 100;
const LOST: usize = 300 * 1024;

fn content() -> Vec<u8> {
    (0..FIRST + 2 * LOST).map(|i| (i * 7 % 251) as u8).collect()
}

fn upload_file(app: &TestApp, loc: &str) -> PathBuf {
    let id = loc.rsplit('/').next().unwrap();
    app.root().join("r/.uploads").join(id)
}

async fn patch(app: &TestApp, loc: &str, start: usize, data: &[u8]) -> common::TestResponse {
    let range = format!("{start}-{}", start + data.len() - 1);
    let len = data.len().to_string();
    app.call(
        Method::PATCH,
        loc,
        &[("content-range", &range), ("content-length", &len)],
        data.to_vec(),
    )
    .await
}

async fn grown_past(file: &Path, size: u64) {
    while std::fs::metadata(file).map_or(0, |m| m.len()) <= size {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts an upload, sends its first bytes, then a `PATCH` of `LOST`
/// bytes whose client disconnects once they reached the file (the request
/// is dropped, as the server drops it). Returns the upload's location.
async fn upload_with_a_lost_patch(app: &TestApp, data: &[u8]) -> String {
    let loc = app.start_upload("r").await;
    patch(app, &loc, 0, &data[..FIRST]).await.assert_status(202);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tx.send(Ok(Bytes::copy_from_slice(&data[FIRST..FIRST + LOST])))
        .await
        .unwrap();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let range = format!("{FIRST}-{}", data.len() - 1);
    let file = upload_file(app, &loc);
    let headers = [("content-range", range.as_str())];
    let lost = app.call(Method::PATCH, &loc, &headers, Body::from_stream(stream));
    tokio::select! {
        r = lost => panic!("the lost PATCH ended: {r:?}"),
        () = grown_past(&file, FIRST as u64) => {}
    }
    // The connection breaks: the body ends in an error, as hyper reports a
    // reset mid-body (a mutating request runs on without its client, so
    // merely dropping the request would not stop it reading).
    let _ = tx
        .send(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client gone",
        )))
        .await;
    drop(tx);
    loc
}

/// Where the upload stands once the broken `PATCH` has ended: a mutating
/// request runs to its end without its client, so the bytes that reached
/// the server before the break are written and acknowledged. Until then
/// the status may still say `FIRST`; it never says anything else.
async fn acknowledged(app: &TestApp, loc: &str) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get(loc).await;
        status.assert_status(204);
        let end = status.h("range").strip_prefix("0-").unwrap();
        let size = end.parse::<usize>().unwrap() + 1;
        assert!(size == FIRST || size == FIRST + LOST, "acknowledged {size}");
        if size == FIRST + LOST {
            return size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the broken PATCH never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The client asks where the upload stands and sends the rest from there.
async fn resume(app: &TestApp, loc: &str, data: &[u8]) {
    let from = acknowledged(app, loc).await;
    patch(app, loc, from, &data[from..])
        .await
        .assert_status(202);
}

async fn complete(app: &TestApp, loc: &str, digest: &str, data: &[u8]) {
    app.call(
        Method::PUT,
        &format!("{loc}?digest={digest}"),
        &[],
        Body::empty(),
    )
    .await
    .assert_status(201);
    let blob = app.get(&format!("/v2/r/blobs/{digest}")).await;
    blob.assert_status(200);
    assert!(
        blob.body[..] == data[..],
        "the blob is the uploaded content"
    );
}

#[tokio::test]
async fn resumed_after_a_lost_patch() {
    let app = TestApp::new().await;
    let data = content();
    let loc = upload_with_a_lost_patch(&app, &data).await;
    resume(&app, &loc, &data).await;
    complete(&app, &loc, &sha256(&data), &data).await;
}

#[tokio::test]
async fn resumed_after_a_lost_patch_with_sha512() {
    let app = TestApp::new().await;
    let data = content();
    let loc = upload_with_a_lost_patch(&app, &data).await;
    resume(&app, &loc, &data).await;
    complete(&app, &loc, &sha512(&data), &data).await;
}

#[tokio::test]
async fn resumed_after_a_lost_patch_then_a_restart() {
    let mut app = TestApp::new().await;
    let data = content();
    let loc = upload_with_a_lost_patch(&app, &data).await;
    resume(&app, &loc, &data).await;
    app.restart().await;
    complete(&app, &loc, &sha256(&data), &data).await;
}

#[tokio::test]
async fn restarted_in_the_middle_of_an_upload() {
    let mut app = TestApp::new().await;
    let data = content();
    let loc = app.start_upload("r").await;
    patch(&app, &loc, 0, &data[..FIRST])
        .await
        .assert_status(202);
    app.restart().await;
    let status = app.get(&loc).await;
    status.assert_status(204);
    assert_eq!(status.h("range"), format!("0-{}", FIRST - 1));
    patch(&app, &loc, FIRST, &data[FIRST..])
        .await
        .assert_status(202);
    complete(&app, &loc, &sha512(&data), &data).await;
}

/// After a broken `PATCH`, a completion without a body stores exactly the
/// acknowledged content (what the status reported), nothing past it.
#[tokio::test]
async fn completed_at_the_acknowledged_size_after_a_broken_patch() {
    let app = TestApp::new().await;
    let data = content();
    let loc = upload_with_a_lost_patch(&app, &data).await;
    let size = acknowledged(&app, &loc).await;
    let stored = &data[..size];
    complete(&app, &loc, &sha256(stored), stored).await;
}

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
use std::convert::Infallible;
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
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tx.send(Bytes::copy_from_slice(&data[FIRST..FIRST + LOST]))
        .await
        .unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let range = format!("{FIRST}-{}", data.len() - 1);
    let file = upload_file(app, &loc);
    let headers = [("content-range", range.as_str())];
    let lost = app.call(Method::PATCH, &loc, &headers, Body::from_stream(stream));
    tokio::select! {
        r = lost => panic!("the lost PATCH ended: {r:?}"),
        () = grown_past(&file, FIRST as u64) => {}
    }
    drop(tx);
    loc
}

/// The client asks where the upload stands and sends the rest from there.
async fn resume(app: &TestApp, loc: &str, data: &[u8]) {
    let status = app.get(loc).await;
    status.assert_status(204);
    let acknowledged = status.h("range").strip_prefix("0-").unwrap();
    let from = acknowledged.parse::<usize>().unwrap() + 1;
    assert_eq!(from, FIRST, "only the answered PATCH is acknowledged");
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

/// A completion whose last chunk is lost (the request dropped mid-body)
/// leaves the session open at its acknowledged size; a digest of the
/// acknowledged content then completes it, without the lost bytes.
#[tokio::test]
async fn completed_without_the_bytes_of_a_lost_patch() {
    let app = TestApp::new().await;
    let data = content();
    let loc = upload_with_a_lost_patch(&app, &data).await;
    let first = &data[..FIRST];
    complete(&app, &loc, &sha256(first), first).await;
}

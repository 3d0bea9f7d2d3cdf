//! Upload bodies and the resources they hold: slow bodies hold no thread,
//! and bodies are bounded per client and in all (429 beyond).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::Digest as _;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tower::ServiceExt;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

async fn app(root: &std::path::Path, options: zot_storage::Options) -> Router {
    let (registry, _) = zot_storage::open_local(root, false, options).await.unwrap();
    zot_api::router(zot_api::AppState::new(Arc::new(registry), vec![]))
}

fn request(method: Method, uri: &str, from: &str, body: Body) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let addr: SocketAddr = from.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Bytes) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn start_upload(app: &Router, from: &str) -> String {
    let req = request(Method::POST, "/v2/r/blobs/uploads/", from, Body::empty());
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// A body that sends `first` and then nothing until its sender is dropped.
fn stalled_body(first: &'static [u8]) -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    tx.try_send(Bytes::from_static(first)).unwrap();
    (tx, Body::from_stream(stream))
}

/// Opens `n` PATCH requests from `from` whose bodies stall; returns their
/// senders (dropping one ends its body).
async fn stall(app: &Router, from: &str, n: usize) -> Vec<mpsc::Sender<Bytes>> {
    let mut senders = Vec::new();
    for _ in 0..n {
        let loc = start_upload(app, from).await;
        let (tx, body) = stalled_body(b"x");
        tokio::spawn(
            app.clone()
                .oneshot(request(Method::PATCH, &loc, from, body)),
        );
        senders.push(tx);
    }
    // Every request has taken its permit once it has read its first chunk.
    for tx in &senders {
        while tx.capacity() < tx.max_capacity() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    senders
}

async fn push_blob(app: &Router, from: &str, data: &'static [u8]) -> (StatusCode, Bytes) {
    let uri = format!("/v2/r/blobs/uploads/?digest={}", sha256(data));
    send(app, request(Method::POST, &uri, from, Body::from(data))).await
}

/// A runtime with few blocking threads, as a loaded server has few free.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn stalled_upload_bodies_do_not_block_reads_or_other_uploads() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (read, upload) = rt.block_on(async {
        let app = app(dir.path(), zot_storage::Options::default()).await;
        let (status, _) = push_blob(&app, "10.0.0.9:1", b"readable").await;
        assert_eq!(status, StatusCode::CREATED);
        let uri = format!("/v2/r/blobs/{}", sha256(b"readable"));

        // (With a thread per body, the later sessions cannot even start.)
        let stalled = tokio::time::timeout(Duration::from_secs(10), stall(&app, "10.0.0.1:1", 16));
        let Ok(_stalled) = stalled.await else {
            return (None, None);
        };

        let get = request(Method::GET, &uri, "10.0.0.2:1", Body::empty());
        let read = tokio::time::timeout(Duration::from_secs(10), send(&app, get)).await;
        let upload = push_blob(&app, "10.0.0.2:1", b"another upload");
        let upload = tokio::time::timeout(Duration::from_secs(10), upload).await;
        (read.ok(), upload.ok())
    });
    // Threads still held by stalled bodies must not keep the test waiting.
    rt.shutdown_timeout(Duration::from_secs(1));
    let (status, body) = read.expect("neither new sessions nor a blob read are starved");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"readable");
    let (status, _) = upload.expect("another upload is not starved");
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn upload_bodies_are_bounded_per_client_and_in_all() {
    let dir = tempfile::tempdir().unwrap();
    let options = zot_storage::Options {
        max_upload_bodies_per_client: 3,
        max_upload_bodies: 5,
        ..Default::default()
    };
    let app = app(dir.path(), options).await;
    let mut held = stall(&app, "10.0.0.1:1", 3).await;

    // A fourth body from the same client, or from its IPv6 /64 neighbour
    // for IPv6 clients, is refused without reading it.
    let (status, body) = push_blob(&app, "10.0.0.1:2", b"one too many").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(String::from_utf8_lossy(&body).contains("TOOMANYREQUESTS"));
    let loc = start_upload(&app, "10.0.0.1:3").await;
    let (status, _) = send(
        &app,
        request(Method::PATCH, &loc, "10.0.0.1:3", Body::from("x")),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "PATCH");
    let put = format!("{loc}?digest={}", sha256(b""));
    let (status, _) = send(
        &app,
        request(Method::PUT, &put, "10.0.0.1:3", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "PUT");

    held.extend(stall(&app, "[2001:db8:0:1::1]:1", 2).await);
    let (status, _) = push_blob(&app, "[2001:db8:0:1::2]:1", b"same /64").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "an IPv6 /64 is one client"
    );

    // Five bodies in all: another client is refused too.
    let (status, _) = push_blob(&app, "10.0.0.7:1", b"over the total").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the total bound");

    // A finished body gives its permit back.
    drop(held.remove(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = push_blob(&app, "10.0.0.1:4", b"room again").await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the permit came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

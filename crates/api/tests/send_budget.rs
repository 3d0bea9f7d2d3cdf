//! Blob and manifest bodies pay from the global budget of response bytes in
//! flight until they are dropped; when it is exhausted a download waits, then
//! answers `429` (issue 15, point 8).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{OCI_MANIFEST, image_manifest, sha256};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use zot_api::connection::SendBudget;

const MIB: usize = 1024 * 1024;

async fn router(budget: SendBudget) -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = zot_storage::open_local(dir.path(), false, Default::default())
        .await
        .unwrap();
    let mut state = zot_api::AppState::new(Arc::new(registry), vec![]);
    Arc::get_mut(&mut state).unwrap().send_budget = budget;
    (dir, zot_api::router(state))
}

fn req(method: Method, uri: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", OCI_MANIFEST)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn downloads_hold_the_budget_until_their_bodies_are_dropped() {
    let budget = SendBudget::new(3 * MIB, Duration::from_millis(200));
    let (_dir, app) = router(budget.clone()).await;
    let blob = vec![1u8; 5 * MIB];
    let d = sha256(&blob);
    let push = req(
        Method::POST,
        &format!("/v2/r/blobs/uploads/?digest={d}"),
        blob,
    );
    assert_eq!(app.clone().oneshot(push).await.unwrap().status(), 201);
    let get = || req(Method::GET, &format!("/v2/r/blobs/{d}"), vec![]);

    // A large blob body holds 2 MiB (a chunk and one read ahead).
    let first = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(budget.available(), MIB);
    // Not enough left for a second one: it waits, then gets 429.
    let second = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    // HEAD sends no body and pays nothing.
    let head = req(Method::HEAD, &format!("/v2/r/blobs/{d}"), vec![]);
    assert_eq!(app.clone().oneshot(head).await.unwrap().status(), 200);
    drop(first);
    assert_eq!(budget.available(), 3 * MIB);
    let third = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(third.status(), 200);
    let body = axum::body::to_bytes(third.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body.len(), 5 * MIB);
    assert_eq!(budget.available(), 3 * MIB);
}

#[tokio::test]
async fn manifest_bodies_pay_too() {
    let budget = SendBudget::new(100 * 1024, Duration::from_millis(200));
    let (_dir, app) = router(budget.clone()).await;
    let (config, layer) = (b"{}".to_vec(), b"layer".to_vec());
    for blob in [&config, &layer] {
        let uri = format!("/v2/r/blobs/uploads/?digest={}", sha256(blob));
        let push = req(Method::POST, &uri, blob.clone());
        assert_eq!(app.clone().oneshot(push).await.unwrap().status(), 201);
    }
    let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
    let put = req(Method::PUT, "/v2/r/manifests/t", manifest);
    assert_eq!(app.clone().oneshot(put).await.unwrap().status(), 201);

    let get = || req(Method::GET, "/v2/r/manifests/t", vec![]);
    let first = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(first.status(), 200);
    // A small body costs 64 KiB at least.
    assert_eq!(budget.available(), 100 * 1024 - 64 * 1024);
    assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 429);
    drop(first);
    assert_eq!(app.clone().oneshot(get()).await.unwrap().status(), 200);
}

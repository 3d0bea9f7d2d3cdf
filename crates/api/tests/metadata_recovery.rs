//! A metadata store hit by an I/O error (a full disk during the periodic
//! flush): `/readyz` says so, and the store is reopened and resynchronised,
//! after which writes work again without a restart.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use sha2::Digest as _;
use std::sync::Arc;
use tower::ServiceExt;
use zot_storage::{FaultSwitch, LocalBackend, MetaStore, Options, Registry};

async fn call(router: &axum::Router, method: Method, uri: &str, body: &[u8]) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Pushes a manifest with an empty config (uploaded first when
/// `with_blob`) and no layers under `tag`.
async fn push(router: &axum::Router, tag: &str, with_blob: bool) -> u16 {
    let config = b"{}";
    let digest = sha256(config);
    if with_blob {
        let (status, _) = call(
            router,
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest={digest}"),
            config,
        )
        .await;
        assert_eq!(status, 201);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
        "layers": [],
        "annotations": {"tag": tag},
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    call(
        router,
        Method::PUT,
        &format!("/v2/r/manifests/{tag}"),
        &body,
    )
    .await
    .0
}

#[tokio::test]
async fn readyz_reports_a_failed_metadata_store_until_it_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("_zot")).unwrap();
    let switch = FaultSwitch::default();
    let meta =
        MetaStore::open_with_faults(&dir.path().join("_zot/meta.redb"), switch.clone()).unwrap();
    let backend = Arc::new(LocalBackend::new(dir.path().into(), false).unwrap());
    let registry = Arc::new(Registry::new(backend, meta, Options::default()));
    let router = zot_api::router(zot_api::AppState::new(registry.clone(), vec![]));

    assert_eq!(push(&router, "v1", true).await, 201);
    assert_eq!(call(&router, Method::GET, "/readyz", b"").await.0, 200);

    // The disk is full during the periodic flush.
    switch.fail_writes(true);
    assert!(registry.flush_metadata().is_err());
    switch.fail_writes(false);
    // Space is back; until the store is recovered, writes fail with 503
    // (the store is unavailable, not broken) and the registry is not ready.
    assert_eq!(push(&router, "v2", false).await, 503);
    let (status, text) = call(&router, Method::GET, "/readyz", b"").await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(call(&router, Method::GET, "/livez", b"").await.0, 200);

    assert!(registry.recover_metadata().await.unwrap());
    assert_eq!(call(&router, Method::GET, "/readyz", b"").await.0, 200);
    assert_eq!(push(&router, "v3", true).await, 201);
    let (status, tags) = call(&router, Method::GET, "/v2/r/tags/list", b"").await;
    assert_eq!(status, 200);
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    // v2's index.json write happened before its metadata commit failed:
    // the resynchronisation found it in the layout.
    assert_eq!(tags["tags"], serde_json::json!(["v1", "v2", "v3"]));
    assert!(
        !registry.recover_metadata().await.unwrap(),
        "healthy: nothing to do"
    );
}

//! Lint through the HTTP API: a manifest without every mandatory annotation
//! (on the manifest, or for an image among its config's labels) is refused
//! with 400 MANIFEST_INVALID naming what is missing; one with them is stored.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::sync::Arc;
use tower::ServiceExt;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn push_blob(app: &axum::Router, data: &[u8]) -> String {
    let d = sha256(data);
    let req = Request::post(format!("/v2/lint/blobs/uploads/?digest={d}"))
        .header("content-type", "application/octet-stream")
        .body(Body::from(data.to_vec()))
        .unwrap();
    assert_eq!(call(app, req).await.0, StatusCode::CREATED);
    d
}

async fn put_manifest(app: &axum::Router, tag: &str, manifest: &Value) -> (StatusCode, Value) {
    let req = Request::put(format!("/v2/lint/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(Body::from(manifest.to_string()))
        .unwrap();
    call(app, req).await
}

fn manifest(config: &[u8], annotations: Value) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [],
        "annotations": annotations,
    })
}

#[tokio::test]
async fn mandatory_annotations_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let options = zot_storage::Options {
        mandatory_annotations: vec!["org.opencontainers.image.title".into(), "team".into()],
        ..Default::default()
    };
    let (registry, _) = zot_storage::open_local(dir.path(), false, options)
        .await
        .unwrap();
    let app = zot_api::router(zot_api::AppState::new(Arc::new(registry), vec![]));
    let plain = br#"{"config":{}}"#;
    let labelled = br#"{"config":{"Labels":{"team":"storage"}}}"#;
    push_blob(&app, plain).await;
    push_blob(&app, labelled).await;

    let (status, body) = put_manifest(&app, "none", &manifest(plain, json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("org.opencontainers.image.title") && message.contains("team"),
        "{message}"
    );

    let one = manifest(plain, json!({"org.opencontainers.image.title": "x"}));
    let (status, body) = put_manifest(&app, "one", &one).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("team") && !message.contains("title"),
        "{message}"
    );

    let both = manifest(
        plain,
        json!({"org.opencontainers.image.title": "x", "team": "y"}),
    );
    assert_eq!(
        put_manifest(&app, "both", &both).await.0,
        StatusCode::CREATED
    );
    // The label on the image's config counts as the annotation.
    let label = manifest(labelled, json!({"org.opencontainers.image.title": "x"}));
    assert_eq!(
        put_manifest(&app, "label", &label).await.0,
        StatusCode::CREATED
    );
    let (status, _) = call(
        &app,
        Request::get("/v2/lint/tags/list")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

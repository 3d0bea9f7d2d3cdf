//! What the manifest endpoints record for search (storage option `search`):
//! the authenticated pusher of a manifest, and downloads counted by `GET`
//! only, not `HEAD` and not pulls of cosign signature tags. Driven
//! in-process through the router with htpasswd.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use serde_json::json;
use tower::ServiceExt;

use common::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, desc, sha256};

fn basic(user: &str) -> String {
    let raw = format!("{user}:{user}-pw");
    let enc = base64::engine::general_purpose::STANDARD.encode(raw);
    format!("Basic {enc}")
}

async fn call(router: &Router, method: Method, uri: &str, body: Vec<u8>, ct: Option<&str>) -> u16 {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", basic("alice"));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    resp.status().as_u16()
}

async fn push_blob(router: &Router, repo: &str, data: &[u8]) {
    let uri = format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(data));
    let status = call(
        router,
        Method::POST,
        &uri,
        data.to_vec(),
        Some("application/octet-stream"),
    )
    .await;
    assert_eq!(status, 201);
}

async fn push_manifest(router: &Router, repo: &str, at: &str, layer: &[u8]) -> String {
    let config = br#"{"os":"linux","architecture":"amd64"}"#;
    push_blob(router, repo, config).await;
    push_blob(router, repo, layer).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, config),
        "layers": [desc(OCI_LAYER, layer)],
    }))
    .unwrap();
    let digest = sha256(&body);
    let status = call(
        router,
        Method::PUT,
        &format!("/v2/{repo}/manifests/{at}"),
        body,
        Some(OCI_MANIFEST),
    )
    .await;
    assert_eq!(status, 201);
    digest
}

#[tokio::test]
async fn pusher_and_downloads_are_recorded_by_the_manifest_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("alice-pw", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let config = json!({
        "storage": { "rootDirectory": dir.path().join("root") },
        "http": { "auth": { "htpasswd": { "path": htpasswd } } }
    });
    let config =
        zot_config::Config::from_str(&config.to_string(), zot_config::Format::Json).unwrap();
    let security = zot_auth::Security::from_config(&config.http, None).unwrap();
    let options = zot_storage::Options {
        search: true,
        ..Default::default()
    };
    let (registry, _) = zot_storage::open_local(&dir.path().join("root"), false, options)
        .await
        .unwrap();
    let registry = Arc::new(registry);
    let router = zot_api::router(zot_api::AppState::with_security(
        registry.clone(),
        vec![],
        security,
    ));

    let image = push_manifest(&router, "apps/web", "v1", b"layer").await;
    let sig_tag = format!("sha256-{}.sig", image.trim_start_matches("sha256:"));
    let sig = push_manifest(&router, "apps/web", &sig_tag, b"signature").await;

    for (method, at, times) in [
        (Method::GET, "v1", 2),
        (Method::HEAD, "v1", 3),
        (Method::GET, image.as_str(), 1),
        (Method::HEAD, image.as_str(), 1),
        (Method::GET, sig_tag.as_str(), 2),
    ] {
        for _ in 0..times {
            let uri = format!("/v2/apps/web/manifests/{at}");
            assert_eq!(
                call(&router, method.clone(), &uri, Vec::new(), None).await,
                200
            );
        }
    }
    registry.flush_pulls().await.unwrap();

    let data = registry
        .metadata()
        .search_repo("apps/web")
        .unwrap()
        .unwrap();
    let stat = |d: &str| {
        data.stats
            .iter()
            .find(|s| s.digest.to_string() == d)
            .unwrap()
            .clone()
    };
    assert_eq!(stat(&image).pushed_by, "alice");
    assert_eq!(
        stat(&image).downloads,
        3,
        "GETs by tag and digest count, HEADs do not"
    );
    assert!(stat(&image).pulled.is_some());
    assert_eq!(
        stat(&sig).downloads,
        0,
        "a cosign signature tag is no download"
    );
    assert_eq!(data.images.len(), 2);
}

//! A user who may push to a repository but not read it (create-only) learns
//! nothing of its content from refusals: whether a tag exists does not
//! change the answer to an invalid push, and no error names the size of a
//! stored blob. Driven in-process through the router with htpasswd and
//! access control.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, desc, sha256};

struct App {
    router: Router,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn code(&self) -> String {
        let v: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        v["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }
}

fn basic(user: &str) -> String {
    let raw = format!("{user}:{user}-pw");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let mut text = String::new();
    for user in ["owner", "pusher"] {
        let hash = bcrypt::hash(format!("{user}-pw"), 4).unwrap();
        text.push_str(&format!("{user}:{hash}\n"));
    }
    std::fs::write(&htpasswd, text).unwrap();
    let config = json!({
        "storage": { "rootDirectory": dir.path().join("root") },
        "http": {
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": { "secret/**": { "policies": [
                { "users": ["owner"], "actions": ["read", "create", "update", "delete"] },
                { "users": ["pusher"], "actions": ["create"] }
            ] } } }
        }
    });
    let config =
        zot_config::Config::from_str(&config.to_string(), zot_config::Format::Json).unwrap();
    let security = zot_auth::Security::from_config(&config.http, None).unwrap();
    let (registry, _) =
        zot_storage::open_local(&dir.path().join("root"), false, Default::default())
            .await
            .unwrap();
    let state = zot_api::AppState::with_security(Arc::new(registry), vec![], security);
    App {
        router: zot_api::router(state),
        _dir: dir,
    }
}

impl App {
    async fn call(&self, user: &str, method: Method, uri: &str, ct: &str, body: &[u8]) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", basic(user))
            .header("content-type", ct)
            .header("content-length", body.len().to_string())
            .body(Body::from(body.to_vec()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn push_blob(&self, user: &str, repo: &str, data: &[u8]) {
        let uri = format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(data));
        let r = self
            .call(user, Method::POST, &uri, "application/octet-stream", data)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    async fn put_manifest(&self, user: &str, repo: &str, tag: &str, body: &[u8]) -> Reply {
        let uri = format!("/v2/{repo}/manifests/{tag}");
        self.call(user, Method::PUT, &uri, OCI_MANIFEST, body).await
    }
}

fn manifest(config: Value, layers: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }))
    .unwrap()
}

/// The owner's image in `secret/app:v1`: its config and 300-byte layer.
async fn owner_image(app: &App) -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = vec![7u8; 300];
    app.push_blob("owner", "secret/app", &config).await;
    app.push_blob("owner", "secret/app", &layer).await;
    let m = manifest(desc(OCI_CONFIG, &config), vec![desc(OCI_LAYER, &layer)]);
    let r = app.put_manifest("owner", "secret/app", "v1", &m).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (config, layer)
}

#[tokio::test]
async fn tag_existence_does_not_change_the_answer_to_an_invalid_push() {
    let app = app().await;
    let (config, _) = owner_image(&app).await;
    // The pusher cannot read the repository.
    let r = app
        .call("pusher", Method::GET, "/v2/secret/app/tags/list", "", b"")
        .await;
    assert_eq!(r.status, 403);
    // A manifest naming a layer that is nowhere: invalid, tag or no tag.
    let m = manifest(
        desc(OCI_CONFIG, &config),
        vec![desc(OCI_LAYER, b"never pushed")],
    );
    let existing = app.put_manifest("pusher", "secret/app", "v1", &m).await;
    let new = app.put_manifest("pusher", "secret/app", "v2", &m).await;
    assert_eq!(
        (existing.status, existing.code()),
        (new.status, new.code()),
        "existing tag: {} / new tag: {}",
        existing.body,
        new.body
    );
    assert_eq!(new.status, 400);
    // A valid push still cannot move the existing tag, and creates a new one.
    let valid = manifest(desc(OCI_CONFIG, &config), vec![]);
    let r = app.put_manifest("pusher", "secret/app", "v1", &valid).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = app.put_manifest("pusher", "secret/app", "v3", &valid).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn refusals_name_no_stored_blob_size() {
    let app = app().await;
    let (config, layer) = owner_image(&app).await;
    // The pusher names the owner's layer with a wrong size, and a layer that
    // does not exist: the same refusal, and the real size (300) nowhere.
    let mut wrong = desc(OCI_LAYER, &layer);
    wrong["size"] = json!(1);
    let m = manifest(desc(OCI_CONFIG, &config), vec![wrong]);
    let stored = app.put_manifest("pusher", "secret/app", "t1", &m).await;
    let mut missing = desc(OCI_LAYER, b"nowhere");
    missing["size"] = json!(1);
    let m = manifest(desc(OCI_CONFIG, &config), vec![missing]);
    let absent = app.put_manifest("pusher", "secret/app", "t2", &m).await;
    assert_eq!(stored.status, 400, "{}", stored.body);
    assert_eq!(
        (stored.status, stored.code()),
        (absent.status, absent.code())
    );
    assert!(!stored.body.contains("300"), "{}", stored.body);
}

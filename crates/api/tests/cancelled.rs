//! A mutating request whose client goes away half-way still completes and
//! is audited (issue 15, point 8), and a mutating request refused while its
//! path is parsed is audited too (point 7).
//!
//! The storage backend here pauses right after a chosen write (the
//! `index.json` of a manifest push, say) until the test releases it; the
//! test drops the request future while it is paused, as hyper does when the
//! client disconnects, then releases the write and checks the rest of the
//! operation (the metadata commit, the audit line) still happened.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{OCI_MANIFEST, image_manifest, sha256};
use http_body_util::BodyExt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;
use zot_storage::{Backend, BoxSink, ByteStream, Entry, LocalBackend, MetaStore};

/// Pauses the first backend operation `op` on a key ending in `suffix`,
/// after it is done, until released.
struct Gate {
    armed: Mutex<Option<(&'static str, String)>>,
    reached: Notify,
    release: Semaphore,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            armed: Mutex::new(None),
            reached: Notify::new(),
            release: Semaphore::new(0),
        }
    }

    fn arm(&self, op: &'static str, suffix: &str) {
        *self.armed.lock().unwrap() = Some((op, suffix.to_owned()));
    }

    async fn pass(&self, op: &'static str, key: &str) {
        let hit = {
            let mut armed = self.armed.lock().unwrap();
            let hit = armed
                .as_ref()
                .is_some_and(|(o, s)| *o == op && key.ends_with(s.as_str()));
            if hit {
                *armed = None;
            }
            hit
        };
        if hit {
            self.reached.notify_one();
            self.release.acquire().await.unwrap().forget();
        }
    }
}

struct Gated {
    inner: LocalBackend,
    gate: Arc<Gate>,
}

#[async_trait]
impl Backend for Gated {
    async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.size(key).await
    }
    async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.read(key).await
    }
    async fn read_stream(&self, key: &str, start: u64, len: u64) -> io::Result<ByteStream> {
        self.inner.read_stream(key, start, len).await
    }
    async fn write_atomic(&self, key: &str, data: &[u8]) -> io::Result<()> {
        self.inner.write_atomic(key, data).await?;
        self.gate.pass("write_atomic", key).await;
        Ok(())
    }
    async fn sink(&self, key: &str, offset: u64) -> io::Result<BoxSink> {
        self.inner.sink(key, offset).await
    }
    async fn publish(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.publish(from, to).await?;
        self.gate.pass("publish", to).await;
        Ok(())
    }
    async fn link(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.link(from, to).await?;
        self.gate.pass("link", to).await;
        Ok(())
    }
    async fn delete(&self, key: &str) -> io::Result<bool> {
        let deleted = self.inner.delete(key).await?;
        self.gate.pass("delete", key).await;
        Ok(deleted)
    }
    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn list(&self, prefix: &str) -> io::Result<Vec<Entry>> {
        self.inner.list(prefix).await
    }
    async fn fingerprint(&self, key: &str) -> io::Result<Option<zot_meta::Fingerprint>> {
        self.inner.fingerprint(key).await
    }
    async fn age_secs(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.age_secs(key).await
    }
}

struct App {
    _dir: tempfile::TempDir,
    router: Router,
    gate: Arc<Gate>,
    audit: std::path::PathBuf,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::new());
    let backend = Gated {
        inner: LocalBackend::new(dir.path().to_path_buf(), false).unwrap(),
        gate: gate.clone(),
    };
    std::fs::create_dir_all(dir.path().join(zot_storage::paths::META_DIR)).unwrap();
    let meta = MetaStore::open(&dir.path().join(zot_storage::paths::META_DB)).unwrap();
    let options = zot_storage::Options {
        dedupe: true,
        ..Default::default()
    };
    let registry = zot_storage::Registry::new(Arc::new(backend), meta, options);
    registry.sync_from_disk().await.unwrap();
    let audit = dir.path().join("audit.log");
    let security =
        zot_auth::Security::from_config(&zot_config::HttpConfig::default(), Some(&audit)).unwrap();
    let state = zot_api::AppState::with_security(Arc::new(registry), vec![], security);
    App {
        router: zot_api::router(state),
        _dir: dir,
        gate,
        audit,
    }
}

fn request(method: Method, uri: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", OCI_MANIFEST)
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap()
}

impl App {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, body, parts.headers)
    }

    async fn status(&self, method: Method, uri: &str, body: Vec<u8>) -> u16 {
        self.send(request(method, uri, body)).await.0.as_u16()
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let uri = format!("/v2/{repo}/blobs/uploads/?digest={d}");
        assert_eq!(self.status(Method::POST, &uri, data.to_vec()).await, 201);
        d
    }

    /// Sends `req`, drops it once storage is paused at (`op`, `suffix`),
    /// then lets storage go on.
    async fn cancel_at(&self, op: &'static str, suffix: &str, req: Request<Body>) {
        self.gate.arm(op, suffix);
        let request = tokio::spawn(self.router.clone().oneshot(req));
        tokio::time::timeout(Duration::from_secs(10), self.gate.reached.notified())
            .await
            .expect("the request reached the paused storage operation");
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        self.gate.release.add_permits(1);
    }

    /// Waits (up to 10 s) for an audit line of `method path` with `status`.
    async fn audited(&self, method: &str, path: &str, status: u16) {
        for _ in 0..200 {
            let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
            let found = text.lines().any(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                v["method"] == method && v["path"] == path && v["status"] == status
            });
            if found {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no audit line `{method} {path} {status}` in:\n{}",
            std::fs::read_to_string(&self.audit).unwrap_or_default()
        );
    }

    /// Waits (up to 10 s) for `GET uri` to answer `status`.
    async fn eventually(&self, uri: &str, status: u16) {
        let mut last = 0;
        for _ in 0..200 {
            last = self.status(Method::GET, uri, vec![]).await;
            if last == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("GET {uri} answers {last}, not {status}");
    }

    /// Pushes a one-layer image tagged `tag`; returns (manifest, its digest, layer digest).
    async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String, String) {
        let config = format!(r#"{{"seed":"{seed}"}}"#).into_bytes();
        let layer = format!("layer of {seed}").into_bytes();
        self.push_blob(repo, &config).await;
        let layer_digest = self.push_blob(repo, &layer).await;
        let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
        let uri = format!("/v2/{repo}/manifests/{tag}");
        assert_eq!(self.status(Method::PUT, &uri, manifest.clone()).await, 201);
        (manifest.clone(), sha256(&manifest), layer_digest)
    }
}

fn hex(digest: &str) -> &str {
    digest.split_once(':').unwrap().1
}

#[tokio::test]
async fn manifest_push_dropped_after_index_write_still_commits_and_audits() {
    let app = app().await;
    let config = br#"{"seed":"a"}"#.to_vec();
    let layer = b"layer a".to_vec();
    app.push_blob("r", &config).await;
    app.push_blob("r", &layer).await;
    let manifest = image_manifest(&config, &[&layer], serde_json::json!({}));
    let put = request(Method::PUT, "/v2/r/manifests/t", manifest);
    app.cancel_at("write_atomic", "index.json", put).await;
    app.eventually("/v2/r/manifests/t", 200).await;
    app.audited("PUT", "/v2/r/manifests/t", 201).await;
}

#[tokio::test]
async fn manifest_delete_dropped_after_index_write_still_commits_and_audits() {
    let app = app().await;
    app.push_image("r", "t", "b").await;
    let delete = request(Method::DELETE, "/v2/r/manifests/t", vec![]);
    app.cancel_at("write_atomic", "index.json", delete).await;
    app.eventually("/v2/r/manifests/t", 404).await;
    app.audited("DELETE", "/v2/r/manifests/t", 202).await;
}

#[tokio::test]
async fn blob_delete_dropped_midway_is_audited() {
    let app = app().await;
    let d = app.push_blob("r", b"some blob").await;
    let uri = format!("/v2/r/blobs/{d}");
    app.cancel_at("delete", hex(&d), request(Method::DELETE, &uri, vec![]))
        .await;
    app.audited("DELETE", &uri, 202).await;
    app.eventually(&uri, 404).await;
}

#[tokio::test]
async fn upload_completion_dropped_after_publish_completes_and_audits() {
    let app = app().await;
    let (status, _, headers) = app
        .send(request(Method::POST, "/v2/r/blobs/uploads/", vec![]))
        .await;
    assert_eq!(status, 202);
    let location = headers["location"].to_str().unwrap().to_owned();
    let data = b"uploaded content".to_vec();
    let d = sha256(&data);
    let put = request(Method::PUT, &format!("{location}?digest={d}"), data);
    app.cancel_at("publish", hex(&d), put).await;
    app.audited("PUT", &location, 201).await;
    app.eventually(&format!("/v2/r/blobs/{d}"), 200).await;
}

#[tokio::test]
async fn mount_dropped_after_link_completes_and_audits() {
    let app = app().await;
    let (_, _, layer) = app.push_image("src", "t", "c").await;
    let uri = format!("/v2/dst/blobs/uploads/?mount={layer}&from=src");
    app.cancel_at("link", hex(&layer), request(Method::POST, &uri, vec![]))
        .await;
    app.audited("POST", "/v2/dst/blobs/uploads/", 201).await;
    app.eventually(&format!("/v2/dst/blobs/{layer}"), 200).await;
}

#[tokio::test]
async fn mutating_request_with_an_invalid_name_is_audited() {
    let app = app().await;
    let status = app
        .status(Method::PUT, "/v2/Bad/manifests/t", b"{}".to_vec())
        .await;
    assert_eq!(status, 400);
    app.audited("PUT", "/v2/Bad/manifests/t", 400).await;
    let status = app
        .status(Method::DELETE, "/v2/a/..//blobs/uploads/x", vec![])
        .await;
    assert_eq!(status, 400);
    app.audited("DELETE", "/v2/a/..//blobs/uploads/x", 400)
        .await;
    // Outside the API too.
    assert_eq!(app.status(Method::POST, "/livez", vec![]).await, 404);
    app.audited("POST", "/livez", 404).await;
    // Reads are not audited, valid or not.
    assert_eq!(
        app.status(Method::GET, "/v2/Bad/tags/list", vec![]).await,
        400
    );
    let text = std::fs::read_to_string(Path::new(&app.audit)).unwrap();
    assert!(!text.contains("tags/list"), "{text}");
    assert_eq!(app.status(Method::GET, "/livez", vec![]).await, 200);
    let text = std::fs::read_to_string(Path::new(&app.audit)).unwrap();
    assert!(!text.contains("\"GET\""), "{text}");
}

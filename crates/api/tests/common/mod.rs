//! `TestApp`: the whole API router over a registry in a temporary folder,
//! driven in-process with `tower::ServiceExt::oneshot`. Digests are computed
//! here independently of the code under test.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(data)))
}

/// The `<alg>/<hex>` tail of a blob's path in a layout.
pub fn blob_rel(digest: &str) -> String {
    digest.replacen(':', "/", 1)
}

/// A descriptor of `data`.
pub fn desc(media_type: &str, data: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256(data), "size": data.len() })
}

/// An OCI image manifest of `config` and `layers`, with `extra` fields merged in.
pub fn image_manifest(config: &[u8], layers: &[&[u8]], extra: Value) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| desc(OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    if let (Value::Object(m), Value::Object(extra)) = (&mut m, extra) {
        m.extend(extra);
    }
    serde_json::to_vec(&m).unwrap()
}

/// An OCI index of `manifests` (bodies of image manifests).
pub fn index_manifest(manifests: &[&[u8]]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests.iter().map(|m| desc(OCI_MANIFEST, m)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// A pushed image: its blobs and manifest.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The header, which must be present.
    pub fn h(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts an OCI error response: status, `{"errors":[{"code":..,"message":..}]}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.h("content-type"), "application/json");
        let v = self.json();
        let errors = v["errors"].as_array().expect("an errors array");
        assert_eq!(errors.len(), 1, "{v}");
        assert_eq!(errors[0]["code"], code, "{v}");
        assert!(
            errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {v}"
        );
        self
    }
}

#[derive(Debug, Clone)]
pub struct TestAppBuilder {
    dedupe: bool,
    docker2s2: bool,
    /// Metrics at `/metrics`, with this many repository labels.
    metrics: Option<usize>,
}

impl TestAppBuilder {
    pub fn dedupe(mut self, on: bool) -> Self {
        self.dedupe = on;
        self
    }

    pub fn docker2s2(mut self, on: bool) -> Self {
        self.docker2s2 = on;
        self
    }

    /// Metrics served at `/metrics`, labelling at most `max_repositories`.
    pub fn metrics(mut self, max_repositories: usize) -> Self {
        self.metrics = Some(max_repositories);
        self
    }

    pub async fn build(self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let router = open(dir.path(), &self).await;
        TestApp {
            dir,
            router,
            config: self,
        }
    }
}

async fn open(root: &Path, config: &TestAppBuilder) -> Router {
    let options = zot_storage::Options {
        dedupe: config.dedupe,
        docker2s2: config.docker2s2,
        ..Default::default()
    };
    let (registry, _report) = zot_storage::open_local(root, false, options).await.unwrap();
    let state = zot_api::AppState::new(Arc::new(registry), vec![]);
    if let Some(max) = config.metrics {
        let info = zot_metrics::BuildInfo::default();
        state.set_metrics(Some(zot_api::MetricsEndpoint {
            path: "/metrics".to_owned(),
            metrics: Arc::new(zot_metrics::Metrics::new(info, max)),
        }));
    }
    zot_api::router(state)
}

pub struct TestApp {
    dir: tempfile::TempDir,
    router: Router,
    config: TestAppBuilder,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            dedupe: true,
            docker2s2: true,
            metrics: None,
        }
    }

    pub async fn new() -> TestApp {
        Self::builder().build().await
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Drops the registry (closing its metadata store) and opens it again on
    /// the same folder; `between` runs while it is closed.
    pub async fn restart_with(&mut self, between: impl FnOnce(&Path)) {
        self.router = Router::new();
        between(self.dir.path());
        self.router = open(self.dir.path(), &self.config).await;
    }

    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A request with `headers` and `body`.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(body.into()).unwrap()).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.call(Method::GET, uri, &[], Body::empty()).await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.call(Method::GET, uri, headers, Body::empty()).await
    }

    pub async fn head(&self, uri: &str) -> TestResponse {
        self.call(Method::HEAD, uri, &[], Body::empty()).await
    }

    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.call(Method::DELETE, uri, &[], Body::empty()).await
    }

    pub async fn post(&self, uri: &str, body: impl Into<Body>) -> TestResponse {
        self.call(Method::POST, uri, &[], body).await
    }

    /// `POST /v2/<repo>/blobs/uploads/`: a new session; returns its location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .post(&format!("/v2/{repo}/blobs/uploads/"), Body::empty())
            .await;
        r.assert_status(202);
        r.h("location").to_owned()
    }

    /// Pushes `data` to `repo` monolithically; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let len = data.len().to_string();
        let r = self
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-length", &len),
                ],
                data.to_vec(),
            )
            .await;
        r.assert_status(201);
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> TestResponse {
        let len = body.len().to_string();
        self.call(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type), ("content-length", &len)],
            body.to_vec(),
        )
        .await
    }

    /// Pushes a manifest that must be accepted; returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self.put_manifest(repo, reference, media_type, body).await;
        r.assert_status(201);
        assert_eq!(r.h("docker-content-digest"), sha256(body));
        sha256(body)
    }

    /// Pushes a one-layer image whose content depends on `seed`, tagged
    /// `tag` (or by digest when `tag` is `None`).
    pub async fn push_image(&self, repo: &str, tag: Option<&str>, seed: &str) -> Image {
        self.push_image_with(repo, tag, seed, json!({})).await
    }

    pub async fn push_image_with(
        &self,
        repo: &str,
        tag: Option<&str>,
        seed: &str,
        extra: Value,
    ) -> Image {
        let config = format!(r#"{{"seed":"{seed}"}}"#).into_bytes();
        let layer = format!("layer of {seed}").into_bytes();
        self.push_blob(repo, &config).await;
        self.push_blob(repo, &layer).await;
        let manifest = image_manifest(&config, &[&layer], extra);
        let digest = sha256(&manifest);
        self.push_manifest(repo, tag.unwrap_or(&digest), OCI_MANIFEST, &manifest)
            .await;
        Image {
            config,
            layer,
            manifest,
            digest,
        }
    }

    /// Tags of `repo` from `GET /v2/<repo>/tags/list`.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.get(&format!("/v2/{repo}/tags/list")).await;
        r.assert_status(200);
        serde_json::from_value(r.json()["tags"].clone()).unwrap()
    }

    pub async fn catalog(&self) -> Vec<String> {
        let r = self.get("/v2/_catalog").await;
        r.assert_status(200);
        serde_json::from_value(r.json()["repositories"].clone()).unwrap()
    }

    /// Reads `<root>/<rel>`.
    pub fn read_file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root().join(rel)).unwrap()
    }

    /// The parsed `index.json` of `repo`.
    pub fn layout_index(&self, repo: &str) -> Value {
        serde_json::from_slice(&self.read_file(&format!("{repo}/index.json"))).unwrap()
    }

    /// Names of the files in `<root>/<repo>/.uploads/` (none if it is absent).
    pub fn upload_files(&self, repo: &str) -> Vec<String> {
        match std::fs::read_dir(self.root().join(repo).join(".uploads")) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every folder and file under the root except the metadata store, with
    /// the files' contents: compared before and after a refused request.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                if rel.starts_with("_zot") {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    out.insert(rel, None);
                    walk(root, &p, out);
                } else {
                    out.insert(rel, Some(std::fs::read(&p).unwrap()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.root(), self.root(), &mut out);
        out
    }
}

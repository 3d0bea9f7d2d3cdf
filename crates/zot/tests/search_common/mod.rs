//! Support for `e2e_search.rs`: a registry with search, htpasswd users and
//! accessControl; the images the test pushes with skopeo; and a plain
//! GraphQL client (JSON POSTed with ureq, nothing GraphQL-specific).
#![allow(
    dead_code,
    reason = "helpers shared by the search tests; each uses a subset"
)]

use std::path::Path;

use serde_json::{Value, json};

use crate::auth_common::{basic, call, write_htpasswd};
use crate::common::fixtures::{self, Blob, Image, OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST};
use crate::common::{Client, Registry, Response};

pub const ENDPOINT: &str = "/v2/_zot/ext/search";
pub const USERS: &[(&str, &str)] = &[
    ("admin", "admin-search-pw"),
    ("alice", "alice-search-pw"),
    ("bob", "bob-search-pw"),
];

/// `Authorization` for a user of [`USERS`].
pub fn auth(user: &str) -> String {
    let (u, p) = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .unwrap_or_else(|| panic!("no user {user}"));
    basic(u, p)
}

/// `--dest-creds` for skopeo.
pub fn creds(user: &str) -> String {
    let (u, p) = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .unwrap_or_else(|| panic!("no user {user}"));
    format!("{u}:{p}")
}

/// admin may do everything; alice may read `e2e/**`; bob may read
/// `bob/**` only; nobody else (anonymous included) anything.
pub fn access_control() -> Value {
    json!({
        "repositories": {
            "e2e/**": { "policies": [{ "users": ["alice"], "actions": ["read"] }] },
            "bob/**": { "policies": [{ "users": ["bob"], "actions": ["read"] }] },
            "secret/**": { "policies": [] }
        },
        "adminPolicy": { "users": ["admin"], "actions": ["read", "create", "update", "delete"] }
    })
}

/// Starts zot with `extensions` and, when `secured`, htpasswd auth and
/// [`access_control`] (written into the config and restarted on it, as
/// `auth_common::start_secure` does).
pub fn start(extensions: Value, secured: bool) -> Registry {
    let mut registry =
        Registry::start_with(crate::common::Config::default().with_extensions(extensions));
    if !secured {
        return registry;
    }
    registry.kill9();
    let htpasswd = registry.work_dir().join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("config JSON");
    config["http"]["realm"] = json!("zot-search");
    config["http"]["auth"] = json!({ "htpasswd": { "path": htpasswd } });
    config["http"]["accessControl"] = access_control();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    registry.restart();
    registry
}

/// POSTs `{"query": query}` as `user` (`None`: anonymous).
pub fn post(client: &Client, user: Option<&str>, query: &str) -> Response {
    let body = serde_json::to_vec(&json!({ "query": query })).expect("JSON");
    let a = user.map(auth);
    call(
        client,
        a.as_deref(),
        "POST",
        ENDPOINT,
        &[("content-type", "application/json")],
        Some(&body),
    )
}

/// The `data` of a successful answer: 200, JSON, no `errors`.
pub fn data(client: &Client, user: Option<&str>, query: &str) -> Value {
    let r = post(client, user, query);
    r.expect_status(200, &format!("query {query}"));
    let doc = r.json();
    let errors = &doc["errors"];
    assert!(
        errors.is_null() || errors.as_array().is_some_and(Vec::is_empty),
        "query {query} answered errors: {r}"
    );
    assert!(doc["data"].is_object(), "query {query}: no data: {r}");
    doc["data"].clone()
}

/// The error messages of an answer that must be 200 with `errors` (a
/// resolver error, zot's status).
pub fn resolver_errors(client: &Client, user: Option<&str>, query: &str) -> Vec<String> {
    let r = post(client, user, query);
    r.expect_status(200, &format!("resolver error of {query}"));
    let doc = r.json();
    let messages: Vec<String> = doc["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(!messages.is_empty(), "query {query}: expected errors: {r}");
    messages
}

/// `field` of every element of a JSON array, as strings.
pub fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field} in {v}"))
                .to_owned()
        })
        .collect()
}

/// The same list sorted (for order-free comparisons).
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Total size of an image as zot counts it: manifest, config and layers.
pub fn image_size(image: &Image) -> u64 {
    image.manifest.size() + image.blobs().iter().map(|b| b.size()).sum::<u64>()
}

/// `image` with `annotations` in its manifest (a new manifest digest).
pub fn annotated(mut image: Image, annotations: Value) -> Image {
    let mut m: Value = serde_json::from_slice(&image.manifest.bytes).expect("manifest JSON");
    m["annotations"] = annotations;
    image.manifest = Blob::json(OCI_MANIFEST, &m);
    image
}

/// A cosign signature in the legacy tag scheme for `signed` (tag it
/// `sha256-<hex>.sig` in the signed image's repository).
pub fn cosign_signature(signed: &Blob, reference: &str) -> Image {
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": reference },
            "image": { "docker-manifest-digest": signed.digest },
            "type": "cosign container image signature"
        },
        "optional": null
    });
    let layer = Blob::json("application/vnd.dev.cosign.simplesigning.v1+json", &payload);
    let config = Blob::json(
        OCI_CONFIG,
        &json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] }
        }),
    );
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] = json!({
        "dev.cosignproject.cosign/signature": "MEUCIQDe2eSignatureThatNobodyVerifiesAAAAAAAAAAIgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    });
    let manifest = Blob::json(
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer_descriptor],
        }),
    );
    Image {
        manifest,
        config,
        layers: vec![layer],
    }
}

pub const SBOM_TYPE: &str = "application/vnd.example.sbom.v1";

/// An artifact (empty config, one blob) whose `subject` is `subject`.
pub fn artifact_for(subject: &Blob) -> Image {
    let config = Blob::new(OCI_EMPTY, b"{}".to_vec());
    let layer = Blob::new(
        "application/vnd.example.sbom.v1+json",
        br#"{"packages":["e2e"]}"#.to_vec(),
    );
    let manifest = Blob::json(
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
            "annotations": { "org.example.kind": "sbom" },
        }),
    );
    Image {
        manifest,
        config,
        layers: vec![layer],
    }
}

/// Copies tag `tag` of an OCI layout to `repo:tag` on the registry with
/// skopeo as `user` (every platform, digests preserved).
pub fn skopeo_push(
    registry: &Registry,
    layout: &fixtures::OciLayout,
    tag: &str,
    repo: &str,
    work: &Path,
) {
    crate::common::tools::skopeo_copy(
        &[
            "--all",
            "--preserve-digests",
            "--dest-creds",
            &creds("admin"),
        ],
        &layout.reference(tag),
        &registry.docker_ref(&format!("{repo}:{tag}")),
        work,
    );
}

/// POSTs a query body over a raw socket with `Expect: 100-continue`, so
/// that a server refusing it by its length can answer before the body is
/// sent (an HTTP library writing the whole body first would see a broken
/// pipe instead of the answer). Returns the status and the body.
pub fn post_expecting_continue(addr: &str, user: &str, query: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let body = serde_json::to_vec(&json!({ "query": query })).expect("JSON");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST {ENDPOINT} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        auth(user),
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write the head");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = |got: &[u8]| got.windows(4).position(|w| w == b"\r\n\r\n");
    while head_end(&got).is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    if got.starts_with(b"HTTP/1.1 100") {
        let end = head_end(&got).map_or(got.len(), |p| p + 4);
        got.drain(..end);
        // The server may still refuse halfway; its answer is read below.
        let _ = s.write_all(&body);
    }
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

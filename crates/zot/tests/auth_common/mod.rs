//! Helpers shared by the security tests (`e2e_auth*.rs`): a registry started
//! on a config with `http.auth`/`accessControl`/... merged in, Basic
//! credentials, bcrypt htpasswd files, and a tiny image to push and pull.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

pub mod pki;

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use crate::common::{self, Client, Registry, Response};

/// Starts a registry whose config has `http` and `log` keys merged in. The
/// harness writes its default config; it is rewritten and the registry
/// restarted on it (so the harness needs no security knobs of its own).
pub fn start_secure(http: Value, log: Value) -> Registry {
    start_secure_with(common::Config::default(), http, log)
}

/// [`start_secure`] on a harness config of the test's own (extensions, ...).
pub fn start_secure_with(config: common::Config, http: Value, log: Value) -> Registry {
    let mut registry = Registry::start_with(config);
    registry.kill9();
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("config JSON");
    merge(&mut config["http"], http);
    merge(&mut config["log"], log);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    registry.restart();
    registry
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        for (k, v) in from {
            into.insert(k, v);
        }
    }
}

/// The config file a test writes itself, for start-up failures.
pub fn config_with(dir: &Path, http: Value) -> std::path::PathBuf {
    let path = dir.join("config.json");
    let config = json!({
        "storage": { "rootDirectory": dir.join("root") },
        "http": merged(json!({ "address": "127.0.0.1", "port": "0" }), http),
        "log": { "level": "info" },
    });
    std::fs::write(&path, serde_json::to_vec(&config).expect("JSON")).expect("write config");
    path
}

fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Writes an htpasswd file of bcrypt entries (cost 4: fast tests), mode 600.
pub fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    let mut text = String::new();
    for (user, password) in users {
        let hash = bcrypt::hash(password, 4).expect("bcrypt");
        text.push_str(&format!("{user}:{hash}\n"));
    }
    std::fs::write(path, text).expect("write htpasswd");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A one-layer image whose content depends on `seed`.
pub fn small_image(seed: &str) -> common::fixtures::Image {
    common::fixtures::image(
        ("linux", "amd64"),
        &[vec![("seed.txt", seed.as_bytes().to_vec())]],
        false,
    )
}

/// Sends a request with an optional `Authorization` header.
pub fn call(
    client: &Client,
    auth: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(a) = auth {
        all.push(("authorization", a));
    }
    client.request(method, path, &all, body)
}

/// Pushes an image's blobs (monolithic POST) and its manifest as `tag`,
/// asserting success.
pub fn push_image(
    client: &Client,
    auth: Option<&str>,
    repo: &str,
    image: &common::fixtures::Image,
    tag: &str,
) {
    for blob in image.blobs() {
        let digest = common::sha256_digest(&blob.bytes);
        call(
            client,
            auth,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[("content-type", "application/octet-stream")],
            Some(&blob.bytes),
        )
        .expect_status(201, &format!("push blob to {repo}"));
    }
    put_manifest(client, auth, repo, image, tag).expect_status(201, &format!("PUT {repo}:{tag}"));
}

pub fn put_manifest(
    client: &Client,
    auth: Option<&str>,
    repo: &str,
    image: &common::fixtures::Image,
    tag: &str,
) -> Response {
    call(
        client,
        auth,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("content-type", image.manifest.media_type.as_str())],
        Some(&image.manifest.bytes),
    )
}

//! The registry client of the sync extension (`zot-client`) against real
//! upstreams: Debian's `docker-registry` (distribution 2.8: paging, no
//! referrers API), our own binary with htpasswd over TLS with a private CA,
//! with client certificates, and with its built-in token service; and
//! faults (429 with `Retry-After`, 5xx then recovery, a corrupted body, a
//! dead first URL, slow blobs for the per-host limit) injected by a proxy
//! in front of a real registry.

mod auth_common;
mod common;
mod sync_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use zot_client::{ClientError, ClientOptions, CredentialsFile, RegistryClient, RetryPolicy};
use zot_oci::Digest;

use auth_common::pki::Pki;
use common::Registry;
use sync_common::{Distribution, FaultProxy, small_image};

fn client(options: ClientOptions) -> RegistryClient {
    RegistryClient::new(&options).unwrap_or_else(|e| panic!("client: {e}"))
}

fn plain(url: &str) -> ClientOptions {
    let mut o = ClientOptions::new(vec![url.to_owned()]);
    o.retry = RetryPolicy {
        max_retries: 0,
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    o
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

async fn read_all(mut s: zot_client::BlobStream) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_upstream_pages_lists_and_verifies_content() {
    let upstream = Distribution::start();
    let pusher = common::Client::new(&upstream.url());
    let image = small_image("foreign");
    for repo in ["a/one", "b/two", "c/three"] {
        image.push(&pusher, repo, "v1");
    }
    let tags: BTreeSet<String> = (0..5).map(|i| format!("t{i}")).collect();
    for t in &tags {
        image.push(&pusher, "a/one", t);
    }
    let mut o = plain(&upstream.url());
    o.page_size = 2;
    let c = client(o);

    // Catalog and tags, two entries a page, followed through `Link`.
    assert_eq!(
        c.catalog().await.expect("catalog"),
        ["a/one", "b/two", "c/three"]
    );
    let got: BTreeSet<String> = c.tags("a/one").await.expect("tags").into_iter().collect();
    let mut want = tags.clone();
    want.insert("v1".to_owned());
    assert_eq!(got, want);

    // Manifests by tag and digest, HEAD, and absence.
    let m = c.manifest("a/one", "v1").await.expect("manifest");
    assert_eq!(m.digest.to_string(), image.manifest.digest);
    assert_eq!(m.bytes.as_ref(), image.manifest.bytes.as_slice());
    assert_eq!(m.media_type, image.manifest.media_type);
    let by_digest = c
        .manifest("a/one", &image.manifest.digest)
        .await
        .expect("by digest");
    assert_eq!(by_digest.digest, m.digest);
    let head = c
        .manifest_head("a/one", "v1")
        .await
        .expect("head")
        .expect("present");
    assert_eq!(head.digest.as_ref(), Some(&m.digest));
    assert!(
        c.manifest_head("a/one", "nope")
            .await
            .expect("head")
            .is_none()
    );
    let missing = c.manifest("a/one", "nope").await;
    assert!(
        matches!(missing, Err(ClientError::NotFound { .. })),
        "{missing:?}"
    );

    // A blob streams and verifies.
    let layer = &image.layers[0];
    let s = c
        .blob("a/one", &digest(&layer.digest), Some(layer.size()))
        .await
        .expect("blob");
    assert_eq!(read_all(s).await.expect("verified"), layer.bytes);

    // Distribution 2.8 has no referrers API: the tag schema is read.
    assert!(
        c.referrers("a/one", &m.digest)
            .await
            .expect("none")
            .is_empty()
    );
    let (sig, blobs) = sync_common::referrer(
        &image.manifest,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "sig",
    );
    sync_common::push_referrer(&pusher, "a/one", &sig, &blobs);
    let mut desc = sig.descriptor();
    desc["artifactType"] = json!("application/vnd.dev.cosign.artifact.sig.v1+json");
    let index = common::Blob::json(
        "application/vnd.oci.image.index.v1+json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]}),
    );
    pusher
        .put_manifest(
            "a/one",
            &format!("sha256-{}", image.manifest.hex()),
            &index.media_type,
            &index.bytes,
        )
        .expect_status(201, "referrers tag");
    let referrers = c.referrers("a/one", &m.digest).await.expect("referrers");
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest.to_string(), sig.digest);
}

/// A registry with `image` as `repo:v1`, restarted with `http` merged in.
fn secured_with(repo: &str, image: &common::Image, http: serde_json::Value) -> Registry {
    let mut registry = Registry::start();
    image.push(&registry.client(), repo, "v1");
    registry.kill9();
    let path = registry.config_path().to_owned();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    if let (Some(h), serde_json::Value::Object(extra)) = (config["http"].as_object_mut(), http) {
        h.extend(extra);
    }
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write");
    registry.restart();
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "localhost", true);
    let htpasswd = dir.path().join("htpasswd");
    auth_common::write_htpasswd(&htpasswd, &[("sync", "sync-secret")]);
    let image = small_image("basic");
    let registry = secured_with(
        "team/app",
        &image,
        json!({ "tls": { "cert": cert, "key": key }, "auth": { "htpasswd": { "path": htpasswd } } }),
    );
    let url = format!("https://{}", registry.addr());
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    std::fs::copy(pki.path("ca.crt"), certs.join("ca.crt")).expect("copy CA");
    let creds = CredentialsFile::parse(
        format!(
            r#"{{"{}": {{"username": "sync", "password": "sync-secret"}}}}"#,
            registry.addr()
        )
        .as_bytes(),
    )
    .expect("credentials");

    let mut o = plain(&url);
    o.cert_dir = Some(certs.clone());
    o.credentials = creds.clone();
    let m = client(o.clone())
        .manifest("team/app", "v1")
        .await
        .expect("with CA and password");
    assert_eq!(m.digest.to_string(), image.manifest.digest);

    // Without the password: refused.
    let mut anon = o.clone();
    anon.credentials = CredentialsFile::default();
    let r = client(anon).manifest("team/app", "v1").await;
    assert!(matches!(r, Err(ClientError::Unauthorized { .. })), "{r:?}");
    // Credentials of another host[:port] are not sent.
    let mut other = o.clone();
    other.credentials = CredentialsFile::parse(
        br#"{"127.0.0.1:1": {"username": "sync", "password": "sync-secret"}}"#,
    )
    .expect("credentials");
    let r = client(other).manifest("team/app", "v1").await;
    assert!(matches!(r, Err(ClientError::Unauthorized { .. })), "{r:?}");
    // Without the CA the certificate is not trusted...
    let mut no_ca = o.clone();
    no_ca.cert_dir = None;
    let r = client(no_ca.clone()).manifest("team/app", "v1").await;
    assert!(matches!(r, Err(ClientError::Transport { .. })), "{r:?}");
    // ...unless tlsVerify is off. A missing certDir is no error.
    no_ca.tls_verify = false;
    no_ca.cert_dir = Some(dir.path().join("absent"));
    client(no_ca)
        .manifest("team/app", "v1")
        .await
        .expect("tlsVerify false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_cert_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "localhost", true);
    let (client_crt, client_key) = pki.issue("client", "syncer", false);
    let image = small_image("mtls");
    let registry = secured_with(
        "team/app",
        &image,
        json!({
            "tls": { "cert": cert, "key": key, "cacert": pki.path("ca.crt") },
            "auth": { "mtls": { "identityAttributes": ["CommonName"] } },
            "accessControl": { "repositories": { "**": {
                "policies": [{ "users": ["syncer"], "actions": ["read"] }] } } }
        }),
    );
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    std::fs::copy(pki.path("ca.crt"), certs.join("ca.crt")).expect("CA");
    let mut o = plain(&format!("https://{}", registry.addr()));
    o.cert_dir = Some(certs.clone());
    let r = client(o.clone()).manifest("team/app", "v1").await;
    assert!(r.is_err(), "no client certificate: {r:?}");
    std::fs::copy(&client_crt, certs.join("client.cert")).expect("cert");
    std::fs::copy(&client_key, certs.join("client.key")).expect("key");
    let m = client(o)
        .manifest("team/app", "v1")
        .await
        .expect("client certificate");
    assert_eq!(m.digest.to_string(), image.manifest.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_per_scope_and_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    auth_common::write_htpasswd(&htpasswd, &[("alice", "alice-secret")]);
    let image = small_image("bearer");
    let mut registry = Registry::start();
    image.push(&registry.client(), "public/app", "v1");
    image.push(&registry.client(), "private/db", "v1");
    registry.kill9();
    let path = registry.config_path().to_owned();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    config["http"]["auth"] = json!({ "htpasswd": { "path": htpasswd } });
    config["http"]["accessControl"] = json!({ "repositories": {
        "public/**": { "anonymousPolicy": ["read"], "defaultPolicy": ["read"] },
        "private/**": { "policies": [{ "users": ["alice"], "actions": ["read"] }] }
    }});
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write");
    registry.restart();
    let proxy = FaultProxy::start(&registry.url());

    // Anonymous: a token for the public repository, none for the private one.
    let anon = client(plain(&proxy.url()));
    anon.manifest("public/app", "v1")
        .await
        .expect("anonymous public");
    let r = anon.manifest("private/db", "v1").await;
    assert!(matches!(r, Err(ClientError::Unauthorized { .. })), "{r:?}");

    // alice: challenged once per scope, then the cached token is sent.
    let mut o = plain(&proxy.url());
    o.credentials = CredentialsFile::parse(
        format!(
            r#"{{"{}": {{"username": "alice", "password": "alice-secret"}}}}"#,
            proxy.addr
        )
        .as_bytes(),
    )
    .expect("credentials");
    let alice = client(o);
    let count = || proxy.with(|f| f.seen.iter().filter(|l| l.contains("/private/db/")).count());
    let before = count();
    let m = alice
        .manifest("private/db", "v1")
        .await
        .expect("alice private");
    assert_eq!(m.digest.to_string(), image.manifest.digest);
    assert_eq!(
        count() - before,
        2,
        "a challenge, then the request with a token"
    );
    alice.manifest("private/db", "v1").await.expect("again");
    let layer = &image.layers[0];
    let s = alice
        .blob("private/db", &digest(&layer.digest), Some(layer.size()))
        .await
        .expect("blob");
    assert_eq!(read_all(s).await.expect("blob body"), layer.bytes);
    assert_eq!(count() - before, 4, "the token of the scope is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_recover_from_5xx() {
    let registry = Registry::start();
    let image = small_image("faults");
    image.push(&registry.client(), "app", "v1");
    let proxy = FaultProxy::start(&registry.url());
    let mut o = plain(&proxy.url());
    o.retry = RetryPolicy {
        max_retries: 3,
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let c = client(o.clone());

    // 429 twice with Retry-After: 1: waited out, not the 10 ms back-off.
    proxy.with(|f| f.answers = vec![(429, Some(1)), (429, Some(1))]);
    let start = Instant::now();
    c.manifest("app", "v1").await.expect("after 429s");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After not honoured"
    );

    // 500 then 503, then the upstream recovers.
    let before = proxy.with(|f| f.seen.len());
    proxy.with(|f| f.answers = vec![(500, None), (503, None)]);
    c.manifest("app", "v1").await.expect("after 5xx");
    assert_eq!(proxy.with(|f| f.seen.len()) - before, 3);

    // More failures than retries: the error says so.
    proxy.with(|f| f.answers = vec![(500, None); 4]);
    let r = c.manifest("app", "v1").await;
    assert!(
        matches!(r, Err(ClientError::Status { status: 500, .. })),
        "{r:?}"
    );

    // A dead first URL: the next one is used.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let mut two = o.clone();
    two.urls = vec![format!("http://{dead}"), proxy.url()];
    client(two).manifest("app", "v1").await.expect("second URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_content_is_reported_not_returned() {
    let registry = Registry::start();
    let image = small_image("corrupt");
    image.push(&registry.client(), "app", "v1");
    let proxy = FaultProxy::start(&registry.url());
    let c = client(plain(&proxy.url()));
    let layer = &image.layers[0];
    proxy.with(|f| {
        f.corrupt = vec![
            layer.hex().to_owned(),
            image.manifest.hex().to_owned(),
            "/manifests/v1".to_owned(),
        ]
    });

    let s = c
        .blob("app", &digest(&layer.digest), Some(layer.size()))
        .await
        .expect("blob starts");
    let r = read_all(s).await;
    assert!(
        matches!(r, Err(ClientError::DigestMismatch { .. })),
        "{r:?}"
    );
    let r = c.manifest("app", &image.manifest.digest).await;
    assert!(
        matches!(r, Err(ClientError::DigestMismatch { .. })),
        "{r:?}"
    );
    // By tag, `Docker-Content-Digest` is checked against the body.
    let r = c.manifest("app", "v1").await;
    assert!(
        matches!(r, Err(ClientError::DigestMismatch { .. })),
        "{r:?}"
    );

    // A size other than the descriptor's is refused before any byte.
    let r = c
        .blob("app", &digest(&layer.digest), Some(layer.size() + 1))
        .await;
    assert!(matches!(r, Err(ClientError::SizeMismatch { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_host_are_bounded_by_req_concurrent() {
    let registry = Registry::start();
    let pusher = registry.client();
    let images: Vec<common::Image> = (0..6).map(|i| small_image(&format!("conc-{i}"))).collect();
    for (i, image) in images.iter().enumerate() {
        image.push(&pusher, "app", &format!("v{i}"));
    }
    let proxy = FaultProxy::start(&registry.url());
    proxy.with(|f| f.blob_delay = Duration::from_millis(300));
    let mut o = plain(&proxy.url());
    o.concurrency = 2;
    let c = std::sync::Arc::new(client(o));
    let mut tasks = Vec::new();
    for image in &images {
        let (c, layer) = (c.clone(), image.layers[0].clone());
        tasks.push(tokio::spawn(async move {
            let s = c
                .blob("app", &digest(&layer.digest), Some(layer.size()))
                .await
                .expect("blob");
            assert_eq!(read_all(s).await.expect("body"), layer.bytes);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(proxy.with(|f| f.max_in_flight), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_timeout_bounds_a_request_and_req_per_sec_spaces_them() {
    let registry = Registry::start();
    let image = small_image("slow");
    image.push(&registry.client(), "app", "v1");
    let proxy = FaultProxy::start(&registry.url());
    proxy.with(|f| f.blob_delay = Duration::from_secs(5));
    let mut o = plain(&proxy.url());
    o.timeout = Duration::from_millis(500);
    let c = client(o);
    let layer = &image.layers[0];
    let start = Instant::now();
    let r = c
        .blob("app", &digest(&layer.digest), Some(layer.size()))
        .await;
    assert!(matches!(r, Err(ClientError::Transport { .. })), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "syncTimeout not applied"
    );

    // Two requests a second: the fifth starts two seconds after the first.
    let mut o = plain(&proxy.url());
    o.requests_per_second = Some(2.0);
    let c = client(o);
    let start = Instant::now();
    for _ in 0..5 {
        c.manifest("app", "v1").await.expect("manifest");
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "reqPerSec not applied"
    );
}

//! Periodic sync (`extensions.sync`) of the real binary from real
//! upstreams: another instance of our registry (content rules and tag
//! filters as in zot's `config-sync.json`, a multi-arch index, a signature
//! following its subject, skip by digest on the next run, `onlySigned` and
//! legacy cosign tags), Debian's `docker-registry` behind a proxy that
//! corrupts one repository's blob (that repository fails and stores
//! nothing wrong, the others sync, and the next run heals it), an upstream
//! failing at start (retried with back-off), a token-protected upstream
//! read with `credentialsFile`, and literal prefixes synced without the
//! catalog. On demand: `e2e_sync_on_demand.rs`; conversion and platforms:
//! `e2e_sync_formats.rs`.

mod auth_common;
mod common;
mod sync_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Config, Registry};
use sync_common::mirror::{mirror, set, tags, wait_run};
use sync_common::{Distribution, FaultProxy, small_image};

#[test]
fn content_rules_tag_filters_referrers_and_skip_by_digest() {
    let upstream = Registry::start();
    let up = upstream.client();
    let image = small_image("rules");
    for t in ["4.1.0", "4.2.0", "3.0.0", "4.x-latest", "v4.0.0-rc1"] {
        image.push(&up, "repo1/repo", t);
    }
    image.push(&up, "repo2/repo", "v1");
    let (sig, sig_blobs) = sync_common::referrer(
        &image.manifest,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "signature",
    );
    sync_common::push_referrer(&up, "repo2/repo", &sig, &sig_blobs);
    let index = common::fixtures::multi_platform_index("multi");
    for child in &index.images {
        child.push(&up, "repo3/multi", &child.manifest.digest);
    }
    up.put_manifest(
        "repo3/multi",
        "v1",
        &index.index.media_type,
        &index.index.bytes,
    )
    .expect_status(201, "index");
    for t in ["1.0", "1.0-amd64", "1.0-arm64"] {
        image.push(&up, "repo4/app", t);
    }
    image.push(&up, "other/x", "v1");

    let down = mirror(json!([{
        "urls": [upstream.url()],
        "pollInterval": "2s",
        "tlsVerify": false,
        "content": [
            { "prefix": "/repo1/repo", "tags": { "regex": "4.*", "semver": true } },
            { "prefix": "/repo2/repo", "destination": "/repo", "stripPrefix": true },
            { "prefix": "/repo3/**" },
            { "prefix": "/repo4/**", "tags": { "excludeRegex": ".*-(amd64|arm64)$" } }
        ]
    }]));
    let first = wait_run(&down, 1);
    assert_eq!(first["repositories"], 4, "{first}");
    assert_eq!(first["failed"], 0, "{first}");

    assert_eq!(
        tags(&down, "repo1/repo"),
        set(&["4.1.0", "4.2.0", "v4.0.0-rc1"])
    );
    assert_eq!(tags(&down, "repo"), set(&["v1"]));
    assert_eq!(tags(&down, "repo3/multi"), set(&["v1"]));
    assert_eq!(tags(&down, "repo4/app"), set(&["1.0"]));
    assert!(tags(&down, "other/x").is_empty());
    down.client()
        .get("/v2/repo2/repo/tags/list")
        .expect_status(404, "the upstream name is not used with stripPrefix");

    // Content is the upstream's, byte for byte (digests kept).
    let client = down.client();
    let m = client.get_manifest("repo3/multi", "v1");
    m.expect_status(200, "index");
    assert_eq!(m.body, index.index.bytes);
    for child in &index.images {
        client
            .get_manifest("repo3/multi", &child.manifest.digest)
            .expect_status(200, "child manifest");
        for blob in child.blobs() {
            let b = client.get(&format!("/v2/repo3/multi/blobs/{}", blob.digest));
            b.expect_status(200, "child blob");
            assert_eq!(b.body, blob.bytes);
        }
    }
    // The signature followed its subject.
    let r = client.get(&format!("/v2/repo/referrers/{}", image.manifest.digest));
    r.expect_status(200, "referrers");
    let listed: Vec<String> = r.json()["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, std::slice::from_ref(&sig.digest));

    // The next run finds everything present by digest and copies nothing.
    let second = wait_run(&down, 2);
    assert_eq!(second["copied"], 0, "{second}");
    assert_eq!(second["present"], first["copied"], "{second}");
    assert_eq!(second["blobs"], 0, "{second}");

    // A tag moved upstream is synced on the next run.
    let moved = small_image("moved");
    moved.push(&up, "repo4/app", "1.0");
    let start = Instant::now();
    while client.get_manifest("repo4/app", "1.0").body != moved.manifest.bytes {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moved tag not synced"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_corrupted_blob_fails_its_repository_only_and_stores_nothing_wrong() {
    let upstream = Distribution::start();
    let up = common::Client::new(&upstream.url());
    let good = small_image("good");
    let bad = small_image("bad");
    good.push(&up, "good/app", "v1");
    bad.push(&up, "bad/app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    let bad_layer = bad.layers[0].clone();
    proxy.with(|f| f.corrupt = vec![bad_layer.hex().to_owned()]);

    let down = mirror(json!([{
        "urls": [proxy.url()],
        "pollInterval": "2s",
        "maxRetries": 1,
        "retryDelay": "10ms",
        "content": [{ "prefix": "**" }]
    }]));
    let first = wait_run(&down, 1);
    assert_eq!(first["repositories"], 2, "{first}");
    assert_eq!(first["failed"], 1, "{first}");
    let client = down.client();
    assert_eq!(
        client.get_manifest("good/app", "v1").body,
        good.manifest.bytes
    );
    let r = client.get_manifest("bad/app", "v1");
    assert_eq!(r.status, 404, "{r}");
    let b = client.head(&format!("/v2/bad/app/blobs/{}", bad_layer.digest));
    assert_eq!(b.status, 404, "the corrupted layer must not be stored: {b}");
    assert!(
        down.logs().contains("bad/app"),
        "the failed repository is named in the log"
    );

    // The upstream heals: the next run copies it.
    proxy.with(|f| f.corrupt.clear());
    let start = Instant::now();
    while client.get_manifest("bad/app", "v1").status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not healed:\n{}",
            down.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let b = client.get(&format!("/v2/bad/app/blobs/{}", bad_layer.digest));
    assert_eq!(b.body, bad_layer.bytes);
}

#[test]
fn an_upstream_failing_at_start_is_retried_with_back_off() {
    let upstream = Registry::start();
    small_image("late").push(&upstream.client(), "late/app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    // The first catalog requests fail (no retries configured).
    proxy.with(|f| f.answers = vec![(503, None); 2]);
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "pollInterval": "1h",
        "maxRetries": 0,
        "retryDelay": "10ms",
        "content": [{ "prefix": "**" }]
    }]));
    let run = wait_run(&down, 1);
    assert_eq!(run["copied"], 1, "{run}");
    assert!(down.logs().contains("sync: run failed"), "{}", down.logs());
    assert_eq!(down.client().get_manifest("late/app", "v1").status, 200);

    // The status endpoint tells the same story.
    let r = down.client().get("/v2/_zot/ext/sync");
    r.expect_status(200, "sync status");
    let s = &r.json()["registries"][0];
    assert_eq!(s["urls"][0], proxy.url().as_str(), "{s}");
    assert_eq!(s["pollIntervalSeconds"], 3600, "{s}");
    assert_eq!(s["onDemand"], false, "{s}");
    assert!(
        s["runs"].as_u64().is_some_and(|n| n >= 2),
        "a failed run, then one that worked: {s}"
    );
    assert_eq!(s["lastRun"]["copied"], 1, "{s}");
    assert_eq!(s["lastRun"]["error"], Value::Null, "{s}");
    let end = s["lastRun"]["end"].as_u64().expect("end");
    assert!(
        s["nextRun"].as_u64().is_some_and(|n| n >= end + 3599),
        "{s}"
    );
    // Without sync, no such route.
    assert_eq!(upstream.client().get("/v2/_zot/ext/sync").status, 404);
}

#[test]
fn credentials_file_reaches_a_token_protected_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    auth_common::write_htpasswd(&htpasswd, &[("mirror", "mirror-secret")]);
    let image = small_image("token");
    let mut upstream = Registry::start();
    image.push(&upstream.client(), "private/app", "v1");
    upstream.kill9();
    let path = upstream.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    config["http"]["auth"] = json!({ "htpasswd": { "path": htpasswd } });
    config["http"]["accessControl"] = json!({ "repositories": {
        "**": { "anonymousPolicy": [], "policies": [{ "users": ["mirror"], "actions": ["read"] }] }
    }});
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write");
    upstream.restart();
    let creds = sync_common::write(
        dir.path(),
        "credentials.json",
        &json!({ upstream.addr(): { "username": "mirror", "password": "mirror-secret" } })
            .to_string(),
    );
    let down = Registry::start_with(Config::default().with_extensions(json!({ "sync": {
        "credentialsFile": creds,
        "registries": [{ "urls": [upstream.url()], "pollInterval": "1h",
                         "content": [{ "prefix": "private/**", "destination": "/mirrored" }] }]
    }})));
    let run = wait_run(&down, 1);
    assert_eq!(run["copied"], 1, "{run}");
    assert_eq!(
        down.client()
            .get_manifest("mirrored/private/app", "v1")
            .body,
        image.manifest.bytes
    );
}

#[test]
fn literal_prefixes_are_synced_without_the_catalog() {
    let upstream = Registry::start();
    small_image("named").push(&upstream.client(), "library/alpine", "3.20");
    small_image("unnamed").push(&upstream.client(), "library/other", "1");
    let proxy = FaultProxy::start(&upstream.url());
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "pollInterval": "1h",
        "content": [{ "prefix": "/library/alpine", "destination": "/docker.io", "stripPrefix": false }]
    }]));
    let run = wait_run(&down, 1);
    assert_eq!(run["copied"], 1, "{run}");
    assert_eq!(tags(&down, "docker.io/library/alpine"), set(&["3.20"]));
    assert!(tags(&down, "docker.io/library/other").is_empty());
    let seen = proxy.with(|f| f.seen.clone());
    assert!(!seen.iter().any(|l| l.contains("_catalog")), "{seen:?}");
}

#[test]
fn only_signed_images_and_legacy_cosign_tags() {
    let upstream = Registry::start();
    let up = upstream.client();
    let signed = small_image("signed");
    let legacy = small_image("legacy-signed");
    let unsigned = small_image("unsigned");
    signed.push(&up, "apps/signed", "v1");
    legacy.push(&up, "apps/legacy", "v1");
    unsigned.push(&up, "apps/unsigned", "v1");
    // A notation signature as a referrer.
    let (sig, blobs) = sync_common::referrer(
        &signed.manifest,
        "application/vnd.cncf.notary.signature",
        "n",
    );
    sync_common::push_referrer(&up, "apps/signed", &sig, &blobs);
    // A legacy cosign signature: a tag `sha256-<hex>.sig`.
    let cosign = small_image("cosign-payload");
    let legacy_tag = format!("sha256-{}.sig", legacy.manifest.hex());
    cosign.push(&up, "apps/legacy", &legacy_tag);

    let down = mirror(json!([{
        "urls": [upstream.url()],
        "pollInterval": "1h",
        "onlySigned": true,
        "content": [{ "prefix": "apps/**" }]
    }]));
    let run = wait_run(&down, 1);
    assert_eq!(run["copied"], 2, "{run}");
    assert_eq!(run["skipped"], 1, "{run}");
    assert_eq!(tags(&down, "apps/signed"), set(&["v1"]));
    assert_eq!(tags(&down, "apps/legacy"), set(&["v1", &legacy_tag]));
    assert!(tags(&down, "apps/unsigned").is_empty());
    let r = down.client().get(&format!(
        "/v2/apps/signed/referrers/{}",
        signed.manifest.digest
    ));
    assert_eq!(r.json()["manifests"][0]["digest"], sig.digest.as_str());
}

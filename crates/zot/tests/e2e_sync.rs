//! Periodic sync (`extensions.sync`) of the real binary from real
//! upstreams: another instance of our registry (content rules and tag
//! filters as in zot's `config-sync.json`, a multi-arch index, a signature
//! following its subject, skip by digest on the next run), Debian's
//! `docker-registry` behind a proxy that corrupts one repository's blob
//! (that repository fails and stores nothing wrong, the others sync, and
//! the next run heals it), an upstream failing at start (retried with
//! back-off), and a token-protected upstream read with `credentialsFile`.

mod auth_common;
mod common;
mod sync_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Config, Registry};
use sync_common::{Distribution, FaultProxy, small_image};

/// A registry syncing from `registries`.
fn mirror(registries: Value) -> Registry {
    Registry::start_with(
        Config::default().with_extensions(json!({ "sync": { "registries": registries } })),
    )
}

/// The `sync: run finished` log lines so far, as JSON.
fn runs(registry: &Registry) -> Vec<Value> {
    registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "sync: run finished")
        .collect()
}

/// Waits for the `n`th finished run and returns it.
fn wait_run(registry: &Registry, n: usize) -> Value {
    let start = Instant::now();
    loop {
        let r = runs(registry);
        if r.len() >= n {
            return r[n - 1].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no run #{n} of sync; log:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tags(registry: &Registry, repo: &str) -> BTreeSet<String> {
    let r = registry.client().get(&format!("/v2/{repo}/tags/list"));
    if r.status == 404 {
        return BTreeSet::new();
    }
    r.expect_status(200, "tags");
    r.json()["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

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
fn on_demand_fetches_coalesces_checks_and_falls_back_to_local_content() {
    let upstream = Registry::start();
    let up = upstream.client();
    let image = small_image("on-demand");
    image.push(&up, "library/alpine", "3.20");
    let (sig, sig_blobs) = sync_common::referrer(
        &image.manifest,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "od-signature",
    );
    sync_common::push_referrer(&up, "library/alpine", &sig, &sig_blobs);
    let proxy = FaultProxy::start(&upstream.url());
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "onDemand": true,
        "maxRetries": 0,
        "retryDelay": "10ms",
        "content": [{ "prefix": "**", "destination": "/docker.io" }]
    }]));
    let client = down.client();
    let local = "docker.io/library/alpine";

    // A tag is fetched on first request, with its blobs; HEAD works too.
    let m = client.get_manifest(local, "3.20");
    m.expect_status(200, "on-demand manifest");
    assert_eq!(m.body, image.manifest.bytes);
    for blob in image.blobs() {
        assert_eq!(
            client
                .get(&format!("/v2/{local}/blobs/{}", blob.digest))
                .body,
            blob.bytes
        );
    }
    client
        .head(&format!("/v2/{local}/manifests/3.20"))
        .expect_status(200, "HEAD");
    // Names no upstream has, or that no rule maps, are 404.
    assert_eq!(client.get_manifest(local, "nope").status, 404);
    assert_eq!(client.get_manifest("ghcr.io/x", "v1").status, 404);
    // Referrers come with a referrers request.
    let r = client.get(&format!("/v2/{local}/referrers/{}", image.manifest.digest));
    r.expect_status(200, "referrers");
    assert_eq!(r.json()["manifests"][0]["digest"], sig.digest.as_str());

    // Concurrent requests of a new tag: one upstream fetch.
    let second = small_image("on-demand-2");
    second.push(&up, "library/alpine", "3.21");
    proxy.with(|f| f.blob_delay = Duration::from_millis(500));
    let fetches = || {
        proxy.with(|f| {
            f.seen
                .iter()
                .filter(|l| l.starts_with("GET /v2/library/alpine/manifests/3.21 "))
                .count()
        })
    };
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = down.client();
            std::thread::spawn(move || c.get_manifest("docker.io/library/alpine", "3.21").status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), 200);
    }
    assert_eq!(fetches(), 1, "identical requests are coalesced");
    proxy.with(|f| f.blob_delay = Duration::ZERO);

    // An upstream that fails: what is here is served, the rest is 404,
    // promptly.
    proxy.with(|f| f.answers = vec![(503, None); 50]);
    let start = Instant::now();
    assert_eq!(
        client.get_manifest(local, "3.20").body,
        image.manifest.bytes
    );
    assert_eq!(client.get_manifest(local, "4.0").status, 404);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn manifest_check_interval_spares_upstream_requests() {
    let upstream = Registry::start();
    small_image("checked").push(&upstream.client(), "app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "onDemand": true,
        "manifestCheckInterval": "1h"
    }]));
    let client = down.client();
    client.get_manifest("app", "v1").expect_status(200, "first");
    let asked = || {
        proxy.with(|f| {
            f.seen
                .iter()
                .filter(|l| l.contains("/manifests/v1"))
                .count()
        })
    };
    let after_first = asked();
    assert_eq!(after_first, 1);
    for _ in 0..3 {
        client.get_manifest("app", "v1").expect_status(200, "again");
    }
    assert_eq!(asked(), after_first, "checked within manifestCheckInterval");
}

#[test]
fn skopeo_pulls_a_multi_arch_image_through_the_on_demand_mirror() {
    let upstream = Distribution::start();
    let up = common::Client::new(&upstream.url());
    let index = common::fixtures::multi_platform_index("skopeo-od");
    for child in &index.images {
        child.push(&up, "tools/multi", &child.manifest.digest);
    }
    up.put_manifest(
        "tools/multi",
        "1.0",
        &index.index.media_type,
        &index.index.bytes,
    )
    .expect_status(201, "index");
    let down = mirror(json!([{ "urls": [upstream.url()], "onDemand": true }]));
    let work = down.work_dir();
    let dest = work.join("pulled");
    common::run(
        common::skopeo()
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg(down.docker_ref("tools/multi:1.0"))
            .arg(format!("oci:{}:1.0", dest.display())),
    );
    let layout = common::OciLayout::open(&dest);
    let idx: Value =
        serde_json::from_slice(&std::fs::read(layout.dir.join("index.json")).expect("index.json"))
            .expect("json");
    assert_eq!(idx["manifests"][0]["digest"], index.index.digest.as_str());
    for child in &index.images {
        for blob in child.blobs() {
            let path = layout.dir.join("blobs/sha256").join(blob.hex());
            assert_eq!(std::fs::read(&path).expect("blob pulled"), blob.bytes);
        }
    }
    // The mirror now holds the image itself.
    assert_eq!(
        down.client().get_manifest("tools/multi", "1.0").body,
        index.index.bytes
    );
}

/// A Docker manifest list of two Docker images, pushed to `repo:tag`.
fn push_docker_list(
    client: &common::Client,
    repo: &str,
    tag: &str,
) -> (common::Blob, Vec<common::Image>) {
    let platforms = [("linux", "amd64"), ("linux", "arm64")];
    let images: Vec<common::Image> = platforms
        .iter()
        .map(|p| common::fixtures::multi_layer_image_for("docker-list", *p, true))
        .collect();
    let mut manifests = Vec::new();
    for (image, (os, arch)) in images.iter().zip(platforms) {
        image.push(client, repo, &image.manifest.digest);
        let mut d = image.manifest.descriptor();
        d["platform"] = json!({ "os": os, "architecture": arch });
        manifests.push(d);
    }
    let list_type = "application/vnd.docker.distribution.manifest.list.v2+json";
    let list = common::Blob::json(
        list_type,
        &json!({ "schemaVersion": 2, "mediaType": list_type, "manifests": manifests }),
    );
    client
        .put_manifest(repo, tag, list_type, &list.bytes)
        .expect_status(201, "Docker list");
    (list, images)
}

#[test]
fn docker_images_are_converted_to_oci_unless_digests_are_preserved() {
    let upstream = Distribution::start();
    let up = common::Client::new(&upstream.url());
    let (list, images) = push_docker_list(&up, "dock/multi", "1.0");
    let single = common::fixtures::multi_layer_image_for("docker-single", ("linux", "amd64"), true);
    single.push(&up, "dock/single", "1.0");

    // Converted (no http.compat needed).
    let down = mirror(json!([{
        "urls": [upstream.url()], "pollInterval": "2s", "content": [{ "prefix": "dock/**" }]
    }]));
    let first = wait_run(&down, 1);
    assert_eq!(first["copied"], 2, "{first}");
    let client = down.client();
    let m = client.get_manifest("dock/single", "1.0");
    m.expect_status(200, "converted image");
    let v = m.json();
    assert_eq!(v["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        v["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(v["config"]["digest"], single.config.digest.as_str());
    assert_eq!(
        v["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let idx = client.get_manifest("dock/multi", "1.0");
    idx.expect_status(200, "converted list");
    let idx = idx.json();
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_ne!(
        common::sha256_digest(&serde_json::to_vec(&idx).expect("json")),
        list.digest
    );
    for (child, image) in idx["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .zip(&images)
    {
        assert_eq!(
            child["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let digest = child["digest"].as_str().expect("digest");
        let c = client.get_manifest("dock/multi", digest);
        c.expect_status(200, "converted child");
        assert_eq!(common::sha256_digest(&c.body), digest);
        for blob in image.blobs() {
            assert_eq!(
                client
                    .get(&format!("/v2/dock/multi/blobs/{}", blob.digest))
                    .body,
                blob.bytes
            );
        }
    }
    // The predicted digests match what is stored: nothing is copied again.
    let second = wait_run(&down, 2);
    assert_eq!(second["copied"], 0, "{second}");
    assert_eq!(second["present"], 2, "{second}");

    // preserveDigest (with http.compat): stored as they are.
    let kept = Registry::start_with(
        Config::default()
            .with_compat(&["docker2s2"])
            .with_extensions(json!({ "sync": { "registries": [{
                "urls": [upstream.url()], "pollInterval": "1h", "preserveDigest": true,
                "content": [{ "prefix": "dock/**" }]
            }]}})),
    );
    wait_run(&kept, 1);
    assert_eq!(
        kept.client().get_manifest("dock/multi", "1.0").body,
        list.bytes
    );
    assert_eq!(
        kept.client().get_manifest("dock/single", "1.0").body,
        single.manifest.bytes
    );
}

#[test]
fn platforms_sync_only_the_listed_children_of_an_index() {
    let upstream = Registry::start();
    let up = upstream.client();
    let index = common::fixtures::multi_platform_index("platforms");
    for repo in ["multi/arm", "other/amd"] {
        for child in &index.images {
            child.push(&up, repo, &child.manifest.digest);
        }
        up.put_manifest(repo, "1.0", &index.index.media_type, &index.index.bytes)
            .expect_status(201, "index");
    }
    let down = mirror(json!([{
        "urls": [upstream.url()],
        "pollInterval": "2s",
        "platforms": ["linux/arm64"],
        "content": [
            { "prefix": "multi/**" },
            { "prefix": "other/**", "platforms": ["linux/amd64"] }
        ]
    }]));
    let first = wait_run(&down, 1);
    assert_eq!(first["copied"], 2, "{first}");
    let client = down.client();
    // index.images are [amd64, arm64].
    for (repo, keep, drop) in [("multi/arm", 1, 0), ("other/amd", 0, 1)] {
        let m = client.get_manifest(repo, "1.0");
        m.expect_status(200, "filtered index");
        let v = m.json();
        let listed: Vec<&str> = v["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .filter_map(|d| d["digest"].as_str())
            .collect();
        assert_eq!(
            listed,
            [index.images[keep].manifest.digest.as_str()],
            "{repo}"
        );
        for blob in index.images[keep].blobs() {
            assert_eq!(
                client
                    .get(&format!("/v2/{repo}/blobs/{}", blob.digest))
                    .body,
                blob.bytes
            );
        }
        let left_out = &index.images[drop];
        assert_eq!(
            client.get_manifest(repo, &left_out.manifest.digest).status,
            404,
            "{repo}"
        );
        assert_eq!(
            client
                .head(&format!("/v2/{repo}/blobs/{}", left_out.layers[0].digest))
                .status,
            404,
            "{repo}"
        );
    }
    // The filtered index's digest is predicted: nothing is copied again.
    let second = wait_run(&down, 2);
    assert_eq!(second["copied"], 0, "{second}");
    assert_eq!(second["present"], 2, "{second}");
}

/// `curl` of a URL: (status, body).
fn curl(url: &str) -> (String, Vec<u8>) {
    let out = common::run(common::tool("curl").args([
        "-s",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        "-w",
        "\n%{http_code}",
        url,
    ]))
    .stdout;
    let split = out.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    (
        String::from_utf8_lossy(&out[split + 1..]).into_owned(),
        out[..split].to_vec(),
    )
}

#[test]
fn containerd_ns_selects_the_upstream() {
    let a = Registry::start();
    let b = Registry::start();
    let from_a = small_image("ns-a");
    let from_b = small_image("ns-b");
    from_a.push(&a.client(), "app", "1");
    from_b.push(&b.client(), "app", "1");
    from_b.push(&b.client(), "app", "2");
    let down = mirror(json!([
        { "urls": [a.url()], "onDemand": true },
        { "urls": [b.url()], "onDemand": true }
    ]));
    let base = down.url();
    let (status, body) = curl(&format!("{base}/v2/app/manifests/1?ns={}", b.addr()));
    assert_eq!(status, "200");
    assert_eq!(
        body, from_b.manifest.bytes,
        "?ns= chose the second upstream"
    );
    let (status, body) = curl(&format!("{base}/v2/app/manifests/1?ns={}", a.addr()));
    assert_eq!(status, "200");
    assert_eq!(body, from_a.manifest.bytes);
    // Only the named registry is asked.
    let (status, _) = curl(&format!("{base}/v2/app/manifests/2?ns={}", a.addr()));
    assert_eq!(status, "404");
    let (status, body) = curl(&format!("{base}/v2/app/manifests/2"));
    assert_eq!(status, "200");
    assert_eq!(body, from_b.manifest.bytes);
}

#[test]
fn a_connection_dropped_mid_blob_stores_nothing_and_is_retried() {
    let upstream = Registry::start();
    let image = common::fixtures::multi_layer_image("dropped");
    image.push(&upstream.client(), "big/app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    let layer = image.layers[0].clone();
    proxy.with(|f| f.truncate = vec![layer.hex().to_owned()]);
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "pollInterval": "2s",
        "maxRetries": 1,
        "retryDelay": "10ms",
        "content": [{ "prefix": "**" }]
    }]));
    let first = wait_run(&down, 1);
    assert_eq!(first["failed"], 1, "{first}");
    let client = down.client();
    assert_eq!(client.get_manifest("big/app", "v1").status, 404);
    assert_eq!(
        client
            .head(&format!("/v2/big/app/blobs/{}", layer.digest))
            .status,
        404
    );
    proxy.with(|f| f.truncate.clear());
    let start = Instant::now();
    while client.get_manifest("big/app", "v1").status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not retried:\n{}",
            down.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        client
            .get(&format!("/v2/big/app/blobs/{}", layer.digest))
            .body,
        layer.bytes
    );
}

#[test]
fn a_tag_moved_on_a_slow_upstream_is_answered_before_its_blobs_arrive() {
    let upstream = Registry::start();
    let old = small_image("slow-old");
    old.push(&upstream.client(), "app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "onDemand": true,
        "responseHeaderTimeout": "2s"
    }]));
    let client = down.client();
    assert_eq!(client.get_manifest("app", "v1").body, old.manifest.bytes);

    // The tag moves upstream to an image whose blobs come slowly (each
    // within the 2 s, all together well past it).
    let new = common::fixtures::multi_layer_image("slow-new");
    new.push(&upstream.client(), "app", "v1");
    proxy.with(|f| f.blob_delay = Duration::from_millis(1500));
    let start = Instant::now();
    let r = client.get_manifest("app", "v1");
    let waited = start.elapsed();
    // The new manifest is answered as soon as it is fetched (its blobs
    // are pulled through), not after the slow copy.
    assert_eq!(r.body, new.manifest.bytes, "the tag as it is upstream");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    // The copy went on: the new image is stored.
    let start = Instant::now();
    while down.logs().matches("sync: image fetched on demand").count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", down.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn podman_pulls_through_the_on_demand_mirror() {
    let upstream = Registry::start();
    let index = common::fixtures::multi_platform_index("podman-od");
    for child in &index.images {
        child.push(&upstream.client(), "apps/web", &child.manifest.digest);
    }
    upstream
        .client()
        .put_manifest(
            "apps/web",
            "2.0",
            &index.index.media_type,
            &index.index.bytes,
        )
        .expect_status(201, "index");
    let down = mirror(json!([{
        "urls": [upstream.url()],
        "onDemand": true,
        "content": [{ "prefix": "apps/**", "destination": "/mirror" }]
    }]));
    let podman = common::podman::Podman::new();
    let reference = format!("{}/mirror/apps/web:2.0", down.addr());
    common::run(
        podman
            .cmd()
            .args(["pull", "--tls-verify=false"])
            .arg(&reference),
    );
    assert_eq!(podman.image_digest(&reference), index.index.digest);
    assert_eq!(
        down.client().get_manifest("mirror/apps/web", "2.0").body,
        index.index.bytes
    );
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

#[test]
fn a_failed_on_demand_fetch_is_retried_in_the_background() {
    let upstream = Registry::start();
    let image = small_image("background");
    image.push(&upstream.client(), "app", "v1");
    let proxy = FaultProxy::start(&upstream.url());
    let layer = image.layers[0].clone();
    proxy.with(|f| f.truncate = vec![layer.hex().to_owned()]);
    let down = mirror(json!([{
        "urls": [proxy.url()],
        "onDemand": true,
        "maxRetries": 5,
        "retryDelay": "500ms"
    }]));
    let client = down.client();
    // The manifest is answered while the image is copied; the layer's
    // body is cut off, so nothing is stored.
    assert_eq!(client.get_manifest("app", "v1").body, image.manifest.bytes);
    let start = Instant::now();
    while !down.logs().contains("sync: on-demand fetch failed") {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", down.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(tags(&down, "app").is_empty());
    proxy.with(|f| f.truncate.clear());
    // No further request for it: the background retry brings it (the tags
    // list never triggers a fetch).
    let start = Instant::now();
    while tags(&down, "app").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", down.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        client.get(&format!("/v2/app/blobs/{}", layer.digest)).body,
        layer.bytes
    );
}

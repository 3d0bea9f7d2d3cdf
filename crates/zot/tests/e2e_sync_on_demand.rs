//! On-demand sync (`onDemand`) of the real binary: fetches coalesced and
//! falling back to local content, `manifestCheckInterval`, skopeo and
//! podman pulling through the mirror, containerd's `?ns=`, a connection
//! dropped mid-blob, a tag moved on a slow upstream, and a failed fetch
//! retried in the background.

mod common;
mod sync_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::Registry;
use sync_common::mirror::{mirror, tags, wait_run};
use sync_common::{Distribution, FaultProxy, small_image};

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

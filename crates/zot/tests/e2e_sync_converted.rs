//! Referrers of Docker images converted to OCI by sync (issue 10, point
//! 4): upstream they name the Docker digest, which is not stored here, so
//! they are re-pointed at the converted digest (periodic runs and on
//! demand), and a referrer of a referrer follows the re-pointed one.

mod common;
mod sync_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Config, Registry};

/// The referrers listed here for `digest`, polled until some appear.
fn referrers(down: &Registry, repo: &str, digest: &str) -> Vec<Value> {
    let client = down.client();
    let start = Instant::now();
    loop {
        let r = client.get(&format!("/v2/{repo}/referrers/{digest}"));
        r.expect_status(200, "referrers");
        let list = r.json()["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !list.is_empty() {
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no referrers of {digest}; log:\n{}",
            down.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks that `repo:v1` here is the converted image and that its
/// signature and the signature's attestation are re-pointed.
fn check_repointed(down: &Registry, repo: &str, docker_digest: &str, on_demand: bool) {
    let client = down.client();
    let m = client.get_manifest(repo, "v1");
    m.expect_status(200, "converted image");
    assert_eq!(
        m.json()["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let local = common::sha256_digest(&m.body);
    assert_ne!(local, docker_digest);
    let listed = referrers(down, repo, &local);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["artifactType"],
        "application/vnd.dev.cosign.artifact.sig.v1+json"
    );
    let sig_digest = listed[0]["digest"].as_str().expect("digest").to_owned();
    let sig = client.get_manifest(repo, &sig_digest);
    sig.expect_status(200, "re-pointed signature");
    assert_eq!(common::sha256_digest(&sig.body), sig_digest);
    let subject = &sig.json()["subject"];
    assert_eq!(subject["digest"], local.as_str());
    assert_eq!(subject["size"], m.body.len());
    assert_eq!(
        subject["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // Nothing names the Docker digest here (on demand, asking for it
    // would fetch its referrers as they are upstream).
    if !on_demand {
        let old = client.get(&format!("/v2/{repo}/referrers/{docker_digest}"));
        assert_eq!(old.json()["manifests"], json!([]));
    }
    // The attestation of the signature follows the re-pointed signature.
    let nested = referrers(down, repo, &sig_digest);
    assert_eq!(nested.len(), 1, "{nested:?}");
    let att = client.get_manifest(repo, nested[0]["digest"].as_str().expect("digest"));
    assert_eq!(att.json()["subject"]["digest"], sig_digest.as_str());
}

#[test]
fn referrers_of_converted_images_are_repointed() {
    let upstream = Registry::start_with(Config::default().with_compat(&["docker2s2"]));
    let up = upstream.client();
    let image = common::fixtures::multi_layer_image_for("converted-ref", ("linux", "amd64"), true);
    for repo in ["periodic/app", "demand/app"] {
        image.push(&up, repo, "v1");
        let (sig, sig_blobs) = sync_common::referrer(
            &image.manifest,
            "application/vnd.dev.cosign.artifact.sig.v1+json",
            "converted-signature",
        );
        sync_common::push_referrer(&up, repo, &sig, &sig_blobs);
        let (att, att_blobs) =
            sync_common::referrer(&sig, "application/vnd.in-toto+json", "attestation");
        sync_common::push_referrer(&up, repo, &att, &att_blobs);
    }

    let down = Registry::start_with(Config::default().with_extensions(json!({ "sync": { "registries": [
        { "urls": [upstream.url()], "pollInterval": "1h", "content": [{ "prefix": "periodic/**" }] },
        { "urls": [upstream.url()], "onDemand": true, "content": [{ "prefix": "demand/**" }] }
    ]}})));
    // Periodic: after the first run.
    let start = Instant::now();
    while !down.logs().contains("sync: run finished") {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", down.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    check_repointed(&down, "periodic/app", &image.manifest.digest, false);
    // On demand: the referrers come with the converted image.
    check_repointed(&down, "demand/app", &image.manifest.digest, true);
}

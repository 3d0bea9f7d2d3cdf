//! skopeo against the real binary: push OCI images and a multi-platform
//! index, pull them back byte for byte, inspect, list tags, and read the
//! registry's storage directly as an OCI image layout.

mod common;

use common::fixtures::{self, OCI_INDEX, OCI_MANIFEST, blob_map};
use common::tools::{skopeo_copy, skopeo_inspect, skopeo_raw_manifest, umoci};
use common::{OciLayout, Registry, run, run_stdout, skopeo};

#[test]
fn skopeo_round_trips_a_multi_layer_image() {
    let registry = Registry::start();
    let work = registry.work_dir();
    let repo = "e2e/skopeo/multi-layer";
    let image = fixtures::multi_layer_image("skopeo-multi-layer");
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&image, "1.0");

    // Push twice under two tags: the second push finds every blob present.
    for tag in ["1.0", "latest"] {
        let pushed = skopeo_copy(
            &["--preserve-digests"],
            &src.reference("1.0"),
            &registry.docker_ref(&format!("{repo}:{tag}")),
            &work,
        );
        assert_eq!(
            pushed, image.manifest.digest,
            "digest skopeo reports for the push of {tag}"
        );
    }

    // The manifest comes back byte for byte, by tag and by digest.
    let client = registry.client();
    for reference in ["1.0", "latest", image.manifest.digest.as_str()] {
        let got = client.get_manifest(repo, reference);
        got.expect_status(200, &format!("GET manifest {repo}:{reference}"));
        assert_eq!(
            got.body, image.manifest.bytes,
            "manifest bytes of {repo}:{reference}"
        );
        assert_eq!(
            got.header("content-type"),
            Some(OCI_MANIFEST),
            "Content-Type of {reference}"
        );
        assert_eq!(
            got.header("docker-content-digest"),
            Some(image.manifest.digest.as_str()),
            "Docker-Content-Digest of {reference}"
        );
    }
    assert_eq!(
        skopeo_raw_manifest(&registry.docker_ref(&format!("{repo}:1.0"))),
        image.manifest.bytes
    );

    // skopeo inspect sees the image as built.
    let inspect = skopeo_inspect(&registry.docker_ref(&format!("{repo}:latest")));
    assert_eq!(
        inspect["Digest"],
        image.manifest.digest.as_str(),
        "inspect: {inspect}"
    );
    assert_eq!(inspect["Architecture"], "amd64", "inspect: {inspect}");
    assert_eq!(inspect["Os"], "linux", "inspect: {inspect}");
    let layers: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(
        inspect["Layers"],
        serde_json::json!(layers),
        "inspect: {inspect}"
    );
    let config = run(skopeo()
        .args(["inspect", "--raw", "--config", "--tls-verify=false"])
        .arg(registry.docker_ref(&format!("{repo}:1.0"))))
    .stdout;
    assert_eq!(
        config, image.config.bytes,
        "config blob through skopeo inspect --config --raw"
    );

    // list-tags
    let tags = run_stdout(
        skopeo()
            .args(["list-tags", "--tls-verify=false"])
            .arg(registry.docker_ref(repo)),
    );
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("list-tags prints JSON");
    let mut tags: Vec<String> =
        serde_json::from_value(tags["Tags"].clone()).expect("Tags is a list of strings");
    tags.sort();
    assert_eq!(tags, ["1.0", "latest"]);

    // Registry to registry (skopeo mounts the blobs across repositories).
    let copied = skopeo_copy(
        &["--preserve-digests"],
        &registry.docker_ref(&format!("{repo}:1.0")),
        &registry.docker_ref("e2e/skopeo/copied:1.0"),
        &work,
    );
    assert_eq!(copied, image.manifest.digest);
    for blob in image.blobs() {
        let got = client.get(&format!("/v2/e2e/skopeo/copied/blobs/{}", blob.digest));
        got.expect_status(200, &format!("blob {} in the copy", blob.digest));
        assert!(
            got.body == blob.bytes,
            "blob {} differs in the copy",
            blob.digest
        );
    }

    // Pull back into a fresh layout: every blob and the manifest identical.
    let back = work.join("back");
    let pulled = skopeo_copy(
        &["--preserve-digests"],
        &registry.docker_ref(&format!("{repo}:1.0")),
        &format!("oci:{}:1.0", back.display()),
        &work,
    );
    assert_eq!(pulled, image.manifest.digest);
    let back = OciLayout::open(&back);
    assert_eq!(
        back.blobs(),
        blob_map([&image]),
        "blobs pulled back differ from the ones pushed"
    );
    assert_eq!(
        back.tagged("1.0").expect("tag 1.0 in pulled layout")["digest"],
        image.manifest.digest.as_str()
    );

    // The registry's own storage is an OCI layout that skopeo and umoci read.
    let on_disk = registry.root().join(repo);
    let inspect = skopeo_inspect(&format!("oci:{}:1.0", on_disk.display()));
    assert_eq!(
        inspect["Digest"],
        image.manifest.digest.as_str(),
        "skopeo inspect of the registry's disk: {inspect}"
    );
    assert_eq!(
        skopeo_raw_manifest(&format!("oci:{}:latest", on_disk.display())),
        image.manifest.bytes
    );
    let stored = OciLayout::open(&on_disk).blobs();
    for (digest, bytes) in blob_map([&image]) {
        assert_eq!(
            stored.get(&digest),
            Some(&bytes),
            "{digest} in {}/blobs/sha256",
            on_disk.display()
        );
    }
    let stat = run_stdout(
        umoci()
            .arg("stat")
            .arg("--image")
            .arg(format!("{}:1.0", on_disk.display())),
    );
    for layer in &image.layers {
        assert!(
            stat.contains(&layer.digest),
            "umoci stat lists {}: {stat}",
            layer.digest
        );
    }
}

#[test]
fn skopeo_copy_all_round_trips_a_multi_platform_index() {
    let registry = Registry::start();
    let work = registry.work_dir();
    let repo = "e2e/skopeo/multi-platform";
    let index = fixtures::multi_platform_index("skopeo-multi-platform");
    let src = OciLayout::create(&work.join("src"));
    src.add_index(&index, "multi");

    let pushed = skopeo_copy(
        &["--all", "--preserve-digests"],
        &src.reference("multi"),
        &registry.docker_ref(&format!("{repo}:multi")),
        &work,
    );
    assert_eq!(
        pushed, index.index.digest,
        "digest skopeo reports for the index push"
    );

    let client = registry.client();
    let got = client.get_manifest(repo, "multi");
    got.expect_status(200, "GET index by tag");
    assert_eq!(got.body, index.index.bytes, "index bytes");
    assert_eq!(
        got.header("content-type"),
        Some(OCI_INDEX),
        "index Content-Type"
    );
    for image in &index.images {
        let got = client.get_manifest(repo, &image.manifest.digest);
        got.expect_status(200, "GET platform manifest by digest");
        assert_eq!(got.body, image.manifest.bytes);
        for blob in image.blobs() {
            let got = client.get(&format!("/v2/{repo}/blobs/{}", blob.digest));
            got.expect_status(200, &format!("GET blob {}", blob.digest));
            assert!(got.body == blob.bytes, "blob {} bytes differ", blob.digest);
        }
    }

    // skopeo resolves the index per platform.
    let reference = registry.docker_ref(&format!("{repo}:multi"));
    assert_eq!(skopeo_raw_manifest(&reference), index.index.bytes);
    for (arch, image) in ["amd64", "arm64"].iter().zip(&index.images) {
        let out = run_stdout(
            skopeo()
                .args([
                    "--override-os",
                    "linux",
                    "--override-arch",
                    arch,
                    "inspect",
                    "--tls-verify=false",
                ])
                .arg(&reference),
        );
        let inspect: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        // `Digest` is the index's; the rest describes the chosen platform.
        assert_eq!(
            inspect["Digest"],
            index.index.digest.as_str(),
            "{arch}: {inspect}"
        );
        let layers: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(
            inspect["Layers"],
            serde_json::json!(layers),
            "{arch}: {inspect}"
        );
        assert_eq!(inspect["Architecture"], *arch, "{arch}: {inspect}");
    }

    // Back out with --all: the index, both manifests and all blobs identical.
    let back = work.join("back");
    let pulled = skopeo_copy(
        &["--all", "--preserve-digests"],
        &reference,
        &format!("oci:{}:multi", back.display()),
        &work,
    );
    assert_eq!(pulled, index.index.digest);
    let mut expected = blob_map(&index.images);
    expected.insert(index.index.digest.clone(), index.index.bytes.clone());
    assert_eq!(
        OciLayout::open(&back).blobs(),
        expected,
        "blobs pulled back differ from the ones pushed"
    );

    // And straight off the registry's disk.
    let on_disk = registry.root().join(repo);
    assert_eq!(
        skopeo_raw_manifest(&format!("oci:{}:multi", on_disk.display())),
        index.index.bytes
    );
    let tagged = OciLayout::open(&on_disk)
        .tagged("multi")
        .expect("tag `multi` in the registry's index.json");
    assert_eq!(tagged["digest"], index.index.digest.as_str());
    assert_eq!(tagged["mediaType"], OCI_INDEX);
}

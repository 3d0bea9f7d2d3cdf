//! Docker schema2 manifests: accepted and served byte for byte when
//! `http.compat` contains `docker2s2`, refused with 400 MANIFEST_INVALID when
//! it does not (and then skopeo falls back to converting to OCI).

mod common;

use common::fixtures::{self, DOCKER_MANIFEST, OCI_MANIFEST, write_docker_dir};

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
use common::tools::{skopeo_copy, skopeo_raw_manifest};
use common::{Config, OciLayout, Registry, run_fails, skopeo};

#[test]
fn docker_schema2_round_trips_with_compat_on() {
    let registry = Registry::start_with(Config::default().with_compat(&["docker2s2"]));
    let work = registry.work_dir();
    let client = registry.client();

    // A schema2 image written by hand in skopeo's dir: format.
    let image = fixtures::multi_layer_image_for("docker-compat", ("linux", "amd64"), true);
    let src = work.join("v2s2");
    write_docker_dir(&src, &image);
    let repo = "e2e/docker/hand";
    let pushed = skopeo_copy(
        &["--preserve-digests"],
        &format!("dir:{}", src.display()),
        &registry.docker_ref(&format!("{repo}:1.0")),
        &work,
    );
    assert_eq!(pushed, image.manifest.digest);

    let got = client.get_manifest(repo, "1.0");
    got.expect_status(200, "GET schema2 manifest");
    assert_eq!(got.header("content-type"), Some(DOCKER_MANIFEST), "{got}");
    assert_eq!(
        got.header("docker-content-digest"),
        Some(image.manifest.digest.as_str()),
        "{got}"
    );
    assert_eq!(got.body, image.manifest.bytes, "schema2 manifest bytes");
    let head = client.request(
        "HEAD",
        &format!("/v2/{repo}/manifests/1.0"),
        &[("accept", DOCKER_MANIFEST)],
        None,
    );
    head.expect_status(200, "HEAD schema2 manifest");
    assert_eq!(
        head.header("content-length"),
        Some(image.manifest.bytes.len().to_string().as_str()),
        "{head}"
    );

    // Back out to dir: with everything identical.
    let back = work.join("back");
    skopeo_copy(
        &["--preserve-digests"],
        &registry.docker_ref(&format!("{repo}:1.0")),
        &format!("dir:{}", back.display()),
        &work,
    );
    assert_eq!(
        std::fs::read(back.join("manifest.json")).expect("manifest.json"),
        image.manifest.bytes
    );
    for blob in image.blobs() {
        let bytes = std::fs::read(back.join(blob.hex()))
            .unwrap_or_else(|e| panic!("{} pulled back: {e}", blob.digest));
        assert!(
            bytes == blob.bytes,
            "{} differs after the round trip",
            blob.digest
        );
    }

    // skopeo converting an OCI image to schema2 on the way in.
    let oci = OciLayout::create(&work.join("oci"));
    let oci_image = fixtures::multi_layer_image("docker-compat-converted");
    oci.add_image(&oci_image, "1.0");
    let converted = skopeo_copy(
        &["--format", "v2s2"],
        &oci.reference("1.0"),
        &registry.docker_ref("e2e/docker/converted:1.0"),
        &work,
    );
    let raw = skopeo_raw_manifest(&registry.docker_ref("e2e/docker/converted:1.0"));
    assert_eq!(fixtures::sha256_digest(&raw), converted);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("manifest JSON");
    assert_eq!(manifest["mediaType"], DOCKER_MANIFEST, "{manifest}");

    // A multi-platform index converted to a schema2 manifest list.
    oci.add_index(
        &fixtures::multi_platform_index("docker-compat-list"),
        "multi",
    );
    let list_digest = skopeo_copy(
        &["--all", "--format", "v2s2"],
        &oci.reference("multi"),
        &registry.docker_ref("e2e/docker/list:multi"),
        &work,
    );
    let got = client.get_manifest("e2e/docker/list", "multi");
    got.expect_status(200, "GET manifest list");
    assert_eq!(got.header("content-type"), Some(DOCKER_LIST), "{got}");
    assert_eq!(fixtures::sha256_digest(&got.body), list_digest);
    let list = got.json();
    assert_eq!(
        list["manifests"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
    for entry in list["manifests"].as_array().into_iter().flatten() {
        assert_eq!(entry["mediaType"], DOCKER_MANIFEST, "{entry}");
        let digest = entry["digest"].as_str().expect("digest");
        client
            .get_manifest("e2e/docker/list", digest)
            .expect_status(200, &format!("GET list entry {digest}"));
    }
    let back_list = work.join("back-list");
    let pulled = skopeo_copy(
        &["--all", "--preserve-digests"],
        &registry.docker_ref("e2e/docker/list:multi"),
        &format!("dir:{}", back_list.display()),
        &work,
    );
    assert_eq!(pulled, list_digest);

    // On disk the tag records the schema2 media type.
    let tagged = OciLayout::open(&registry.root().join(repo))
        .tagged("1.0")
        .expect("tag 1.0 on disk");
    assert_eq!(tagged["mediaType"], DOCKER_MANIFEST, "{tagged}");
    assert_eq!(tagged["digest"], image.manifest.digest.as_str(), "{tagged}");
}

#[test]
fn docker_schema2_is_refused_without_compat() {
    let registry = Registry::start();
    let work = registry.work_dir();
    let client = registry.client();
    let repo = "e2e/docker/refused";
    let image = fixtures::multi_layer_image_for("docker-refused", ("linux", "amd64"), true);

    // Plain HTTP: the blobs are fine, the schema2 manifest is not.
    for blob in image.blobs() {
        client.push_blob(repo, &blob.bytes);
    }
    client
        .put_manifest(repo, "1.0", DOCKER_MANIFEST, &image.manifest.bytes)
        .expect_oci_error(
            400,
            "MANIFEST_INVALID",
            "PUT schema2 manifest without compat",
        );
    client.get_manifest(repo, "1.0").expect_oci_error(
        404,
        "MANIFEST_UNKNOWN",
        "the refused manifest was not stored",
    );
    let list = fixtures::Blob::json(
        DOCKER_LIST,
        &serde_json::json!({ "schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [] }),
    );
    client
        .put_manifest(repo, "list", DOCKER_LIST, &list.bytes)
        .expect_oci_error(
            400,
            "MANIFEST_INVALID",
            "PUT schema2 manifest list without compat",
        );

    // skopeo forced to schema2 fails and says why.
    let src = work.join("v2s2");
    write_docker_dir(&src, &image);
    let out = run_fails(
        skopeo()
            .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
            .arg(format!("dir:{}", src.display()))
            .arg(registry.docker_ref(&format!("{repo}:forced"))),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("manifest invalid"),
        "skopeo should report `manifest invalid`, said:\n{stderr}"
    );

    // Unforced, skopeo treats MANIFEST_INVALID as "type rejected" and
    // converts to OCI, which is accepted.
    skopeo_copy(
        &[],
        &format!("dir:{}", src.display()),
        &registry.docker_ref(&format!("{repo}:converted")),
        &work,
    );
    let got = client.get_manifest(repo, "converted");
    got.expect_status(200, "GET the OCI manifest skopeo fell back to");
    assert_eq!(got.header("content-type"), Some(OCI_MANIFEST), "{got}");
    let tags = client.get(&format!("/v2/{repo}/tags/list"));
    tags.expect_status(200, "tags/list");
    assert_eq!(
        tags.json()["tags"],
        serde_json::json!(["converted"]),
        "{tags}"
    );
}

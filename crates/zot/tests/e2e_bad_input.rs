//! Hostile and malformed requests against the real binary. Request targets
//! are written byte for byte over a socket (no client-side normalisation of
//! `..` or `%2e`), and every refusal must be an OCI error: the right status,
//! `{"errors":[{"code":..,"message":..}]}` as JSON, and nothing written
//! outside the storage root.

mod common;

use common::fixtures::{self, OCI_MANIFEST, OciLayout};
use common::http::raw_request;
use common::tools::umoci;
use common::{Registry, Response, run_stdout};

fn get(registry: &Registry, target: &str) -> Response {
    raw_request(registry.addr(), "GET", target, &[], b"")
}

/// Names outside the repository-name grammar, as they appear in a path.
fn invalid_names() -> Vec<(&'static str, String)> {
    vec![
        ("dot-dot segment", "../x".to_owned()),
        ("dot-dot deeper", "a/../../../etc".to_owned()),
        ("encoded dot-dot", "%2e%2e/x".to_owned()),
        ("encoded dot-dot upper", "a/%2E%2E/%2E%2E/b".to_owned()),
        ("encoded slash", "a%2F..%2F..%2Fb".to_owned()),
        ("upper case", "Library/App".to_owned()),
        ("upper case single", "UPPER".to_owned()),
        ("over-long component", "a".repeat(300)),
        ("over-long path", vec!["abcdefghij"; 30].join("/")),
        ("leading separator", "-lead/x".to_owned()),
        ("double dot separator", "a..b".to_owned()),
        ("empty component", "a//b".to_owned()),
    ]
}

#[test]
fn invalid_repository_names_are_name_invalid() {
    let registry = Registry::start();
    for (what, name) in invalid_names() {
        for target in [
            format!("/v2/{name}/tags/list"),
            format!("/v2/{name}/manifests/latest"),
            format!("/v2/{name}/blobs/sha256:{}", "0".repeat(64)),
        ] {
            get(&registry, &target).expect_oci_error(
                400,
                "NAME_INVALID",
                &format!("{what}: GET {target}"),
            );
        }
        let target = format!("/v2/{name}/blobs/uploads/");
        raw_request(registry.addr(), "POST", &target, &[], b"").expect_oci_error(
            400,
            "NAME_INVALID",
            &format!("{what}: POST {target}"),
        );
    }
}

#[test]
fn traversal_writes_nothing_outside_the_root() {
    let registry = Registry::start();
    let root = registry.root().to_owned();
    let outside = root.parent().expect("root has a parent").to_owned();
    let before: Vec<_> = std::fs::read_dir(&outside)
        .expect("read parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();

    let image = fixtures::multi_layer_image("bad-input-traversal");
    let config = &image.config.bytes;
    let digest = fixtures::sha256_digest(config);
    for prefix in [
        "/v2/../escape",
        "/v2/%2e%2e/escape",
        "/v2/a/%2e%2e/%2e%2e/escape",
        "/v2/..%2fescape",
    ] {
        let upload = format!("{prefix}/blobs/uploads/?digest={digest}");
        raw_request(
            registry.addr(),
            "POST",
            &upload,
            &[("content-type", "application/octet-stream")],
            config,
        )
        .expect_oci_error(400, "NAME_INVALID", &format!("monolithic POST {upload}"));
        let manifest = format!("{prefix}/manifests/latest");
        raw_request(
            registry.addr(),
            "PUT",
            &manifest,
            &[("content-type", OCI_MANIFEST)],
            &image.manifest.bytes,
        )
        .expect_oci_error(400, "NAME_INVALID", &format!("PUT {manifest}"));
    }
    let after: Vec<_> = std::fs::read_dir(&outside)
        .expect("read parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        before,
        after,
        "entries appeared next to the storage root {}",
        root.display()
    );
    assert!(!outside.join("escape").exists());

    // The registry is still serving normally afterwards.
    let client = registry.client();
    image.push(&client, "e2e/bad/ok", "1");
    client
        .get_manifest("e2e/bad/ok", "1")
        .expect_status(200, "GET after hostile requests");
}

#[test]
fn malformed_content_is_refused_with_oci_errors() {
    let registry = Registry::start();
    let client = registry.client();
    let repo = "e2e/bad/content";
    let image = fixtures::multi_layer_image("bad-input-content");

    // A blob whose bytes do not match the digest it is committed under.
    let start = client.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    start.expect_status(202, "POST upload");
    let location = start
        .header("location")
        .expect("Location on 202")
        .to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let wrong = fixtures::sha256_digest(b"something else");
    client
        .request(
            "PUT",
            &format!("{location}{sep}digest={wrong}"),
            &[("content-type", "application/octet-stream")],
            Some(b"these bytes"),
        )
        .expect_oci_error(
            400,
            "DIGEST_INVALID",
            "PUT upload with a mismatching digest",
        );
    client
        .head(&format!("/v2/{repo}/blobs/{wrong}"))
        .expect_status(404, "the mismatching blob was not stored");

    // Not JSON, and JSON that is not a manifest.
    client
        .put_manifest(repo, "junk", OCI_MANIFEST, b"{not json")
        .expect_oci_error(400, "MANIFEST_INVALID", "PUT a manifest that is not JSON");
    client
        .put_manifest(
            repo,
            "junk",
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"layers":"nope"}"#,
        )
        .expect_oci_error(400, "MANIFEST_INVALID", "PUT a manifest of the wrong shape");

    // A manifest whose blobs were never uploaded.
    client
        .put_manifest(repo, "missing", OCI_MANIFEST, &image.manifest.bytes)
        .expect_oci_error(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            "PUT a manifest with missing blobs",
        );

    // A manifest whose body does not match the digest in the URL.
    for blob in image.blobs() {
        client.push_blob(repo, &blob.bytes);
    }
    client
        .put_manifest(repo, &wrong, OCI_MANIFEST, &image.manifest.bytes)
        .expect_oci_error(400, "DIGEST_INVALID", "PUT a manifest under another digest");

    // Unknown things are 404s with the spec's codes.
    client
        .get_manifest(repo, "nope")
        .expect_oci_error(404, "MANIFEST_UNKNOWN", "unknown tag");
    client
        .get(&format!("/v2/{repo}/blobs/{wrong}"))
        .expect_oci_error(404, "BLOB_UNKNOWN", "unknown blob");
    client
        .get("/v2/e2e/bad/never-pushed/tags/list")
        .expect_oci_error(404, "NAME_UNKNOWN", "tags of an unknown repository");

    // Nothing above left a tag behind.
    let tags = client.get(&format!("/v2/{repo}/tags/list"));
    if tags.status == 200 {
        let listed = tags.json()["tags"].clone();
        assert!(
            listed.is_null() || listed.as_array().is_some_and(Vec::is_empty),
            "refused manifests left tags: {tags}"
        );
    } else {
        tags.expect_oci_error(404, "NAME_UNKNOWN", "tags after only refused manifests");
    }
}

/// Valid repository names can spell paths inside another repository's OCI
/// layout (`<repo>/blobs/sha256`, `<repo>/index.json`, ...). Such a push may
/// be refused (400 NAME_INVALID) or stored apart, but must never be a 5xx
/// and must never put anything inside the other repository's layout.
#[test]
fn names_overlapping_another_layout_are_refused_or_kept_apart() {
    let registry = Registry::start();
    let client = registry.client();
    let parent = "e2e/nest";
    let image = fixtures::multi_layer_image("bad-input-nest");
    image.push(&client, parent, "1");
    let hex = image.layers[0].hex().to_owned();

    let mut problems = Vec::new();
    for name in [
        format!("{parent}/blobs"),
        format!("{parent}/blobs/sha256"),
        format!("{parent}/index.json"),
        format!("{parent}/oci-layout"),
        format!("{parent}/blobs/sha256/{hex}"),
    ] {
        let start = client.request(
            "POST",
            &format!("/v2/{name}/blobs/uploads/"),
            &[],
            Some(b""),
        );
        match start.status {
            202 => {
                // Accepted: the whole push must work and be kept apart.
                for blob in image.blobs() {
                    if let Err(e) = client.try_push_blob(&name, &blob.bytes) {
                        problems.push(format!("push blob to {name}: {e}"));
                    }
                }
                let put = client.put_manifest(&name, "1", OCI_MANIFEST, &image.manifest.bytes);
                if put.status != 201 {
                    problems.push(format!("PUT manifest {name}:1 -> {put}"));
                }
            }
            400 => start.expect_oci_error(400, "NAME_INVALID", &format!("POST upload to {name}")),
            _ => problems.push(format!("POST /v2/{name}/blobs/uploads/ -> {start}")),
        }
    }
    assert!(
        problems.is_empty(),
        "pushes to names inside {parent}'s layout:\n{}",
        problems.join("\n---\n")
    );

    // The parent is still a clean OCI layout that serves its image.
    let layout_dir = registry.root().join(parent);
    let blobs_dir = layout_dir.join("blobs");
    let algorithms: Vec<String> = std::fs::read_dir(&blobs_dir)
        .expect("read blobs/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        algorithms,
        ["sha256"],
        "{} should hold only sha256/",
        blobs_dir.display()
    );
    OciLayout::open(&layout_dir).blobs();
    let tags = run_stdout(umoci().args(["ls", "--layout"]).arg(&layout_dir));
    assert_eq!(tags.trim(), "1", "umoci ls of {}", layout_dir.display());
    let got = client.get_manifest(parent, "1");
    got.expect_status(200, "the parent's manifest");
    assert_eq!(got.body, image.manifest.bytes);
}

//! Garbage collection in the real binary, driven by skopeo: with `gc` on,
//! `gcDelay` and `gcInterval` of one second, deleting one of two images
//! that share a layer removes the deleted image's own blobs from disk and
//! keeps the shared layer, the other image still pulls, and a repository
//! left empty disappears from the catalog.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fixtures::{self, Image};
use common::tools::skopeo_copy;
use common::{Config, OciLayout, Registry};
use serde_json::json;

/// How long GC may take to get round to it (it runs every second).
const GC_DEADLINE: Duration = Duration::from_secs(60);

fn gc_registry() -> Registry {
    Registry::start_with(
        Config::default()
            .with_gc(true)
            .with_storage("gcDelay", json!("1s"))
            .with_storage("gcInterval", json!("1s")),
    )
}

/// Two images sharing their first layer, each with a layer of its own.
fn images_sharing_a_layer() -> (Image, Image) {
    let shared = vec![("etc/shared.txt", b"the same in both images\n".to_vec())];
    let one = fixtures::image(
        ("linux", "amd64"),
        &[
            shared.clone(),
            vec![("opt/one.bin", fixtures::noise("gc-one", 64 * 1024))],
        ],
        false,
    );
    let two = fixtures::image(
        ("linux", "amd64"),
        &[
            shared,
            vec![("opt/two.bin", fixtures::noise("gc-two", 64 * 1024))],
        ],
        false,
    );
    assert_eq!(one.layers[0].digest, two.layers[0].digest, "shared layer");
    (one, two)
}

fn blob_path(root: &Path, repo: &str, digest: &str) -> std::path::PathBuf {
    root.join(repo)
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Polls `done` until it holds or the deadline passes.
fn wait_for(registry: &Registry, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < GC_DEADLINE,
            "{what}: not within {GC_DEADLINE:?}; output:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn delete_manifest(registry: &Registry, repo: &str, digest: &str) {
    registry
        .client()
        .request(
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            None,
        )
        .expect_status(202, &format!("DELETE {repo}@{digest}"));
}

#[test]
fn gc_removes_the_blobs_of_a_deleted_image_and_keeps_shared_ones() {
    let registry = gc_registry();
    let work = registry.work_dir();
    let root = registry.root().to_owned();
    let repo = "e2e/gc/app";
    let (one, two) = images_sharing_a_layer();
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&one, "one");
    src.add_image(&two, "two");
    for tag in ["one", "two"] {
        let pushed = skopeo_copy(
            &["--preserve-digests"],
            &src.reference(tag),
            &registry.docker_ref(&format!("{repo}:{tag}")),
            &work,
        );
        let want = if tag == "one" { &one } else { &two };
        assert_eq!(pushed, want.manifest.digest, "digest of {tag}");
    }
    for blob in one.blobs().into_iter().chain(two.blobs()) {
        assert!(blob_path(&root, repo, &blob.digest).is_file());
    }

    delete_manifest(&registry, repo, &one.manifest.digest);
    let gone = [&one.config, &one.layers[1]];
    wait_for(&registry, "the blobs of the deleted image removed", || {
        gone.iter()
            .all(|b| !blob_path(&root, repo, &b.digest).exists())
    });
    assert!(
        !blob_path(&root, repo, &one.manifest.digest).exists(),
        "the deleted manifest's file"
    );
    for blob in two.blobs() {
        assert!(
            blob_path(&root, repo, &blob.digest).is_file(),
            "{} of the other image (shared: {}) must stay",
            blob.digest,
            blob.digest == one.layers[0].digest
        );
    }

    // A few more GC rounds change nothing for the image still listed.
    std::thread::sleep(Duration::from_secs(3));
    let pulled = OciLayout::create(&work.join("pulled"));
    skopeo_copy(
        &[],
        &registry.docker_ref(&format!("{repo}:two")),
        &pulled.reference("two"),
        &work,
    );
    let blobs = pulled.blobs();
    for blob in two.blobs() {
        assert_eq!(
            blobs.get(&blob.digest),
            Some(&blob.bytes),
            "pulled {}",
            blob.digest
        );
    }
    registry
        .client()
        .get_manifest(repo, &one.manifest.digest)
        .expect_oci_error(404, "MANIFEST_UNKNOWN", "the deleted manifest");
}

#[test]
fn gc_removes_a_repository_left_empty_from_the_catalog() {
    let registry = gc_registry();
    let work = registry.work_dir();
    let (kept, solo) = ("e2e/gc/kept", "e2e/gc/solo");
    let (one, two) = images_sharing_a_layer();
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&one, "one");
    src.add_image(&two, "two");
    skopeo_copy(
        &["--preserve-digests"],
        &src.reference("one"),
        &registry.docker_ref(&format!("{kept}:one")),
        &work,
    );
    skopeo_copy(
        &["--preserve-digests"],
        &src.reference("two"),
        &registry.docker_ref(&format!("{solo}:two")),
        &work,
    );
    let catalog = || -> Vec<String> {
        let resp = registry.client().get("/v2/_catalog");
        resp.expect_status(200, "GET /v2/_catalog");
        serde_json::from_value(resp.json()["repositories"].clone()).expect("a list of names")
    };
    assert_eq!(catalog(), [kept, solo]);

    delete_manifest(&registry, solo, &two.manifest.digest);
    wait_for(&registry, "the empty repository leaves the catalog", || {
        catalog() == [kept]
    });
    assert!(!registry.root().join(solo).join("index.json").exists());
    assert!(!registry.root().join(solo).join("oci-layout").exists());
    registry
        .client()
        .get(&format!("/v2/{solo}/tags/list"))
        .expect_oci_error(404, "NAME_UNKNOWN", "tags of the removed repository");
    // The shared layer was a hard link: the other repository keeps it.
    assert!(blob_path(registry.root(), kept, &one.layers[0].digest).is_file());
    registry
        .client()
        .get_manifest(kept, "one")
        .expect_status(200, "the kept image");
}

//! `storage.subPaths` in the real binary, driven by skopeo: repositories
//! under `/infra` live in a root of their own with their own dedupe and GC
//! settings, the catalog lists both stores in order with paging, and GC
//! runs in the sub-path's store only.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fixtures::{self, Image};
use common::tools::skopeo_copy;
use common::{Config, OciLayout, Registry};
use serde_json::json;

fn blob_path(root: &Path, repo: &str, digest: &str) -> PathBuf {
    root.join(repo)
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn image(seed: &str) -> Image {
    fixtures::image(
        ("linux", "amd64"),
        &[
            vec![("etc/shared.txt", b"shared by every image\n".to_vec())],
            vec![("opt/own.bin", fixtures::noise(seed, 32 * 1024))],
        ],
        false,
    )
}

fn catalog_page(registry: &Registry, query: &str) -> (Vec<String>, Option<String>) {
    let resp = registry.client().get(&format!("/v2/_catalog{query}"));
    resp.expect_status(200, "GET /v2/_catalog");
    let names = serde_json::from_value(resp.json()["repositories"].clone()).expect("names");
    (names, resp.header("link").map(str::to_owned))
}

#[test]
fn sub_paths_route_repositories_to_their_own_store_and_settings() {
    let outer = tempfile::tempdir().expect("tempdir");
    let infra_root = outer.path().join("infra-root");
    // Default store: gc off. `/infra`: gc every second, dedupe on.
    let registry = Registry::start_with(Config::default().with_storage(
        "subPaths",
        json!({ "/infra": {
            "rootDirectory": infra_root,
            "dedupe": true,
            "gc": true,
            "gcDelay": "1s",
            "gcInterval": "1s",
        }}),
    ));
    let work = registry.work_dir();
    let root = registry.root().to_owned();
    let src = OciLayout::create(&work.join("src"));
    let pushes = [
        ("infra/app", image("app")),
        ("infra/tools", image("tools")),
        ("apps/web", image("web")),
        ("apps/old", image("old")),
        ("infra", image("bare")),
    ];
    for (i, (repo, image)) in pushes.iter().enumerate() {
        let tag = format!("t{i}");
        src.add_image(image, &tag);
        skopeo_copy(
            &["--preserve-digests"],
            &src.reference(&tag),
            &registry.docker_ref(&format!("{repo}:v1")),
            &work,
        );
    }
    // Each repository is a layout in the root of its store.
    for (repo, _) in &pushes {
        let in_infra = repo.starts_with("infra/");
        assert_eq!(
            infra_root.join(repo).join("index.json").is_file(),
            in_infra,
            "{repo}"
        );
        assert_eq!(
            root.join(repo).join("index.json").is_file(),
            !in_infra,
            "{repo}"
        );
    }
    // Dedupe inside the infra store: one inode for the shared layer.
    let shared = &pushes[0].1.layers[0].digest;
    let nlink = std::fs::metadata(blob_path(&infra_root, "infra/app", shared))
        .expect("shared layer")
        .nlink();
    assert_eq!(nlink, 2, "infra/app and infra/tools share the layer's file");

    // The catalog: both stores, in order, paged by two with Link.
    let mut all = Vec::new();
    let mut query = "?n=2".to_owned();
    loop {
        let (names, link) = catalog_page(&registry, &query);
        all.extend(names);
        let Some(link) = link else { break };
        let next = link
            .split(['<', '>'])
            .nth(1)
            .expect("Link: <...>; rel=\"next\"")
            .to_owned();
        query = next.trim_start_matches("/v2/_catalog").to_owned();
    }
    assert_eq!(
        all,
        ["apps/old", "apps/web", "infra", "infra/app", "infra/tools"]
    );

    // Delete one image in each store: the infra store collects its blobs,
    // the default store (gc off) keeps them.
    for (repo, image) in [&pushes[1], &pushes[3]] {
        registry
            .client()
            .request(
                "DELETE",
                &format!("/v2/{repo}/manifests/{}", image.manifest.digest),
                &[],
                None,
            )
            .expect_status(202, &format!("DELETE {repo}"));
    }
    let own = |i: usize| &pushes[i].1.layers[1].digest;
    let start = Instant::now();
    while blob_path(&infra_root, "infra/tools", own(1)).exists()
        || catalog_page(&registry, "")
            .0
            .contains(&"infra/tools".to_owned())
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "GC of the infra store did not remove infra/tools:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        blob_path(&root, "apps/old", own(3)).is_file(),
        "the default store has gc off: its blobs stay"
    );
    assert!(blob_path(&infra_root, "infra/app", shared).is_file());
    assert_eq!(
        catalog_page(&registry, "").0,
        ["apps/old", "apps/web", "infra", "infra/app"],
        "apps/old stays listed (gc off), infra/tools is gone"
    );

    // The images left pull whole from both stores.
    for (repo, image) in [&pushes[0], &pushes[2], &pushes[4]] {
        let dest = OciLayout::create(&work.join(format!("pulled-{}", repo.replace('/', "-"))));
        skopeo_copy(
            &[],
            &registry.docker_ref(&format!("{repo}:v1")),
            &dest.reference("v1"),
            &work,
        );
        let blobs = dest.blobs();
        for blob in image.blobs() {
            assert_eq!(
                blobs.get(&blob.digest),
                Some(&blob.bytes),
                "{repo}: {}",
                blob.digest
            );
        }
    }
}

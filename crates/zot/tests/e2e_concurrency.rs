//! Many clients at once against one repository and across repositories:
//! concurrent tag writes must all land in index.json exactly once, the same
//! blob uploaded concurrently must be stored once and intact, deduplicated
//! content must stay independent per repository, and tag listing must be
//! sorted and paginated (`n`, `last`, `Link`).

mod common;

use std::collections::BTreeSet;
use std::thread;

use common::Registry;
use common::fixtures::{self, Image, OCI_MANIFEST, OciLayout};
use common::tools::skopeo_raw_manifest;

const WRITERS: usize = 4;
const TAGS_PER_WRITER: usize = 8;

fn small_image(seed: &str, shared: &[u8]) -> Image {
    fixtures::image(
        ("linux", "amd64"),
        &[
            vec![("shared.bin", shared.to_vec())],
            vec![("own.txt", seed.as_bytes().to_vec())],
        ],
        false,
    )
}

#[test]
fn concurrent_pushes_to_one_repository_all_land() {
    let registry = Registry::start();
    let repo = "e2e/concurrency/tags";
    let shared = fixtures::noise("concurrency-shared", 512 * 1024);

    // Every writer uploads the same shared layer and its own images, and
    // re-points the tag `latest` at each image it pushes.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = registry.client();
            let shared = shared.clone();
            thread::spawn(move || {
                let mut pushed = Vec::new();
                for t in 0..TAGS_PER_WRITER {
                    let tag = format!("w{w}-t{t:02}");
                    let image = small_image(&tag, &shared);
                    image.push(&client, repo, &tag);
                    client
                        .put_manifest(repo, "latest", OCI_MANIFEST, &image.manifest.bytes)
                        .expect_status(201, "re-point latest");
                    pushed.push((tag, image));
                }
                pushed
            })
        })
        .collect();
    let mut pushed: Vec<(String, Image)> = Vec::new();
    for writer in writers {
        match writer.join() {
            Ok(images) => pushed.extend(images),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    let client = registry.client();
    for (tag, image) in &pushed {
        let got = client.get_manifest(repo, tag);
        got.expect_status(200, &format!("GET {tag}"));
        assert!(got.body == image.manifest.bytes, "manifest {tag} differs");
    }
    let latest = client.get_manifest(repo, "latest");
    latest.expect_status(200, "GET latest");
    assert!(
        pushed
            .iter()
            .any(|(_, image)| image.manifest.bytes == latest.body),
        "`latest` points at none of the pushed images"
    );

    // index.json: every tag exactly once, `latest` included.
    let layout = OciLayout::open(&registry.root().join(repo));
    let index = layout.index();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests array")
        .iter()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(
        names.len(),
        unique.len(),
        "a tag appears twice in index.json: {names:?}"
    );
    let mut expected: BTreeSet<String> = pushed.iter().map(|(t, _)| t.clone()).collect();
    expected.insert("latest".to_owned());
    assert_eq!(
        unique,
        expected.iter().map(String::as_str).collect(),
        "tags in index.json"
    );

    // The shared layer is stored once, intact (OciLayout::blobs checks hashes).
    let blobs = layout.blobs();
    let shared_digest = fixtures::sha256_digest(&pushed[0].1.layers[0].bytes);
    assert!(blobs.contains_key(&shared_digest), "shared layer on disk");
    assert_eq!(
        skopeo_raw_manifest(&format!("oci:{}:latest", layout.dir.display())),
        latest.body,
        "skopeo reads `latest` off the disk"
    );

    // tags/list: all tags, sorted lexically, and paginated.
    let listed = client.get(&format!("/v2/{repo}/tags/list"));
    listed.expect_status(200, "tags/list");
    let all: Vec<String> = serde_json::from_value(listed.json()["tags"].clone()).expect("tags");
    let sorted: Vec<String> = expected.iter().cloned().collect();
    assert_eq!(all, sorted, "tags/list is every tag in lexical order");
    let mut paged = Vec::new();
    let mut next = format!("/v2/{repo}/tags/list?n=5");
    for _ in 0..100 {
        let page = client.get(&next);
        page.expect_status(200, &format!("GET {next}"));
        let tags: Vec<String> =
            serde_json::from_value(page.json()["tags"].clone()).unwrap_or_default();
        assert!(tags.len() <= 5, "page larger than n=5: {page}");
        paged.extend(tags);
        match page.header("link") {
            Some(link) => next = link_target(link),
            None => break,
        }
    }
    assert_eq!(paged, sorted, "tags gathered by following Link headers");
    let after = client.get(&format!("/v2/{repo}/tags/list?n=3&last={}", sorted[1]));
    after.expect_status(200, "tags/list with last");
    assert_eq!(
        after.json()["tags"],
        serde_json::json!(sorted[2..5]),
        "{after}"
    );
}

/// The URL in `<URL>; rel="next"`.
fn link_target(link: &str) -> String {
    let start = link.find('<').map(|i| i + 1).unwrap_or(0);
    let end = link.find('>').unwrap_or(link.len());
    assert!(
        link.contains("rel=\"next\""),
        "Link header without rel=\"next\": {link}"
    );
    link[start..end].to_owned()
}

#[test]
fn deduplicated_content_stays_independent_per_repository() {
    let registry = Registry::start();
    let client = registry.client();
    let image = fixtures::multi_layer_image("dedupe");
    let repos = ["e2e/dedupe/one", "e2e/dedupe/two"];
    let handles: Vec<_> = repos
        .iter()
        .map(|repo| {
            let (client, image, repo) = (client.clone(), image.clone(), (*repo).to_owned());
            thread::spawn(move || image.push(&client, &repo, "1.0"))
        })
        .collect();
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }

    // A blob can be mounted from one repository into another.
    let layer = &image.layers[1];
    let mount = client.request(
        "POST",
        &format!(
            "/v2/e2e/dedupe/three/blobs/uploads/?mount={}&from={}",
            layer.digest, repos[0]
        ),
        &[],
        Some(b""),
    );
    mount.expect_status(201, "cross-repository mount of an existing blob");
    assert_eq!(
        mount.header("docker-content-digest"),
        Some(layer.digest.as_str()),
        "{mount}"
    );
    let got = client.get(&format!("/v2/e2e/dedupe/three/blobs/{}", layer.digest));
    got.expect_status(200, "GET the mounted blob");
    assert!(got.body == layer.bytes, "mounted blob differs");

    // Deleting the image from one repository leaves the other whole.
    let delete = client.request(
        "DELETE",
        &format!("/v2/{}/manifests/{}", repos[0], image.manifest.digest),
        &[],
        None,
    );
    delete.expect_status(202, "DELETE manifest by digest");
    client.get_manifest(repos[0], "1.0").expect_oci_error(
        404,
        "MANIFEST_UNKNOWN",
        "deleted manifest",
    );
    let got = client.get_manifest(repos[1], "1.0");
    got.expect_status(200, "the other repository's manifest after the delete");
    assert_eq!(got.body, image.manifest.bytes);
    for blob in image.blobs() {
        let got = client.get(&format!("/v2/{}/blobs/{}", repos[1], blob.digest));
        got.expect_status(
            200,
            &format!("blob {} in the other repository", blob.digest),
        );
        assert!(got.body == blob.bytes, "blob {} differs", blob.digest);
    }
    let stored = OciLayout::open(&registry.root().join(repos[1])).blobs();
    for blob in image.blobs() {
        assert_eq!(
            stored.get(&blob.digest),
            Some(&blob.bytes),
            "{} on disk in {}",
            blob.digest,
            repos[1]
        );
    }
}

//! What sync stores of an upstream's image: Docker images converted to
//! OCI (unless `preserveDigest`), and `platforms` keeping only the listed
//! children of an index.

mod common;
mod sync_common;

use serde_json::json;

use common::{Config, Registry};
use sync_common::Distribution;
use sync_common::mirror::{mirror, wait_run};

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

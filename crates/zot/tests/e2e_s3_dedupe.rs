//! Dedupe on S3 in the real binary (SeaweedFS started by the test), driven
//! by skopeo: one image pushed to two repositories is stored once in the
//! bucket (the second repository holds zero-byte placeholders) and pulls
//! byte for byte from both; deleting it from the repository holding the
//! content lets GC (every second) remove that repository, and the content
//! moves to the other one, which still pulls.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::fixtures;
use common::tools::skopeo_copy;
use common::{Config, OciLayout, Registry};
use serde_json::json;
use std::time::{Duration, Instant};
use zot_storage::Backend;

#[test]
fn an_image_in_two_repositories_is_stored_once_and_survives_gc_of_its_holder() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let driver = server.driver_json(&bucket);
    let registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", driver)
            // The metadata store stays under rootDirectory (zot would want
            // a cacheDriver for S3 with dedupe).
            .with_storage("remoteCache", serde_json::json!(false))
            .with_gc(true)
            .with_storage("gcDelay", json!("1s"))
            .with_storage("gcInterval", json!("1s")),
    );
    let work = registry.work_dir();
    let image = fixtures::image(
        ("linux", "amd64"),
        &[
            vec![("etc/motd", b"stored once\n".to_vec())],
            vec![("big.bin", fixtures::noise("e2e-s3-dedupe", 3 << 20))],
        ],
        false,
    );
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&image, "1");
    let (first, second) = ("dedupe/first", "dedupe/second");
    for repo in [first, second] {
        let pushed = skopeo_copy(
            &["--preserve-digests"],
            &src.reference("1"),
            &registry.docker_ref(&format!("{repo}:1")),
            &work,
        );
        assert_eq!(
            pushed, image.manifest.digest,
            "digest of the push to {repo}"
        );
    }

    let config = server.config(&bucket, "zot", 5 << 20);
    let raw = zot_storage::S3Backend::open(&config, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let size = |repo: &str, hex: &str| {
        rt.block_on(raw.size(&format!("{repo}/blobs/sha256/{hex}")))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Each layer and the config: content in the first, a placeholder in
    // the second.
    for blob in image.blobs() {
        assert_eq!(
            size(first, blob.hex()),
            Some(blob.size()),
            "{}",
            blob.digest
        );
        assert_eq!(size(second, blob.hex()), Some(0), "{}", blob.digest);
    }
    let pull = |repo: &str, dest: &str| {
        let dst = OciLayout::create(&work.join(dest));
        let pulled = skopeo_copy(
            &["--preserve-digests"],
            &registry.docker_ref(&format!("{repo}:1")),
            &dst.reference("1"),
            &work,
        );
        assert_eq!(
            pulled, image.manifest.digest,
            "digest of the pull from {repo}"
        );
        let blobs = dst.blobs();
        for blob in image.blobs() {
            assert!(
                blobs.get(&blob.digest) == Some(&blob.bytes),
                "{repo}: blob {} differs",
                blob.digest
            );
        }
    };
    pull(second, "pulled-second");

    // The holder's image goes; GC removes its blobs, then the repository.
    registry
        .client()
        .request(
            "DELETE",
            &format!("/v2/{first}/manifests/{}", image.manifest.digest),
            &[],
            None,
        )
        .expect_status(202, "DELETE of the first repository's image");
    let start = Instant::now();
    while image.blobs().iter().any(|b| size(first, b.hex()).is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "GC did not remove the first repository's blobs; output:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for blob in image.blobs() {
        assert_eq!(
            size(second, blob.hex()),
            Some(blob.size()),
            "moved {}",
            blob.digest
        );
    }
    pull(second, "pulled-after-gc");
}

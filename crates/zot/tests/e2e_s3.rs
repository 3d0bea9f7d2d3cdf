//! The real binary on S3 storage (`storage.storageDriver`, name `s3`) over
//! a SeaweedFS server started by the test: skopeo pushes an image (one
//! layer larger than a multipart part) and copies it back byte for byte;
//! the bucket holds an OCI image layout under `rootdirectory`; after a
//! restart with an empty metadata store the image is found again in the
//! bucket.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::fixtures::{self, OciLayout};
use common::registry::Config;
use common::tools::skopeo_copy;
use common::{Registry, run};
use zot_storage::Backend;

#[test]
fn skopeo_round_trips_through_s3_storage() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let driver = server.driver_json(&bucket);
    let mut registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", driver)
            // The metadata store stays under rootDirectory (zot would want
            // a cacheDriver for S3 with dedupe).
            .with_storage("remoteCache", serde_json::json!(false)),
    );
    let work = registry.work_dir();
    let repo = "e2e/s3/app";

    // Two layers, one of 12 MiB: more than two 5 MiB parts.
    let image = fixtures::image(
        ("linux", "amd64"),
        &[
            vec![("etc/motd", b"hello from S3\n".to_vec())],
            vec![("big.bin", fixtures::noise("e2e-s3-big", 12 << 20))],
        ],
        false,
    );
    let big = image
        .blobs()
        .into_iter()
        .max_by_key(|b| b.size())
        .cloned()
        .unwrap_or_else(|| panic!("no blobs"));
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&image, "1.0");
    let pushed = skopeo_copy(
        &["--preserve-digests"],
        &src.reference("1.0"),
        &registry.docker_ref(&format!("{repo}:1.0")),
        &work,
    );
    assert_eq!(pushed, image.manifest.digest);

    // Pulled back into a fresh layout: every blob byte for byte.
    let check_pull = |registry: &Registry, dest: &str| {
        let dst = OciLayout::create(&work.join(dest));
        let pulled = skopeo_copy(
            &["--preserve-digests"],
            &registry.docker_ref(&format!("{repo}:1.0")),
            &dst.reference("1.0"),
            &work,
        );
        assert_eq!(pulled, image.manifest.digest, "digest of the pull");
        for blob in image.blobs().into_iter().chain([&image.manifest]) {
            let got = std::fs::read(dst.dir.join("blobs/sha256").join(blob.hex()))
                .unwrap_or_else(|e| panic!("pulled blob {}: {e}", blob.hex()));
            assert!(got == blob.bytes, "blob {} differs", blob.hex());
        }
    };
    check_pull(&registry, "dst1");

    // The bucket holds the layout under the prefix, nothing on local disk.
    let config = server.config(&bucket, "zot", 5 << 20);
    let raw = zot_storage::S3Backend::open(&config, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let index = rt
        .block_on(raw.read(&format!("{repo}/index.json")))
        .unwrap_or_else(|e| panic!("index.json in the bucket: {e}"));
    let index = String::from_utf8_lossy(&index).into_owned();
    assert!(index.contains(&image.manifest.digest), "{index}");
    let big_key = format!("{repo}/blobs/sha256/{}", big.hex());
    let size = rt
        .block_on(raw.size(&big_key))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(size, Some(big.size()));
    assert!(
        !registry.root().join("e2e").exists(),
        "layouts were written to the local root"
    );

    // Restarted with the metadata store removed: rebuilt from the bucket.
    registry.terminate(std::time::Duration::from_secs(10));
    run(std::process::Command::new("rm")
        .arg("-rf")
        .arg(registry.root().join("_zot")));
    registry.restart();
    check_pull(&registry, "dst2");
    let tags = registry.client().get(&format!("/v2/{repo}/tags/list"));
    tags.expect_status(200, "tags after the restart");
    assert!(String::from_utf8_lossy(&tags.body).contains("1.0"));
}

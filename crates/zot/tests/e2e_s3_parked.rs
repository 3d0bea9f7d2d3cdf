//! Parked blobs in the real binary (SeaweedFS started by the test), driven
//! by skopeo, whose layer push is a chunked upload (POST, one streamed
//! PATCH, `PUT ?digest`): a layer of 20 MiB is acknowledged before its
//! copy to the blob key (`zot_storage` `parked.rs`), pulls byte for byte at
//! once, and the binary's mover then copies it to its key (logged), and
//! removes the upload and the marker after the grace period. Killed with
//! `kill -9` right after a push (its marker still there), the restarted
//! binary serves what was acknowledged and resumes the move.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::fixtures::{self, Image};
use common::tools::skopeo_copy;
use common::{Config, OciLayout, Registry};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use zot_storage::Backend;

const LAYER: usize = 20 << 20;

fn pull_and_compare(registry: &Registry, image: &Image, reference: &str, dest: &Path) {
    let dst = OciLayout::create(dest);
    let pulled = skopeo_copy(
        &["--preserve-digests"],
        &registry.docker_ref(reference),
        &dst.reference("1"),
        dest.parent().unwrap_or(dest),
    );
    assert_eq!(
        pulled, image.manifest.digest,
        "digest of the pull of {reference}"
    );
    let blobs = dst.blobs();
    for blob in image.blobs() {
        assert!(
            blobs.get(&blob.digest) == Some(&blob.bytes),
            "{reference}: blob {} differs",
            blob.digest
        );
    }
}

#[test]
fn a_large_layer_is_acknowledged_before_its_move_and_served_throughout() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let mut registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage("remoteCache", json!(false)),
    );
    let work = registry.work_dir();
    let config = server.config(&bucket, "zot", 5 << 20);
    let raw = zot_storage::S3Backend::open(&config, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let size = |key: &str| rt.block_on(raw.size(key)).unwrap_or_else(|e| panic!("{e}"));
    let markers = || {
        rt.block_on(raw.list(".parked"))
            .unwrap_or_else(|e| panic!("{e}"))
            .len()
    };

    let push = |name: &str, seed: &str| {
        let image = fixtures::image(
            ("linux", "amd64"),
            &[vec![("big.bin", fixtures::noise(seed, LAYER))]],
            false,
        );
        let src = OciLayout::create(&work.join(format!("src-{name}")));
        src.add_image(&image, "1");
        let pushed = skopeo_copy(
            &["--preserve-digests"],
            &src.reference("1"),
            &registry.docker_ref(&format!("{name}:1")),
            &work,
        );
        assert_eq!(
            pushed, image.manifest.digest,
            "digest of the push of {name}"
        );
        image
    };

    let image = push("parked/first", "e2e-s3-parked-1");
    let layer = image
        .blobs()
        .into_iter()
        .max_by_key(|b| b.size())
        .unwrap_or_else(|| panic!("no layer"));
    assert!(
        layer.size() >= LAYER as u64,
        "a layer of {} bytes",
        layer.size()
    );
    pull_and_compare(&registry, &image, "parked/first:1", &work.join("pulled-1"));

    // The mover copies it to its key (only a parked blob is moved so).
    let key = format!("parked/first/blobs/sha256/{}", layer.hex());
    let start = Instant::now();
    while size(&key) != Some(layer.size()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the layer never reached its key; output:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = registry.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("parked blob moved to its key") && l.contains(layer.hex())),
        "the layer was not parked; output:\n{logs}"
    );
    // Upload and marker go after the grace period.
    let no_marker_within = |registry: &Registry, secs: u64, what: &str| {
        let start = Instant::now();
        while markers() != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{what}; output:\n{}",
                registry.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    no_marker_within(&registry, 90, "the marker stayed");
    pull_and_compare(&registry, &image, "parked/first:1", &work.join("pulled-2"));

    // Killed right after an acknowledged push, well within the grace
    // period: its marker is left for the restarted binary, which serves
    // the blob and (once the marker is a minute old) finishes the move.
    let second = push("parked/second", "e2e-s3-parked-2");
    registry.kill9();
    assert_eq!(markers(), 1, "the killed binary's marker");
    registry.restart();
    pull_and_compare(
        &registry,
        &second,
        "parked/second:1",
        &work.join("pulled-3"),
    );
    no_marker_within(
        &registry,
        180,
        "the restarted binary did not finish the move",
    );
    let layer = second
        .blobs()
        .into_iter()
        .max_by_key(|b| b.size())
        .unwrap_or_else(|| panic!("no layer"));
    assert_eq!(
        size(&format!("parked/second/blobs/sha256/{}", layer.hex())),
        Some(layer.size())
    );
    pull_and_compare(
        &registry,
        &second,
        "parked/second:1",
        &work.join("pulled-4"),
    );
}

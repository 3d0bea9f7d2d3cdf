//! Blob bodies stream through the registry: uploading and downloading a
//! blob much larger than the registry's working set must not grow its peak
//! resident memory by anything like the blob's size.

mod common;

use common::fixtures;
use common::{Registry, sha256_digest};

const BLOB: usize = 40 * 1024 * 1024;
/// Allowed growth of the registry's peak RSS while moving BLOB bytes.
const SLACK_KIB: u64 = 20 * 1024;

#[test]
fn large_blobs_stream_in_and_out_in_bounded_memory() {
    let registry = Registry::start();
    let client = registry.client();
    let repo = "e2e/streaming/big";
    let blob = fixtures::noise("streaming", BLOB);
    let digest = sha256_digest(&blob);
    client.get("/v2/").expect_status(200, "warm up");
    let baseline = registry.peak_rss_kib();

    // Monolithic: one PUT with the whole body.
    client.push_blob(repo, &blob);
    let after_put = registry.peak_rss_kib();

    // Chunked: one PATCH with the whole body, then an empty PUT.
    let start = client.request(
        "POST",
        &format!("/v2/{repo}-chunked/blobs/uploads/"),
        &[],
        Some(b""),
    );
    start.expect_status(202, "POST upload");
    let location = start.header("location").expect("Location").to_owned();
    let patch = client.request(
        "PATCH",
        &location,
        &[("content-type", "application/octet-stream")],
        Some(&blob),
    );
    patch.expect_status(202, "PATCH the whole blob");
    assert_eq!(
        patch.header("range"),
        Some(format!("0-{}", BLOB - 1).as_str()),
        "{patch}"
    );
    let location = patch.header("location").expect("Location").to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    client
        .request(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &[],
            Some(b""),
        )
        .expect_status(201, "PUT closing the chunked upload");

    // Download, whole and by range.
    let got = client.get(&format!("/v2/{repo}/blobs/{digest}"));
    got.expect_status(200, "GET the whole blob");
    assert_eq!(
        got.header("content-length"),
        Some(BLOB.to_string().as_str())
    );
    assert!(
        sha256_digest(&got.body) == digest,
        "downloaded blob differs"
    );
    let tail = client.request(
        "GET",
        &format!("/v2/{repo}-chunked/blobs/{digest}"),
        &[("range", &format!("bytes={}-", BLOB - 1000))],
        None,
    );
    tail.expect_status(206, "ranged GET");
    assert!(
        tail.body == blob[BLOB - 1000..],
        "ranged GET returned other bytes"
    );
    let peak = registry.peak_rss_kib();

    assert!(
        after_put.saturating_sub(baseline) < SLACK_KIB && peak.saturating_sub(baseline) < SLACK_KIB,
        "registry peak RSS grew from {baseline} KiB to {after_put} KiB (monolithic PUT) and {peak} KiB \
         (chunked upload, downloads) while moving a {} MiB blob: bodies are being buffered",
        BLOB / (1024 * 1024)
    );
}

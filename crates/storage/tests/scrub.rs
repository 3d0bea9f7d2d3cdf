//! Scrub on disk: a layout that cannot be read in part (an unparsable
//! `index.json` or manifest, a blob folder that is a file) is a problem,
//! and what could still be checked is checked. (A flipped byte, a
//! truncated blob and a missing blob, on both drivers: `lifecycle_both.rs`.)

mod gc_common;

use gc_common::*;
use zot_oci::Digest;
use zot_storage::{Options, ScrubFault, ScrubReport, open_local};

fn found(report: &ScrubReport) -> Vec<(Option<String>, String, ScrubFault)> {
    report
        .problems
        .iter()
        .map(|p| (p.reference.clone(), p.item.to_string(), p.fault))
        .collect()
}

#[tokio::test]
async fn unparsable_index_is_a_problem_and_blob_results_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let a = repo("a");
    push_image(&reg, &a, "v1", &[b"flip-me"]).await;
    let blob = dir.path().join(format!(
        "a/blobs/sha256/{}",
        Digest::sha256_of(b"flip-me").hex()
    ));
    std::fs::write(&blob, b"flip-mE").unwrap();
    std::fs::write(dir.path().join("a/index.json"), b"{not json").unwrap();

    let report = reg.scrub_repo(&a).await;
    assert_eq!(report.blobs_checked, 3, "{report:?}");
    assert_eq!(
        found(&report),
        vec![
            (None, "index.json".into(), ScrubFault::Unreadable),
            (
                None,
                Digest::sha256_of(b"flip-me").to_string(),
                ScrubFault::Corrupt
            ),
        ]
    );
}

#[tokio::test]
async fn unparsable_or_unreadable_manifests_and_unlistable_folders_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let a = repo("a");
    push_image(&reg, &a, "good", &[b"layer"]).await;
    // A manifest whose blob hashes right but is not a manifest, and one
    // whose blob cannot be read (a symbolic link to itself: chmod does not
    // stop root), listed by hand in index.json (as another tool might have
    // written them).
    let junk = push_blob(&reg, &a, b"not a manifest").await;
    let unreadable = Digest::sha256_of(b"a link to itself");
    let link = dir
        .path()
        .join(format!("a/blobs/sha256/{}", unreadable.hex()));
    std::os::unix::fs::symlink(&link, &link).unwrap();
    let index_path = dir.path().join("a/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    for (digest, tag) in [(&junk, "junk"), (&unreadable, "link")] {
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest.to_string(),
                "size": 14,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    // A file where a blob folder is expected (chmod does not stop root).
    std::fs::write(dir.path().join("a/blobs/sha512"), b"").unwrap();

    let report = reg.scrub_repo(&a).await;
    assert_eq!(
        found(&report),
        vec![
            (None, "blobs/sha512".into(), ScrubFault::Unreadable),
            (
                Some("junk".into()),
                junk.to_string(),
                ScrubFault::NotManifest
            ),
            (
                Some("link".into()),
                unreadable.to_string(),
                ScrubFault::Unreadable
            ),
        ]
    );
    // The sha256 blobs were still hashed (the link counts) and the good
    // image still walked.
    assert_eq!(report.blobs_checked, 5, "{report:?}");
    assert_eq!(report.manifests_checked, 3, "{report:?}");
}

//! Scrub finds a flipped byte, a truncated blob and a missing blob, naming
//! repository, reference and blob; an intact repository has no problem. A
//! layout that cannot be read in part (an unparsable `index.json` or
//! manifest, a blob folder that is a file) is a problem too, and what could
//! still be checked is checked.

mod gc_common;

use gc_common::*;
use zot_oci::Digest;
use zot_storage::{Options, ScrubFault, ScrubItem, ScrubReport, open_local};

#[tokio::test]
async fn scrub_finds_flipped_truncated_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let a = repo("a");
    push_image(&reg, &a, "flip", &[b"flip-me"]).await;
    push_image(&reg, &a, "trunc", &[b"truncate-me"]).await;
    push_image(&reg, &a, "gone", &[b"remove-me"]).await;
    push_image(&reg, &repo("b"), "ok", &[b"fine"]).await;
    let file = |data: &[u8]| {
        dir.path()
            .join(format!("a/blobs/sha256/{}", Digest::sha256_of(data).hex()))
    };
    assert!(reg.scrub_repo(&a).await.problems.is_empty());

    let mut bytes = std::fs::read(file(b"flip-me")).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(file(b"flip-me"), bytes).unwrap();
    std::fs::write(file(b"truncate-me"), b"trunc").unwrap();
    std::fs::remove_file(file(b"remove-me")).unwrap();

    let report = reg.scrub_repo(&a).await;
    let found: Vec<(Option<&str>, Digest, ScrubFault)> = report
        .problems
        .iter()
        .map(|p| match &p.item {
            ScrubItem::Blob(d) => (p.reference.as_deref(), d.clone(), p.fault),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Some("flip"),
                Digest::sha256_of(b"flip-me"),
                ScrubFault::Corrupt
            ),
            (
                Some("gone"),
                Digest::sha256_of(b"remove-me"),
                ScrubFault::Missing
            ),
            (
                Some("trunc"),
                Digest::sha256_of(b"truncate-me"),
                ScrubFault::WrongSize
            ),
        ]
    );
    assert!(report.problems.iter().all(|p| p.repository == "a"));
    assert!(reg.scrub_repo(&repo("b")).await.problems.is_empty());
}

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

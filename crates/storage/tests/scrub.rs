//! Scrub finds a flipped byte, a truncated blob and a missing blob, naming
//! repository, reference and blob; an intact repository has no problem.

mod gc_common;

use gc_common::*;
use zot_oci::Digest;
use zot_storage::{Options, ScrubFault, open_local};

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
    assert!(reg.scrub_repo(&a).await.unwrap().problems.is_empty());

    let mut bytes = std::fs::read(file(b"flip-me")).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(file(b"flip-me"), bytes).unwrap();
    std::fs::write(file(b"truncate-me"), b"trunc").unwrap();
    std::fs::remove_file(file(b"remove-me")).unwrap();

    let report = reg.scrub_repo(&a).await.unwrap();
    let found: Vec<(Option<&str>, Digest, ScrubFault)> = report
        .problems
        .iter()
        .map(|p| (p.reference.as_deref(), p.blob.clone(), p.fault))
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
    assert!(
        reg.scrub_repo(&repo("b"))
            .await
            .unwrap()
            .problems
            .is_empty()
    );
}

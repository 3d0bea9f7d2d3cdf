//! Retention through GC on disk: repository globs, and dryRun (which only
//! logs). (Each keepTags rule, deleteUntagged and deleteReferrers run on
//! both drivers in `lifecycle_both.rs`.)
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::*;
use regex::Regex;
use zot_oci::RepoName;
use zot_storage::retention::KeepTags;
use zot_storage::{Change, GcOptions, Options, Registry, open_local};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Tags v1..v4 pushed 4, 3, 2, 1 hours ago; v2 pulled a minute ago.
async fn seeded() -> (tempfile::TempDir, Registry, RepoName) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let r = repo("apps/web");
    for (i, t) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        let d = push_image(&reg, &r, t, &[t.as_bytes()]).await;
        let pushed = now() - (4 - i as u64) * 3600;
        reg.metadata()
            .apply(&r, &[Change::Pushed(d, pushed)])
            .unwrap();
    }
    let v2 = reg.manifest_record(&r, &tag("v2")).unwrap().digest;
    reg.metadata()
        .record_pulls(&[(r.clone(), v2, now() - 60)])
        .unwrap();
    (dir, reg, r)
}

fn options(rule: KeepTags, dry_run: bool) -> GcOptions {
    retention_options(rule, dry_run)
}

async fn tags(reg: &Registry, r: &RepoName) -> Vec<String> {
    reg.tags(r, None, 100).unwrap().0
}

#[tokio::test]
async fn dry_run_only_logs() {
    let (_dir, reg, r) = seeded().await;
    let rule = KeepTags {
        most_recently_pushed_count: Some(1),
        ..KeepTags::default()
    };
    let report = reg.gc_repo(&r, &options(rule, true)).await.unwrap();
    assert_eq!((report.tags_removed, report.manifests_removed), (3, 3));
    assert_eq!(report.blobs_removed, 0);
    assert_eq!(tags(&reg, &r).await, ["v1", "v2", "v3", "v4"]);
    for t in ["v1", "v2", "v3", "v4"] {
        pull_image(&reg, &r, t).await;
    }
}

#[tokio::test]
async fn policies_apply_to_matching_repositories_only() {
    let (_dir, reg, _) = seeded().await;
    let other = repo("other");
    push_image(&reg, &other, "x", &[b"x"]).await;
    let rule = KeepTags {
        patterns: vec![Regex::new("none").unwrap()],
        ..KeepTags::default()
    };
    let report = reg.gc_repo(&other, &options(rule, false)).await.unwrap();
    assert_eq!(report, zot_storage::GcReport::default());
    pull_image(&reg, &other, "x").await;
}

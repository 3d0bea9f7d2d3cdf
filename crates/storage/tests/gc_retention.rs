//! Retention through GC: each keepTags rule, deleteUntagged, deleteReferrers,
//! repository globs, and dryRun (which only logs).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::*;
use regex::Regex;
use std::time::Duration;
use zot_oci::RepoName;
use zot_storage::retention::{KeepTags, Retention, RetentionPolicy};
use zot_storage::{Change, GcOptions, Options, Registry, open_local};

const NOW_SLACK: u64 = 10;

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
    GcOptions {
        delay: Duration::ZERO,
        retention: Retention {
            dry_run,
            delay: Duration::ZERO,
            policies: vec![RetentionPolicy {
                repositories: vec![zot_config::glob::Glob::new("apps/**").expect("valid glob")],
                delete_referrers: true,
                delete_untagged: true,
                keep_tags: vec![rule],
            }],
        },
    }
}

async fn tags(reg: &Registry, r: &RepoName) -> Vec<String> {
    reg.tags(r, None, 100).unwrap().0
}

async fn kept_by(rule: KeepTags) -> Vec<String> {
    let (_dir, reg, r) = seeded().await;
    let report = reg.gc_repo(&r, &options(rule, false)).await.unwrap();
    let kept = tags(&reg, &r).await;
    assert_eq!(report.tags_removed, 4 - kept.len());
    assert_eq!(report.manifests_removed, 4 - kept.len(), "{report:?}");
    for t in &kept {
        pull_image(&reg, &r, t).await;
    }
    kept
}

#[tokio::test]
async fn each_keep_tags_rule() {
    let count = |n| KeepTags {
        most_recently_pushed_count: Some(n),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(count(2)).await, ["v3", "v4"]);
    let pulled = KeepTags {
        most_recently_pulled_count: Some(3),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(pulled).await, ["v2"]);
    let pushed_within = KeepTags {
        pushed_within: Some(Duration::from_secs(2 * 3600 + NOW_SLACK)),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(pushed_within).await, ["v3", "v4"]);
    let pulled_within = KeepTags {
        pulled_within: Some(Duration::from_secs(3600)),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(pulled_within).await, ["v2"]);
    let patterns = KeepTags {
        patterns: vec![Regex::new("v[13]").unwrap()],
        ..KeepTags::default()
    };
    assert_eq!(kept_by(patterns).await, ["v1", "v3"]);
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

#[tokio::test]
async fn untagged_and_orphan_referrers_follow_their_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let r = repo("apps/web");
    let subject = push_image(&reg, &r, "s", &[b"s"]).await;
    // A referrer of `s`, pushed by digest.
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x-sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":1}}}}"#,
        zot_oci::Digest::sha256_of(b"{}")
    );
    let rd = zot_oci::Digest::sha256_of(referrer.as_bytes());
    reg.put_manifest(
        &r,
        &zot_oci::Reference::Digest(rd.clone()),
        None,
        referrer.as_bytes(),
    )
    .await
    .unwrap();
    let keep_all = KeepTags::default();
    // With its subject present the referrer stays.
    let report = reg
        .gc_repo(&r, &options(keep_all.clone(), false))
        .await
        .unwrap();
    assert_eq!(report.manifests_removed, 0, "{report:?}");
    assert_eq!(reg.referrers(&r, &subject, None).unwrap().len(), 1);
    // The subject's tag goes: the subject is untagged, then its referrer is orphaned.
    reg.delete_manifest(&r, &tag("s")).await.unwrap();
    let mut no_referrers = options(keep_all.clone(), false);
    no_referrers.retention.policies[0].delete_referrers = false;
    let report = reg.gc_repo(&r, &no_referrers).await.unwrap();
    assert_eq!(report.manifests_removed, 1, "only the subject: {report:?}");
    assert!(reg.metadata().manifest(&r, &rd).unwrap().is_some());
    let report = reg.gc_repo(&r, &options(keep_all, false)).await.unwrap();
    assert_eq!(report.manifests_removed, 1, "now the referrer: {report:?}");
    assert!(report.repository_removed, "{report:?}");
}

//! GC, retention, scrub and lint on both storage drivers (the backend
//! suite's habit): each case runs on a local root and on a SeaweedFS
//! bucket, with dedupe on (hard links on disk, placeholders on S3) unless
//! it says otherwise, and looks at the objects through the same
//! [`Backend`] trait the registry uses.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod dedupe_common;
mod gc_common;
mod s3_common;

use gc_common::*;
use regex::Regex;
use std::sync::Arc;
use std::time::Duration;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::retention::{KeepTags, Retention};
use zot_storage::{
    Backend, Change, GcOptions, LocalBackend, Options, Registry, S3Options, ScrubFault, ScrubItem,
    StorageError, open_local, open_s3, paths,
};

#[derive(Clone, Copy)]
enum Driver {
    Local,
    S3,
}

/// A registry on one driver, and the storage it can be reopened on.
struct Subject {
    reg: Registry,
    raw: Arc<dyn Backend>,
    driver: Driver,
    dir: tempfile::TempDir,
    bucket: Option<dedupe_common::Bucket>,
}

impl Driver {
    async fn open(self, options: Options) -> Subject {
        let dir = tempfile::tempdir().unwrap();
        let bucket = match self {
            Driver::Local => None,
            Driver::S3 => Some(dedupe_common::Bucket::new()),
        };
        let (reg, raw) = open_on(self, &dir, bucket.as_ref(), options).await;
        Subject {
            reg,
            raw,
            driver: self,
            dir,
            bucket,
        }
    }
}

async fn open_on(
    driver: Driver,
    dir: &tempfile::TempDir,
    bucket: Option<&dedupe_common::Bucket>,
    options: Options,
) -> (Registry, Arc<dyn Backend>) {
    match (driver, bucket) {
        (Driver::S3, Some(b)) => {
            let (reg, _) = open_s3(dir.path(), &b.config, &S3Options::default(), options)
                .await
                .unwrap();
            (reg, Arc::new(b.raw()))
        }
        _ => {
            let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
            let raw = LocalBackend::new(dir.path().to_path_buf(), false).unwrap();
            (reg, Arc::new(raw))
        }
    }
}

impl Subject {
    /// A restart on the same storage and metadata store.
    async fn restart(self, options: Options) -> Subject {
        let Subject {
            reg,
            driver,
            dir,
            bucket,
            ..
        } = self;
        drop(reg);
        let (reg, raw) = open_on(driver, &dir, bucket.as_ref(), options).await;
        Subject {
            reg,
            raw,
            driver,
            dir,
            bucket,
        }
    }

    async fn has(&self, r: &str, data: &[u8]) -> bool {
        let key = paths::blob(&repo(r), &Digest::sha256_of(data));
        self.raw.size(&key).await.unwrap().is_some()
    }

    fn key(&self, r: &str, data: &[u8]) -> String {
        paths::blob(&repo(r), &Digest::sha256_of(data))
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod local_disk {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Driver::Local).await })*
        }
        mod s3_bucket {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Driver::S3).await })*
        }
    };
}

both!(
    gc_keeps_shared_blobs_with_dedupe,
    gc_keeps_shared_blobs_without_dedupe,
    gc_delay_protects_blobs_of_pushes_in_flight,
    gc_removes_empty_repositories,
    retention_keep_tags_rules,
    retention_untagged_and_orphan_referrers,
    scrub_finds_flipped_truncated_and_missing_blobs,
    lint_requires_mandatory_annotations,
);

fn now_gc() -> GcOptions {
    GcOptions {
        delay: Duration::ZERO,
        retention: Retention {
            delay: Duration::ZERO,
            ..Default::default()
        },
    }
}

fn with_dedupe(on: bool) -> Options {
    Options {
        dedupe: on,
        ..Options::default()
    }
}

async fn gc_shared_and_unique(driver: Driver, dedupe: bool) {
    let s = driver.open(with_dedupe(dedupe)).await;
    let (a, b) = (repo("a"), repo("b"));
    let m1 = push_image(&s.reg, &a, "1", &[b"shared", b"unique-a1"]).await;
    push_image(&s.reg, &a, "2", &[b"unique-a2"]).await;
    push_image(&s.reg, &b, "1", &[b"shared", b"unique-b"]).await;
    // Shared: one inode on disk; on S3 content in a, a placeholder in b.
    let shared_in_b = match s.driver {
        Driver::Local => {
            use std::os::unix::fs::MetadataExt;
            let file = s.dir.path().join(s.key("a", b"shared"));
            std::fs::metadata(file).unwrap().nlink()
        }
        Driver::S3 => s.raw.size(&s.key("b", b"shared")).await.unwrap().unwrap(),
    };
    let want = match (s.driver, dedupe) {
        (Driver::Local, true) => 2,
        (Driver::Local, false) => 1,
        (Driver::S3, true) => 0,
        (Driver::S3, false) => 6,
    };
    assert_eq!(shared_in_b, want, "links, or the size of b's object");
    let r = s.reg.gc_all(&now_gc()).await.unwrap();
    assert_eq!((r.manifests_removed, r.blobs_removed), (0, 0), "{r:?}");

    s.reg
        .delete_manifest(&a, &Reference::Digest(m1))
        .await
        .unwrap();
    let r = s.reg.gc_repo(&a, &now_gc()).await.unwrap();
    assert_eq!(r.blobs_removed, 2, "shared and unique-a1 leave a: {r:?}");
    assert!(!s.has("a", b"shared").await);
    assert!(!s.has("a", b"unique-a1").await);
    assert!(s.has("a", b"unique-a2").await);
    assert!(s.has("a", b"{}").await, "config still used by a:2");
    // b keeps the content (moved to it, on S3 with dedupe) and serves it.
    let shared = Digest::sha256_of(b"shared");
    assert_eq!(read_blob(&s.reg, &b, &shared).await, b"shared");
    assert_eq!(s.raw.size(&s.key("b", b"shared")).await.unwrap(), Some(6));
    assert_eq!(
        s.reg.metadata().blob_repos(&shared).unwrap(),
        vec!["b".to_string()]
    );
    pull_image(&s.reg, &b, "1").await;
    pull_image(&s.reg, &a, "2").await;
}

async fn gc_keeps_shared_blobs_with_dedupe(driver: Driver) {
    gc_shared_and_unique(driver, true).await;
}

async fn gc_keeps_shared_blobs_without_dedupe(driver: Driver) {
    gc_shared_and_unique(driver, false).await;
}

async fn gc_delay_protects_blobs_of_pushes_in_flight(driver: Driver) {
    let s = driver.open(Options::default()).await;
    let delay = Duration::from_secs(1);
    s.reg.track_placements(delay);
    let options = GcOptions {
        delay,
        ..GcOptions::default()
    };
    let (a, b) = (repo("a"), repo("b"));
    push_image(&s.reg, &b, "1", &[b"layer-old"]).await;
    let stale = push_blob(&s.reg, &a, b"stale").await;
    // Object stores keep modification times in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Shared with b's old object, a fresh blob and an open upload.
    let linked = push_blob(&s.reg, &a, b"layer-old").await;
    let fresh = push_blob(&s.reg, &a, b"fresh").await;
    let id = s.reg.start_upload(&a).await.unwrap();
    s.reg
        .append_upload(&a, &id, Some(0), body(b"partial"))
        .await
        .unwrap();
    let r = s.reg.gc_repo(&a, &options).await.unwrap();
    assert_eq!(r.blobs_removed, 1, "only the stale blob: {r:?}");
    assert_eq!(s.reg.blob_size(&a, &stale).await.unwrap(), None);
    assert_eq!(s.reg.upload_size(&a, &id).await.unwrap(), 7);
    push_blob(&s.reg, &a, b"{}").await;
    let manifest = image_manifest(&[b"layer-old", b"fresh"]);
    s.reg
        .put_manifest(&a, &tag("t"), None, manifest.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s.reg.gc_repo(&a, &options).await.unwrap();
    assert_eq!(r.blobs_removed, 0, "{r:?}");
    for d in [&linked, &fresh] {
        assert!(s.reg.blob_size(&a, d).await.unwrap().is_some());
    }
    pull_image(&s.reg, &a, "t").await;
}

async fn gc_removes_empty_repositories(driver: Driver) {
    let s = driver.open(Options::default()).await;
    let (a, b) = (repo("a/x"), repo("a"));
    let m = push_image(&s.reg, &a, "1", &[b"l"]).await;
    push_image(&s.reg, &b, "1", &[b"l"]).await;
    s.reg
        .delete_manifest(&a, &Reference::Digest(m))
        .await
        .unwrap();
    let r = s.reg.gc_all(&now_gc()).await.unwrap();
    assert!(r.repository_removed, "{r:?}");
    assert_eq!(s.reg.catalog(None, 10).unwrap().0, vec!["a".to_string()]);
    assert_eq!(s.raw.size(&paths::oci_layout(&a)).await.unwrap(), None);
    assert_eq!(s.raw.size(&paths::index(&a)).await.unwrap(), None);
    pull_image(&s.reg, &b, "1").await;
    push_image(&s.reg, &a, "2", &[b"m"]).await;
    pull_image(&s.reg, &a, "2").await;
    let s = s.restart(Options::default()).await;
    assert_eq!(s.reg.catalog(None, 10).unwrap().0.len(), 2);
    pull_image(&s.reg, &a, "2").await;
    pull_image(&s.reg, &b, "1").await;
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn retention(rule: KeepTags) -> GcOptions {
    retention_options(rule, false)
}

/// Tags v1..v4 pushed 4, 3, 2, 1 hours ago (sharing a layer); v2 pulled a
/// minute ago.
async fn seeded(driver: Driver) -> (Subject, RepoName) {
    let s = driver.open(Options::default()).await;
    let r = repo("apps/web");
    for (i, t) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        let d = push_image(&s.reg, &r, t, &[t.as_bytes(), b"base"]).await;
        let pushed = now() - (4 - i as u64) * 3600;
        s.reg
            .metadata()
            .apply(&r, &[Change::Pushed(d, pushed)])
            .unwrap();
    }
    // The base layer is shared with another repository too.
    push_image(&s.reg, &repo("other"), "x", &[b"base"]).await;
    let v2 = s.reg.manifest_record(&r, &tag("v2")).unwrap().digest;
    s.reg
        .metadata()
        .record_pulls(&[(r.clone(), v2, now() - 60)])
        .unwrap();
    (s, r)
}

async fn kept_by(driver: Driver, rule: KeepTags) -> Vec<String> {
    let (s, r) = seeded(driver).await;
    let report = s.reg.gc_repo(&r, &retention(rule)).await.unwrap();
    let kept = s.reg.tags(&r, None, 100).unwrap().0;
    assert_eq!(report.manifests_removed, 4 - kept.len(), "{report:?}");
    // Each removed image's own layer went; what is kept reads back.
    assert_eq!(report.blobs_removed, 4 - kept.len(), "{report:?}");
    for t in &kept {
        pull_image(&s.reg, &r, t).await;
    }
    pull_image(&s.reg, &repo("other"), "x").await;
    kept
}

async fn retention_keep_tags_rules(driver: Driver) {
    let count = KeepTags {
        most_recently_pushed_count: Some(2),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(driver, count).await, ["v3", "v4"]);
    let pulled = KeepTags {
        most_recently_pulled_count: Some(3),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(driver, pulled).await, ["v2"]);
    let pushed_within = KeepTags {
        // A little slack for the time the test takes.
        pushed_within: Some(Duration::from_secs(2 * 3600 + 10)),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(driver, pushed_within).await, ["v3", "v4"]);
    let pulled_within = KeepTags {
        pulled_within: Some(Duration::from_secs(3600)),
        ..KeepTags::default()
    };
    assert_eq!(kept_by(driver, pulled_within).await, ["v2"]);
    let patterns = KeepTags {
        patterns: vec![Regex::new("v[13]").unwrap()],
        ..KeepTags::default()
    };
    assert_eq!(kept_by(driver, patterns).await, ["v1", "v3"]);
}

async fn retention_untagged_and_orphan_referrers(driver: Driver) {
    let s = driver.open(Options::default()).await;
    let r = repo("apps/web");
    let subject = push_image(&s.reg, &r, "s", &[b"s"]).await;
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x-sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":1}}}}"#,
        Digest::sha256_of(b"{}")
    );
    let rd = Digest::sha256_of(referrer.as_bytes());
    s.reg
        .put_manifest(
            &r,
            &Reference::Digest(rd.clone()),
            None,
            referrer.as_bytes(),
        )
        .await
        .unwrap();
    let keep_all = KeepTags::default();
    let report = s
        .reg
        .gc_repo(&r, &retention(keep_all.clone()))
        .await
        .unwrap();
    assert_eq!(report.manifests_removed, 0, "{report:?}");
    assert_eq!(s.reg.referrers(&r, &subject, None).unwrap().len(), 1);
    // The subject's tag goes: the subject is untagged, then its referrer
    // is orphaned (removed only with deleteReferrers).
    s.reg.delete_manifest(&r, &tag("s")).await.unwrap();
    let mut no_referrers = retention(keep_all.clone());
    no_referrers.retention.policies[0].delete_referrers = false;
    let report = s.reg.gc_repo(&r, &no_referrers).await.unwrap();
    assert_eq!(report.manifests_removed, 1, "only the subject: {report:?}");
    assert!(s.reg.metadata().manifest(&r, &rd).unwrap().is_some());
    let report = s.reg.gc_repo(&r, &retention(keep_all)).await.unwrap();
    assert_eq!(report.manifests_removed, 1, "now the referrer: {report:?}");
    assert!(report.repository_removed, "{report:?}");
    assert!(s.reg.metadata().manifest(&r, &rd).unwrap().is_none());
}

async fn scrub_finds_flipped_truncated_and_missing_blobs(driver: Driver) {
    let s = driver.open(Options::default()).await;
    let a = repo("a");
    push_image(&s.reg, &a, "flip", &[b"flip-me"]).await;
    push_image(&s.reg, &a, "trunc", &[b"truncate-me"]).await;
    push_image(&s.reg, &a, "gone", &[b"remove-me"]).await;
    // b shares a's layer (a hard link, or a placeholder).
    push_image(&s.reg, &repo("b"), "ok", &[b"fine", b"flip-me"]).await;
    assert!(s.reg.scrub_repo(&a).await.problems.is_empty());
    assert!(s.reg.scrub_repo(&repo("b")).await.problems.is_empty());

    let flip = s.key("a", b"flip-me");
    let mut bytes = s.raw.read(&flip).await.unwrap();
    bytes[3] ^= 0x20;
    s.raw.write_atomic(&flip, &bytes).await.unwrap();
    s.raw
        .write_atomic(&s.key("a", b"truncate-me"), b"trunc")
        .await
        .unwrap();
    s.raw.delete(&s.key("a", b"remove-me")).await.unwrap();

    let found = |report: zot_storage::ScrubReport| -> Vec<(Option<String>, Digest, ScrubFault)> {
        report
            .problems
            .iter()
            .map(|p| match &p.item {
                ScrubItem::Blob(d) => (p.reference.clone(), d.clone(), p.fault),
                other => panic!("{other}"),
            })
            .collect()
    };
    let some = |t: &str| Some(t.to_owned());
    assert_eq!(
        found(s.reg.scrub_repo(&a).await),
        vec![
            (
                some("flip"),
                Digest::sha256_of(b"flip-me"),
                ScrubFault::Corrupt
            ),
            (
                some("gone"),
                Digest::sha256_of(b"remove-me"),
                ScrubFault::Missing
            ),
            (
                some("trunc"),
                Digest::sha256_of(b"truncate-me"),
                ScrubFault::WrongSize
            ),
        ]
    );
    // b's image is damaged too: on disk the rewrite made a new file (the
    // link keeps the old content); on S3 b reads a's object.
    let b_found = found(s.reg.scrub_repo(&repo("b")).await);
    match s.driver {
        Driver::Local => assert!(b_found.is_empty(), "{b_found:?}"),
        Driver::S3 => assert_eq!(
            b_found,
            vec![(
                some("ok"),
                Digest::sha256_of(b"flip-me"),
                ScrubFault::Corrupt
            )]
        ),
    }
}

async fn lint_requires_mandatory_annotations(driver: Driver) {
    let options = Options {
        mandatory_annotations: vec!["team".into()],
        ..Options::default()
    };
    let s = driver.open(options).await;
    // The labelled config is first pushed elsewhere: in `a` it is shared
    // (a placeholder on S3), and lint reads it through that.
    let config = br#"{"config":{"Labels":{"team":"infra"}}}"#;
    push_blob(&s.reg, &repo("elsewhere"), config).await;
    let a = repo("a");
    let cd = push_blob(&s.reg, &a, config).await;
    push_blob(&s.reg, &a, b"{}").await;
    push_blob(&s.reg, &a, b"l").await;
    let bare = image_manifest(&[b"l"]);
    let err = s
        .reg
        .put_manifest(&a, &tag("bare"), None, bare.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::ManifestInvalid(e) if e.to_string().contains("team")),
        "{err}"
    );
    let labelled = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    s.reg
        .put_manifest(&a, &tag("labelled"), None, labelled.as_bytes())
        .await
        .unwrap();
    assert!(s.reg.manifest_record(&a, &tag("bare")).is_err());
}

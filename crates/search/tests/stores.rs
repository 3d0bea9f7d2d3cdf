//! The metadata model kept in step with storage, read through
//! `StoresSource` over a real registry on a temporary directory: pushes,
//! retags, deletes, GC and retention reflected at once; restarts, rebuilds
//! and layouts dropped into the root; download counts and stars.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod stores_common;
use stores_common as common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use zot_oci::image_meta::{ImageMeta, MetaKind, Platform};
use zot_search::stores::StoresSource;
use zot_search::{Pref, RepoData, Source};
use zot_storage::retention::{KeepTags, Retention, RetentionPolicy};
use zot_storage::{GcOptions, Registry, Stores};

fn manifest_meta(d: &RepoData, digest: &zot_oci::Digest) -> zot_oci::image_meta::ManifestMeta {
    match &d.images[digest].kind {
        MetaKind::Manifest(m) => m.clone(),
        MetaKind::Index { .. } => panic!("{digest} is an index"),
    }
}

fn tagged(d: &RepoData, tag: &str) -> Option<i128> {
    d.tags
        .iter()
        .find(|t| t.tag == tag)
        .expect("tag listed")
        .tagged_ns
}

struct Pushed {
    image: zot_oci::Digest,
    amd: zot_oci::Digest,
    arm: zot_oci::Digest,
    index: zot_oci::Digest,
    sbom: zot_oci::Digest,
    sig: zot_oci::Digest,
}

/// A multi-layer image `v1` (by alice), a two-platform index `multi`, an
/// SBOM about the image and a cosign signature of it.
async fn push_all(reg: &Registry) -> Pushed {
    let r = repo("apps/web");
    let labels =
        json!({"org.opencontainers.image.title": "web", "org.label-schema.vendor": "acme"});
    let cfg = config("linux", "amd64", labels);
    let doc = image_doc(reg, &r, &cfg, &[b"layer one", b"layer two", b"layer three"]).await;
    let image = put(reg, &r, "v1", &doc, Some("alice")).await;
    let amd_doc = image_doc(reg, &r, &config("linux", "amd64", json!({})), &[b"amd"]).await;
    let amd = put(reg, &r, "", &amd_doc, None).await;
    let arm_doc = image_doc(reg, &r, &config("", "", json!({})), &[b"arm"]).await;
    let arm = put(reg, &r, "", &arm_doc, None).await;
    let index = push_index(
        reg,
        &r,
        "multi",
        &[
            (amd.clone(), "linux", "amd64"),
            (arm.clone(), "linux", "arm64"),
        ],
    )
    .await;
    let sbom = push_artifact(reg, &r, &image, "application/vnd.example.sbom").await;
    let sig = push_cosign_signature(reg, &r, &image).await;
    Pushed {
        image,
        amd,
        arm,
        index,
        sbom,
        sig,
    }
}

#[tokio::test]
async fn a_push_records_everything_search_shows() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let p = push_all(&reg).await;
    let d = data(&src, "apps/web");

    let mut tags: Vec<&str> = d.tags.iter().map(|t| t.tag.as_str()).collect();
    tags.sort_unstable();
    let sig_tag = format!("sha256-{}.sig", p.image.hex());
    assert_eq!(tags, ["multi", sig_tag.as_str(), "v1"]);
    assert!(d.tags.iter().all(|t| t.tagged_ns.is_some()), "{:?}", d.tags);
    assert_eq!(
        d.images.len(),
        6,
        "image, two children, index, sbom, signature"
    );

    let img = &d.images[&p.image];
    assert_eq!(img.annotated.title, "web");
    assert_eq!(img.annotated.vendor, "acme");
    assert!(!img.annotated.vendor_in_manifest);
    assert_eq!(img.artifact_type, CONFIG);
    let m = manifest_meta(&d, &p.image);
    assert_eq!(m.layers.len(), 3);
    assert_eq!(m.layers[1].size, b"layer two".len() as u64);
    assert_eq!(
        m.platform,
        Some(Platform {
            os: "linux".into(),
            arch: "amd64".into()
        })
    );
    assert_eq!(m.history.len(), 1);
    assert_eq!(
        m.created_ns,
        zot_oci::image_meta::parse_rfc3339("2024-05-01T10:00:00Z")
    );
    assert_eq!(
        manifest_meta(&d, &p.arm).platform,
        None,
        "the index descriptor supplies it"
    );

    let MetaKind::Index { children, .. } = &d.images[&p.index].kind else {
        panic!("multi is an index")
    };
    let children: Vec<_> = children
        .iter()
        .map(|c| (c.digest.clone(), c.platform.clone()))
        .collect();
    assert_eq!(
        children,
        vec![
            (
                p.amd.clone(),
                Some(Platform {
                    os: "linux".into(),
                    arch: "amd64".into()
                })
            ),
            (
                p.arm.clone(),
                Some(Platform {
                    os: "linux".into(),
                    arch: "arm64".into()
                })
            ),
        ]
    );

    assert_eq!(d.images[&p.sbom].subject, Some(p.image.clone()));
    let refs = &d.referrers[&p.image];
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, p.sbom);
    assert_eq!(
        refs[0].artifact_type.as_deref(),
        Some("application/vnd.example.sbom")
    );

    let stats = &d.stats[&p.image];
    assert_eq!(stats.pushed_by, "alice");
    assert!(stats.pushed_ns.is_some());
    assert_eq!((stats.downloads, stats.last_pull_ns), (0, None));
    assert_eq!(d.stats[&p.index].pushed_by, "", "pushed anonymously");
    assert_eq!(d.star_count, 0);
    assert!(generation(&src, "apps/web") > 0);
    assert!(src.repo("apps/nothing").unwrap().is_none());
}

#[tokio::test]
async fn search_off_records_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), false).await;
    let src = source(&reg);
    let p = push_all(&reg).await;
    get(&reg, &repo("apps/web"), "v1");
    reg.flush_pulls().await.unwrap();
    let d = data(&src, "apps/web");
    assert!(d.images.is_empty());
    assert!(d.tags.iter().all(|t| t.tagged_ns.is_none()));
    assert_eq!(d.stats[&p.image].pushed_by, "");
    assert_eq!(d.stats[&p.image].downloads, 0);
    assert!(
        d.stats[&p.image].last_pull_ns.is_some(),
        "pull times are the core's"
    );
    assert_eq!(generation(&src, "apps/web"), 0);
}

#[tokio::test]
async fn downloads_count_gets_not_signatures_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("apps/web");
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let p = push_all(&reg).await;
    get(&reg, &r, "v1");
    get(&reg, &r, "v1");
    get(&reg, &r, &p.image.to_string());
    get(&reg, &r, "multi");
    get(&reg, &r, &format!("sha256-{}.sig", p.image.hex()));
    let before = generation(&src, "apps/web");
    assert_eq!(
        data(&src, "apps/web").stats[&p.image].downloads,
        0,
        "counted in memory until flushed"
    );
    reg.flush_pulls().await.unwrap();
    assert!(
        generation(&src, "apps/web") > before,
        "a flush is a change of the repository"
    );
    let check = |d: &RepoData| {
        assert_eq!(d.stats[&p.image].downloads, 3);
        assert!(d.stats[&p.image].last_pull_ns.is_some());
        assert_eq!(d.stats[&p.index].downloads, 1);
        assert_eq!(
            d.stats[&p.sig].downloads, 0,
            "a signature pull is no download"
        );
        assert!(d.stats[&p.sig].last_pull_ns.is_some(), "but it is a pull");
        assert_eq!(d.stats[&p.sbom].downloads, 0);
    };
    check(&data(&src, "apps/web"));
    reg.flush_metadata().unwrap();
    drop((src, reg));
    let reg = open(dir.path(), true).await;
    check(&data(&source(&reg), "apps/web"));
}

#[tokio::test]
async fn a_retag_updates_the_tag_time_and_keeps_the_first_pusher() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("apps/web");
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let doc = image_doc(&reg, &r, &config("linux", "amd64", json!({})), &[b"x"]).await;
    let d1 = put(&reg, &r, "v1", &doc, Some("alice")).await;
    let t1 = tagged(&data(&src, "apps/web"), "v1").unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(&reg, &r, "v1", &doc, Some("bob")).await;
    put(&reg, &r, "latest", &doc, Some("bob")).await;
    let d = data(&src, "apps/web");
    let t2 = tagged(&d, "v1").unwrap();
    assert!(t2 > t1, "pushing a tag again sets its time");
    assert!(tagged(&d, "latest").unwrap() >= t2);
    assert_eq!(d.stats[&d1].pushed_by, "alice");
    // Moving the tag to another manifest.
    let other = image_doc(&reg, &r, &config("linux", "arm64", json!({})), &[b"y"]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let d2 = put(&reg, &r, "v1", &other, Some("carol")).await;
    let d = data(&src, "apps/web");
    assert!(tagged(&d, "v1").unwrap() > t2);
    assert_eq!(d.tags.iter().find(|t| t.tag == "v1").unwrap().digest, d2);
    assert_eq!(d.stats[&d2].pushed_by, "carol");
}

#[tokio::test]
async fn deletes_gc_and_retention_remove_rows_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("apps/web");
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let p = push_all(&reg).await;
    let keep_doc = image_doc(&reg, &r, &config("linux", "amd64", json!({})), &[b"keep"]).await;
    let kept = put(&reg, &r, "keep-1", &keep_doc, None).await;
    get(&reg, &r, "v1");
    reg.flush_pulls().await.unwrap();

    // A tag deleted: its row and time go, the manifest stays.
    reg.delete_manifest(&r, &reference("multi")).await.unwrap();
    let d = data(&src, "apps/web");
    assert!(d.tags.iter().all(|t| t.tag != "multi"));
    assert!(d.images.contains_key(&p.index));
    assert_eq!(
        reg.metadata()
            .search_repo("apps/web")
            .unwrap()
            .unwrap()
            .tags
            .len(),
        3
    );

    // A manifest deleted: its record, stats and referrer listing go.
    reg.delete_manifest(&r, &reference(&p.sbom.to_string()))
        .await
        .unwrap();
    let d = data(&src, "apps/web");
    assert!(!d.images.contains_key(&p.sbom));
    assert!(!d.stats.contains_key(&p.sbom));
    assert!(d.referrers.get(&p.image).is_none_or(Vec::is_empty));

    // Retention keeps `keep-*` only; untagged manifests go too.
    let gc = GcOptions {
        delay: Duration::ZERO,
        retention: Retention {
            dry_run: false,
            delay: Duration::ZERO,
            policies: vec![RetentionPolicy {
                repositories: vec![zot_config::glob::Glob::new("**").unwrap()],
                delete_referrers: true,
                delete_untagged: true,
                keep_tags: vec![KeepTags {
                    patterns: vec![regex::Regex::new("^keep").unwrap()],
                    ..KeepTags::default()
                }],
            }],
        },
    };
    reg.gc_repo(&r, &gc).await.unwrap();
    let d = data(&src, "apps/web");
    let tags: Vec<&str> = d.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["keep-1"]);
    let images: Vec<_> = d.images.keys().cloned().collect();
    assert_eq!(images, vec![kept.clone()]);
    assert_eq!(
        d.stats.keys().cloned().collect::<Vec<_>>(),
        vec![kept.clone()]
    );
    assert!(d.referrers.is_empty());

    // The last manifest deleted, then GC removes the empty repository.
    reg.delete_manifest(&r, &reference(&kept.to_string()))
        .await
        .unwrap();
    reg.gc_repo(&r, &gc).await.unwrap();
    assert!(src.repo("apps/web").unwrap().is_none());
    assert!(src.repos().unwrap().is_empty());
}

fn same_records(a: &RepoData, b: &RepoData) {
    let mut ka: Vec<_> = a
        .images
        .iter()
        .map(|(k, v)| (k.to_string(), (**v).clone()))
        .collect();
    let mut kb: Vec<_> = b
        .images
        .iter()
        .map(|(k, v)| (k.to_string(), (**v).clone()))
        .collect();
    ka.sort_by(|x, y| x.0.cmp(&y.0));
    kb.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(ka, kb, "the image records differ");
    let tags = |d: &RepoData| {
        let mut t: Vec<_> = d
            .tags
            .iter()
            .map(|t| (t.tag.clone(), t.digest.clone()))
            .collect();
        t.sort_by(|x, y| x.0.cmp(&y.0));
        t
    };
    assert_eq!(tags(a), tags(b));
    let refs = |d: &RepoData| {
        let mut r: Vec<_> = d
            .referrers
            .iter()
            .flat_map(|(s, v)| v.iter().map(move |x| (s.to_string(), x.digest.to_string())))
            .collect();
        r.sort();
        r
    };
    assert_eq!(refs(a), refs(b));
}

#[tokio::test]
async fn restarts_rebuilds_and_layouts_dropped_into_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let p = push_all(&reg).await;
    get(&reg, &repo("apps/web"), "v1");
    reg.flush_pulls().await.unwrap();
    assert!(src.toggle("u1", Pref::Star, "apps/web").unwrap());
    let before = data(&src, "apps/web");
    reg.flush_metadata().unwrap();
    drop((src, reg));

    // A plain restart: everything is kept, nothing is rebuilt.
    let (reg, report) = zot_storage::open_local(
        dir.path(),
        false,
        zot_storage::Options {
            search: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.rebuilt, 0);
    let reg = Arc::new(reg);
    let src = source(&reg);
    let after = data(&src, "apps/web");
    same_records(&before, &after);
    assert_eq!(after.stats, before.stats);
    assert_eq!(after.star_count, 1);
    let times = |d: &RepoData| {
        let mut t: Vec<_> = d
            .tags
            .iter()
            .map(|t| (t.tag.clone(), t.tagged_ns))
            .collect();
        t.sort();
        t
    };
    assert_eq!(times(&after), times(&before));
    drop((src, reg));

    // The metadata store deleted: records are rebuilt from the layouts.
    std::fs::remove_file(dir.path().join("_zot/meta.redb")).unwrap();
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let rebuilt = data(&src, "apps/web");
    same_records(&before, &rebuilt);
    assert_eq!(rebuilt.images[&p.image].annotated.title, "web");

    // A layout copied into the root shows up after a restart.
    drop((src, reg));
    copy_dir(&dir.path().join("apps/web"), &dir.path().join("copied/app"));
    let reg = open(dir.path(), true).await;
    let src = source(&reg);
    let copied = data(&src, "copied/app");
    same_records(&before, &copied);
    assert!(
        src.repos()
            .unwrap()
            .iter()
            .any(|(n, g)| n == "copied/app" && *g > 0)
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_store_kept_without_search_is_filled_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("apps/web");
    let reg = open(dir.path(), false).await;
    let p = push_all(&reg).await;
    assert!(data(&source(&reg), "apps/web").images.is_empty());
    reg.flush_metadata().unwrap();
    drop(reg);

    let reg = open(dir.path(), true).await;
    let d = data(&source(&reg), "apps/web");
    assert_eq!(
        d.images.len(),
        6,
        "every manifest has its record after start-up"
    );
    assert_eq!(d.images[&p.image].annotated.title, "web");
    // Search off for a while (a push meanwhile), then on again.
    let doc = image_doc(&reg, &r, &config("linux", "s390x", json!({})), &[b"z"]).await;
    reg.flush_metadata().unwrap();
    drop(reg);
    let reg = open(dir.path(), false).await;
    let later = put(&reg, &r, "later", &doc, None).await;
    reg.flush_metadata().unwrap();
    drop(reg);
    let reg = open(dir.path(), true).await;
    let d = data(&source(&reg), "apps/web");
    let m: &ImageMeta = &d.images[&later];
    let MetaKind::Manifest(mm) = &m.kind else {
        panic!("manifest")
    };
    assert_eq!(mm.platform.as_ref().map(|p| p.arch.as_str()), Some("s390x"));
}

#[tokio::test]
async fn stars_and_bookmarks_persist_and_follow_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let sub_dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), true).await;
    let sub = open(sub_dir.path(), true).await;
    let stores = || Stores::new(reg.clone(), [("team".to_owned(), sub.clone())]);
    let src = StoresSource::new(stores());
    push_all(&reg).await;
    let r = repo("team/app");
    let doc = image_doc(&sub, &r, &config("linux", "amd64", json!({})), &[b"t"]).await;
    put(&sub, &r, "v1", &doc, None).await;
    let names: Vec<String> = src.repos().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["apps/web", "team/app"]);

    let g = generation(&src, "apps/web");
    assert!(src.toggle("u1", Pref::Star, "apps/web").unwrap());
    assert!(
        generation(&src, "apps/web") > g,
        "a star is a change of the repository"
    );
    assert!(src.toggle("u2", Pref::Star, "apps/web").unwrap());
    assert!(src.toggle("u1", Pref::Bookmark, "apps/web").unwrap());
    let g = generation(&src, "team/app");
    assert!(src.toggle("u1", Pref::Star, "team/app").unwrap());
    assert!(generation(&src, "team/app") > g);
    assert!(!src.toggle("u2", Pref::Star, "apps/web").unwrap());
    assert_eq!(data(&src, "apps/web").star_count, 1);
    assert_eq!(data(&src, "team/app").star_count, 1);

    reg.flush_metadata().unwrap();
    sub.flush_metadata().unwrap();
    drop((src, reg, sub));
    let reg = open(dir.path(), true).await;
    let sub = open(sub_dir.path(), true).await;
    let src = StoresSource::new(Stores::new(reg.clone(), [("team".to_owned(), sub.clone())]));
    let u1 = src.user_prefs("u1").unwrap();
    assert_eq!(
        u1.starred.iter().collect::<Vec<_>>(),
        ["apps/web", "team/app"]
    );
    assert_eq!(u1.bookmarked.iter().collect::<Vec<_>>(), ["apps/web"]);
    assert!(src.user_prefs("u2").unwrap().starred.is_empty());
    assert_eq!(data(&src, "apps/web").star_count, 1);
    assert_eq!(data(&src, "team/app").star_count, 1);
    assert!(!src.toggle("u1", Pref::Star, "team/app").unwrap());
    assert_eq!(data(&src, "team/app").star_count, 0);
}

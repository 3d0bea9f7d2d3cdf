//! Several stores (`storage.subPaths`) behind one registry: repositories
//! routed by prefix to their own root, the catalog merged and paged across
//! stores, dedupe and mounts within one store only, GC per store.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zot_oci::{Digest, Reference};
use zot_storage::{GcOptions, Options, Registry, Stores, open_local};

async fn open(root: &Path, dedupe: bool) -> Arc<Registry> {
    let options = Options {
        dedupe,
        ..Options::default()
    };
    Arc::new(open_local(root, false, options).await.unwrap().0)
}

/// The default store (dedupe on) and sub-stores for `infra` (dedupe off)
/// and `infra/deep` (dedupe on), in three roots.
struct Fixture {
    _dir: tempfile::TempDir,
    roots: [std::path::PathBuf; 3],
    stores: Stores,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let roots = ["default", "infra", "deep"].map(|n| dir.path().join(n));
    let default = open(&roots[0], true).await;
    let infra = open(&roots[1], false).await;
    let deep = open(&roots[2], true).await;
    let stores = Stores::new(
        default,
        [
            ("/infra".to_owned(), infra),
            ("/infra/deep/".to_owned(), deep),
        ],
    );
    Fixture {
        _dir: dir,
        roots,
        stores,
    }
}

fn blob_file(root: &Path, r: &str, d: &Digest) -> std::path::PathBuf {
    root.join(r).join("blobs/sha256").join(d.hex())
}

#[tokio::test]
async fn repositories_are_routed_by_longest_prefix() {
    let f = fixture().await;
    let s = &f.stores;
    let d = s.default_store();
    let cases = [
        ("infra", 0),
        ("infra/a", 1),
        ("infra/a/b", 1),
        ("infra/deep", 1),
        ("infra/deep/x", 2),
        ("infra/deeper/x", 1),
        ("infrastructure/x", 0),
        ("other/x", 0),
    ];
    for (name, store) in cases {
        let r = repo(name);
        push_image(s.for_repo(&r), &r, "1", &[name.as_bytes()]).await;
        for (i, root) in f.roots.iter().enumerate() {
            assert_eq!(
                root.join(name).join("index.json").is_file(),
                i == store,
                "{name} in root {i}"
            );
        }
    }
    assert!(Arc::ptr_eq(s.route("infra/a"), s.route("infra/b")));
    assert!(Arc::ptr_eq(s.route("infra"), d));
    assert_eq!(s.distinct().len(), 3);
    // Each store knows only its own repositories.
    assert!(d.repo_exists(&repo("other/x")).unwrap());
    assert!(!d.repo_exists(&repo("infra/a")).unwrap());
    pull_image(
        s.for_repo(&repo("infra/deep/x")),
        &repo("infra/deep/x"),
        "1",
    )
    .await;
}

#[tokio::test]
async fn the_catalog_merges_the_stores_in_order_with_paging() {
    let f = fixture().await;
    let s = &f.stores;
    let names = [
        "a",
        "infra/b",
        "c/c",
        "infra/deep/d",
        "infra/e",
        "f",
        "infra/deep/g",
        "h/h",
        "infra/i",
        "j",
    ];
    for name in names {
        let r = repo(name);
        push_image(s.for_repo(&r), &r, "1", &[b"l"]).await;
    }
    // A repository left in the default root from before `infra` had a
    // store of its own: not routed there, so not listed.
    let shadowed = repo("infra/old");
    push_image(s.default_store(), &shadowed, "1", &[b"l"]).await;

    let mut all: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    all.sort();
    assert_eq!(s.catalog(None, 100).unwrap(), (all.clone(), false));
    assert_eq!(s.catalog(None, all.len()).unwrap(), (all.clone(), false));
    for n in 1..=4 {
        let mut got = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let (page, more) = s.catalog(last.as_deref(), n).unwrap();
            assert!(page.len() <= n);
            got.extend(page.iter().cloned());
            last = page.last().cloned();
            if !more {
                break;
            }
            assert_eq!(page.len(), n, "a page followed by more is full");
        }
        assert_eq!(got, all, "pages of {n}");
    }
    assert_eq!(
        s.catalog(Some("infra/deep/d"), 3).unwrap(),
        (
            vec!["infra/deep/g".into(), "infra/e".into(), "infra/i".into()],
            true
        )
    );
    assert_eq!(s.catalog(Some("j"), 3).unwrap(), (vec![], false));
    assert_eq!(s.catalog(None, 0).unwrap(), (vec![], true));
}

#[tokio::test]
async fn dedupe_and_mounts_stay_within_a_store() {
    let f = fixture().await;
    let s = &f.stores;
    let layer = b"the same layer everywhere";
    let d = Digest::sha256_of(layer);
    for name in ["x/one", "x/two", "infra/one", "infra/two", "infra/deep/one"] {
        let r = repo(name);
        push_image(s.for_repo(&r), &r, "1", &[layer]).await;
    }
    let nlink = |root: &Path, r: &str| std::fs::metadata(blob_file(root, r, &d)).unwrap().nlink();
    assert_eq!(nlink(&f.roots[0], "x/one"), 2, "default store: dedupe on");
    assert_eq!(
        nlink(&f.roots[1], "infra/one"),
        1,
        "infra store: dedupe off"
    );
    assert_eq!(nlink(&f.roots[1], "infra/two"), 1);
    assert_eq!(
        nlink(&f.roots[2], "infra/deep/one"),
        1,
        "alone in its store"
    );

    // A mount from a repository of another store finds nothing to mount
    // (the client then uploads); within a store it works.
    let target = repo("infra/three");
    let infra = s.for_repo(&target);
    assert!(
        !infra
            .mount_blob(&target, &d, Some(&repo("x/one")))
            .await
            .unwrap()
    );
    assert!(
        infra
            .mount_blob(&target, &d, Some(&repo("infra/one")))
            .await
            .unwrap()
    );
    let other = Digest::sha256_of(b"only in the default store");
    push_blob(
        s.default_store(),
        &repo("x/one"),
        b"only in the default store",
    )
    .await;
    assert!(
        !infra.mount_blob(&target, &other, None).await.unwrap(),
        "automatic mount"
    );
}

#[tokio::test]
async fn gc_of_one_store_leaves_the_others_alone() {
    let f = fixture().await;
    let s = &f.stores;
    let (a, b) = (repo("app/a"), repo("infra/a"));
    let ma = push_image(s.for_repo(&a), &a, "1", &[b"shared", b"unique-a"]).await;
    let mb = push_image(s.for_repo(&b), &b, "1", &[b"shared", b"unique-b"]).await;
    for (r, m) in [(&a, &ma), (&b, &mb)] {
        s.for_repo(r)
            .delete_manifest(r, &Reference::Digest(m.clone()))
            .await
            .unwrap();
    }
    let now = GcOptions {
        delay: Duration::ZERO,
        ..GcOptions::default()
    };
    // Only the infra store collects (as with gc on in its sub-path only).
    let report = s.for_repo(&b).gc_all(&now).await.unwrap();
    assert_eq!(report.blobs_removed, 3, "{report:?}");
    assert!(report.repository_removed);
    assert!(!blob_file(&f.roots[1], "infra/a", &Digest::sha256_of(b"shared")).exists());
    for layer in [&b"shared"[..], b"unique-a", b"{}"] {
        assert!(
            blob_file(&f.roots[0], "app/a", &Digest::sha256_of(layer)).is_file(),
            "the default store keeps its blobs"
        );
    }
    assert_eq!(s.catalog(None, 10).unwrap().0, ["app/a"]);
}

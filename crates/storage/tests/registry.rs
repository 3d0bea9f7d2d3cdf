//! Storage semantics exercised directly, below the HTTP layer.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use bytes::Bytes;
use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{Options, Registry, StorageError, open_local};

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

async fn push_blob(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    reg.complete_upload(r, &id, &d, None, Some(body(data)))
        .await
        .unwrap();
    d
}

async fn push_image(reg: &Registry, r: &RepoName, tag: &str, layer: &[u8]) -> Digest {
    let config = push_blob(reg, r, b"{}").await;
    let layer = push_blob(reg, r, layer).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":1}}]}}"#
    );
    let pushed = reg
        .put_manifest(
            r,
            &Reference::Tag(tag.parse().unwrap()),
            None,
            manifest.as_bytes(),
        )
        .await
        .unwrap();
    pushed.digest
}

#[tokio::test]
async fn abandoned_uploads_expire_with_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        upload_ttl: Duration::ZERO,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let r = repo("a/b");
    let id = reg.start_upload(&r).await.unwrap();
    reg.append_upload(&r, &id, Some(0), body(b"partial"))
        .await
        .unwrap();
    let file = dir.path().join(format!("a/b/.uploads/{id}"));
    assert!(file.exists());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(reg.expire_uploads(false).await.unwrap(), 1);
    assert!(!file.exists());
    assert!(matches!(
        reg.upload_size(&r, &id).await,
        Err(StorageError::UploadUnknown)
    ));

    // A stray file from an earlier run is removed by the disk sweep.
    let stray = dir
        .path()
        .join(format!("a/b/.uploads/{}", uuid::Uuid::new_v4()));
    std::fs::write(&stray, b"x").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(reg.expire_uploads(true).await.unwrap() >= 1);
    assert!(!stray.exists());
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("x");
    let id = {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        let id = reg.start_upload(&r).await.unwrap();
        reg.append_upload(&r, &id, Some(0), body(b"hello "))
            .await
            .unwrap();
        id
    };
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(reg.upload_size(&r, &id).await.unwrap(), 6);
    let d = Digest::sha256_of(b"hello world");
    reg.complete_upload(&r, &id, &d, Some(6), Some(body(b"world")))
        .await
        .unwrap();
    assert_eq!(reg.blob_size(&r, &d).await.unwrap(), Some(11));
}

#[tokio::test]
async fn dedupe_shares_one_inode_and_deletes_per_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let data = vec![7u8; 100_000];
    let d = push_blob(&reg, &repo("one"), &data).await;
    push_blob(&reg, &repo("two"), &data).await;
    let path = |r: &str| dir.path().join(format!("{r}/blobs/sha256/{}", d.hex()));
    let (m1, m2) = (
        std::fs::metadata(path("one")).unwrap(),
        std::fs::metadata(path("two")).unwrap(),
    );
    assert_eq!(m1.ino(), m2.ino());
    assert_eq!(m1.nlink(), 2);
    reg.delete_blob(&repo("one"), &d).await.unwrap();
    assert_eq!(std::fs::read(path("two")).unwrap(), data);
    assert_eq!(reg.blob_size(&repo("one"), &d).await.unwrap(), None);
}

#[tokio::test]
async fn without_dedupe_copies_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        dedupe: false,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let d = push_blob(&reg, &repo("one"), b"abc").await;
    assert!(
        reg.mount_blob(&repo("two"), &d, Some(&repo("one")))
            .await
            .unwrap()
    );
    let path = |r: &str| dir.path().join(format!("{r}/blobs/sha256/{}", d.hex()));
    assert_ne!(
        std::fs::metadata(path("one")).unwrap().ino(),
        std::fs::metadata(path("two")).unwrap().ino()
    );
    assert_eq!(std::fs::read(path("two")).unwrap(), b"abc");
}

#[tokio::test]
async fn sync_finds_nested_layouts_and_repositories_named_blobs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        push_image(&reg, &repo("blobs"), "v1", b"1").await;
        push_image(&reg, &repo("a"), "v1", b"1").await;
        push_image(&reg, &repo("blobs/c"), "v1", b"1").await;
    }
    std::fs::remove_file(dir.path().join("_zot/meta.redb")).unwrap();
    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(report.repositories, 3);
    assert_eq!(report.rebuilt, 3);
    let (repos, _) = reg.catalog(None, 100).unwrap();
    assert_eq!(repos, vec!["a", "blobs", "blobs/c"]);
    for r in ["a", "blobs", "blobs/c"] {
        assert_eq!(reg.tags(&repo(r), None, 10).unwrap().0, vec!["v1"]);
    }
}

#[tokio::test]
async fn a_changed_index_is_rebuilt_and_a_removed_layout_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        push_image(&reg, &repo("keep"), "v1", b"1").await;
        push_image(&reg, &repo("gone"), "v1", b"1").await;
    }
    // Retag behind the registry's back and remove a repository.
    let index_path = dir.path().join("keep/index.json");
    let index = std::fs::read_to_string(&index_path)
        .unwrap()
        .replace("\"v1\"", "\"v2\"");
    std::fs::write(&index_path, index).unwrap();
    std::fs::remove_dir_all(dir.path().join("gone")).unwrap();
    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!((report.rebuilt, report.removed), (1, 1));
    assert_eq!(reg.tags(&repo("keep"), None, 10).unwrap().0, vec!["v2"]);
    assert_eq!(reg.catalog(None, 10).unwrap().0, vec!["keep"]);
    // An unchanged store is not rebuilt.
    drop(reg);
    let (_, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(report.rebuilt, 0);
}

/// A rebuild of more layouts than one metadata transaction takes (256 a
/// batch) rebuilds every one, with a broken layout among them skipped,
/// and the rebuilt metadata serves tags, blobs and the catalogue.
#[tokio::test]
async fn a_rebuild_of_many_layouts_commits_them_all() {
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        for i in 0..N {
            digests.push(push_image(&reg, &repo(&format!("r/{i:03}")), "v1", b"1").await);
        }
        push_image(&reg, &repo("r/bad"), "v1", b"1").await;
    }
    std::fs::write(dir.path().join("r/bad/index.json"), b"{not json").unwrap();
    std::fs::remove_file(dir.path().join(zot_storage::paths::META_DB)).unwrap();
    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(
        (report.repositories, report.rebuilt, report.broken),
        (N + 1, N, 1)
    );
    let (names, more) = reg.catalog(None, N + 10).unwrap();
    assert!(!more);
    assert_eq!(names.len(), N);
    for (i, d) in digests.iter().enumerate() {
        let r = repo(&format!("r/{i:03}"));
        assert_eq!(reg.tags(&r, None, 10).unwrap().0, vec!["v1"], "{r}");
        let rec = reg
            .manifest_record(&r, &Reference::Tag("v1".parse().unwrap()))
            .unwrap();
        assert_eq!(rec.digest, *d, "{r}");
    }
    // The rebuilt store is in step: nothing is rebuilt on the next start.
    drop(reg);
    let (_, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!((report.rebuilt, report.broken), (0, 1));
}

/// `storage.commit` fsyncs what it stores (counted by the driver), and
/// nothing is fsynced without it; the content is the same either way.
#[tokio::test]
async fn commit_mode_fsyncs_and_stores_the_same_content() {
    for commit in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("_zot")).unwrap();
        let meta = zot_storage::MetaStore::open(&dir.path().join("_zot/meta.redb")).unwrap();
        let backend =
            std::sync::Arc::new(zot_storage::LocalBackend::new(dir.path().into(), commit).unwrap());
        let reg = Registry::new(backend.clone(), meta, Options::default());
        let d = push_image(&reg, &repo("c"), "v1", b"1").await;
        let rec = reg
            .manifest_record(&repo("c"), &Reference::Digest(d.clone()))
            .unwrap();
        let bytes = reg.manifest_bytes(&repo("c"), &rec).await.unwrap();
        assert!(d.verify(&bytes));
        let before = backend.fsyncs();
        if commit {
            // At least the two blobs, the manifest and index.json, each a
            // file and its folder.
            assert!(before >= 8, "commit on: only {before} fsyncs");
        } else {
            assert_eq!(before, 0, "commit off, yet fsyncs");
        }
        reg.delete_manifest(&repo("c"), &Reference::Tag("v1".parse().unwrap()))
            .await
            .unwrap();
        assert_eq!(
            backend.fsyncs() > before,
            commit,
            "an index.json rewrite must be fsynced exactly with commit on"
        );
    }
}

#[tokio::test]
async fn a_corrupt_layout_is_skipped_and_foreign_tags_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (reg, _) = open_local(dir.path(), false, Options::default())
            .await
            .unwrap();
        push_image(&reg, &repo("good"), "v1", b"1").await;
        push_image(&reg, &repo("bad"), "v1", b"1").await;
        push_image(&reg, &repo("odd"), "v1", b"1").await;
    }
    std::fs::write(dir.path().join("bad/index.json"), b"{not json").unwrap();
    // Tags other tools allow but the distribution spec does not.
    let odd = dir.path().join("odd/index.json");
    let text = std::fs::read_to_string(&odd).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut extra = index["manifests"][0].clone();
    extra["annotations"]["org.opencontainers.image.ref.name"] = "release/1".into();
    index["manifests"].as_array_mut().unwrap().push(extra);
    std::fs::write(&odd, serde_json::to_vec(&index).unwrap()).unwrap();

    let (reg, report) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    assert_eq!(report.broken, 1);
    assert_eq!(reg.catalog(None, 10).unwrap().0, vec!["good", "odd"]);
    assert_eq!(reg.tags(&repo("odd"), None, 10).unwrap().0, vec!["v1"]);
}

#[tokio::test]
async fn open_upload_sessions_are_capped_per_repository() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_uploads_per_repo: 3,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let r = repo("capped");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(reg.start_upload(&r).await.unwrap());
    }
    assert!(matches!(
        reg.start_upload(&r).await,
        Err(StorageError::TooManyUploads(3))
    ));
    // Other repositories have their own allowance.
    reg.start_upload(&repo("other")).await.unwrap();
    reg.cancel_upload(&r, &ids[0]).await.unwrap();
    reg.start_upload(&r).await.unwrap();
}

#[tokio::test]
async fn create_only_pushes_never_move_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let r = repo("c");
    let first = push_image(&reg, &r, "v1", b"1").await;
    let config = push_blob(&reg, &r, b"{}").await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
    );
    let tag = |t: &str| Reference::Tag(t.parse().unwrap());
    let refused = reg
        .put_manifest_with(
            &r,
            &tag("v1"),
            None,
            manifest.as_bytes(),
            zot_storage::TagPolicy::CreateOnly,
        )
        .await;
    assert!(matches!(refused, Err(StorageError::TagExists)));
    assert_eq!(reg.manifest_record(&r, &tag("v1")).unwrap().digest, first);
    reg.put_manifest_with(
        &r,
        &tag("v2"),
        None,
        manifest.as_bytes(),
        zot_storage::TagPolicy::CreateOnly,
    )
    .await
    .unwrap();
    assert_eq!(reg.tags(&r, None, 10).unwrap().0, vec!["v1", "v2"]);
}

#[tokio::test]
async fn blob_file_opens_a_local_blob_deduped_or_not() {
    use std::io::Read;
    for dedupe in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            dedupe,
            ..Options::default()
        };
        let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
        let (a, b) = (repo("a"), repo("b"));
        let data = b"layer bytes read on a thread of its own";
        let d = push_blob(&reg, &a, data).await;
        assert_eq!(push_blob(&reg, &b, data).await, d);
        for r in [&a, &b] {
            let mut file = reg.blob_file(r, &d).unwrap().expect("a local file");
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert_eq!(read, data, "dedupe {dedupe}, repository {r}");
        }
        let unknown = Digest::sha256_of(b"never pushed");
        assert!(matches!(
            reg.blob_file(&a, &unknown),
            Err(StorageError::BlobUnknown)
        ));
    }
}

//! The metadata store kept in step with the layouts across rebuilds and
//! edits made behind the registry's back.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use bytes::Bytes;
use std::convert::Infallible;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{Registry, open_local};

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

/// Pushes an image whose layer is `layer`; returns the manifest's digest.
async fn push_image(reg: &Registry, r: &RepoName, tag: &str, layer: &[u8]) -> Digest {
    let config = push_blob(reg, r, b"{}").await;
    let layer_digest = push_blob(reg, r, layer).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        layer.len()
    );
    reg.put_manifest(
        r,
        &Reference::Tag(tag.parse().unwrap()),
        None,
        manifest.as_bytes(),
    )
    .await
    .unwrap()
    .digest
}

/// Rewrites a file as another tool would: new content (or the same), new inode.
fn rewrite(path: &std::path::Path, content: &[u8]) {
    let tmp = path.with_extension("edit");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A rebuild at start-up (after a crash, `index.json` newer than the
/// store) keeps the push and pull times of the repository's manifests.
#[tokio::test]
async fn a_rebuild_keeps_push_and_pull_times() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("times/app");
    let (reg, _) = open_local(dir.path(), false, Default::default())
        .await
        .unwrap();
    let digest = push_image(&reg, &r, "v1", b"layer").await;
    reg.record_pull(&r, &digest);
    reg.flush_pulls().await.unwrap();
    let before = reg.metadata().times(&r, &digest).unwrap();
    assert!(before.pushed.is_some() && before.pulled.is_some());
    drop(reg);

    let index = dir.path().join("times/app/index.json");
    rewrite(&index, &std::fs::read(&index).unwrap());
    let (reg, report) = open_local(dir.path(), false, Default::default())
        .await
        .unwrap();
    assert_eq!(report.rebuilt, 1);
    assert_eq!(
        reg.metadata().times(&r, &digest).unwrap(),
        before,
        "the rebuild forgot when the manifest was pushed and pulled"
    );
}

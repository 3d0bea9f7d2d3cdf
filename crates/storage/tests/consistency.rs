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

/// `index.json` edited by hand while the registry runs, then one write
/// through the API: the edit reaches the metadata store (a tag added by
/// hand is served, one removed by hand is not), GC keeps what the kept
/// manifests need, and a restart agrees.
#[tokio::test]
async fn a_hand_edit_of_index_json_survives_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("hand/edit");
    let (reg, _) = open_local(dir.path(), false, Default::default())
        .await
        .unwrap();
    let m1 = push_image(&reg, &r, "a", b"layer one").await;
    let m2 = push_image(&reg, &r, "c", b"layer two").await;

    // By hand: tag `b` for m1, and m2 (tag `c`) gone.
    let path = dir.path().join("hand/edit/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entries = index["manifests"].as_array_mut().unwrap();
    let mut b = entries
        .iter()
        .find(|e| e["digest"] == m1.to_string())
        .unwrap()
        .clone();
    b["annotations"]["org.opencontainers.image.ref.name"] = "b".into();
    entries.retain(|e| e["digest"] != m2.to_string());
    entries.push(b);
    rewrite(&path, &serde_json::to_vec(&index).unwrap());

    let m3 = push_image(&reg, &r, "d", b"layer three").await;
    let tags = |reg: &Registry| reg.tags(&r, None, 100).unwrap().0;
    assert_eq!(tags(&reg), ["a", "b", "d"], "the hand edit was lost");
    let by_tag = |t: &str| Reference::Tag(t.parse().unwrap());
    assert!(reg.manifest_record(&r, &by_tag("c")).is_err());
    assert!(
        reg.manifest_record(&r, &Reference::Digest(m2.clone()))
            .is_err()
    );
    assert_eq!(reg.manifest_record(&r, &by_tag("b")).unwrap().digest, m1);

    let report = reg
        .gc_repo(&r, &zot_storage::GcOptions::default())
        .await
        .unwrap();
    assert_eq!(report.problems, 0, "{report:?}");
    for (m, layer) in [(&m1, &b"layer one"[..]), (&m3, b"layer three")] {
        let rec = reg
            .manifest_record(&r, &Reference::Digest(m.clone()))
            .unwrap();
        reg.manifest_bytes(&r, &rec).await.unwrap();
        let l = Digest::sha256_of(layer);
        assert!(
            reg.blob_size(&r, &l).await.unwrap().is_some(),
            "GC removed {l}"
        );
    }
    let gone = Digest::sha256_of(b"layer two");
    assert!(reg.blob_size(&r, &gone).await.unwrap().is_none());
    drop(reg);

    let (reg, _) = open_local(dir.path(), false, Default::default())
        .await
        .unwrap();
    assert_eq!(tags(&reg), ["a", "b", "d"]);
}

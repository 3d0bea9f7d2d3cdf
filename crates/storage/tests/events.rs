//! Events made by storage operations: one per change, written to the
//! outbox with it; none for an identical re-push.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use bytes::Bytes;
use std::convert::Infallible;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{Options, Registry, open_local};

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

async fn push_blob(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    reg.complete_upload(r, &id, &d, None, Some(body(data)))
        .await
        .unwrap();
    d
}

fn manifest(config: &Digest, annotations: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[]{annotations}}}"#
    )
}

fn tag(t: &str) -> Reference {
    Reference::Tag(t.parse().unwrap())
}

/// (type, data) of every event in the outbox, in order.
fn events(reg: &Registry) -> Vec<(String, serde_json::Value)> {
    reg.outbox()
        .outbox_after(0, 1000)
        .unwrap()
        .into_iter()
        .map(|q| {
            assert_eq!(q.event.repo, "a/b");
            (
                q.event.event_type,
                serde_json::from_str(&q.event.data).unwrap(),
            )
        })
        .collect()
}

fn types(reg: &Registry) -> Vec<String> {
    events(reg).into_iter().map(|(t, _)| t).collect()
}

#[tokio::test]
async fn every_change_makes_one_event_and_a_repush_none() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        events: Some(1000),
        mandatory_annotations: vec!["org.opencontainers.image.title".into()],
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let r: RepoName = "a/b".parse().unwrap();
    let config = push_blob(&reg, &r, b"{}").await;
    assert_eq!(types(&reg), vec!["zotregistry.repository.created"]);
    push_blob(&reg, &r, b"layer").await;
    assert_eq!(types(&reg).len(), 1, "a blob changes no image");

    let good = manifest(
        &config,
        r#","annotations":{"org.opencontainers.image.title":"x"}"#,
    );
    let pushed = reg
        .put_manifest(&r, &tag("v1"), None, good.as_bytes())
        .await
        .unwrap();
    // Identical re-pushes, by tag and by digest: nothing.
    reg.put_manifest(&r, &tag("v1"), None, good.as_bytes())
        .await
        .unwrap();
    let by_digest = Reference::Digest(pushed.digest.clone());
    reg.put_manifest(&r, &by_digest, None, good.as_bytes())
        .await
        .unwrap();
    // The same manifest under another tag: an update of that tag.
    reg.put_manifest(&r, &tag("v2"), None, good.as_bytes())
        .await
        .unwrap();
    // Refused by lint.
    let bad = manifest(&config, "");
    assert!(
        reg.put_manifest(&r, &tag("v3"), None, bad.as_bytes())
            .await
            .is_err()
    );
    reg.delete_manifest(&r, &tag("v2")).await.unwrap();
    reg.delete_manifest(&r, &by_digest).await.unwrap();

    let all = events(&reg);
    let got: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        got,
        vec![
            "zotregistry.repository.created",
            "zotregistry.image.updated",
            "zotregistry.image.updated",
            "zotregistry.image.lint_failed",
            "zotregistry.image.deleted",
            "zotregistry.image.deleted",
        ]
    );
    let digest = pushed.digest.to_string();
    let media = "application/vnd.oci.image.manifest.v1+json";
    assert_eq!(all[0].1, serde_json::json!({"name": "a/b"}));
    assert_eq!(
        all[1].1,
        serde_json::json!({"name": "a/b", "reference": "v1", "digest": digest,
            "mediaType": media, "manifest": good})
    );
    assert_eq!(all[2].1["reference"], "v2");
    assert_eq!(all[3].1["reference"], "v3");
    assert_eq!(all[3].1["manifest"], bad.as_str());
    assert_eq!(
        all[3].1["digest"],
        Digest::sha256_of(bad.as_bytes()).to_string()
    );
    assert_eq!(
        all[4].1,
        serde_json::json!({"name": "a/b", "reference": "v2", "digest": digest, "mediaType": media})
    );
    assert_eq!(all[5].1["reference"], digest.as_str());
    // No `actor`/`request` outside a request.
    assert!(all.iter().all(|(_, d)| d.get("request").is_none()));
}

#[tokio::test]
async fn a_scan_is_recorded_with_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        events: Some(10),
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let r: RepoName = "a/b".parse().unwrap();
    let digest = Digest::sha256_of(b"m");
    let image = zot_storage::events::Image {
        reference: "v1",
        digest: &digest,
        media_type: "application/vnd.oci.image.manifest.v1+json",
    };
    let summary = zot_storage::events::ScanSummary {
        count: 3,
        critical_count: 1,
        max_severity: "CRITICAL".into(),
        ..Default::default()
    };
    reg.record_scanned(&r, &image, &summary).await.unwrap();
    let all = events(&reg);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "zotregistry.image.scanned");
    assert_eq!(all[0].1["reference"], "v1");
    assert_eq!(
        all[0].1["summary"],
        serde_json::json!({"count": 3, "fixableCount": 0, "unknownCount": 0, "lowCount": 0,
            "mediumCount": 0, "highCount": 0, "criticalCount": 1, "maxSeverity": "CRITICAL"})
    );
    assert!(
        !reg.repo_exists(&r).unwrap(),
        "no repository row for an event alone"
    );
}

#[tokio::test]
async fn events_off_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let r: RepoName = "a/b".parse().unwrap();
    let config = push_blob(&reg, &r, b"{}").await;
    let m = manifest(&config, "");
    reg.put_manifest(&r, &tag("v1"), None, m.as_bytes())
        .await
        .unwrap();
    assert!(types(&reg).is_empty());
}

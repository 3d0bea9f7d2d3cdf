//! Blobs listed as manifests that are none (a layer over 4 MiB, bytes that
//! are not JSON, JSON of no supported kind), as a layout written before
//! index children were checked may hold: GC keeps them, counts them and
//! still sweeps the repository; the start-up rebuild, scrub and lint never
//! read more than 4 MiB of anything they parse.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::recorded::open_recorded as open;
use gc_common::*;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zot_oci::{Digest, RepoName};
use zot_storage::{GcOptions, MAX_MANIFEST_BYTES, Options, ScrubFault, ScrubItem};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": Digest::sha256_of(data).to_string(),
        "size": data.len(),
    })
}

/// Lists `data` in `repo`'s index.json under `tag`, by hand.
fn list_by_hand(root: &Path, repo: &RepoName, data: &[u8], media_type: &str, tag: &str) {
    let path = root.join(repo.as_str()).join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut desc = descriptor(media_type, data);
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    index["manifests"].as_array_mut().unwrap().push(desc);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn no_delay() -> GcOptions {
    GcOptions {
        delay: Duration::ZERO,
        retention: zot_storage::retention::Retention {
            delay: Duration::ZERO,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn gc_sweeps_past_blobs_listed_as_manifests_and_reads_none_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = repo("a");
    let big = vec![7u8; MAX_MANIFEST_BYTES as usize + 1024 * 1024];
    let junk = b"not json at all".to_vec();
    let mentioned = b"named by a schema 1 manifest".to_vec();
    let legacy = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 1,
        "fsLayers": [{"blobSum": Digest::sha256_of(&mentioned).to_string()}],
    }))
    .unwrap();
    let image = image_manifest(&[b"layer"]);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, &big),
            descriptor(OCI_MANIFEST, &junk),
            descriptor(OCI_MANIFEST, image.as_bytes()),
        ],
    }))
    .unwrap();
    {
        let (reg, _) = open(root, Options::default()).await;
        push_image(&reg, &a, "v1", &[b"layer"]).await;
        for blob in [&big, &junk, &mentioned, &legacy, &index] {
            push_blob(&reg, &a, blob).await;
        }
        // Refused on push now; a layout written before may hold it.
        let err = reg
            .put_manifest(&a, &tag("multi"), Some(OCI_INDEX), &index)
            .await
            .unwrap_err();
        assert!(
            matches!(err, zot_storage::StorageError::ManifestBlobUnknown(_)),
            "{err}"
        );
    }
    list_by_hand(root, &a, &index, OCI_INDEX, "multi");
    list_by_hand(root, &a, &legacy, OCI_MANIFEST, "legacy");

    // The start-up rebuild walks the index.
    let (reg, record) = open(root, Options::default()).await;
    let orphan = push_blob(&reg, &a, b"orphan").await;

    let report = reg.gc_repo(&a, &no_delay()).await.unwrap();
    assert_eq!(report.blobs_removed, 1, "the orphan: {report:?}");
    assert_eq!(report.problems, 3, "big, junk, legacy: {report:?}");
    let file = |d: &Digest| root.join(format!("a/blobs/sha256/{}", d.hex()));
    assert!(!file(&orphan).exists());
    for kept in [&big, &junk, &mentioned, &legacy, &index] {
        assert!(file(&Digest::sha256_of(kept)).exists());
    }
    pull_image(&reg, &a, "v1").await;

    // The next run sweeps again.
    let orphan = push_blob(&reg, &a, b"orphan 2").await;
    let report = reg.gc_repo(&a, &no_delay()).await.unwrap();
    assert_eq!(report.blobs_removed, 1, "{report:?}");
    assert!(!file(&orphan).exists());

    // Scrub names them as what they are: intact blobs that are no manifests.
    let scrub = reg.scrub_repo(&a).await;
    let mut found: Vec<(Option<String>, ScrubItem, ScrubFault)> = scrub
        .problems
        .iter()
        .map(|p| (p.reference.clone(), p.item.clone(), p.fault))
        .collect();
    found.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    let not = |reference: &str, data: &[u8]| {
        (
            Some(reference.to_owned()),
            ScrubItem::Blob(Digest::sha256_of(data)),
            ScrubFault::NotManifest,
        )
    };
    let mut want = vec![
        not("legacy", &legacy),
        not("multi", &big),
        not("multi", &junk),
    ];
    want.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
    assert_eq!(found, want);

    assert!(
        record.largest_read.load(Ordering::SeqCst) <= MAX_MANIFEST_BYTES,
        "an object over 4 MiB was read whole"
    );
}

#[tokio::test]
async fn lint_reads_no_config_over_the_manifest_limit() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        mandatory_annotations: vec!["org.opencontainers.image.title".into()],
        ..Options::default()
    };
    let (reg, record) = open(dir.path(), options).await;
    let a = repo("a");
    let config = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    push_blob(&reg, &a, &config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [],
    }))
    .unwrap();
    let err = reg
        .put_manifest(&a, &tag("t"), Some(OCI_MANIFEST), &manifest)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("missing mandatory annotations: org.opencontainers.image.title"),
        "{err}"
    );
    assert!(
        record.largest_read.load(Ordering::SeqCst) <= MAX_MANIFEST_BYTES,
        "the config was read whole"
    );
}

//! The registry's semantics on an S3 bucket (SeaweedFS): pushes monolithic
//! and chunked (a 20 MiB blob in several PATCHes over 5 MiB parts),
//! manifests and tags, mounts, deletes, GC, and a restart that finds the
//! layouts in the bucket again.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use bytes::Bytes;
use futures_util::StreamExt;
use s3_common::seaweed;
use std::convert::Infallible;
use std::time::Duration;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{
    Backend, GcOptions, Options, Registry, S3Backend, S3Options, StorageError, open_s3,
};

const CHUNK: u64 = 5 << 20;

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>> {
    // Frames of 64 KiB, as a client's body arrives.
    let frames: Vec<_> = data
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(frames)
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

async fn push_blob(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    reg.complete_upload(r, &id, &d, None, Some(body(data)))
        .await
        .unwrap();
    d
}

async fn read_blob(reg: &Registry, r: &RepoName, d: &Digest, start: u64, len: u64) -> Vec<u8> {
    let mut s = reg.blob_stream(r, d, start, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

fn manifest(config: &Digest, layers: &[(&Digest, usize)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| {
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#)
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

struct Bucket {
    config: zot_config::S3Config,
    meta: tempfile::TempDir,
}

fn bucket() -> Bucket {
    let server = seaweed::shared();
    Bucket {
        config: server.config(&server.bucket(), "zot", CHUNK),
        meta: tempfile::tempdir().unwrap(),
    }
}

async fn open(b: &Bucket) -> Registry {
    let options = Options::default();
    open_s3(b.meta.path(), &b.config, &S3Options::default(), options)
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_tag_delete_gc_on_s3() {
    let b = bucket();
    let reg = open(&b).await;
    let r = repo("library/alpine");

    // Monolithic.
    let config = push_blob(&reg, &r, b"{}").await;
    let small = content(1000, 1);
    let small_d = push_blob(&reg, &r, &small).await;
    assert_eq!(reg.blob_size(&r, &small_d).await.unwrap(), Some(1000));

    // Chunked: a 20 MiB blob in five PATCHes of 4 MiB (parts of 5 MiB
    // fill across them), completed without a body.
    let big = content(20 << 20, 2);
    let big_d = Digest::sha256_of(&big);
    let id = reg.start_upload(&r).await.unwrap();
    for (i, piece) in big.chunks(4 << 20).enumerate() {
        let start = (i * (4 << 20)) as u64;
        let size = reg
            .append_upload(&r, &id, Some(start), body(piece))
            .await
            .unwrap();
        assert_eq!(size, start + piece.len() as u64);
        assert_eq!(reg.upload_size(&r, &id).await.unwrap(), size);
    }
    // A chunk that does not follow is refused.
    let wrong = reg.append_upload(&r, &id, Some(3), body(b"x")).await;
    assert!(matches!(wrong, Err(StorageError::RangeInvalid { .. })));
    reg.complete_upload(
        &r,
        &id,
        &big_d,
        None,
        None::<futures_util::stream::Empty<Result<Bytes, Infallible>>>,
    )
    .await
    .unwrap();
    assert_eq!(reg.blob_size(&r, &big_d).await.unwrap(), Some(20 << 20));
    let all = read_blob(&reg, &r, &big_d, 0, 20 << 20).await;
    assert!(all == big, "the 20 MiB blob read back differs");
    let mid = read_blob(&reg, &r, &big_d, (5 << 20) - 7, 14).await;
    assert_eq!(mid, &big[(5 << 20) - 7..(5 << 20) + 7]);

    // A digest mismatch stores nothing.
    let id = reg.start_upload(&r).await.unwrap();
    let bad = reg
        .complete_upload(&r, &id, &small_d, None, Some(body(b"other")))
        .await;
    assert!(matches!(bad, Err(StorageError::DigestInvalid(_))));

    // Manifests and tags.
    let m = manifest(&config, &[(&small_d, 1000), (&big_d, 20 << 20)]);
    let tag = Reference::Tag("3.20".parse().unwrap());
    let pushed = reg
        .put_manifest(&r, &tag, None, m.as_bytes())
        .await
        .unwrap();
    let record = reg.manifest_record(&r, &tag).unwrap();
    assert_eq!(record.digest, pushed.digest);
    assert_eq!(reg.manifest_bytes(&r, &record).await.unwrap(), m.as_bytes());
    let latest = Reference::Tag("latest".parse().unwrap());
    reg.put_manifest(&r, &latest, None, m.as_bytes())
        .await
        .unwrap();
    let (tags, more) = reg.tags(&r, None, 10).unwrap();
    assert_eq!(
        (tags, more),
        (vec!["3.20".to_owned(), "latest".to_owned()], false)
    );
    assert_eq!(
        reg.catalog(None, 10).unwrap().0,
        vec!["library/alpine".to_owned()]
    );

    // Mount into another repository (dedupe: a server-side copy for now).
    let other = repo("other");
    assert!(reg.mount_blob(&other, &big_d, Some(&r)).await.unwrap());
    assert_eq!(reg.blob_size(&other, &big_d).await.unwrap(), Some(20 << 20));
    let head = read_blob(&reg, &other, &big_d, 0, 4).await;
    assert_eq!(head, &big[..4]);

    // The bucket holds OCI image layouts under the prefix.
    let raw = S3Backend::open(&b.config, &S3Options::default()).unwrap();
    let index = raw.read("library/alpine/index.json").await.unwrap();
    let index = String::from_utf8(index).unwrap();
    assert!(
        index.contains(&pushed.digest.to_string()) && index.contains("3.20"),
        "{index}"
    );
    assert!(
        raw.size("library/alpine/oci-layout")
            .await
            .unwrap()
            .is_some()
    );
    let blob_key = format!("library/alpine/blobs/sha256/{}", big_d.hex());
    // A chunked upload of 16 MiB or more is parked (a placeholder at its
    // key until the move, `parked.rs`); once moved, the layout is whole.
    assert_eq!(raw.size(&blob_key).await.unwrap(), Some(0));
    assert_eq!(reg.move_parked_now().await.unwrap(), 1);
    assert_eq!(raw.size(&blob_key).await.unwrap(), Some(20 << 20));
    assert!(
        raw.list("library/alpine/.uploads")
            .await
            .unwrap()
            .is_empty()
    );

    // Delete a tag's manifest by digest: both tags go, GC removes the blobs.
    reg.delete_manifest(&r, &Reference::Digest(pushed.digest.clone()))
        .await
        .unwrap();
    assert!(matches!(
        reg.manifest_record(&r, &latest),
        Err(StorageError::ManifestUnknown)
    ));
    let gc = GcOptions {
        delay: Duration::ZERO,
        retention: zot_storage::retention::Retention {
            delay: Duration::ZERO,
            ..Default::default()
        },
    };
    let report = reg.gc_repo(&r, &gc).await.unwrap();
    assert!(report.blobs_removed >= 3, "{report:?}");
    assert_eq!(reg.blob_size(&r, &big_d).await.unwrap(), None);
    assert_eq!(raw.size(&blob_key).await.unwrap(), None);
    // The mounted copy lives on in the other repository.
    assert_eq!(reg.blob_size(&other, &big_d).await.unwrap(), Some(20 << 20));
    reg.delete_blob(&other, &big_d).await.unwrap();
    assert_eq!(reg.blob_size(&other, &big_d).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_the_layouts_in_the_bucket() {
    let b = bucket();
    let r = repo("team/app");
    let digest = {
        let reg = open(&b).await;
        let config = push_blob(&reg, &r, b"{}").await;
        let layer = push_blob(&reg, &r, &content(6 << 20, 3)).await;
        let m = manifest(&config, &[(&layer, 6 << 20)]);
        let tag = Reference::Tag("v1".parse().unwrap());
        reg.put_manifest(&r, &tag, None, m.as_bytes())
            .await
            .unwrap();
        reg.flush_metadata().unwrap();
        reg.manifest_record(&r, &tag).unwrap().digest
    };
    // A fresh metadata store: everything is rebuilt from the bucket.
    let b2 = Bucket {
        config: b.config.clone(),
        meta: tempfile::tempdir().unwrap(),
    };
    let (reg, report) = open_s3(
        b2.meta.path(),
        &b2.config,
        &S3Options::default(),
        Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.repositories, 1, "{report:?}");
    let record = reg
        .manifest_record(&r, &Reference::Tag("v1".parse().unwrap()))
        .unwrap();
    assert_eq!(record.digest, digest);
    // The same metadata store again: nothing to rebuild (fingerprints match).
    drop(reg);
    let (_reg, report) = open_s3(
        b2.meta.path(),
        &b2.config,
        &S3Options::default(),
        Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.rebuilt, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_lose_a_tag_update() {
    // Two registries (each its own metadata store) on one bucket prefix:
    // their index.json writes race, and conditional writes keep every tag.
    let b = bucket();
    let other_meta = tempfile::tempdir().unwrap();
    let one = std::sync::Arc::new(open(&b).await);
    let (two, _) = open_s3(
        other_meta.path(),
        &b.config,
        &S3Options::default(),
        Options::default(),
    )
    .await
    .unwrap();
    let two = std::sync::Arc::new(two);
    let r = repo("shared/app");
    let config = push_blob(&one, &r, b"{}").await;
    let layer = push_blob(&one, &r, b"layer").await;
    // The second instance needs the blobs in its own metadata store too.
    assert_eq!(push_blob(&two, &r, b"{}").await, config);
    assert_eq!(push_blob(&two, &r, b"layer").await, layer);
    let m = manifest(&config, &[(&layer, 5)]);
    let mut tasks = Vec::new();
    for i in 0..12 {
        for (name, reg) in [("one", one.clone()), ("two", two.clone())] {
            let (r, m) = (r.clone(), m.clone());
            tasks.push(tokio::spawn(async move {
                let tag = Reference::Tag(format!("{name}-{i}").parse().unwrap());
                reg.put_manifest(&r, &tag, None, m.as_bytes()).await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let raw = S3Backend::open(&b.config, &S3Options::default()).unwrap();
    let index = String::from_utf8(raw.read("shared/app/index.json").await.unwrap()).unwrap();
    let index = zot_storage::LayoutIndex::parse(index.as_bytes()).unwrap();
    let mut tags: Vec<String> = index
        .descriptors()
        .into_iter()
        .filter_map(|(_, t)| t)
        .collect();
    tags.sort();
    let mut want: Vec<String> = (0..12)
        .flat_map(|i| [format!("one-{i}"), format!("two-{i}")])
        .collect();
    want.sort();
    assert_eq!(tags, want, "a tag update was lost");
    // Each instance learns the other's tags at its next write.
    let tag = Reference::Tag("last".parse().unwrap());
    one.put_manifest(&r, &tag, None, m.as_bytes())
        .await
        .unwrap();
    let (listed, _) = one.tags(&r, None, 100).unwrap();
    assert_eq!(listed.len(), 25, "{listed:?}");
}

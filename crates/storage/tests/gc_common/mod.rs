//! Helpers of the GC, retention and scrub tests: images built from bytes,
//! pushed and pulled through `Registry`.
#![allow(dead_code, reason = "each test file uses a part")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

pub mod recorded;

use bytes::Bytes;
use futures_util::StreamExt;
use std::convert::Infallible;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::Registry;

pub type Body = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>>;

pub fn body(data: &[u8]) -> Body {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

pub fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

pub fn tag(s: &str) -> Reference {
    Reference::Tag(s.parse().unwrap())
}

pub async fn push_blob(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let id = reg.start_upload(r).await.unwrap();
    reg.complete_upload(r, &id, &d, None, Some(body(data)))
        .await
        .unwrap();
    d
}

/// An image manifest with config `{}` and the given layers.
pub fn image_manifest(layers: &[&[u8]]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
                Digest::sha256_of(l),
                l.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{}]}}"#,
        Digest::sha256_of(b"{}"),
        layers.join(",")
    )
}

/// Pushes the blobs and the manifest; returns the manifest's digest.
pub async fn push_image(reg: &Registry, r: &RepoName, t: &str, layers: &[&[u8]]) -> Digest {
    push_blob(reg, r, b"{}").await;
    for l in layers {
        push_blob(reg, r, l).await;
    }
    let m = image_manifest(layers);
    reg.put_manifest(r, &tag(t), None, m.as_bytes())
        .await
        .unwrap()
        .digest
}

pub async fn read_blob(reg: &Registry, r: &RepoName, d: &Digest) -> Vec<u8> {
    try_read_blob(reg, r, d).await.unwrap()
}

pub async fn try_read_blob(reg: &Registry, r: &RepoName, d: &Digest) -> Result<Vec<u8>, String> {
    let size = reg
        .blob_size(r, d)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{r}: blob {d} missing"))?;
    let mut stream = reg
        .blob_stream(r, d, 0, size)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    if !d.verify(&out) {
        return Err(format!("{r}: blob {d} has other content"));
    }
    Ok(out)
}

/// Pulls a tagged image whole: manifest, config and layers.
pub async fn try_pull_image(reg: &Registry, r: &RepoName, t: &str) -> Result<(), String> {
    let rec = reg.manifest_record(r, &tag(t)).map_err(|e| e.to_string())?;
    let bytes = reg
        .manifest_bytes(r, &rec)
        .await
        .map_err(|e| format!("{r}:{t}: {e}"))?;
    let parsed = zot_oci::ParsedManifest::parse(&bytes, Some(&rec.media_type), true)
        .map_err(|e| e.to_string())?;
    for blob in parsed.required_blobs() {
        try_read_blob(reg, r, &blob.digest)
            .await
            .map_err(|e| format!("{r}:{t}: {e}"))?;
    }
    Ok(())
}

pub async fn pull_image(reg: &Registry, r: &RepoName, t: &str) {
    try_pull_image(reg, r, t).await.unwrap();
}

/// GC with no delay and one retention policy for `apps/**` with `rule`
/// (untagged manifests and orphan referrers removed).
pub fn retention_options(
    rule: zot_storage::retention::KeepTags,
    dry_run: bool,
) -> zot_storage::GcOptions {
    use zot_storage::retention::{Retention, RetentionPolicy};
    zot_storage::GcOptions {
        delay: std::time::Duration::ZERO,
        retention: Retention {
            dry_run,
            delay: std::time::Duration::ZERO,
            policies: vec![RetentionPolicy {
                repositories: vec![zot_config::glob::Glob::new("apps/**").unwrap()],
                delete_referrers: true,
                delete_untagged: true,
                keep_tags: vec![rule],
            }],
        },
    }
}

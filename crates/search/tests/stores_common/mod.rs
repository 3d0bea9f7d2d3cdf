//! A real registry on a temporary directory, search on, and images to push.
#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use bytes::Bytes;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use zot_oci::{Digest, Reference, RepoName};
use zot_search::stores::StoresSource;
use zot_search::{RepoData, Source};
use zot_storage::{Options, Registry, Stores, TagPolicy, open_local};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

pub fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

pub async fn open(dir: &Path, search: bool) -> Arc<Registry> {
    let options = Options {
        search,
        ..Options::default()
    };
    Arc::new(open_local(dir, false, options).await.unwrap().0)
}

pub fn source(reg: &Arc<Registry>) -> StoresSource {
    StoresSource::new(Stores::single(reg.clone()))
}

pub fn data(src: &StoresSource, name: &str) -> Arc<RepoData> {
    src.repo(name).unwrap().expect("the repository is known")
}

pub fn generation(src: &StoresSource, name: &str) -> u64 {
    let repos = src.repos().unwrap();
    repos.iter().find(|(n, _)| n == name).expect("listed").1
}

pub async fn push_blob(reg: &Registry, r: &RepoName, content: &[u8]) -> Value {
    let d = Digest::sha256_of(content);
    let id = reg.start_upload(r).await.unwrap();
    let body =
        futures_util::stream::iter(vec![Ok::<_, Infallible>(Bytes::copy_from_slice(content))]);
    reg.complete_upload(r, &id, &d, None, Some(body))
        .await
        .unwrap();
    json!({"digest": d.to_string(), "size": content.len()})
}

fn with_type(mut desc: Value, media_type: &str) -> Value {
    desc["mediaType"] = media_type.into();
    desc
}

/// Pushes a manifest document as `pusher`; returns its digest.
pub async fn put(
    reg: &Registry,
    r: &RepoName,
    at: &str,
    doc: &Value,
    pusher: Option<&str>,
) -> Digest {
    let body = serde_json::to_vec(doc).unwrap();
    let at = if at.is_empty() {
        Reference::Digest(Digest::sha256_of(&body))
    } else {
        reference(at)
    };
    reg.put_manifest_as(r, &at, None, &body, TagPolicy::CreateOrMove, pusher)
        .await
        .unwrap()
        .digest
}

/// An image of `config` (JSON) and one layer per entry of `layers`.
pub async fn image_doc(reg: &Registry, r: &RepoName, config: &Value, layers: &[&[u8]]) -> Value {
    let config = push_blob(reg, r, &serde_json::to_vec(config).unwrap()).await;
    let mut ls = Vec::new();
    for l in layers {
        ls.push(with_type(push_blob(reg, r, l).await, LAYER));
    }
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": with_type(config, CONFIG),
        "layers": ls,
    })
}

/// A config of `os`/`arch` with labels.
pub fn config(os: &str, arch: &str, labels: Value) -> Value {
    json!({
        "os": os,
        "architecture": arch,
        "created": "2024-05-01T10:00:00Z",
        "config": {"Labels": labels},
        "history": [{"created": "2024-05-01T09:00:00Z", "created_by": "ADD rootfs"}],
        "rootfs": {"type": "layers", "diff_ids": []},
    })
}

/// Pushes an index of `children` (digest, platform) under `tag`.
pub async fn push_index(
    reg: &Registry,
    r: &RepoName,
    tag: &str,
    children: &[(Digest, &str, &str)],
) -> Digest {
    let mut ms = Vec::new();
    for (d, os, arch) in children {
        let size = reg.metadata().manifest(r, d).unwrap().unwrap().size;
        ms.push(json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size,
            "platform": {"os": os, "architecture": arch},
        }));
    }
    let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms});
    put(reg, r, tag, &doc, None).await
}

/// Pushes an artifact about `subject`; returns its digest.
pub async fn push_artifact(
    reg: &Registry,
    r: &RepoName,
    subject: &Digest,
    artifact_type: &str,
) -> Digest {
    let empty = push_blob(reg, r, b"{}").await;
    let layer = push_blob(reg, r, artifact_type.as_bytes()).await;
    let size = reg.metadata().manifest(r, subject).unwrap().unwrap().size;
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": with_type(empty, "application/vnd.oci.empty.v1+json"),
        "layers": [with_type(layer, "application/octet-stream")],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": size},
    });
    put(reg, r, "", &doc, None).await
}

/// A cosign signature of `signed` under its tag `sha256-<hex>.sig`.
pub async fn push_cosign_signature(reg: &Registry, r: &RepoName, signed: &Digest) -> Digest {
    let cfg = config("", "", json!({}));
    let doc = image_doc(reg, r, &cfg, &[b"signature payload"]).await;
    put(reg, r, &format!("sha256-{}.sig", signed.hex()), &doc, None).await
}

/// A GET of the manifest at `at` as the API records it.
pub fn get(reg: &Registry, r: &RepoName, at: &str) {
    let at = reference(at);
    let rec = reg.manifest_record(r, &at).unwrap();
    reg.record_download(r, &at, &rec);
}

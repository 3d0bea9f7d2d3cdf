//! Registry operations built from requests: push a blob (monolithic or in
//! chunks), push an image, pull an image, and the small reads. Each returns
//! the number of body bytes moved (sent plus received).

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Client, Parts};
use crate::data::Blob;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Manifest types a pull accepts (OCI first, Docker schema2 for old data).
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest or listing read (the OCI spec's manifest limit).
const MAX_DOC: usize = 4 << 20;

/// How blobs travel in a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// POST for a session, then one PUT `?digest=` with the whole body.
    Monolithic,
    /// POST, a PATCH per chunk of this many bytes with Content-Range, PUT.
    Chunked(u64),
}

/// One image: a config, one layer, and the manifest naming them.
pub struct Image {
    pub config: Blob,
    pub layer: Blob,
    pub manifest: Bytes,
}

impl Image {
    /// The image around `layer`; `label` makes its config unique.
    pub fn new(layer: Blob, label: &str) -> Self {
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "zb.label": label } },
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
        });
        let config = Blob::from_bytes(Bytes::from(config.to_string()));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": { "mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size() },
            "layers": [{ "mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.size() }],
        });
        Image {
            config,
            layer,
            manifest: Bytes::from(manifest.to_string()),
        }
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Uploads `blob` to `repo`.
pub async fn push_blob(c: &Client, repo: &str, blob: &Blob, how: Upload) -> anyhow::Result<u64> {
    let start = c.url(&format!("/v2/{repo}/blobs/uploads/"));
    let answer = c.send(Method::POST, &start, &[], Parts::empty(), 0).await?;
    let mut location = answer.location(c)?;
    let octets = [("content-type", "application/octet-stream")];
    match how {
        Upload::Monolithic => {
            let url = with_digest(&location, &blob.digest);
            c.send(Method::PUT, &url, &octets, Parts::new(blob.body()), 0)
                .await?;
        }
        Upload::Chunked(chunk) => {
            for (s, e) in blob.chunks(chunk) {
                let range = format!("{s}-{}", e - 1);
                let headers = [octets[0], ("content-range", range.as_str())];
                let body = Parts::new(blob.slice(s, e));
                let answer = c.send(Method::PATCH, &location, &headers, body, 0).await?;
                location = answer.location(c)?;
            }
            let url = with_digest(&location, &blob.digest);
            c.send(Method::PUT, &url, &[], Parts::empty(), 0).await?;
        }
    }
    Ok(blob.size())
}

/// Pushes the config, the layer (as `how` says) and the manifest as `tag`.
pub async fn push_image(
    c: &Client,
    repo: &str,
    tag: &str,
    image: &Image,
    how: Upload,
) -> anyhow::Result<u64> {
    let mut moved = push_blob(c, repo, &image.config, Upload::Monolithic).await?;
    moved += push_blob(c, repo, &image.layer, how).await?;
    let url = c.url(&format!("/v2/{repo}/manifests/{tag}"));
    let body = Parts::new(vec![image.manifest.clone()]);
    c.send(
        Method::PUT,
        &url,
        &[("content-type", MANIFEST_TYPE)],
        body,
        0,
    )
    .await?;
    Ok(moved + image.manifest.len() as u64)
}

/// The config and layer descriptors of a manifest: `(digest, size)`.
pub fn blobs_of(manifest: &[u8]) -> anyhow::Result<Vec<(String, u64)>> {
    let doc: Value = serde_json::from_slice(manifest).context("manifest is not JSON")?;
    let config = std::iter::once(&doc["config"]);
    let layers = doc["layers"]
        .as_array()
        .map(|l| l.iter())
        .into_iter()
        .flatten();
    config
        .chain(layers)
        .map(|d| {
            let digest = d["digest"].as_str().context("descriptor without digest")?;
            let size = d["size"].as_u64().context("descriptor without size")?;
            Ok((digest.to_string(), size))
        })
        .collect()
}

/// Pulls `repo:tag`: the manifest, then its config and every layer, checking
/// that each blob is as long as its descriptor says.
pub async fn pull_image(c: &Client, repo: &str, tag: &str) -> anyhow::Result<u64> {
    let url = c.url(&format!("/v2/{repo}/manifests/{tag}"));
    let manifest = c
        .send(
            Method::GET,
            &url,
            &[("accept", ACCEPT)],
            Parts::empty(),
            MAX_DOC,
        )
        .await?;
    let mut moved = manifest.body_len;
    for (digest, size) in blobs_of(&manifest.body).with_context(|| format!("GET {url}"))? {
        let url = c.url(&format!("/v2/{repo}/blobs/{digest}"));
        let answer = c.send(Method::GET, &url, &[], Parts::empty(), 0).await?;
        if answer.body_len != size {
            bail!(
                "GET {url}: {} bytes, the manifest says {size}",
                answer.body_len
            );
        }
        moved += size;
    }
    Ok(moved)
}

/// HEAD or GET of `repo:tag`'s manifest.
pub async fn manifest(c: &Client, method: Method, repo: &str, tag: &str) -> anyhow::Result<u64> {
    let url = c.url(&format!("/v2/{repo}/manifests/{tag}"));
    let keep = if method == Method::GET { MAX_DOC } else { 0 };
    let answer = c
        .send(method, &url, &[("accept", ACCEPT)], Parts::empty(), keep)
        .await?;
    Ok(answer.body_len)
}

/// GET /v2/_catalog; the answer must be a JSON object with `repositories`.
pub async fn catalog(c: &Client) -> anyhow::Result<u64> {
    let url = c.url("/v2/_catalog");
    let answer = c
        .send(Method::GET, &url, &[], Parts::empty(), MAX_DOC)
        .await?;
    let doc: Value = serde_json::from_slice(&answer.body).with_context(|| format!("GET {url}"))?;
    if !doc["repositories"].is_array() {
        bail!("GET {url}: no repositories array in {doc}");
    }
    Ok(answer.body_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BlobSource;

    #[test]
    fn manifests_name_their_blobs() -> anyhow::Result<()> {
        let src = BlobSource::new(&[4096]);
        let image = Image::new(src.blob(4096, "l")?, "l");
        let blobs = blobs_of(&image.manifest)?;
        assert_eq!(
            blobs,
            vec![
                (image.config.digest.clone(), image.config.size()),
                (image.layer.digest.clone(), 4096)
            ]
        );
        // Same label, same bytes: a static copy matches what a push sends.
        let again = Image::new(src.blob(4096, "l")?, "l");
        assert_eq!(again.manifest, image.manifest);
        assert_ne!(
            Image::new(src.blob(4096, "m")?, "m").manifest,
            image.manifest
        );
        assert!(blobs_of(b"[]").is_err());
        Ok(())
    }

    #[test]
    fn digest_query_is_appended() {
        assert_eq!(
            with_digest("http://h/u", "sha256:1"),
            "http://h/u?digest=sha256:1"
        );
        assert_eq!(
            with_digest("http://h/u?_state=x", "sha256:1"),
            "http://h/u?_state=x&digest=sha256:1"
        );
    }
}

//! Registry operations built from requests: push a blob (monolithic, one
//! streamed PATCH, or PATCHes of a fixed size), mount one, push an image,
//! pull an image, and the small reads. Each returns the number of body
//! bytes moved (sent plus received).

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
/// Largest manifest read (the OCI spec's manifest limit).
const MAX_DOC: usize = 4 << 20;
/// Largest catalog page read.
const MAX_LISTING: usize = 64 << 20;

/// How blobs travel in a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// POST for a session, then one PUT `?digest=` with the whole body.
    Monolithic,
    /// POST, one PATCH streaming the whole body with `Transfer-Encoding:
    /// chunked` (no Content-Length, no Content-Range), then an empty PUT
    /// `?digest=`: what containerd and docker do.
    Streamed,
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
        Upload::Streamed => {
            let body = Parts::streamed(blob.body());
            let answer = c.send(Method::PATCH, &location, &octets, body, 0).await?;
            location = answer.location(c)?;
            let url = with_digest(&location, &blob.digest);
            c.send(Method::PUT, &url, &[], Parts::empty(), 0).await?;
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

/// Puts `blob` into `repo` by mounting it from `from` (one request); a
/// registry that answers with an upload session instead gets the body.
pub async fn mount_blob(c: &Client, repo: &str, from: &str, blob: &Blob) -> anyhow::Result<()> {
    let url = c.url(&format!(
        "/v2/{repo}/blobs/uploads/?mount={}&from={from}",
        blob.digest
    ));
    let answer = c.send(Method::POST, &url, &[], Parts::empty(), 0).await?;
    if answer.status == hyper::StatusCode::CREATED {
        return Ok(());
    }
    let url = with_digest(&answer.location(c)?, &blob.digest);
    let octets = [("content-type", "application/octet-stream")];
    c.send(Method::PUT, &url, &octets, Parts::new(blob.body()), 0)
        .await?;
    Ok(())
}

/// Puts the manifest of `image` as `repo:tag` (its blobs must be there).
pub async fn put_manifest(c: &Client, repo: &str, tag: &str, image: &Image) -> anyhow::Result<()> {
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
    Ok(())
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
    put_manifest(c, repo, tag, image).await?;
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

/// Whether `repo:tag` has a manifest (HEAD; 404 is no).
pub async fn manifest_exists(c: &Client, repo: &str, tag: &str) -> anyhow::Result<bool> {
    let url = c.url(&format!("/v2/{repo}/manifests/{tag}"));
    c.exists(&url, &[("accept", ACCEPT)]).await
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

/// Lists the whole catalog: `GET /v2/_catalog?n=<page>`, then each `Link`
/// to the next page; every answer must be a JSON object with a
/// `repositories` array, and there must be at least `want` names in all.
pub async fn catalog(c: &Client, page: usize, want: usize) -> anyhow::Result<u64> {
    let mut url = c.url(&format!("/v2/_catalog?n={page}"));
    let (mut moved, mut names) = (0, 0);
    loop {
        let answer = c
            .send(Method::GET, &url, &[], Parts::empty(), MAX_LISTING)
            .await?;
        moved += answer.body_len;
        let doc: Value =
            serde_json::from_slice(&answer.body).with_context(|| format!("GET {url}"))?;
        let Some(repos) = doc["repositories"].as_array() else {
            bail!("GET {url}: no repositories array");
        };
        names += repos.len();
        match answer.headers.get(hyper::header::LINK) {
            Some(link) if !repos.is_empty() => {
                let link = link.to_str().context("Link header is not ASCII")?;
                url = c
                    .resolve(next_link(link).with_context(|| format!("GET {url}: Link {link:?}"))?);
            }
            _ => break,
        }
    }
    if names < want {
        bail!("GET /v2/_catalog: {names} repositories, expected at least {want}");
    }
    Ok(moved)
}

/// The target of a `Link: <url>; rel="next"` header.
pub fn next_link(link: &str) -> Option<&str> {
    let start = link.find('<')? + 1;
    let end = start + link[start..].find('>')?;
    link[end..].contains("next").then_some(&link[start..end])
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
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=a%2Fb&n=100>; rel="next""#),
            Some("/v2/_catalog?last=a%2Fb&n=100")
        );
        assert_eq!(next_link("<http://h/x>;rel=next"), Some("http://h/x"));
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("nothing"), None);
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

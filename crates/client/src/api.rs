//! The registry API calls: catalog and tags (paged), manifests (`GET`,
//! `HEAD`), referrers (the API, or the `sha256-<hex>` tag schema where the
//! API is missing) and blobs.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LINK};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use zot_oci::media_types as mt;
use zot_oci::{Descriptor, Digest};

use crate::blob::BlobStream;
use crate::client::{Answer, Call, RegistryClient};
use crate::{ClientError, Result, paging};

const DOCKER_CONTENT_DIGEST: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("docker-content-digest");

/// Manifests larger than this are refused (zot's and distribution's limit).
pub const MAX_MANIFEST: usize = 4 << 20;

/// Every manifest type the registry stores, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as fetched: its bytes (verified against `digest`), media type
/// and digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// What a `HEAD` of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct IndexBody {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The body, at most `limit` bytes.
async fn body_limited(answer: Answer, limit: usize) -> Result<Bytes> {
    let Answer { resp, permit, url } = answer;
    let mut body = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ClientError::Transport {
            url: url.clone(),
            source: e,
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ClientError::Invalid {
                url,
                why: format!("answer larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    drop(permit);
    Ok(body.freeze())
}

fn expect_ok(answer: &Answer) -> Result<()> {
    match answer.resp.status() {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND => Err(ClientError::NotFound {
            url: answer.url.clone(),
        }),
        StatusCode::FORBIDDEN => Err(ClientError::Unauthorized {
            url: answer.url.clone(),
        }),
        s => Err(ClientError::Status {
            url: answer.url.clone(),
            status: s.as_u16(),
        }),
    }
}

impl RegistryClient {
    async fn get(&self, call: Call<'_>) -> Result<Answer> {
        let answer = self.send(&call).await?;
        expect_ok(&answer)?;
        Ok(answer)
    }

    /// Pages of a list (`_catalog` or `tags/list`), following `Link`.
    async fn list<F>(&self, repo: Option<&str>, path: &str, items: F) -> Result<Vec<String>>
    where
        F: Fn(&[u8]) -> std::result::Result<Vec<String>, serde_json::Error>,
    {
        let mut out = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let mut query = vec![("n", self.page_size.to_string())];
            if let Some(l) = &last {
                query.push(("last", l.clone()));
            }
            let answer = self
                .get(Call {
                    method: Method::GET,
                    repo,
                    path: path.to_owned(),
                    query,
                    accept: Some("application/json"),
                })
                .await?;
            let link = header(&answer.resp, LINK);
            let url = answer.url.clone();
            let body = body_limited(answer, 64 << 20).await?;
            let page = items(&body).map_err(|e| ClientError::Invalid {
                url,
                why: e.to_string(),
            })?;
            let page_last = page.last().cloned();
            out.extend(page);
            match link.as_deref().and_then(paging::next_last) {
                // A `last` that does not move would loop forever.
                Some(next) if Some(&next) != last.as_ref() && page_last.is_some() => {
                    last = Some(next)
                }
                _ => return Ok(out),
            }
        }
    }

    /// Every repository of the upstream (`/v2/_catalog`, paged).
    pub async fn catalog(&self) -> Result<Vec<String>> {
        self.list(None, "_catalog", |b| {
            serde_json::from_slice::<CatalogPage>(b).map(|p| p.repositories.unwrap_or_default())
        })
        .await
    }

    /// Every tag of `repo` (`tags/list`, paged).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        self.list(Some(repo), "tags/list", |b| {
            serde_json::from_slice::<TagsPage>(b).map(|p| p.tags.unwrap_or_default())
        })
        .await
    }

    /// A manifest by tag or digest, verified: against the digest asked for,
    /// or against `Docker-Content-Digest` when fetched by tag.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let answer = self
            .get(Call {
                method: Method::GET,
                repo: Some(repo),
                path: format!("manifests/{reference}"),
                query: Vec::new(),
                accept: Some(MANIFEST_ACCEPT),
            })
            .await?;
        let media_type = header(&answer.resp, CONTENT_TYPE)
            .map(|c| mt::essence(&c).to_owned())
            .unwrap_or_default();
        let announced = header(&answer.resp, DOCKER_CONTENT_DIGEST);
        let url = answer.url.clone();
        let bytes = body_limited(answer, MAX_MANIFEST).await?;
        let expected: Option<Digest> = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => announced.and_then(|a| a.parse().ok()),
        };
        let algorithm = expected
            .as_ref()
            .map_or(zot_oci::Algorithm::Sha256, Digest::algorithm);
        let mut h = algorithm.hasher();
        h.update(&bytes);
        let digest = h.finish();
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(ClientError::DigestMismatch {
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
                .unwrap_or_default()
        } else {
            media_type
        };
        if media_type.is_empty() {
            return Err(ClientError::Invalid {
                url,
                why: "manifest without a media type".to_owned(),
            });
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// What the upstream says of a manifest without its body; `None` when
    /// it has no such manifest.
    pub async fn manifest_head(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let answer = self
            .send(&Call {
                method: Method::HEAD,
                repo: Some(repo),
                path: format!("manifests/{reference}"),
                query: Vec::new(),
                accept: Some(MANIFEST_ACCEPT),
            })
            .await?;
        if answer.resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_ok(&answer)?;
        let r = &answer.resp;
        Ok(Some(ManifestHead {
            digest: header(r, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse().ok()),
            media_type: header(r, CONTENT_TYPE).map(|c| mt::essence(&c).to_owned()),
            size: header(r, CONTENT_LENGTH).and_then(|s| s.parse().ok()),
        }))
    }

    /// The referrers of `subject` in `repo`: from the referrers API, or,
    /// where the upstream has none (`404`), from the index tagged
    /// `<alg>-<hex>` (the tag schema of the distribution spec).
    pub async fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<Descriptor>> {
        let answer = self
            .send(&Call {
                method: Method::GET,
                repo: Some(repo),
                path: format!("referrers/{subject}"),
                query: Vec::new(),
                accept: Some(mt::OCI_INDEX),
            })
            .await?;
        let is_index =
            header(&answer.resp, CONTENT_TYPE).is_some_and(|c| mt::essence(&c) == mt::OCI_INDEX);
        if answer.resp.status().is_success() && is_index {
            let url = answer.url.clone();
            let body = body_limited(answer, MAX_MANIFEST).await?;
            let index: IndexBody =
                serde_json::from_slice(&body).map_err(|e| ClientError::Invalid {
                    url,
                    why: e.to_string(),
                })?;
            return Ok(index.manifests);
        }
        if answer.resp.status() != StatusCode::NOT_FOUND && answer.resp.status().is_client_error() {
            expect_ok(&answer)?;
        }
        drop(answer);
        let tag = format!("{}-{}", subject.algorithm().as_str(), subject.hex());
        match self.manifest(repo, &tag).await {
            Ok(m) => {
                let index: IndexBody =
                    serde_json::from_slice(&m.bytes).map_err(|e| ClientError::Invalid {
                        url: tag,
                        why: e.to_string(),
                    })?;
                Ok(index.manifests)
            }
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A blob's body, verified as it streams (see [`BlobStream`]). `size`,
    /// when known (from a descriptor), is enforced too.
    pub async fn blob(&self, repo: &str, digest: &Digest, size: Option<u64>) -> Result<BlobStream> {
        let answer = self
            .get(Call {
                method: Method::GET,
                repo: Some(repo),
                path: format!("blobs/{digest}"),
                query: Vec::new(),
                accept: None,
            })
            .await?;
        let announced: Option<u64> =
            header(&answer.resp, CONTENT_LENGTH).and_then(|s| s.parse().ok());
        if let (Some(a), Some(s)) = (announced, size)
            && a != s
        {
            return Err(ClientError::SizeMismatch {
                digest: digest.to_string(),
                expected: s,
                actual: a,
            });
        }
        let Answer { resp, permit, url } = answer;
        Ok(BlobStream::new(
            resp,
            permit,
            digest.clone(),
            size.or(announced),
            url,
        ))
    }
}

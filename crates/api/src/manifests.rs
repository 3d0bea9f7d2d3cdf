//! Manifest, tag-list, catalog and referrers handlers.

use crate::connection::{Download, metered_bytes};
use crate::errors::{ApiError, ApiResult, ErrorCode};
use crate::http_util::{content_length, header_str, pagination, query};
use crate::{empty, finish};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use zot_oci::{Digest, Reference, RepoName, media_types};
use zot_storage::{Registry, Stores, TagPolicy};

/// The largest manifest accepted, as the specification suggests (storage
/// reads no more than this of anything it parses).
pub const MAX_MANIFEST: usize = zot_storage::MAX_MANIFEST_BYTES as usize;

fn link_next(path: &str, n: usize, last: Option<&String>, more: bool) -> Option<String> {
    let last = last.filter(|_| more)?;
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("n", &n.to_string())
        .append_pair("last", last)
        .finish();
    Some(format!("<{path}?{q}>; rel=\"next\""))
}

fn json_list(body: serde_json::Value, link: Option<String>) -> ApiResult {
    let mut b = empty(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
    if let Some(link) = link {
        b = b.header(header::LINK, link);
    }
    finish(b, Body::from(body.to_string()))
}

/// The catalog, showing only the repositories `visible` accepts (the
/// caller's readable ones); pages are filled past hidden names.
pub fn catalog(reg: &Stores, req: &Request, visible: &dyn Fn(&str) -> bool) -> ApiResult {
    let (n, last) = pagination(req)?;
    // One visible repository beyond the page tells whether a next page
    // exists: a `Link` never points at a page of hidden names only.
    let repos = catalog_names(reg, last, n.saturating_add(1), visible)?;
    catalog_page(repos, n, None)
}

/// Up to `want` visible repositories after `last`, in order.
pub(crate) fn catalog_names(
    reg: &Stores,
    last: Option<String>,
    want: usize,
    visible: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    let mut repos = Vec::new();
    let mut cursor = last;
    while repos.len() < want {
        let (page, page_more) = reg.catalog(cursor.as_deref(), want - repos.len())?;
        cursor = page.last().cloned();
        repos.extend(page.into_iter().filter(|r| visible(r)));
        if !page_more || cursor.is_none() {
            break;
        }
    }
    Ok(repos)
}

/// The catalog answer for `repos` (up to `n + 1` names: one more than `n`
/// means a next page), with `extra` headers.
pub(crate) fn catalog_page(
    mut repos: Vec<String>,
    n: usize,
    extra: Option<(&str, String)>,
) -> ApiResult {
    let more = repos.len() > n;
    repos.truncate(n);
    let link = link_next("/v2/_catalog", n, repos.last(), more);
    let mut resp = json_list(serde_json::json!({ "repositories": repos }), link)?;
    if let Some((name, value)) = extra
        && let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name),
            axum::http::HeaderValue::try_from(value),
        )
    {
        resp.headers_mut().insert(name, value);
    }
    Ok(resp)
}

pub fn tags(reg: &Registry, repo: &RepoName, req: &Request) -> ApiResult {
    let (n, last) = pagination(req)?;
    let (tags, more) = reg.tags(repo, last.as_deref(), n)?;
    let link = link_next(&format!("/v2/{repo}/tags/list"), n, tags.last(), more);
    json_list(
        serde_json::json!({ "name": repo.as_str(), "tags": tags }),
        link,
    )
}

/// `GET` (with `send`) or `HEAD` (without) of a manifest.
pub async fn get(
    reg: &Registry,
    repo: &RepoName,
    r: &Reference,
    send: Option<Download<'_>>,
) -> ApiResult {
    let rec = reg.manifest_record(repo, r)?;
    // Paid before the body is read (see `connection`).
    let paid = match &send {
        Some(send) => Some(
            send.budget
                .pay(send.load.as_ref(), rec.size, MAX_MANIFEST as u64)
                .await?,
        ),
        None => None,
    };
    // HEAD reads the body too (from memory, usually): the length sent is
    // the body's, not a size recorded from an index.json that may be wrong.
    let bytes = reg.manifest_bytes(repo, &rec).await?;
    let builder = empty(StatusCode::OK)
        .header(header::CONTENT_TYPE, rec.media_type.as_str())
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("docker-content-digest", rec.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", rec.digest));
    let (Some(send), Some(paid)) = (send, paid) else {
        return finish(builder, Body::empty());
    };
    // In memory; written to the metadata store in batches (retention,
    // search's download counts).
    reg.record_download(repo, r, &rec);
    finish(builder, metered_bytes(bytes, paid, send.load))
}

/// `pusher`: the authenticated caller's name (recorded by search).
pub async fn put(
    reg: &Registry,
    repo: &RepoName,
    r: &Reference,
    req: Request,
    pusher: Option<&str>,
) -> ApiResult {
    if content_length(&req)?.is_some_and(|l| l > MAX_MANIFEST as u64) {
        return Err(ApiError::new(ErrorCode::ManifestTooLarge));
    }
    let content_type = header_str(&req, header::CONTENT_TYPE).map(str::to_owned);
    // Set by the security layer for a caller who may create tags but not move them.
    let policy = req
        .extensions()
        .get::<TagPolicy>()
        .copied()
        .unwrap_or(TagPolicy::CreateOrMove);
    let limited = http_body_util::Limited::new(req.into_body(), MAX_MANIFEST);
    let body = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(ErrorCode::ManifestTooLarge));
        }
        Err(e) => {
            return Err(ApiError::msg(
                ErrorCode::ManifestInvalid,
                format!("reading the manifest: {e}"),
            ));
        }
    };
    let pushed = reg
        .put_manifest_as(repo, r, content_type.as_deref(), &body, policy, pusher)
        .await?;
    let mut b = empty(StatusCode::CREATED)
        .header(
            header::LOCATION,
            format!("/v2/{repo}/manifests/{}", pushed.digest),
        )
        .header("docker-content-digest", pushed.digest.to_string())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = pushed.subject {
        b = b.header("oci-subject", subject.to_string());
    }
    finish(b, Body::empty())
}

pub async fn delete(reg: &Registry, repo: &RepoName, r: &Reference) -> ApiResult {
    reg.delete_manifest(repo, r).await?;
    finish(
        empty(StatusCode::ACCEPTED).header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

pub fn referrers(reg: &Registry, repo: &RepoName, subject: &Digest, req: &Request) -> ApiResult {
    let artifact_type = query(req, "artifactType").filter(|t| !t.is_empty());
    let manifests = reg.referrers(repo, subject, artifact_type.as_deref())?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": manifests,
    });
    let mut b = empty(StatusCode::OK).header(header::CONTENT_TYPE, media_types::OCI_INDEX);
    if artifact_type.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    finish(b, Body::from(body.to_string()))
}

//! Blob and blob-upload handlers.
//!
//! Every request that sends an upload body (`PATCH`, `PUT`, a monolithic
//! `POST`) first takes a permit from the default store's gate, keyed by the
//! client's address (an IPv6 client by its /64), and holds it while the
//! body is read: beyond the bounds it is answered 429 `TOOMANYREQUESTS`
//! without reading the body.

use crate::connection::{Download, STREAM_RESERVE_MAX, metered};
use crate::endpoint::digest;
use crate::errors::{ApiError, ApiResult, ErrorCode};
use crate::http_util::{ByteRange, byte_range, content_length, content_range, query};
use crate::{empty, finish};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use std::net::IpAddr;
use zot_oci::{Digest, RepoName};
use zot_storage::{BodyPermit, Registry};

/// Who sends an upload body, and the gate bounding upload bodies (the
/// default store's, so that the bound holds for the whole server).
pub struct Uploader<'a> {
    pub gate: &'a Registry,
    pub client: Option<IpAddr>,
}

impl Uploader<'_> {
    fn admit(&self) -> Result<BodyPermit, ApiError> {
        Ok(self
            .gate
            .upload_body_permit(self.client.map(zot_auth::client_key))?)
    }
}

/// `GET` (with `send`) or `HEAD` (without) of a blob.
pub async fn get(
    reg: &Registry,
    repo: &RepoName,
    d: &Digest,
    range: Option<String>,
    send: Option<Download<'_>>,
) -> ApiResult {
    let size = reg
        .blob_size(repo, d)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::BlobUnknown))?;
    serve(reg, repo, (d, size), range, send).await
}

/// [`get`] of a blob of known `size`.
pub async fn serve(
    reg: &Registry,
    repo: &RepoName,
    (d, size): (&Digest, u64),
    range: Option<String>,
    send: Option<Download<'_>>,
) -> ApiResult {
    let base = empty(StatusCode::OK)
        .header("docker-content-digest", d.to_string())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let (builder, start, len) = match byte_range(range.as_deref(), size) {
        ByteRange::Full => (base, 0, size),
        ByteRange::Partial { start, len } => (
            base.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", start + len - 1),
            ),
            start,
            len,
        ),
        ByteRange::Unsatisfiable => {
            return Err(ApiError::new(ErrorCode::RangeNotSatisfiable)
                .header(header::CONTENT_RANGE, format!("bytes */{size}")));
        }
    };
    let builder = builder.header(header::CONTENT_LENGTH, len);
    let Some(send) = send else {
        return finish(builder, Body::empty());
    };
    // Paid before the file is opened: opening it starts the first read.
    let paid = send
        .budget
        .pay(send.load.as_ref(), len, STREAM_RESERVE_MAX)
        .await?;
    let chunks = reg.blob_stream(repo, d, start, len).await?;
    finish(builder, Body::from_stream(metered(chunks, paid, send.load)))
}

pub async fn delete(reg: &Registry, repo: &RepoName, d: &Digest) -> ApiResult {
    reg.delete_blob(repo, d).await?;
    finish(
        empty(StatusCode::ACCEPTED).header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

fn upload_location(repo: &RepoName, id: &uuid::Uuid) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn upload_response(status: StatusCode, repo: &RepoName, id: &uuid::Uuid, size: u64) -> ApiResult {
    finish(
        empty(status)
            .header(header::LOCATION, upload_location(repo, id))
            .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
            .header("docker-upload-uuid", id.to_string())
            .header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

fn blob_created(repo: &RepoName, d: &Digest) -> ApiResult {
    finish(
        empty(StatusCode::CREATED)
            .header(header::LOCATION, format!("/v2/{repo}/blobs/{d}"))
            .header("docker-content-digest", d.to_string())
            .header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    )
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a monolithic upload
/// (`?digest=`), or a new session.
pub async fn start(
    reg: &Registry,
    repo: &RepoName,
    req: Request,
    uploader: &Uploader<'_>,
) -> ApiResult {
    if let Some(mount) = query(&req, "mount") {
        let d = digest(&mount)?;
        let from =
            match query(&req, "from") {
                Some(f) => Some(f.parse::<RepoName>().map_err(|_| {
                    ApiError::msg(ErrorCode::NameInvalid, "invalid from repository")
                })?),
                None => None,
            };
        if reg.mount_blob(repo, &d, from.as_ref()).await? {
            return blob_created(repo, &d);
        }
    }
    if let Some(d) = query(&req, "digest") {
        let d = digest(&d)?;
        let _permit = uploader.admit()?;
        let id = reg.start_upload(repo).await?;
        let declared = content_length(&req)?;
        let body = req.into_body().into_data_stream();
        match reg.complete_upload(repo, &id, &d, None, Some(body)).await {
            Ok(size) => {
                if let Some(len) = declared.filter(|&l| l != size) {
                    tracing::warn!(%repo, declared = len, size, "upload length differs from Content-Length");
                }
                return blob_created(repo, &d);
            }
            Err(e) => {
                let _ = reg.cancel_upload(repo, &id).await;
                return Err(e.into());
            }
        }
    }
    let id = reg.start_upload(repo).await?;
    upload_response(StatusCode::ACCEPTED, repo, &id, 0)
}

pub async fn status(reg: &Registry, repo: &RepoName, id: &uuid::Uuid) -> ApiResult {
    let size = reg.upload_size(repo, id).await?;
    upload_response(StatusCode::NO_CONTENT, repo, id, size)
}

/// Checks `Content-Range` against `Content-Length`; returns where the
/// chunk must start.
fn chunk_start(req: &Request) -> Result<Option<u64>, ApiError> {
    let range = content_range(req)?;
    if let (Some((_, range_len)), Some(len)) = (range, content_length(req)?)
        && range_len != len
    {
        return Err(ApiError::msg(
            ErrorCode::BlobUploadInvalid,
            format!("Content-Range covers {range_len} bytes but Content-Length is {len}"),
        ));
    }
    Ok(range.map(|(start, _)| start))
}

pub async fn patch(
    reg: &Registry,
    repo: &RepoName,
    id: &uuid::Uuid,
    req: Request,
    uploader: &Uploader<'_>,
) -> ApiResult {
    let start = chunk_start(&req)?;
    let _permit = uploader.admit()?;
    let body = req.into_body().into_data_stream();
    let size = reg.append_upload(repo, id, start, body).await?;
    upload_response(StatusCode::ACCEPTED, repo, id, size)
}

pub async fn finish_upload(
    reg: &Registry,
    repo: &RepoName,
    id: &uuid::Uuid,
    req: Request,
    uploader: &Uploader<'_>,
) -> ApiResult {
    let d = query(&req, "digest")
        .ok_or_else(|| ApiError::msg(ErrorCode::DigestInvalid, "digest parameter required"))?;
    let d = digest(&d)?;
    let start = chunk_start(&req)?;
    let _permit = uploader.admit()?;
    let body = req.into_body().into_data_stream();
    reg.complete_upload(repo, id, &d, start, Some(body)).await?;
    blob_created(repo, &d)
}

pub async fn cancel(reg: &Registry, repo: &RepoName, id: &uuid::Uuid) -> ApiResult {
    reg.cancel_upload(repo, id).await?;
    crate::finish(empty(StatusCode::NO_CONTENT), Body::empty())
}

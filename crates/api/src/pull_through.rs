//! Answers from the sync extension's streaming pull-through (feature
//! `sync`): a manifest fetched whose image is still being copied, and a
//! blob arriving from upstream.
//!
//! Invariants:
//! - Only asked when the local store has no answer (a blob not stored; a
//!   manifest the hook says is pending), so requests for local content
//!   pay nothing more.
//! - A blob's body is the pull's reader: its last byte is sent only once
//!   the blob is verified, and a failed transfer ends the body with an
//!   error, which cuts the response off (never a complete-looking wrong
//!   body). `Content-Length` is sent when upstream gave the size.
//! - Ranges: with the size known, a range is served as its bytes arrive
//!   (its last byte, like a whole body's, once the blob is verified);
//!   without it, the whole blob is sent (`200`, as a server may ignore
//!   `Range`).

use axum::body::Body;
use axum::http::{StatusCode, header};
use zot_oci::Digest;

use crate::connection::{Download, STREAM_RESERVE_MAX, metered, metered_bytes};
use crate::errors::{ApiError, ApiResult, ErrorCode};
use crate::http_util::{ByteRange, byte_range};
use crate::sync_hook::{PendingManifest, PulledBlob};
use crate::{empty, finish};

/// `GET` (with `send`) or `HEAD` of a pending manifest.
pub async fn manifest(m: PendingManifest, send: Option<Download<'_>>) -> ApiResult {
    let builder = empty(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type.as_str())
        .header(header::CONTENT_LENGTH, m.bytes.len())
        .header("docker-content-digest", m.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", m.digest));
    let Some(send) = send else {
        return finish(builder, Body::empty());
    };
    let len = m.bytes.len() as u64;
    let paid = send.budget.pay(send.load.as_ref(), len, len).await?;
    finish(builder, metered_bytes(m.bytes, paid, send.load))
}

/// `HEAD` of blob `d` arriving from upstream, of `size` bytes: as for a
/// stored blob.
pub fn blob_head(d: &Digest, size: u64) -> ApiResult {
    let builder = empty(StatusCode::OK)
        .header("docker-content-digest", d.to_string())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, size);
    finish(builder, Body::empty())
}

/// `GET` of blob `d` arriving from upstream.
pub async fn blob(
    pulled: Box<dyn PulledBlob>,
    d: &Digest,
    range: Option<String>,
    send: Download<'_>,
) -> ApiResult {
    let base = empty(StatusCode::OK)
        .header("docker-content-digest", d.to_string())
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let (builder, start, end, len) = match pulled.size() {
        None => (base, 0, None, None),
        Some(size) => {
            let base = base.header(header::ACCEPT_RANGES, "bytes");
            match byte_range(range.as_deref(), size) {
                ByteRange::Full => (base, 0, None, Some(size)),
                ByteRange::Partial { start, len } => (
                    base.status(StatusCode::PARTIAL_CONTENT).header(
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{}/{size}", start + len - 1),
                    ),
                    start,
                    Some(start + len),
                    Some(len),
                ),
                ByteRange::Unsatisfiable => {
                    return Err(ApiError::new(ErrorCode::RangeNotSatisfiable)
                        .header(header::CONTENT_RANGE, format!("bytes */{size}")));
                }
            }
        }
    };
    let builder = match len {
        Some(len) => builder.header(header::CONTENT_LENGTH, len),
        None => builder,
    };
    let paid = send
        .budget
        .pay(
            send.load.as_ref(),
            len.unwrap_or(STREAM_RESERVE_MAX),
            STREAM_RESERVE_MAX,
        )
        .await?;
    let chunks = pulled.read(start, end);
    finish(builder, Body::from_stream(metered(chunks, paid, send.load)))
}

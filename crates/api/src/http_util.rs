//! Parsing of untrusted request details: query strings, `Range` and
//! `Content-Range` headers, pagination.

use crate::endpoint::percent_decode;
use crate::errors::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::http::header;

/// The value of query parameter `key`, percent-decoded. A `+` stays a `+`
/// (this is a URI query, not a form: media types contain `+`).
pub fn query<B>(req: &axum::http::Request<B>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// `n` and `last` of a paginated listing. `n` absent means no limit.
pub fn pagination(req: &Request) -> Result<(usize, Option<String>), ApiError> {
    let n = match query(req, "n") {
        None => usize::MAX,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::msg(
                ErrorCode::PaginationNumberInvalid,
                "n must be a non-negative integer",
            )
        })?,
    };
    Ok((n, query(req, "last").filter(|l| !l.is_empty())))
}

pub fn header_str(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn content_length(req: &Request) -> Result<Option<u64>, ApiError> {
    match req.headers().get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::msg(ErrorCode::SizeInvalid, "invalid Content-Length")),
    }
}

/// `Content-Range` of an upload chunk: `<start>-<end>` (a `bytes ` or
/// `bytes=` prefix tolerated). Returns (start, length).
pub fn content_range(req: &Request) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = req.headers().get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::msg(
            ErrorCode::BlobUploadInvalid,
            "malformed Content-Range: expected <start>-<end>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes")
        .map(|r| r.trim_start_matches([' ', '=']))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or("");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    let len = (end - start).checked_add(1).ok_or_else(bad)?;
    Ok(Some((start, len)))
}

/// A single-range `Range: bytes=...` request against a blob of `size`.
#[derive(Debug, PartialEq, Eq)]
pub enum ByteRange {
    Full,
    Partial { start: u64, len: u64 },
    Unsatisfiable,
}

pub fn byte_range(header_value: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header_value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full; // multiple ranges: served whole, as RFC 9110 allows
    }
    let Some((a, b)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let Ok(suffix) = b.parse::<u64>() else {
            return ByteRange::Full;
        };
        if suffix == 0 || size == 0 {
            return ByteRange::Unsatisfiable;
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return ByteRange::Full;
        };
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                _ => return ByteRange::Full,
            }
        };
        if start >= size {
            return ByteRange::Unsatisfiable;
        }
        (start, end)
    };
    ByteRange::Partial {
        start,
        len: end - start + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range(None, 10), ByteRange::Full);
        assert_eq!(
            byte_range(Some("bytes=0-4"), 10),
            ByteRange::Partial { start: 0, len: 5 }
        );
        assert_eq!(
            byte_range(Some("bytes=5-"), 10),
            ByteRange::Partial { start: 5, len: 5 }
        );
        assert_eq!(
            byte_range(Some("bytes=-3"), 10),
            ByteRange::Partial { start: 7, len: 3 }
        );
        assert_eq!(
            byte_range(Some("bytes=8-100"), 10),
            ByteRange::Partial { start: 8, len: 2 }
        );
        assert_eq!(byte_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=5-2"), 10), ByteRange::Full);
        assert_eq!(byte_range(Some("bytes=x-"), 10), ByteRange::Full);
        assert_eq!(byte_range(Some("bytes=0-1,3-4"), 10), ByteRange::Full);
        assert_eq!(byte_range(Some("items=0-1"), 10), ByteRange::Full);
    }
}

//! Forwarding one request to the member that owns its repository.
//!
//! Invariants:
//! - Bodies stream both ways: the request body (a blob `PATCH`/`PUT`) is
//!   handed to the member as it arrives and the answer's body is handed to
//!   the client as it arrives; nothing is buffered beyond the HTTP stacks'
//!   own buffers.
//! - Method, path, query and end-to-end headers (`Authorization`, `Range`,
//!   `Content-Type`, `Content-Length`, `Docker-Content-Digest`, ...) go
//!   through unchanged, plus [`HOP_HEADER`]; hop-by-hop headers (RFC 9110
//!   §7.6.1) and `Host` do not. The answer's status and end-to-end headers
//!   come back unchanged, except a `Location` that names the owner's own
//!   URL, which is made relative so that the client keeps talking to the
//!   member it knows (this registry's `Location`s are relative already).
//! - A member that cannot be reached, or that fails before answering, is
//!   a 502 `UNAVAILABLE` OCI error naming it; the error is logged.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::{Cluster, HOP_HEADER, Member};
use crate::errors::{ApiError, ErrorCode};

/// Headers that concern one connection only, never forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || name == "keep-alive" || name == "proxy-connection"
}

/// Whether the request has a body to forward.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// The answer of `owner` to `req`.
pub(crate) async fn forward(cluster: &Cluster, owner: &Member, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let url = format!("{}{target}", owner.base);
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        // `Expect: 100-continue` was answered here already (the body is
        // being read); the owner gets the body at once.
        if !hop_by_hop(name) && name != header::HOST && name != header::EXPECT && name != HOP_HEADER
        {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(HOP_HEADER, HeaderValue::from_static("1"));
    tracing::debug!(method = %parts.method, %url, "forwarding to the owning cluster member");
    let mut request = cluster
        .client()
        .request(parts.method.clone(), &url)
        .headers(headers);
    if has_body(&parts.headers) {
        request = request.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return unavailable(owner, &e).into_response(),
    };
    let mut resp = Response::builder().status(answer.status());
    if let Some(out) = resp.headers_mut() {
        for (name, value) in answer.headers() {
            if hop_by_hop(name) {
                continue;
            }
            if name == header::LOCATION
                && let Some(relative) = relative_location(value, owner)
            {
                out.append(name.clone(), relative);
                continue;
            }
            out.append(name.clone(), value.clone());
        }
    }
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(answer.bytes_stream())
    };
    resp.body(body).unwrap_or_else(|e| {
        tracing::error!(error = %e, "building a forwarded answer");
        ApiError::new(ErrorCode::Unknown).into_response()
    })
}

/// `value` without the owner's base URL, when it starts with it.
fn relative_location(value: &HeaderValue, owner: &Member) -> Option<HeaderValue> {
    let location = value.to_str().ok()?;
    let rest = location.strip_prefix(&owner.base)?;
    let rest = if rest.is_empty() { "/" } else { rest };
    rest.starts_with('/')
        .then(|| HeaderValue::from_str(rest).ok())
        .flatten()
}

/// The error answered when `member` cannot be reached.
pub(crate) fn unavailable(member: &Member, e: &reqwest::Error) -> ApiError {
    tracing::warn!(member = %member.name, error = %e, "cluster member unavailable");
    ApiError::msg(
        ErrorCode::Unavailable,
        format!(
            "cluster member {} (the owner of this repository) is unavailable",
            member.name
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_the_owner_become_relative() {
        let owner = Member {
            name: "127.0.0.1:9001".into(),
            base: "http://127.0.0.1:9001".into(),
        };
        let rel = |s: &str| relative_location(&HeaderValue::from_str(s).expect("value"), &owner);
        assert_eq!(
            rel("http://127.0.0.1:9001/v2/a/blobs/uploads/x?y=1"),
            Some(HeaderValue::from_static("/v2/a/blobs/uploads/x?y=1"))
        );
        assert_eq!(rel("/v2/a/blobs/uploads/x"), None);
        assert_eq!(rel("http://127.0.0.1:90012/v2/"), None);
        assert_eq!(rel("https://elsewhere/v2/"), None);
    }

    #[test]
    fn bodies_are_forwarded_only_when_present() {
        let mut h = HeaderMap::new();
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert!(has_body(&h));
        let mut h = HeaderMap::new();
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(has_body(&h));
    }
}

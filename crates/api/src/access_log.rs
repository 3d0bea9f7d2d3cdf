//! One structured log line per request: method, path, status, bytes in (as
//! declared by `Content-Length`) and out, duration. Query strings are not
//! logged: they may carry tokens.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

fn declared_len(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let bytes_in = declared_len(req.headers());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let bytes_out = resp
        .body()
        .size_hint()
        .exact()
        .unwrap_or_else(|| declared_len(resp.headers()));
    let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(target: "zot::access", %method, path, status, bytes_in, bytes_out, duration_ms, "request");
    } else {
        tracing::info!(target: "zot::access", %method, path, status, bytes_in, bytes_out, duration_ms, "request");
    }
    resp
}

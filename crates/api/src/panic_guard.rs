//! A last line of defence: a panic while handling a request (a bug) is
//! logged and answered `500 UNKNOWN`, instead of dropping the connection
//! without an answer or a log line. Handlers must not panic; this only
//! makes a bug visible and contained.

use crate::errors::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

pub async fn catch_panic(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => answer_panic(&method, &path, panic.as_ref()),
    }
}

/// Logs a handler's panic and answers `500 UNKNOWN`.
pub(crate) fn answer_panic(
    method: &axum::http::Method,
    path: &str,
    panic: &(dyn std::any::Any + Send),
) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(%method, path, panic = what, "a request handler panicked");
    ApiError::new(ErrorCode::Unknown).into_response()
}

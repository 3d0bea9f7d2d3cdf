//! The metrics endpoint (`extensions.metrics.prometheus.path`, outside
//! `/v2` like the probes): `GET` (and `HEAD`) only, authorised as zot does
//! (see [`crate::security::check_metrics`]), answered with the Prometheus
//! text exposition. Scrapes are not counted in the metrics.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use zot_metrics::Metrics;

use crate::errors::{ApiError, ErrorCode};
use crate::{AppState, security};

pub(crate) async fn serve(state: &AppState, metrics: &Metrics, mut req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(ErrorCode::NotFound).into_response();
    }
    if let Err(mut refused) = security::check_metrics(&state.security, &mut req).await {
        security::quiet_for_zot_ui(&req, &mut refused);
        return refused;
    }
    let body = if req.method() == Method::HEAD {
        String::new()
    } else {
        metrics.render()
    };
    (
        [(header::CONTENT_TYPE, zot_metrics::render::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

//! The metrics endpoint (`extensions.metrics.prometheus.path`, outside
//! `/v2` like the probes): `GET` (and `HEAD`) only, authorised as zot does
//! (see [`crate::security::check_metrics`]), answered with the Prometheus
//! text exposition, or OpenMetrics 1.0 when `Accept` asks for it. Scrapes are not counted in the metrics.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use zot_metrics::Metrics;

use crate::errors::{ApiError, ErrorCode};
use crate::security;
use zot_auth::Security;

pub(crate) async fn serve(security: &Security, metrics: &Metrics, mut req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(ErrorCode::NotFound).into_response();
    }
    if let Err(mut refused) = security::check_metrics(security, &mut req).await {
        security::quiet_for_zot_ui(&req, &mut refused);
        return refused;
    }
    // OpenMetrics when the scraper asks for it (Prometheus does by default).
    let openmetrics = req.headers().get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let (content_type, body) = match (req.method() == Method::HEAD, openmetrics) {
        (true, true) => (zot_metrics::render::OPENMETRICS_CONTENT_TYPE, String::new()),
        (true, false) => (zot_metrics::render::CONTENT_TYPE, String::new()),
        (false, true) => (
            zot_metrics::render::OPENMETRICS_CONTENT_TYPE,
            metrics.render_openmetrics(),
        ),
        (false, false) => (zot_metrics::render::CONTENT_TYPE, metrics.render()),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

//! The zot extension routes under `/v2/_zot/ext/`: `search` (GraphQL, GET
//! and POST), `userprefs` (PUT) and `mgmt` (GET), all three on exactly when
//! the search extension is (the `search` Cargo feature and
//! `extensions.search`).
//!
//! Invariants:
//! - With search off, each of these paths is answered 404 `UNSUPPORTED`
//!   before authentication, as any unknown path under `/v2/` is
//!   (`dispatch`).
//! - With search on, a request reaches here only after `security::check`:
//!   `search` and `userprefs` need a login like `/v2/` (anonymous callers
//!   when anonymous access exists somewhere); `mgmt` is open to anyone at
//!   exactly `/v2/_zot/ext/mgmt` without a query string, and otherwise needs
//!   a login too (zot's `RequestURI` rule).
//! - The handlers learn the caller as a [`zot_search::Viewer`]: its user
//!   name and what access control lets it do per repository, decided as for
//!   the catalog (`Security::may_in_listing`), so every result is filtered
//!   to what the caller may read.
//! - Another method on a known route is 405 `UNSUPPORTED`.
//! - Every answer carries `X-Content-Type-Options: nosniff`, as zot's.

use axum::extract::Request;
#[cfg(feature = "search")]
use axum::http::{HeaderValue, Method, header};
#[cfg(feature = "search")]
use axum::response::IntoResponse;
#[cfg(feature = "search")]
use std::sync::Arc;

use crate::SharedState;
use crate::endpoint::Endpoint;
use crate::errors::{ApiResult, ErrorCode};
use crate::security::Caller;

/// The search extension as the API serves it.
#[cfg(feature = "search")]
pub struct SearchExtension {
    /// GraphQL and userprefs.
    pub search: Arc<zot_search::Search>,
    /// The body of `GET /v2/_zot/ext/mgmt` (see [`crate::mgmt::render`]);
    /// a configuration reload changing `http.auth` replaces it.
    pub mgmt: arc_swap::ArcSwap<String>,
}

/// The path at which `mgmt` is readable without credentials, exactly.
pub(crate) const MGMT_PATH: &str = "/v2/_zot/ext/mgmt";

/// Whether `endpoint` is one of the zot extension routes.
pub(crate) fn is_zot_extension(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::Search | Endpoint::UserPrefs | Endpoint::Mgmt
    )
}

/// Whether the zot extension routes are served.
pub(crate) fn enabled(state: &SharedState) -> bool {
    #[cfg(feature = "search")]
    {
        state.search.is_some()
    }
    #[cfg(not(feature = "search"))]
    {
        let _ = state;
        false
    }
}

/// Whether the request is the one anyone may make: `GET` of exactly
/// [`MGMT_PATH`], no query string (not even an empty one).
pub(crate) fn is_public_mgmt(endpoint: &Endpoint, req: &Request) -> bool {
    let uri = req.uri();
    *endpoint == Endpoint::Mgmt && uri.path() == MGMT_PATH && uri.query().is_none()
}

/// The caller as the search crate sees it.
#[cfg(feature = "search")]
fn viewer(security: &Arc<zot_auth::Security>, caller: &Caller) -> zot_search::Viewer {
    use zot_auth::Action;
    use zot_search::Access;
    let identity = caller.identity.clone();
    let security = security.clone();
    zot_search::Viewer {
        user: identity.as_ref().map(|i| i.name.clone()),
        may: Arc::new(move |repo: &str, access: Access| {
            let action = match access {
                Access::Read => Action::Read,
                Access::Delete => Action::Delete,
            };
            security.may_in_listing(identity.as_ref(), repo, action)
        }),
    }
}

/// Answers a request to a zot extension route (already authorised).
pub(crate) async fn route(
    state: &SharedState,
    security: &std::sync::Arc<zot_auth::Security>,
    endpoint: Endpoint,
    req: Request,
    caller: &Caller,
) -> ApiResult {
    #[cfg(feature = "search")]
    if let Some(extension) = &state.search {
        let method = req.method().clone();
        let mut resp = match (endpoint, &method) {
            (Endpoint::Search, &Method::GET | &Method::POST) => {
                extension
                    .search
                    .graphql(req, viewer(security, caller))
                    .await
            }
            (Endpoint::UserPrefs, &Method::PUT) => {
                extension
                    .search
                    .userprefs(req, viewer(security, caller))
                    .await
            }
            (Endpoint::Mgmt, &Method::GET) => (
                // zot sets no type; Go's sniffing answers this one.
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                String::clone(&extension.mgmt.load()),
            )
                .into_response(),
            (_, m) => crate::unsupported(m).into_response(),
        };
        resp.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        return Ok(resp);
    }
    let _ = (state, security, endpoint, req, caller);
    Err(crate::errors::ApiError::new(ErrorCode::NotFound))
}

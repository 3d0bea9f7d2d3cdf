//! zot's login routes, outside `/v2`: `/zot/auth/login?provider=&callback_ui=`
//! (to the provider), `/zot/auth/callback/<provider>` (back from it, a
//! session made) and `POST /zot/auth/logout` (the session ended).
//!
//! Invariants:
//! - Login and callback exist only with OpenID providers configured, logout
//!   only with sessions; otherwise these paths are 404 like any other.
//! - `callback_ui` is checked before the login starts (see
//!   `OpenId::callback_allowed`): a foreign origin is refused with 400,
//!   never redirected to.
//! - A callback is accepted only with the state sealed in this browser's
//!   `statecookie`, once, and for the provider the login started with;
//!   every refusal is 401 and makes no session.
//! - Logout is `POST` only and, like every state-changing request made with
//!   a session cookie, needs the `X-ZOT-API-CLIENT` header (see
//!   `security::session_identity`).
//! - The redirect URI is `<origin>/zot/auth/callback/<provider>`, the origin
//!   being `http.externalUrl` or the request's scheme and `Host`.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use zot_auth::openid::LoginError;
use zot_auth::session::{PendingLogin, SESSION_COOKIE, STATE_COOKIE, SessionRecord, cookie_value};

use crate::errors::{ApiError, ErrorCode};
use crate::http_util::query;
use crate::security::{client_addr, has_client_header, request_host};
use zot_auth::Security;

/// A request without its body.
type Head = axum::http::Request<()>;

const LOGIN: &str = "/zot/auth/login";
const LOGOUT: &str = "/zot/auth/logout";
const CALLBACK: &str = "/zot/auth/callback/";

/// Whether `path` is one of the login routes.
pub(crate) fn is_login_path(path: &str) -> bool {
    path == LOGIN || path == LOGOUT || path.starts_with(CALLBACK)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The value of cookie `name` sent with `req`.
pub(crate) fn request_cookie<'a, B>(
    req: &'a axum::http::Request<B>,
    name: &str,
) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, name))
}

/// Answers a login route.
pub(crate) async fn serve(security: &Security, req: Request) -> Response {
    // Without its body (unused), the request can be held across awaits.
    let (parts, _) = req.into_parts();
    let req = Head::from_parts(parts, ());
    if security.rate_limited(client_addr(&req), req.method().as_str()) {
        return ApiError::new(ErrorCode::TooManyRequests)
            .header(header::RETRY_AFTER, "1".to_owned())
            .into_response();
    }
    let path = req.uri().path().to_owned();
    let (Some(sessions), openid) = (security.sessions(), security.openid()) else {
        return ApiError::new(ErrorCode::NotFound).into_response();
    };
    if path == LOGOUT {
        return logout(security, sessions, &req).await;
    }
    let Some(openid) = openid else {
        return ApiError::new(ErrorCode::NotFound).into_response();
    };
    let origin = security.public_origin(request_host(&req));
    if path == LOGIN {
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let Some(provider) = query(&req, "provider").filter(|p| openid.has_provider(p)) else {
            return plain(StatusCode::BAD_REQUEST, "unknown provider");
        };
        let callback_ui = query(&req, "callback_ui").filter(|c| !c.is_empty());
        if let Some(c) = &callback_ui
            && !openid.callback_allowed(c, &origin)
        {
            tracing::info!(client = ?client_addr(&req), "login refused: callback_ui not allowed");
            return plain(
                StatusCode::BAD_REQUEST,
                "callback_ui is not an allowed origin",
            );
        }
        let (Some(nonce), Some(verifier)) = (sessions.random(), sessions.random()) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
        };
        let pending = PendingLogin {
            provider: provider.clone(),
            nonce,
            verifier,
            callback_ui,
        };
        let (login_state, cookie) = match sessions.begin_login(&pending).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "starting a login");
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "session store unavailable",
                );
            }
        };
        let redirect_uri = format!("{origin}{CALLBACK}{provider}");
        let url = openid
            .authorize_url(
                &provider,
                &redirect_uri,
                &login_state,
                &pending.nonce,
                &pending.verifier,
            )
            .await;
        return match url.map(|u| HeaderValue::from_str(&u)) {
            Ok(Ok(location)) => {
                let mut resp = StatusCode::FOUND.into_response();
                resp.headers_mut().insert(header::LOCATION, location);
                with_cookies(resp, &[cookie])
            }
            Ok(Err(_)) => plain(StatusCode::BAD_GATEWAY, "bad authorization URL"),
            Err(e) => login_error(&e),
        };
    }
    // The callback.
    let provider = &path[CALLBACK.len()..];
    if !openid.has_provider(provider) {
        return ApiError::new(ErrorCode::NotFound).into_response();
    }
    let clear_state = sessions.clear_state();
    let refuse = |why: &str| {
        tracing::info!(client = ?client_addr(&req), provider, reason = why, "login refused");
        with_cookies(
            plain(StatusCode::UNAUTHORIZED, "login refused"),
            std::slice::from_ref(&clear_state),
        )
    };
    let Some(login_state) = query(&req, "state") else {
        return refuse("no state");
    };
    let pending = match sessions
        .finish_login(&login_state, request_cookie(&req, STATE_COOKIE))
        .await
    {
        Ok(p) if p.provider == provider => p,
        Ok(_) => return refuse("state of another provider"),
        Err(e) => return refuse(&e.to_string()),
    };
    if query(&req, "error").is_some() {
        return refuse("the provider reported an error");
    }
    let Some(code) = query(&req, "code") else {
        return refuse("no code");
    };
    let redirect_uri = format!("{origin}{CALLBACK}{provider}");
    let who = match openid
        .finish(
            provider,
            &code,
            &redirect_uri,
            &pending.nonce,
            &pending.verifier,
        )
        .await
    {
        Ok(who) => who,
        Err(e @ LoginError::Provider(_)) => {
            tracing::warn!(provider, error = %e, "login failed");
            return with_cookies(login_error(&e), &[clear_state]);
        }
        Err(e) => return refuse(&e.to_string()),
    };
    let record = SessionRecord {
        user: who.user.clone(),
        groups: who.groups,
        provider: Some(provider.to_owned()),
    };
    let mut cookies = match sessions.create(&record).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "making a session");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store unavailable",
            );
        }
    };
    cookies.push(clear_state);
    tracing::info!(user = %who.user, provider, "logged in");
    let resp = match pending
        .callback_ui
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        Some(location) => {
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        None => StatusCode::CREATED.into_response(),
    };
    with_cookies(resp, &cookies)
}

fn login_error(e: &LoginError) -> Response {
    match e {
        LoginError::UnknownProvider => plain(StatusCode::BAD_REQUEST, "unknown provider"),
        LoginError::Provider(_) => plain(StatusCode::BAD_GATEWAY, "the provider is unavailable"),
        LoginError::Refused(_) => plain(StatusCode::UNAUTHORIZED, "login refused"),
    }
}

async fn logout(
    security: &Security,
    sessions: &zot_auth::session::Sessions,
    req: &Head,
) -> Response {
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let cookie = request_cookie(req, SESSION_COOKIE);
    if cookie.is_some() && !has_client_header(req) {
        return crate::security::csrf_refusal();
    }
    let (ended, cleared) = sessions.end(cookie).await;
    let mut body = serde_json::json!({});
    if let (Some(record), Some(openid)) = (&ended, security.openid())
        && let Some(provider) = &record.provider
    {
        let origin = security.public_origin(request_host(req));
        if let Some(url) = openid.end_session_url(provider, &origin).await {
            body["endSessionUrl"] = url.into();
        }
    }
    if let Some(record) = &ended {
        tracing::info!(user = %record.user, "logged out");
    }
    let resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    with_cookies(resp, &cleared)
}

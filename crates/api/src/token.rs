//! The built-in token endpoint (`http.auth.token.path`, default
//! `/auth/token`), served when the registry is its own token server (see
//! `zot_auth`'s `token` module).
//!
//! - `GET` with optional `Basic` credentials and repeated `scope=` (also
//!   space-separated), `service=`, `account=` (Docker's token protocol);
//! - `POST` with an `application/x-www-form-urlencoded` body, `grant_type=
//!   password`, `username`, `password`, `scope`, `service` (the OAuth2 form
//!   containerd uses first; no `username` is 400 `invalid_request`); a
//!   body over [`MAX_FORM`] bytes is refused.
//! - A verified client certificate (mutual TLS) identifies the caller when
//!   no credentials are sent, as on `/v2/`.
//!
//! Answers: 200 `{token, access_token, expires_in, issued_at}`; 401
//! `UNAUTHORIZED` with a `Basic` challenge for wrong credentials (after
//! `failDelay`), so `docker login` with a wrong password fails; 400 for
//! another `service` or an unsupported `grant_type`; 429 over the rate
//! limit. No credentials, or empty ones, get an anonymous token.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use zot_auth::tls::PeerCertificate;
use zot_auth::{AuthFailure, Credentials, Security};

use crate::errors::{ApiError, ErrorCode};

/// Largest accepted `POST` form.
const MAX_FORM: usize = 64 * 1024;

/// What a token request asked for.
struct TokenRequest {
    credentials: Credentials,
    scopes: Vec<String>,
    service: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let body = serde_json::json!({ "error": error }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Scope values: each parameter may hold several, space-separated.
fn push_scopes(scopes: &mut Vec<String>, value: &str) {
    for s in value.split(' ').filter(|s| !s.is_empty()) {
        if scopes.len() < zot_auth::MAX_SCOPES {
            scopes.push(s.to_owned());
        }
    }
}

fn from_query(req: &Request) -> TokenRequest {
    let mut scopes = Vec::new();
    let mut service = None;
    let query = req.uri().query().unwrap_or("");
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "scope" => push_scopes(&mut scopes, &v),
            "service" => service = Some(v.into_owned()),
            _ => {}
        }
    }
    let credentials = Credentials::parse(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    TokenRequest {
        credentials,
        scopes,
        service,
    }
}

async fn from_form(req: Request) -> Result<TokenRequest, Response> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_FORM);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
            ));
        }
    };
    let mut scopes = Vec::new();
    let (mut service, mut grant, mut user, mut password) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "scope" => push_scopes(&mut scopes, &v),
            "service" => service = Some(v.into_owned()),
            "grant_type" => grant = Some(v.into_owned()),
            "username" => user = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            _ => {}
        }
    }
    let credentials = match (grant.as_deref(), user) {
        (Some("password"), Some(user)) if !user.is_empty() => Credentials::Basic {
            user,
            password: password.unwrap_or_default(),
        },
        (Some("password"), _) => {
            return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request"));
        }
        // No refresh tokens are issued: clients fall back to `GET`.
        _ => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
            ));
        }
    };
    Ok(TokenRequest {
        credentials,
        scopes,
        service,
    })
}

/// Serves the token endpoint.
pub(crate) async fn serve(security: &Security, req: Request) -> Response {
    let client = crate::security::client_addr(&req);
    // A verified client certificate identifies the caller here too.
    let certificate = req.extensions().get::<PeerCertificate>().cloned();
    if security.rate_limited(client, req.method().as_str()) {
        return ApiError::new(ErrorCode::TooManyRequests)
            .header(header::RETRY_AFTER, "1".to_owned())
            .into_response();
    }
    let request = match *req.method() {
        Method::GET => from_query(&req),
        Method::POST => match from_form(req).await {
            Ok(r) => r,
            Err(resp) => return resp,
        },
        _ => {
            let mut resp = ApiError::msg(ErrorCode::Unsupported, "use GET or POST").into_response();
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return resp;
        }
    };
    if let (Some(asked), Some(ours)) = (&request.service, security.token_service_name())
        && asked != ours
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    if matches!(request.credentials, Credentials::Bearer(_)) {
        return ApiError::msg(ErrorCode::Unauthorized, "use Basic credentials here")
            .header(header::WWW_AUTHENTICATE, security.basic_challenge())
            .into_response();
    }
    let who = match security
        .authenticate(request.credentials, certificate.as_ref())
        .await
    {
        Ok(who) => who,
        Err(AuthFailure::Busy) => {
            return ApiError::msg(
                ErrorCode::TooManyRequests,
                "too many logins being verified; try again shortly",
            )
            .header(header::RETRY_AFTER, "1".to_owned())
            .into_response();
        }
        Err(failure) => {
            tracing::info!(client = ?client, reason = %failure, "token request refused");
            return ApiError::msg(ErrorCode::Unauthorized, "invalid username or password")
                .header(header::WWW_AUTHENTICATE, security.basic_challenge())
                .into_response();
        }
    };
    match security.issue_token(who.as_ref(), &request.scopes) {
        Some(token) => match serde_json::to_string(&token) {
            Ok(body) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::from(body))
                .unwrap_or_else(|_| ApiError::new(ErrorCode::Unknown).into_response()),
            Err(_) => ApiError::new(ErrorCode::Unknown).into_response(),
        },
        None => ApiError::new(ErrorCode::Unknown).into_response(),
    }
}

//! `/zot/auth/apikey` (zot's route, outside `/v2`), served when
//! `http.auth.apikey` is on: a logged-in user makes, lists and revokes
//! their API keys (see `zot_auth`'s `apikey` module for the keys).
//!
//! - `POST` `{"label", "scopes", "expirationDate"}` (a body over 8 KiB is
//!   413; bad JSON, an `expirationDate` that is not RFC 3339 or is past, or
//!   a bad scope is 400) → **201** with the key's details and `apiKey`,
//!   the only time the key itself is shown;
//! - `GET` → 200 `{"apiKeys": [...]}` (the caller's keys, no `apiKey`);
//! - `DELETE ?id=<uuid>` → 200; no or several `id` is 400; an id the
//!   caller has no key of is 404 (zot answers 200: a typo in a revocation
//!   should not look like success);
//! - `OPTIONS` → 204 (zot answers the UI's preflight).
//!
//! Every method needs a user who logged in themselves (htpasswd, LDAP, a
//! client certificate): none is 401 with the `Basic` challenge, a key or
//! a token is 403 `DENIED`. Refusals carry the OCI error envelope;
//! `INVALID_REQUEST` for 400 and 413, `KEY_UNKNOWN` for 404. Making and
//! revoking are audited like pushes.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use zot_auth::tls::PeerCertificate;
use zot_auth::{ApiKeys, AuthFailure, Credentials, Identity, KeyError, NewKey, StoredKey};

use crate::SharedState;
use crate::errors::{ApiError, ErrorCode};
use crate::security::{self, Caller};

/// The route (zot's).
pub const PATH: &str = "/zot/auth/apikey";
/// Largest accepted `POST` body (zot's limit).
const MAX_BODY: usize = 8 * 1024;

/// A refusal in the OCI error envelope with a status of its own.
fn refusal(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message.into()}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    refusal(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "API key store");
    ApiError::new(ErrorCode::Unknown).into_response()
}

/// A key as zot shows it (`APIKeyDetails`).
fn details(k: &StoredKey, now: u64) -> serde_json::Value {
    serde_json::json!({
        "createdAt": zot_auth::json_time(Some(k.created)),
        "expirationDate": zot_auth::json_time(k.expires),
        "isExpired": k.expired_at(now),
        "creatorUa": k.creator_ua,
        "generatedBy": "manual",
        "lastUsed": zot_auth::json_time(k.last_used),
        "label": k.label,
        "scopes": k.scopes,
        "uuid": k.id,
    })
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serves the route (only called when API keys are on).
pub(crate) async fn serve(state: &SharedState, req: Request) -> Response {
    let client = security::client_addr(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let sec = &state.security;
    let Some(keys) = sec.api_keys().cloned() else {
        return ApiError::new(ErrorCode::NotFound).into_response();
    };
    if sec.rate_limited(client, method.as_str()) {
        return ApiError::new(ErrorCode::TooManyRequests)
            .header(header::RETRY_AFTER, "1".to_owned())
            .into_response();
    }
    if method == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        return resp;
    }
    if !matches!(method, Method::GET | Method::POST | Method::DELETE) {
        let mut resp =
            ApiError::msg(ErrorCode::Unsupported, "use GET, POST or DELETE").into_response();
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        return resp;
    }
    let credentials = Credentials::parse(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    let certificate = req.extensions().get::<PeerCertificate>().cloned();
    let from_ui = req
        .headers()
        .get("x-zot-api-client")
        .is_some_and(|v| v.as_bytes() == b"zot-ui");
    let (who, resp) = match login(state, credentials, certificate, from_ui).await {
        Err(resp) => (None, resp),
        Ok(who) if !sec.may_manage_keys(&who) => (
            Some(who),
            ApiError::msg(
                ErrorCode::Denied,
                "API keys are managed with your own login, not with an API key or a token",
            )
            .into_response(),
        ),
        Ok(who) => {
            let resp = match method {
                Method::POST => create(&keys, &who, req).await,
                Method::DELETE => {
                    let query = req.uri().query().unwrap_or("").to_owned();
                    revoke(&keys, &who, &query).await
                }
                _ => list(&keys, &who).await,
            };
            (Some(who), resp)
        }
    };
    let caller = Caller {
        identity: who,
        client,
    };
    security::audit(sec, &caller, &method, &path, resp.status().as_u16());
    resp
}

/// The logged-in caller, or the answer to give. zot's UI
/// (`X-ZOT-API-CLIENT: zot-ui`) gets no challenge, as on `/v2`.
async fn login(
    state: &SharedState,
    credentials: Credentials,
    certificate: Option<PeerCertificate>,
    from_ui: bool,
) -> Result<Identity, Response> {
    let sec = &state.security;
    let unauthorized = || {
        let error = ApiError::new(ErrorCode::Unauthorized);
        if from_ui {
            error.into_response()
        } else {
            error
                .header(header::WWW_AUTHENTICATE, sec.basic_challenge())
                .into_response()
        }
    };
    match sec.authenticate(credentials, certificate.as_ref()).await {
        Ok(Some(who)) => Ok(who),
        Ok(None) => Err(unauthorized()),
        Err(AuthFailure::Busy) => Err(ApiError::msg(
            ErrorCode::TooManyRequests,
            "too many logins being verified; try again shortly",
        )
        .header(header::RETRY_AFTER, "1".to_owned())
        .into_response()),
        Err(failure) => {
            tracing::info!(reason = %failure, "authentication failed");
            Err(unauthorized())
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default)]
    label: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expiration_date: String,
}

async fn create(keys: &Arc<ApiKeys>, who: &Identity, req: Request) -> Response {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_REQUEST",
                format!("the body is limited to {MAX_BODY} bytes"),
            );
        }
    };
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("invalid JSON body: {e}")),
    };
    let expires = if body.expiration_date.is_empty() {
        None
    } else {
        match zot_oci::image_meta::parse_rfc3339(&body.expiration_date) {
            Some(ns) if ns > 0 => Some(u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX)),
            _ => {
                return bad_request(format!(
                    "expirationDate {:?}: expected an RFC 3339 time in the future",
                    body.expiration_date
                ));
            }
        }
    };
    let new = NewKey {
        label: body.label,
        scopes: body.scopes.unwrap_or_default(),
        expires,
        user_agent,
    };
    let (k, owner) = (keys.clone(), who.clone());
    match tokio::task::spawn_blocking(move || k.create(&owner, new)).await {
        Ok(Ok(made)) => {
            let mut body = details(&made.stored, now());
            body["apiKey"] = serde_json::Value::String(made.key);
            let mut resp = json(StatusCode::CREATED, &body);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Ok(Err(KeyError::Invalid(why))) => bad_request(why),
        Ok(Err(KeyError::Store(e))) => internal(e),
        Err(e) => internal(e),
    }
}

async fn list(keys: &Arc<ApiKeys>, who: &Identity) -> Response {
    let (k, owner) = (keys.clone(), who.name.clone());
    match tokio::task::spawn_blocking(move || k.list(&owner)).await {
        Ok(Ok(list)) => {
            let now = now();
            let api_keys: Vec<serde_json::Value> = list.iter().map(|k| details(k, now)).collect();
            json(StatusCode::OK, &serde_json::json!({ "apiKeys": api_keys }))
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn revoke(keys: &Arc<ApiKeys>, who: &Identity, query: &str) -> Response {
    let ids: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .collect();
    let [id] = ids.as_slice() else {
        return bad_request("exactly one id query parameter is required");
    };
    let (k, owner, id) = (keys.clone(), who.name.clone(), id.clone());
    match tokio::task::spawn_blocking(move || k.revoke(&owner, &id)).await {
        Ok(Ok(true)) => StatusCode::OK.into_response(),
        Ok(Ok(false)) => refusal(
            StatusCode::NOT_FOUND,
            "KEY_UNKNOWN",
            "no API key of yours has this id",
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

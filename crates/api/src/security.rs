//! Where security sits in the request path: after the path is parsed into an
//! [`Endpoint`] and before any handler touches storage, [`check`] rate-limits
//! the client, authenticates it and decides whether the endpoint's
//! [`Action`] is allowed on its repository. After the handler,
//! [`audit`] records every mutating request.
//!
//! Answers: 429 `TOOMANYREQUESTS` over the rate limit or when every
//! password-hashing slot stays busy; 401 `UNAUTHORIZED`
//! with a `WWW-Authenticate` challenge for missing or wrong credentials (and,
//! for bearer tokens, a token lacking the scope, so the client fetches a new
//! one); 403 `DENIED` for an authenticated user who may not. Credentials are
//! never logged; the only state read is [`Registry::manifest_record`], once
//! the client is authenticated and only when it may not create, to tell a
//! new tag (create) from a moved one (update).
//!
//! A caller that cannot read a repository learns nothing of its content from
//! a refusal: whether a tag exists does not change the answer to an invalid
//! push (see `refine`), and storage's errors name no size of a stored blob.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};
use zot_auth::tls::PeerCertificate;
use zot_auth::{
    Action, AuditEntry, AuthFailure, Credentials, Identity, Method as AuthMethod, Security,
};
use zot_oci::Reference;
use zot_storage::Registry;

use crate::endpoint::{Endpoint, percent_decode};
use crate::errors::{ApiError, ErrorCode};
use crate::http_util::query;
use crate::zot_ext;

/// Who is calling, once [`check`] let the request through.
#[derive(Debug, Default)]
pub(crate) struct Caller {
    pub identity: Option<Identity>,
    pub client: Option<IpAddr>,
    /// `Set-Cookie` values of a session made by this request (a Basic
    /// login from zot's UI).
    pub set_cookies: Vec<String>,
}

impl Caller {
    /// Whether the catalog may show `repo` to this caller.
    pub(crate) fn may_read(&self, security: &Security, repo: &str) -> bool {
        security.may_see_in_catalog(self.identity.as_ref(), repo)
    }
}

/// The client's address, when the server recorded it.
pub(crate) fn client_addr<B>(req: &axum::http::Request<B>) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// zot's UI marks its requests with `X-ZOT-API-CLIENT: zot-ui`; their
/// refusals (401, 403) carry no `WWW-Authenticate`, so that a browser shows
/// the UI's login instead of its own dialog (as zot answers them).
pub(crate) fn quiet_for_zot_ui(req: &Request, resp: &mut Response) {
    let from_ui = req
        .headers()
        .get("x-zot-api-client")
        .is_some_and(|v| v.as_bytes() == b"zot-ui");
    if from_ui && matches!(resp.status().as_u16(), 401 | 403) {
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
}

/// Whether the request carries `X-ZOT-API-CLIENT` (any value): a header a
/// cross-site form cannot send, and a cross-site script only after a CORS
/// preflight that only the configured `http.allowOrigin` origin passes.
pub(crate) fn has_client_header<B>(req: &axum::http::Request<B>) -> bool {
    req.headers()
        .get("x-zot-api-client")
        .is_some_and(|v| !v.is_empty())
}

/// The refusal of a state-changing request made with a session cookie but
/// without `X-ZOT-API-CLIENT` (cross-site request forgery).
pub(crate) fn csrf_refusal() -> Response {
    ApiError::msg(
        ErrorCode::Denied,
        "a request made with a session cookie must carry the X-ZOT-API-CLIENT header",
    )
    .into_response()
}

/// The request's session cookie, when there is no `Authorization`
/// header and sessions are on, and whether the request is state-changing
/// without `X-ZOT-API-CLIENT` (a forgery if made with the cookie).
pub(crate) fn session_cookie(
    security: &Security,
    credentials: &Credentials,
    req: &Request,
) -> Option<(String, bool)> {
    if !matches!(credentials, Credentials::None) || security.sessions().is_none() {
        return None;
    }
    let cookie = crate::login::request_cookie(req, zot_auth::session::SESSION_COOKIE)?;
    let forged = crate::mutating(req.method()) && !has_client_header(req);
    Some((cookie.to_owned(), forged))
}

/// The identity of a session cookie, if it names a live session. `Err` is
/// the CSRF refusal: a mutating request with the cookie and no
/// `X-ZOT-API-CLIENT`.
pub(crate) async fn session_identity(
    security: &Security,
    cookie: Option<(String, bool)>,
) -> Result<Option<Identity>, Response> {
    let (Some((cookie, forged)), Some(sessions)) = (cookie, security.sessions()) else {
        return Ok(None);
    };
    let Some(identity) = sessions.authenticate(&cookie).await else {
        return Ok(None);
    };
    if forged {
        tracing::info!(user = %identity.name, "refused: session cookie without X-ZOT-API-CLIENT");
        return Err(csrf_refusal());
    }
    Ok(Some(identity))
}

/// A session for a Basic login from zot's UI (`X-ZOT-API-CLIENT: zot-ui`):
/// its `Set-Cookie` values, or none.
async fn ui_session(security: &Security, identity: &Identity, from_ui: bool) -> Vec<String> {
    // An API key's scope is not kept in a session: a key logs in alone.
    let by_password = identity.key.is_none() && identity.method != AuthMethod::ApiKey;
    let Some(sessions) = security.sessions().filter(|_| from_ui && by_password) else {
        return Vec::new();
    };
    let record = zot_auth::session::SessionRecord {
        user: identity.name.clone(),
        groups: identity.groups.clone(),
        provider: None,
    };
    match sessions.create(&record).await {
        Ok(cookies) => cookies,
        Err(e) => {
            tracing::warn!(error = %e, "making a session for a UI login");
            Vec::new()
        }
    }
}

/// Whether the request carries a body (which a refusal leaves unread).
pub(crate) fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// What an endpoint needs: a repository action, the catalog, only an
/// authenticated (or allowed anonymous) client, or nothing (mgmt).
enum Need {
    Repo(String, Action),
    Catalog,
    /// `/v2/` and discover: with the built-in token service, an anonymous
    /// client must bring a token, so that it learns where to get one.
    Login,
    /// The zot extensions: like `Login`, but an anonymous client needs no
    /// token (zot's UI sends none; answers are filtered per repository).
    Caller,
    Nothing,
}

fn need(endpoint: &Endpoint, req: &Request) -> Need {
    let repo = |r: &zot_oci::RepoName, a| Need::Repo(r.as_str().to_owned(), a);
    match (endpoint, req.method()) {
        // zot's exception: anyone may read exactly `/v2/_zot/ext/mgmt`.
        (Endpoint::Mgmt, _) if zot_ext::is_public_mgmt(endpoint, req) => Need::Nothing,
        // The search extension filters its answers per repository itself.
        (Endpoint::Search | Endpoint::UserPrefs | Endpoint::Mgmt | Endpoint::SyncStatus, _) => {
            Need::Caller
        }
        (Endpoint::Base | Endpoint::Discover, _) => Need::Login,
        (Endpoint::Catalog, _) => Need::Catalog,
        // `create`, or `update` for an existing tag: see `refine`.
        (Endpoint::Manifest(r, _), &Method::PUT) => repo(r, Action::Create),
        (Endpoint::Manifest(r, _) | Endpoint::Blob(r, _), &Method::DELETE) => {
            repo(r, Action::Delete)
        }
        (Endpoint::UploadStart(r) | Endpoint::Upload(r, _), _) => repo(r, Action::Create),
        (
            Endpoint::Tags(r)
            | Endpoint::Manifest(r, _)
            | Endpoint::Blob(r, _)
            | Endpoint::Referrers(r, _),
            _,
        ) => repo(r, Action::Read),
    }
}

/// A manifest `PUT` to a tag that already exists moves it: `update`. Looked
/// up only once the client is authenticated, so an unauthenticated request
/// never reaches the metadata store, and only for a caller who may not
/// `create`: a caller who may is let through, and storage refuses under its
/// lock to move an existing tag when the caller may not `update` either
/// (`TagPolicy::CreateOnly`), after checking the manifest. So a caller who
/// cannot read the repository gets the same answer to an invalid manifest
/// whether or not the tag exists (a 403 before the manifest was even read
/// told it the tag existed).
fn refine(
    need: Need,
    security: &Security,
    who: Option<&Identity>,
    registry: &Registry,
    endpoint: &Endpoint,
    method: &Method,
) -> Need {
    match (need, endpoint) {
        (
            Need::Repo(name, Action::Create),
            Endpoint::Manifest(r, reference @ Reference::Tag(_)),
        ) if method == Method::PUT
            && !security.allowed(who, &name, Action::Create)
            && registry.manifest_record(r, reference).is_ok() =>
        {
            Need::Repo(name, Action::Update)
        }
        (need, _) => need,
    }
}

/// The token scope a client needs for `need` (bearer challenges).
fn scope(need: &Need) -> Option<String> {
    match need {
        Need::Repo(name, action) => Some(match action {
            Action::Read => format!("repository:{name}:pull"),
            Action::Create | Action::Update => format!("repository:{name}:pull,push"),
            Action::Delete => format!("repository:{name}:delete"),
        }),
        Need::Catalog => Some("registry:catalog:*".to_owned()),
        Need::Login | Need::Caller | Need::Nothing => None,
    }
}

/// The host the client addressed (`Host`, or the HTTP/2 `:authority`).
pub(crate) fn request_host<B>(req: &axum::http::Request<B>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

fn unauthorized(
    security: &Security,
    host: Option<&str>,
    need: &Need,
    error: Option<&str>,
) -> Response {
    let challenge = security.challenge(host, scope(need).as_deref(), error);
    ApiError::new(ErrorCode::Unauthorized)
        .header(header::WWW_AUTHENTICATE, challenge)
        .into_response()
}

/// Lets the request through (returning the caller) or answers it (with
/// the caller as far as known, for the audit log: an authenticated user who
/// is refused is named there).
pub(crate) async fn check(
    security: &Security,
    registry: &Registry,
    endpoint: &Endpoint,
    req: &mut Request,
) -> Result<Caller, (Caller, Response)> {
    let client = client_addr(req);
    let anonymous = Caller {
        identity: None,
        client,
        set_cookies: Vec::new(),
    };
    if security.rate_limited(client, req.method().as_str()) {
        return Err((
            anonymous,
            ApiError::new(ErrorCode::TooManyRequests)
                .header(header::RETRY_AFTER, "1".to_owned())
                .into_response(),
        ));
    }
    if security.is_open() {
        return Ok(Caller {
            identity: None,
            client,
            set_cookies: Vec::new(),
        });
    }
    let need = need(endpoint, req);
    let credentials = Credentials::parse(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    // With the built-in token service, an anonymous `/v2/` is challenged
    // unless it carries a (verified, possibly anonymous) token, so that
    // clients learn where to get one.
    let bearing_token = matches!(credentials, Credentials::Bearer(_));
    let basic = matches!(credentials, Credentials::Basic { .. });
    let cookie = session_cookie(security, &credentials, req);
    let session = match session_identity(security, cookie).await {
        Ok(session) => session,
        Err(refusal) => return Err((anonymous, refusal)),
    };
    let host = request_host(req);
    let certificate = req.extensions().get::<PeerCertificate>();
    let authenticated = match session {
        Some(identity) => Ok(Some(identity)),
        None => security.authenticate(credentials, certificate).await,
    };
    let identity = match authenticated {
        Ok(identity) => identity,
        Err(AuthFailure::Busy) => {
            tracing::warn!(client = ?client, "login refused: every password-hashing slot is busy");
            return Err((
                anonymous,
                ApiError::msg(
                    ErrorCode::TooManyRequests,
                    "too many logins being verified; try again shortly",
                )
                .header(header::RETRY_AFTER, "1".to_owned())
                .into_response(),
            ));
        }
        Err(failure) => {
            tracing::info!(client = ?client, reason = %failure, "authentication failed");
            let error = match failure {
                AuthFailure::BadToken(_) => Some("invalid_token"),
                _ => None,
            };
            return Err((anonymous, unauthorized(security, host, &need, error)));
        }
    };
    let need = refine(
        need,
        security,
        identity.as_ref(),
        registry,
        endpoint,
        req.method(),
    );
    let who = identity.as_ref();
    let allowed = match &need {
        Need::Login => {
            who.is_some()
                || (security.anonymous_allowed_anywhere()
                    && (bearing_token || !security.issues_tokens()))
        }
        Need::Caller => who.is_some() || security.anonymous_allowed_anywhere(),
        Need::Catalog => {
            (who.is_some() || security.anonymous_allowed_anywhere())
                && security.may_list_catalog(who)
        }
        Need::Repo(name, action) => security.allowed(who, name, *action),
        Need::Nothing => true,
    };
    if !allowed {
        let response = match who {
            None => unauthorized(security, host, &need, None),
            // A built-in token lacking a repository scope its subject may
            // have: 403 with the challenge, as RFC 6750 says (oras-py
            // fetches a new token only on 403; docker, containerd and
            // containers/image ask for the scopes they need before the
            // request, so they do not meet this). Elsewhere (the catalog)
            // and for external tokens: distribution's 401.
            Some(w)
                if w.method == AuthMethod::Token
                    && matches!(need, Need::Repo(..))
                    && token_would_help(security, w, &need) =>
            {
                let challenge =
                    security.challenge(host, scope(&need).as_deref(), Some("insufficient_scope"));
                ApiError::new(ErrorCode::Denied)
                    .header(header::WWW_AUTHENTICATE, challenge)
                    .into_response()
            }
            Some(w) if w.grants.is_some() && token_would_help(security, w, &need) => {
                unauthorized(security, host, &need, Some("insufficient_scope"))
            }
            Some(_) => ApiError::new(ErrorCode::Denied).into_response(),
        };
        let caller = Caller {
            identity,
            client,
            set_cookies: Vec::new(),
        };
        return Err((caller, response));
    }
    if let Endpoint::UploadStart(_) = endpoint {
        restrict_mount(security, who, req);
    }
    // Allowed to create a tag but not to move one: the push must not move a
    // tag that appears meanwhile. Storage decides that under its lock.
    if let Need::Repo(name, Action::Create) = &need
        && matches!(endpoint, Endpoint::Manifest(_, Reference::Tag(_)))
        && !security.allowed(who, name, Action::Update)
    {
        req.extensions_mut()
            .insert(zot_storage::TagPolicy::CreateOnly);
    }
    let set_cookies = match &identity {
        Some(who) if basic => {
            let from_ui = req
                .headers()
                .get("x-zot-api-client")
                .is_some_and(|v| v.as_bytes() == b"zot-ui");
            ui_session(security, who, from_ui).await
        }
        _ => Vec::new(),
    };
    Ok(Caller {
        identity,
        client,
        set_cookies,
    })
}

/// Whether a client refused with a token should fetch a new one (401) or
/// is simply not allowed (403).
fn token_would_help(security: &Security, who: &Identity, need: &Need) -> bool {
    match need {
        Need::Repo(name, action) => security.new_token_would_help(who, name, *action),
        Need::Catalog | Need::Login | Need::Caller | Need::Nothing => true,
    }
}

/// A cross-repository mount may only take a blob from a repository the
/// caller can read; otherwise `mount`/`from` are dropped and the client gets
/// an ordinary upload session (as the spec allows). Keys are compared
/// percent-decoded, as the handler reads them (`?%6Dount=` is `mount`), and
/// every `mount`/`from` pair goes, so no spelling or repetition survives.
fn restrict_mount(security: &Security, who: Option<&Identity>, req: &mut Request) {
    if query(req, "mount").is_none() {
        return;
    }
    // Decided on a valid name only: `pub/../secret` matches `pub/**`.
    let readable = query(req, "from")
        .and_then(|from| from.parse::<zot_oci::RepoName>().ok())
        .is_some_and(|from| security.allowed(who, from.as_str(), Action::Read));
    if readable {
        return;
    }
    let kept: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            let key = percent_decode(pair.split_once('=').map_or(*pair, |(k, _)| k));
            key != "mount" && key != "from" && !key.is_empty()
        })
        .collect();
    let path = req.uri().path();
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(uri) = rebuilt.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}

/// Records a mutating request in the audit log.
pub(crate) fn audit(
    security: &Security,
    caller: &Caller,
    method: &Method,
    path: &str,
    status: u16,
) {
    if crate::mutating(method) && security.audits() {
        security.audit(&AuditEntry {
            user: caller.identity.as_ref().map(|i| i.name.as_str()),
            client: caller.client,
            method: method.as_str(),
            path,
            status,
        });
    }
}

/// Lets a request for the metrics endpoint through, or answers it, as zot's
/// MetricsAuthzHandler decides (see [`Security::may_read_metrics`]): 401
/// with a challenge for an anonymous client that may not, 403 for an
/// authenticated user who may not.
pub(crate) async fn check_metrics(security: &Security, req: &mut Request) -> Result<(), Response> {
    let client = client_addr(req);
    let too_many = |why: &'static str| {
        ApiError::msg(ErrorCode::TooManyRequests, why)
            .header(header::RETRY_AFTER, "1".to_owned())
            .into_response()
    };
    if security.rate_limited(client, req.method().as_str()) {
        return Err(too_many("too many requests"));
    }
    if security.is_open() {
        return Ok(());
    }
    let credentials = Credentials::parse(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    let host = request_host(req);
    let certificate = req.extensions().get::<PeerCertificate>();
    let identity = match security.authenticate(credentials, certificate).await {
        Ok(identity) => identity,
        Err(AuthFailure::Busy) => {
            return Err(too_many(
                "too many logins being verified; try again shortly",
            ));
        }
        Err(failure) => {
            tracing::info!(client = ?client, reason = %failure, "authentication failed");
            return Err(unauthorized(security, host, &Need::Login, None));
        }
    };
    match identity {
        _ if security.may_read_metrics(identity.as_ref()) => Ok(()),
        None => Err(unauthorized(security, host, &Need::Login, None)),
        Some(_) => Err(ApiError::new(ErrorCode::Denied).into_response()),
    }
}

//! The HTTP surface: every `/v2/...` request is parsed once into an
//! [`Endpoint`] and dispatched from one match in [`dispatch`]; health probes
//! sit beside it. Handlers live in one module per resource and answer every
//! failure with an OCI error from [`errors`].
//!
//! A mutating request runs as a task of its own, so that a client going
//! away never stops it half-way ([`mutations`]); response bodies pay from
//! per-connection and global byte budgets, and the listener learns from
//! [`connection`] which connections are idle or stalled.

mod access_log;
pub mod apikey;
mod apikey_store;
mod blobs;
pub mod cluster;
pub mod connection;
pub mod cors;
pub mod endpoint;
pub mod errors;
mod http_util;
mod login;
mod manifests;
mod metrics_route;
pub mod mgmt;
pub mod mutations;
mod panic_guard;
#[cfg(feature = "sync")]
mod pull_through;
mod security;
#[cfg(feature = "sync")]
pub mod sync_hook;
mod token;
mod zot_ext;

pub use apikey_store::MetaKeyStore;
#[cfg(feature = "search")]
pub use zot_ext::SearchExtension;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use connection::ConnectionLoad;
use endpoint::Endpoint;
use errors::{ApiError, ApiResult, ErrorCode};
use futures_util::FutureExt;
use mutations::Mutations;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zot_auth::Security;
use zot_storage::{Registry, Stores};

/// An extension advertised through `/v2/_oci/ext/discover`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtensionInfo {
    pub name: String,
    pub url: String,
    pub description: String,
    pub endpoints: Vec<String>,
}

/// The state every request reads. What a configuration reload may change
/// (security, the discover list, the metrics endpoint) is held in
/// swappable snapshots: a request loads each once and keeps what it loaded
/// until it ends, so a reload never changes the rules under a request in
/// flight, and nothing is closed.
pub struct AppState {
    /// The stores, and which repository lives in which (`storage.subPaths`).
    pub stores: Stores,
    /// What `/v2/_oci/ext/discover` lists (see [`AppState::set_extensions`]).
    extensions: ArcSwap<Vec<ExtensionInfo>>,
    /// Set once start-up work is done; `/readyz` and `/startupz` answer 503 before.
    pub ready: AtomicBool,
    /// Authentication, access control, rate limits and audit (see
    /// `security`); read with [`AppState::security`].
    security: ArcSwap<zot_auth::Security>,
    /// Mutating requests in flight (shutdown waits for them).
    pub mutations: Arc<Mutations>,
    /// Bytes of response bodies in flight, process-wide (see `connection`).
    pub send_budget: connection::SendBudget,
    /// The search extension (GraphQL, userprefs, mgmt); `None` when it is
    /// off, and its routes answer 404.
    #[cfg(feature = "search")]
    pub search: Option<SearchExtension>,
    /// The metrics extension; `None` when it is off (nothing is recorded
    /// and its path is no route). Set with [`AppState::set_metrics`].
    metrics: ArcSwapOption<MetricsEndpoint>,
    /// Cross-origin answers (`http.allowOrigin`); `None`: none.
    pub cors: Option<cors::Cors>,
    /// The sync extension (status, on-demand fetches); `None` when off.
    #[cfg(feature = "sync")]
    pub sync: Option<Arc<dyn sync_hook::SyncHook>>,
    /// Cluster mode (`cluster`): `None` when off, and every request is
    /// served here.
    pub cluster: Option<cluster::Cluster>,
    /// Whether any store keeps events (`extensions.events`, fixed when the
    /// stores open): only then do mutating requests carry their origin.
    #[cfg(feature = "events")]
    events: bool,
}

/// The metrics extension as the API sees it: where it is served and what
/// it records.
pub struct MetricsEndpoint {
    /// `extensions.metrics.prometheus.path` (outside `/v2`).
    pub path: String,
    pub metrics: Arc<zot_metrics::Metrics>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// `stores`: one registry (`Arc<Registry>`), or several ([`Stores`]).
    pub fn new(stores: impl Into<Stores>, extensions: Vec<ExtensionInfo>) -> SharedState {
        Self::with_security(stores, extensions, zot_auth::Security::open())
    }

    /// Like [`AppState::new`], with authentication and access control.
    pub fn with_security(
        stores: impl Into<Stores>,
        extensions: Vec<ExtensionInfo>,
        security: zot_auth::Security,
    ) -> SharedState {
        Arc::new(Self::plain(stores.into(), extensions, security))
    }

    /// Like [`AppState::with_security`], with the search extension on.
    #[cfg(feature = "search")]
    pub fn with_search(
        stores: impl Into<Stores>,
        extensions: Vec<ExtensionInfo>,
        security: zot_auth::Security,
        search: SearchExtension,
    ) -> SharedState {
        Arc::new(AppState {
            search: Some(search),
            ..Self::plain(stores.into(), extensions, security)
        })
    }

    fn plain(
        stores: Stores,
        extensions: Vec<ExtensionInfo>,
        security: zot_auth::Security,
    ) -> AppState {
        AppState {
            #[cfg(feature = "events")]
            events: stores
                .distinct()
                .iter()
                .any(|r| r.outbox().events_enabled()),
            stores,
            extensions: ArcSwap::from_pointee(extensions),
            ready: AtomicBool::new(true),
            security: ArcSwap::from_pointee(security),
            mutations: Arc::default(),
            send_budget: connection::SendBudget::default(),
            #[cfg(feature = "search")]
            search: None,
            metrics: ArcSwapOption::empty(),
            cors: None,
            #[cfg(feature = "sync")]
            sync: None,
            cluster: None,
        }
    }

    /// The security snapshot in use now (a request loads it once).
    pub fn security(&self) -> Arc<Security> {
        self.security.load_full()
    }

    /// Replaces security for requests starting from now (a reload).
    pub fn set_security(&self, security: Security) {
        self.security.store(Arc::new(security));
    }

    /// Replaces the body of `GET /v2/_zot/ext/mgmt` (a reload changing
    /// the login methods); nothing without the search extension.
    pub fn set_mgmt(&self, body: String) {
        #[cfg(feature = "search")]
        if let Some(search) = &self.search {
            search.mgmt.store(Arc::new(body));
        }
        #[cfg(not(feature = "search"))]
        let _ = body;
    }

    /// Replaces what discover lists (a reload).
    pub fn set_extensions(&self, extensions: Vec<ExtensionInfo>) {
        self.extensions.store(Arc::new(extensions));
    }

    /// Turns the metrics endpoint on (or to another path) or off, for
    /// requests starting from now.
    pub fn set_metrics(&self, metrics: Option<MetricsEndpoint>) {
        self.metrics.store(metrics.map(Arc::new));
    }
}

/// The router of the whole API.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(axum::middleware::from_fn(panic_guard::catch_panic))
        .layer(axum::middleware::from_fn(access_log::log_request))
        .layer(axum::middleware::from_fn(connection::track_requests))
}

const API_VERSION: &str = "registry/2.0";

/// Every request: CORS when configured, around [`measured`].
async fn dispatch(State(state): State<SharedState>, req: Request) -> Response {
    let Some(cors) = &state.cors else {
        return measured(&state, req).await;
    };
    if let Some(preflight) = cors.preflight(&req) {
        return preflight;
    }
    let mut resp = measured(&state, req).await;
    cors.decorate(resp.headers_mut());
    resp
}

/// With metrics on: serves the metrics path, and records every other
/// request (as zot, the metrics path itself is not counted).
async fn measured(state: &SharedState, req: Request) -> Response {
    let Some(metrics) = state.metrics.load_full() else {
        return route_request(state, req).await;
    };
    if req.uri().path() == metrics.path {
        return metrics_route::serve(&state.security(), &metrics.metrics, req).await;
    }
    let pending = metrics
        .metrics
        .begin(req.method().as_str(), req.uri().path());
    let resp = route_request(state, req).await;
    metrics.metrics.finish(pending, resp.status().as_u16());
    resp
}

async fn route_request(state: &SharedState, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    // The request's snapshot of security, kept to its end.
    let security = state.security();
    let mut resp = match Endpoint::parse(&path) {
        None if security.token_path() == Some(path.as_str()) => {
            return token::serve(&security, req).await;
        }
        None if login::is_login_path(&path) => return login::serve(&security, req).await,
        None if path == apikey::PATH && security.api_keys().is_some() => {
            return apikey::serve(&security, req).await;
        }
        None => {
            let resp = probes(state, &path, req.method());
            audit_unparsed(&security, &req, &path, &resp);
            return resp;
        }
        Some(Err(e)) => {
            let resp = e.for_method(req.method()).into_response();
            audit_unparsed(&security, &req, &path, &resp);
            resp
        }
        // An extension that is off is no route at all.
        Some(Ok(endpoint)) if zot_ext::is_zot_extension(&endpoint) && !zot_ext::enabled(state) => {
            let resp = ApiError::new(ErrorCode::NotFound).into_response();
            audit_unparsed(&security, &req, &path, &resp);
            resp
        }
        Some(Ok(endpoint)) if mutating(req.method()) => {
            // Its own task: a client that goes away must not stop a write
            // half-way, nor its audit line (see `mutations`).
            let (task_state, task_path) = (state.clone(), path.clone());
            let task_security = security.clone();
            let (method, client) = (req.method().clone(), security::client_addr(&req));
            let task = state.mutations.spawn(async move {
                handle(&task_state, &task_security, endpoint, req, &task_path).await
            });
            match task.await {
                Ok(resp) => resp,
                Err(e) => {
                    // A panic outside the handler (which catches its own).
                    tracing::error!(error = %e, path, "a mutating request's task failed");
                    let caller = security::Caller {
                        identity: None,
                        client,
                        set_cookies: Vec::new(),
                    };
                    security::audit(&security, &caller, &method, &path, 500);
                    ApiError::new(ErrorCode::Unknown).into_response()
                }
            }
        }
        Some(Ok(endpoint)) => handle(state, &security, endpoint, req, &path).await,
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static(API_VERSION),
    );
    resp
}

/// Audits a request refused before authentication (its path is not an
/// endpoint): as anonymous, when its method is mutating.
fn audit_unparsed(security: &Security, req: &Request, path: &str, resp: &Response) {
    let caller = security::Caller {
        identity: None,
        client: security::client_addr(req),
        set_cookies: Vec::new(),
    };
    let status = resp.status().as_u16();
    security::audit(security, &caller, req.method(), path, status);
}

/// Whether the method changes state (and is audited).
pub(crate) fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::PUT | Method::POST | Method::PATCH | Method::DELETE
    )
}

/// Security check, handler, audit line.
async fn handle(
    state: &SharedState,
    security: &Arc<Security>,
    endpoint: Endpoint,
    mut req: Request,
    path: &str,
) -> Response {
    // Security decides before any handler touches storage.
    let method = req.method().clone();
    let checked = security::check(security, store(state, &endpoint), &endpoint, &mut req).await;
    let (caller, resp) = match checked {
        Err((caller, mut resp)) => {
            security::quiet_for_zot_ui(&req, &mut resp);
            // The body was not read: the connection cannot be reused
            // (hyper closes it), so say so rather than let the client
            // send its next request into a closing socket.
            if security::has_body(&req) {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            (caller, resp)
        }
        Ok(caller) => {
            #[cfg(feature = "events")]
            let routed = {
                let origin = if state.events {
                    events_origin(&caller, &req)
                } else {
                    None
                };
                let work =
                    AssertUnwindSafe(route(state, security, endpoint, req, &caller)).catch_unwind();
                match origin {
                    Some(origin) => zot_storage::events::with_origin(origin, work).await,
                    None => work.await,
                }
            };
            #[cfg(not(feature = "events"))]
            let routed = AssertUnwindSafe(route(state, security, endpoint, req, &caller))
                .catch_unwind()
                .await;
            let resp = match routed {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => e.into_response(),
                Err(panic) => panic_guard::answer_panic(&method, path, panic.as_ref()),
            };
            (caller, resp)
        }
    };
    let status = resp.status().as_u16();
    security::audit(security, &caller, &method, path, status);
    let mut resp = resp;
    for cookie in &caller.set_cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Who made a mutating request and how, for the events it causes
/// (`actor`, `request`); `None` for reads (nothing to record).
#[cfg(feature = "events")]
fn events_origin(caller: &security::Caller, req: &Request) -> Option<zot_storage::events::Origin> {
    if !mutating(req.method()) {
        return None;
    }
    Some(zot_storage::events::Origin {
        actor: caller.identity.as_ref().map(|i| i.name.clone()),
        addr: caller.client.map(|a| a.to_string()).unwrap_or_default(),
        method: req.method().to_string(),
        user_agent: http_util::header_str(req, header::USER_AGENT)
            .unwrap_or_default()
            .to_owned(),
    })
}

fn probes(state: &AppState, path: &str, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(ErrorCode::NotFound).into_response();
    }
    match path {
        "/livez" => (StatusCode::OK, "ok").into_response(),
        "/readyz" | "/startupz" if !state.ready.load(Ordering::Relaxed) => {
            (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
        }
        // A metadata store failed by an I/O error (or Redis away) answers
        // requests needing it with 503 until it is recovered: not ready
        // meanwhile.
        "/readyz" if !state.stores.distinct().iter().all(|s| s.metadata_healthy()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata store unusable after an I/O error (or unreachable); recovering",
        )
            .into_response(),
        // The object store failed its latest request (refused, timed
        // out, 5xx) within the last seconds: not ready until it answers.
        "/readyz"
            if !state
                .stores
                .distinct()
                .iter()
                .all(|s| s.storage_reachable()) =>
        {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unreachable (its latest request failed); retrying",
            )
                .into_response()
        }
        "/readyz" | "/startupz" => (StatusCode::OK, "ok").into_response(),
        _ => ApiError::new(ErrorCode::NotFound).into_response(),
    }
}

fn unsupported(method: &Method) -> ApiError {
    ApiError::msg(
        ErrorCode::Unsupported,
        format!("method {method} is not supported on this endpoint"),
    )
}

async fn route(
    state: &SharedState,
    security: &Arc<Security>,
    endpoint: Endpoint,
    req: Request,
    caller: &security::Caller,
) -> ApiResult {
    if let Some(cluster) = &state.cluster {
        if let cluster::Route::Forward(owner) = cluster.route(&endpoint, &req)? {
            return Ok(cluster::proxy::forward(cluster, owner, req).await);
        }
        if cluster.proxying() && !cluster::is_forwarded(&req) {
            match (&endpoint, req.method()) {
                (Endpoint::Catalog, &Method::GET) => {
                    return cluster::fanout::catalog(state, security, cluster, req, caller).await;
                }
                (Endpoint::Search, &Method::GET | &Method::POST) if zot_ext::enabled(state) => {
                    return cluster::fanout::search(state, security, cluster, req, caller).await;
                }
                _ => {}
            }
        }
    }
    if zot_ext::is_zot_extension(&endpoint) {
        return zot_ext::route(state, security, endpoint, req, caller).await;
    }
    let method = req.method().clone();
    let reg = store(state, &endpoint);
    let uploader = blobs::Uploader {
        gate: state.stores.default_store(),
        client: caller.client,
    };
    match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()),
        (Endpoint::Catalog, Method::GET) => {
            let visible = |repo: &str| caller.may_read(security, repo);
            manifests::catalog(&state.stores, &req, &visible)
        }
        (Endpoint::Discover, Method::GET) => {
            let body = serde_json::json!({ "extensions": **state.extensions.load() });
            Ok((
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response())
        }
        (Endpoint::Tags(repo), Method::GET) => manifests::tags(reg, &repo, &req),
        (Endpoint::SyncStatus, Method::GET) => sync_status(state),
        #[cfg(feature = "sync")]
        (Endpoint::Manifest(repo, r), Method::GET | Method::HEAD)
            if state.sync.as_ref().is_some_and(|s| s.on_demand()) =>
        {
            let mut pending = None;
            if let Some(od) = &state.sync
                && (matches!(r, zot_oci::Reference::Tag(_))
                    || reg.manifest_record(&repo, &r).is_err())
            {
                let ns = http_util::query(&req, "ns");
                pending = od.manifest(&repo, &r, ns.as_deref()).await;
            }
            let send = (req.method() == Method::GET).then(|| connection::Download {
                budget: &state.send_budget,
                load: req.extensions().get::<Arc<ConnectionLoad>>().cloned(),
            });
            match pending {
                Some(m) => pull_through::manifest(m, send).await,
                None => manifests::get(reg, &repo, &r, send).await,
            }
        }
        #[cfg(feature = "sync")]
        (Endpoint::Blob(repo, d), Method::GET)
            if state.sync.as_ref().is_some_and(|s| s.on_demand()) =>
        {
            let send = connection::Download {
                budget: &state.send_budget,
                load: req.extensions().get::<Arc<ConnectionLoad>>().cloned(),
            };
            if let Some(size) = reg.blob_size(&repo, &d).await? {
                return blobs::serve(reg, &repo, (&d, size), range(&req), Some(send)).await;
            }
            match &state.sync {
                Some(od) => match od.blob(&repo, &d).await {
                    Some(pulled) => pull_through::blob(pulled, &d, range(&req), send).await,
                    // Stored meanwhile, or nowhere.
                    None => blobs::get(reg, &repo, &d, range(&req), Some(send)).await,
                },
                None => blobs::get(reg, &repo, &d, range(&req), Some(send)).await,
            }
        }
        #[cfg(feature = "sync")]
        (Endpoint::Blob(repo, d), Method::HEAD)
            if state.sync.as_ref().is_some_and(|s| s.on_demand()) =>
        {
            if reg.blob_size(&repo, &d).await?.is_none()
                && let Some(od) = &state.sync
                && let Some(size) = od.blob_size(&repo, &d).await
            {
                return pull_through::blob_head(&d, size);
            }
            blobs::get(reg, &repo, &d, range(&req), None).await
        }
        #[cfg(feature = "sync")]
        (Endpoint::Referrers(repo, d), Method::GET)
            if state.sync.as_ref().is_some_and(|s| s.on_demand()) =>
        {
            if let Some(od) = &state.sync {
                od.referrers(&repo, &d).await;
            }
            manifests::referrers(reg, &repo, &d, &req)
        }
        (Endpoint::Manifest(repo, r), Method::GET) => {
            let send = connection::Download {
                budget: &state.send_budget,
                load: req.extensions().get::<Arc<ConnectionLoad>>().cloned(),
            };
            manifests::get(reg, &repo, &r, Some(send)).await
        }
        (Endpoint::Manifest(repo, r), Method::HEAD) => manifests::get(reg, &repo, &r, None).await,
        (Endpoint::Manifest(repo, r), Method::PUT) => {
            let pusher = caller.identity.as_ref().map(|i| i.name.as_str());
            manifests::put(reg, &repo, &r, req, pusher).await
        }
        (Endpoint::Manifest(repo, r), Method::DELETE) => manifests::delete(reg, &repo, &r).await,
        (Endpoint::Referrers(repo, d), Method::GET) => manifests::referrers(reg, &repo, &d, &req),
        (Endpoint::Blob(repo, d), Method::GET) => {
            let load = req.extensions().get::<Arc<ConnectionLoad>>().cloned();
            let send = connection::Download {
                budget: &state.send_budget,
                load,
            };
            blobs::get(reg, &repo, &d, range(&req), Some(send)).await
        }
        (Endpoint::Blob(repo, d), Method::HEAD) => {
            blobs::get(reg, &repo, &d, range(&req), None).await
        }
        (Endpoint::Blob(repo, d), Method::DELETE) => blobs::delete(reg, &repo, &d).await,
        (Endpoint::UploadStart(repo), Method::POST) => {
            blobs::start(reg, &repo, req, &uploader).await
        }
        (Endpoint::Upload(repo, id), Method::GET) => blobs::status(reg, &repo, &id).await,
        (Endpoint::Upload(repo, id), Method::PATCH) => {
            blobs::patch(reg, &repo, &id, req, &uploader).await
        }
        (Endpoint::Upload(repo, id), Method::PUT) => {
            blobs::finish_upload(reg, &repo, &id, req, &uploader).await
        }
        (Endpoint::Upload(repo, id), Method::DELETE) => blobs::cancel(reg, &repo, &id).await,
        (_, m) => Err(unsupported(&m)),
    }
}

/// `GET /v2/_zot/ext/sync`: the sync extension's status, or 404 when it
/// is off (like any unknown path).
fn sync_status(state: &AppState) -> ApiResult {
    #[cfg(feature = "sync")]
    if let Some(sync) = state.sync.as_ref().filter(|s| s.enabled()) {
        return Ok(([(header::CONTENT_TYPE, "application/json")], sync.status()).into_response());
    }
    let _ = state;
    Err(ApiError::new(ErrorCode::NotFound))
}

/// The store holding the endpoint's repository (the default store for
/// endpoints without one).
fn store<'a>(state: &'a AppState, endpoint: &Endpoint) -> &'a Arc<Registry> {
    match endpoint.repository() {
        Some(r) => state.stores.for_repo(r),
        None => state.stores.default_store(),
    }
}

fn range(req: &Request) -> Option<String> {
    http_util::header_str(req, header::RANGE).map(str::to_owned)
}

/// Builds a response with an empty body.
pub(crate) fn empty(status: StatusCode) -> axum::http::response::Builder {
    Response::builder().status(status)
}

pub(crate) fn finish(builder: axum::http::response::Builder, body: Body) -> ApiResult {
    builder.body(body).map_err(|e| {
        tracing::error!(error = %e, "building a response");
        ApiError::new(ErrorCode::Unknown)
    })
}

//! Whether the object store answers: which errors of `object_store` are a
//! store away (answered `503`, see [`crate::backend::Unavailable`]) rather
//! than a genuine data error, and a recent-failure flag for `/readyz`.
//!
//! - Unavailable: a connection refused, a connect or request timeout, a
//!   request that could not be sent or was cut off (transport errors,
//!   `HttpErrorKind::{Connect, Request, Timeout, Interrupted}`), and a
//!   server error (5xx, or S3's `InternalError`/`SlowDown` in a 200 body)
//!   still returned after `object_store`'s retries ([`retry_config`]).
//!   Anything else (not found, precondition failed, access denied, a
//!   response that cannot be decoded) keeps its meaning.
//! - The flag is kept by an [`HttpService`] wrapped around the real
//!   client, which sees the outcome of every request the driver makes:
//!   a transport error or a 5xx marks the store failed, any other answer
//!   reachable again. A failure counts for [`FAILURE_WINDOW`] only, so an
//!   instance taken out of a load balancer by `/readyz` (and then sent no
//!   request) says ready again after it and is tried once more.
//!
//! The 5xx test reads the message of `object_store`'s request error (its
//! type is private): `s3_unavailable.rs` checks it against a server that
//! answers 503, so a change of that message fails a test rather than
//! silently turning 503s into 500s.

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a failure keeps the store reported unreachable without a
/// newer answer.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(10);

/// `object_store`'s retries of a failed request: until 10 s after the
/// first try (backoff from 100 ms, growing by up to twice, to 2 s), rather
/// than its default of about a minute, so a request meeting a store that
/// is away is answered `503` within about ten seconds, while a restart or
/// a passing server error of a few seconds is still ridden out. The time,
/// not the count, is the bound: with `object_store`'s jitter 8 retries
/// could all fall within about 1.3 s (seen: a fresh SeaweedFS bucket
/// answering `InternalError` for longer than that on a busy machine).
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 40,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Whether `e` means the store is away or failing (see the module doc).
pub(crate) fn is_unavailable(e: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return transport_failure(h.kind());
        }
        let text = err.to_string();
        if text.starts_with("Server returned non-2xx status code: 5")
            || text.starts_with("Server returned error response")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn transport_failure(kind: HttpErrorKind) -> bool {
    matches!(
        kind,
        HttpErrorKind::Connect
            | HttpErrorKind::Request
            | HttpErrorKind::Timeout
            | HttpErrorKind::Interrupted
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When the store last failed a request with no answer since (ms since
/// the epoch; 0: it answered).
#[derive(Debug, Default)]
pub(crate) struct Reachability {
    failed_at: AtomicU64,
}

impl Reachability {
    pub(crate) fn reachable(&self) -> bool {
        let failed = self.failed_at.load(Ordering::Relaxed);
        failed == 0 || now_ms().saturating_sub(failed) > FAILURE_WINDOW.as_millis() as u64
    }

    fn note(&self, ok: bool) {
        self.failed_at
            .store(if ok { 0 } else { now_ms().max(1) }, Ordering::Relaxed);
    }
}

/// Makes the HTTP client `object_store` uses, wrapped in [`Watched`].
#[derive(Debug)]
pub(crate) struct WatchedConnector(pub(crate) Arc<Reachability>);

impl HttpConnector for WatchedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Watched {
            inner,
            reach: self.0.clone(),
        }))
    }
}

/// The real client, noting each outcome in [`Reachability`].
#[derive(Debug)]
struct Watched {
    inner: HttpClient,
    reach: Arc<Reachability>,
}

#[async_trait::async_trait]
impl HttpService for Watched {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let answer = self.inner.execute(req).await;
        match &answer {
            Ok(r) => self.reach.note(!r.status().is_server_error()),
            Err(e) if transport_failure(e.kind()) => self.reach.note(false),
            Err(_) => {}
        }
        answer
    }
}

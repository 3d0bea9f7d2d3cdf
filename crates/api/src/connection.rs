//! What a connection costs while its responses are sent, so that slow or
//! hostile clients cannot pin unbounded memory (issue 15, point 8).
//!
//! A blob body is read from disk in 1 MiB chunks, one read ahead: each
//! streaming body holds up to about 2 MiB until the client takes it. An
//! HTTP/2 client that never opens its receive window would keep that memory
//! for as long as the connection lives, on every stream. So:
//!
//! - every blob body pays, before its file is even opened, for
//!   `min(max(len, 64 KiB), 2 MiB)` bytes (a manifest body, before it is
//!   read, for its size, at least 64 KiB) from its connection's budget
//!   ([`CONNECTION_SEND_BUDGET`]) and then from the process-wide one
//!   ([`GLOBAL_SEND_BUDGET`]), and gives them back when the body is dropped
//!   (sent, failed or cancelled). A stream waits for its connection's budget
//!   as long as it takes (only that client's other streams hold it); it
//!   waits at most [`GLOBAL_BUDGET_WAIT`] for the global one, then gets
//!   `429 TOOMANYREQUESTS` with `Retry-After`.
//! - a body waits for its client from when it is created, and again from
//!   each chunk it hands to hyper until hyper asks for the next one (hyper
//!   asks only once the client's window and the socket take more); each
//!   chunk also waits until hyper drops it (written, or the stream gone).
//!   The listener closes a connection on which something waits too long
//!   ([`ConnectionLoad::waiting_since`]): the client stopped reading.
//! - a request body that a handler waits on, for the client's next frame,
//!   records that wait too ([`ConnectionLoad::reading_since`]): an HTTP/2
//!   stream whose client never sends its body holds its handler, and pings
//!   or other streams keep the socket's read timeout from firing.
//! - requests in progress are counted per connection, from the request head
//!   until the response body is dropped, so the listener can tell an idle
//!   connection ([`ConnectionLoad::idle_for`]).
//!
//! The listener (`crates/zot/src/connections.rs`) creates one
//! [`ConnectionLoad`] per accepted connection and puts it in the extensions
//! of each of its requests; without one (in-process tests), only the global
//! budget applies.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::{ApiError, ErrorCode};

/// Bytes of response bodies (blobs, manifests) one connection may have in
/// flight (8 large blobs).
pub const CONNECTION_SEND_BUDGET: usize = 16 * 1024 * 1024;
/// Bytes of response bodies the whole process may have in flight.
pub const GLOBAL_SEND_BUDGET: usize = 512 * 1024 * 1024;
/// How long a download waits for the global budget before `429`.
pub const GLOBAL_BUDGET_WAIT: Duration = Duration::from_secs(30);
/// What a streaming blob body holds at most: a chunk being sent, one read
/// ahead (the storage's read size is 1 MiB).
pub(crate) const STREAM_RESERVE_MAX: u64 = 2 * 1024 * 1024;
/// What any open blob body costs at least (it also holds an open file).
const STREAM_RESERVE_MIN: u64 = 64 * 1024;

/// The load of one connection; shared by the listener and the handlers.
#[derive(Debug)]
pub struct ConnectionLoad {
    budget: Arc<Semaphore>,
    /// Requests in progress, and when their number last went to zero (or
    /// the connection was accepted).
    activity: Mutex<(usize, Instant)>,
    /// Bodies and chunks waiting for the client, since when.
    waiting: Mutex<HashMap<u64, Instant>>,
    /// Request bodies waited on for the client's next frame, since when.
    reading: Mutex<HashMap<u64, Instant>>,
    next_id: AtomicU64,
}

impl ConnectionLoad {
    /// A connection with a budget of `budget` bytes for its response bodies.
    pub fn new(budget: usize) -> Arc<ConnectionLoad> {
        Arc::new(ConnectionLoad {
            budget: Arc::new(Semaphore::new(budget)),
            activity: Mutex::new((0, Instant::now())),
            waiting: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// How long the connection has had no request in progress; `None`
    /// while one is.
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        let (active, since) = *self.activity.lock().unwrap_or_else(|e| e.into_inner());
        (active == 0).then(|| now.saturating_duration_since(since))
    }

    /// Since when the response body or chunk waiting longest for the
    /// client has been waiting.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.waits().values().min().copied()
    }

    /// Since when the request body waited on longest has been waiting for
    /// its client's next frame.
    pub fn reading_since(&self) -> Option<Instant> {
        self.reads().values().min().copied()
    }

    fn waits(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reads(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a wait for the client from now, until the guard is dropped.
    fn wait(self: &Arc<Self>) -> Waiting {
        self.start_wait(false)
    }

    fn start_wait(self: &Arc<Self>, read: bool) -> Waiting {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        match read {
            true => self.reads().insert(id, now),
            false => self.waits().insert(id, now),
        };
        Waiting {
            load: self.clone(),
            id,
            read,
        }
    }

    /// Counts a request until the returned guard is dropped.
    pub fn start_request(self: &Arc<Self>) -> InProgress {
        self.activity.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        InProgress(self.clone())
    }

    /// Wraps `chunk` so that it waits for the client until dropped.
    fn track(self: &Arc<Self>, chunk: Bytes) -> Bytes {
        Bytes::from_owner(Unsent {
            chunk,
            _waiting: self.wait(),
        })
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub struct InProgress(Arc<ConnectionLoad>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut activity = self.0.activity.lock().unwrap_or_else(|e| e.into_inner());
        activity.0 = activity.0.saturating_sub(1);
        if activity.0 == 0 {
            activity.1 = Instant::now();
        }
    }
}

/// A wait for the client, from its start (or last [`Waiting::restart`]):
/// to take a response (`read` false) or to send its request body.
struct Waiting {
    load: Arc<ConnectionLoad>,
    id: u64,
    read: bool,
}

impl Waiting {
    fn restart(&self) {
        debug_assert!(!self.read, "only response waits restart");
        self.load.waits().insert(self.id, Instant::now());
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        match self.read {
            true => self.load.reads().remove(&self.id),
            false => self.load.waits().remove(&self.id),
        };
    }
}

/// A request body that records a read wait while its handler waits on it
/// for the client's next frame.
struct ReadWaits {
    inner: Body,
    load: Arc<ConnectionLoad>,
    waiting: Option<Waiting>,
}

impl http_body::Body for ReadWaits {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() {
            if this.waiting.is_none() {
                this.waiting = Some(this.load.start_wait(true));
            }
        } else {
            this.waiting = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A chunk handed to the HTTP layer, unsent until dropped.
struct Unsent {
    chunk: Bytes,
    _waiting: Waiting,
}

impl AsRef<[u8]> for Unsent {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

/// Middleware: counts the request on its connection and process-wide
/// (`zot_storage::foreground`) until its response body is dropped, and
/// records the waits on its request body.
pub async fn track_requests(req: Request, next: Next) -> Response {
    // Counted process-wide too, for background work to step aside.
    let foreground = zot_storage::foreground::Request::start();
    let Some(load) = req.extensions().get::<Arc<ConnectionLoad>>().cloned() else {
        let resp = next.run(req).await;
        return resp.map(|body| {
            Body::new(Held {
                inner: body,
                _guard: foreground,
            })
        });
    };
    let in_progress = (load.start_request(), foreground);
    let reads = load.clone();
    // A request without a body (GET, HEAD) needs no read tracking.
    let req = if http_body::Body::is_end_stream(req.body()) {
        req
    } else {
        req.map(|body| {
            Body::new(ReadWaits {
                inner: body,
                load: reads,
                waiting: None,
            })
        })
    };
    let resp = next.run(req).await;
    resp.map(|body| {
        Body::new(Held {
            inner: body,
            _guard: in_progress,
        })
    })
}

/// A body that keeps `_guard` until it is dropped, and keeps the inner
/// body's size hint and end (`map_frame` loses the size hint: hyper would
/// then send bodies of known length chunked and in more writes).
struct Held<G> {
    inner: Body,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body of one in-memory chunk (a manifest) that keeps `paid`
/// until dropped, records on `load` the wait for the client from now until
/// hyper asks for the data and then until the chunk is sent, and tells
/// hyper its exact length.
pub(crate) fn metered_bytes(bytes: Bytes, paid: Paid, load: Option<Arc<ConnectionLoad>>) -> Body {
    let waits = load.as_ref().map(|load| load.wait());
    Body::new(OneChunk {
        len: bytes.len() as u64,
        chunk: Some(bytes),
        load,
        _waits: waits,
        _paid: paid,
    })
}

struct OneChunk {
    len: u64,
    chunk: Option<Bytes>,
    load: Option<Arc<ConnectionLoad>>,
    _waits: Option<Waiting>,
    _paid: Paid,
}

impl http_body::Body for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let chunk = this.chunk.take().map(|c| match &this.load {
            Some(load) => load.track(c),
            None => c,
        });
        this._waits = None;
        std::task::Poll::Ready(chunk.map(|c| Ok(http_body::Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunk.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.chunk {
            Some(_) => http_body::SizeHint::with_exact(self.len),
            None => http_body::SizeHint::with_exact(0),
        }
    }
}

/// How a body is sent: paid from the budgets, its chunks tracked on its
/// connection.
pub(crate) struct Download<'a> {
    pub budget: &'a SendBudget,
    pub load: Option<Arc<ConnectionLoad>>,
}

/// The process-wide budget of bytes of response bodies in flight.
#[derive(Debug, Clone)]
pub struct SendBudget {
    bytes: Arc<Semaphore>,
    wait: Duration,
}

impl Default for SendBudget {
    fn default() -> Self {
        SendBudget::new(GLOBAL_SEND_BUDGET, GLOBAL_BUDGET_WAIT)
    }
}

/// Budget paid by one streaming body, given back when dropped.
#[derive(Debug)]
pub(crate) struct Paid {
    _connection: Option<OwnedSemaphorePermit>,
    _global: OwnedSemaphorePermit,
}

impl SendBudget {
    /// A budget of `bytes`, waited for at most `wait`.
    pub fn new(bytes: usize, wait: Duration) -> SendBudget {
        SendBudget {
            bytes: Arc::new(Semaphore::new(bytes)),
            wait,
        }
    }

    /// Bytes not paid out now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Pays for a body of `len` bytes holding at most `max` in memory at
    /// once: from the connection's budget (as long as it takes), then from
    /// the global one (at most the wait).
    pub(crate) async fn pay(
        &self,
        load: Option<&Arc<ConnectionLoad>>,
        len: u64,
        max: u64,
    ) -> Result<Paid, ApiError> {
        let cost = len.min(max).max(STREAM_RESERVE_MIN);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let closed = |_| ApiError::new(ErrorCode::Unknown);
        let connection = match load {
            Some(load) => Some(
                load.budget
                    .clone()
                    .acquire_many_owned(cost)
                    .await
                    .map_err(closed)?,
            ),
            None => None,
        };
        let global = tokio::time::timeout(self.wait, self.bytes.clone().acquire_many_owned(cost))
            .await
            .map_err(|_| {
                tracing::warn!(
                    wait_secs = self.wait.as_secs(),
                    "the global budget for response bodies is exhausted: answering 429"
                );
                ApiError::msg(
                    ErrorCode::TooManyRequests,
                    "too many downloads in progress, retry later",
                )
                .header(axum::http::header::RETRY_AFTER, "1".to_owned())
            })?
            .map_err(closed)?;
        Ok(Paid {
            _connection: connection,
            _global: global,
        })
    }
}

/// A blob body that keeps `paid` until dropped and records on `load` its
/// waits for the client: from now until hyper first asks for data, and
/// from each chunk to the next request for data; each chunk until it is
/// dropped.
pub(crate) fn metered<S>(
    chunks: S,
    paid: Paid,
    load: Option<Arc<ConnectionLoad>>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let body_waits = load.as_ref().map(|load| load.wait());
    chunks.map(move |chunk| {
        let _held_until_the_body_is_dropped = &paid;
        match (&load, &body_waits) {
            (Some(load), Some(waits)) => {
                waits.restart();
                chunk.map(|c| load.track(c))
            }
            _ => chunk,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_connection_pays_before_the_global_budget_and_gets_it_back() {
        let global = SendBudget::new(8 * 1024 * 1024, Duration::from_millis(100));
        let load = ConnectionLoad::new(4 * 1024 * 1024);
        let a = global
            .pay(Some(&load), 10 * 1024 * 1024, STREAM_RESERVE_MAX)
            .await
            .unwrap();
        let b = global
            .pay(Some(&load), 3 * 1024 * 1024, STREAM_RESERVE_MAX)
            .await
            .unwrap();
        assert_eq!(global.available(), 4 * 1024 * 1024);
        // The connection's 4 MiB are paid out: a third body waits for it.
        let third = global.pay(Some(&load), 1, STREAM_RESERVE_MAX);
        let third = tokio::time::timeout(Duration::from_millis(100), third);
        assert!(third.await.is_err());
        drop(a);
        let c = global
            .pay(Some(&load), 1, STREAM_RESERVE_MAX)
            .await
            .unwrap();
        assert_eq!(
            global.available(),
            8 * 1024 * 1024 - 2 * 1024 * 1024 - 64 * 1024
        );
        drop((b, c));
        assert_eq!(global.available(), 8 * 1024 * 1024);
    }

    #[tokio::test]
    async fn an_exhausted_global_budget_answers_429_after_the_wait() {
        let global = SendBudget::new(2 * 1024 * 1024, Duration::from_millis(50));
        let held = global
            .pay(None, 5 * 1024 * 1024, STREAM_RESERVE_MAX)
            .await
            .unwrap();
        let err = global.pay(None, 1, STREAM_RESERVE_MAX).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyRequests);
        drop(held);
        assert!(global.pay(None, 1, STREAM_RESERVE_MAX).await.is_ok());
    }

    #[tokio::test]
    async fn bodies_and_chunks_wait_for_the_client_until_asked_for_or_dropped() {
        let load = ConnectionLoad::new(1024);
        let paid = SendBudget::default()
            .pay(None, 1, STREAM_RESERVE_MAX)
            .await
            .unwrap();
        let chunks = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"def")),
        ]);
        assert!(load.waiting_since().is_none());
        let mut body = Box::pin(metered(chunks, paid, Some(load.clone())));
        // Created, never asked for data: waiting since creation.
        let created = load.waiting_since().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let chunk = body.next().await.unwrap().unwrap();
        assert_eq!(&chunk[..], b"abc");
        // The body's wait restarted; the chunk waits until dropped.
        assert_eq!(load.waits().len(), 2);
        assert!(load.waiting_since().unwrap() > created);
        drop(chunk);
        assert_eq!(load.waits().len(), 1);
        let last = body.next().await.unwrap().unwrap();
        drop(body);
        // The last chunk still waits after its body is gone.
        assert_eq!(load.waits().len(), 1);
        drop(last);
        assert!(load.waiting_since().is_none());
    }

    #[tokio::test]
    async fn a_request_body_waited_on_records_a_read_wait_until_a_frame_comes() {
        let load = ConnectionLoad::new(1024);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let inner = Body::from_stream(tokio_stream_from(rx));
        let mut body = ReadWaits {
            inner,
            load: load.clone(),
            waiting: None,
        }
        .into_data_stream();
        // Not yet waited on: nothing recorded.
        assert!(load.reading_since().is_none());
        let waited = tokio::time::timeout(Duration::from_millis(20), body.next()).await;
        assert!(waited.is_err());
        assert!(load.reading_since().is_some());
        tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"x");
        assert!(load.reading_since().is_none());
        let _ = tokio::time::timeout(Duration::from_millis(20), body.next()).await;
        assert!(load.reading_since().is_some());
        drop(body);
        assert!(load.reading_since().is_none());
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl Stream<Item = T> + Send + 'static {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn a_connection_is_idle_only_without_requests() {
        let load = ConnectionLoad::new(1024);
        assert!(load.idle_for(Instant::now()).is_some());
        let req = load.start_request();
        assert!(load.idle_for(Instant::now()).is_none());
        drop(req);
        let idle = load.idle_for(Instant::now()).unwrap();
        assert!(idle < Duration::from_secs(1));
    }
}

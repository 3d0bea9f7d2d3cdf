//! Every accepted connection, so that no client can hold the server's
//! connections, file descriptors or memory for ever (issue 15, point 8).
//!
//! - At most `cap` connections are open (`min(4096, open-file limit / 2)`,
//!   see [`connection_cap`]). A connection beyond it takes the place of the
//!   connection idle the longest, which is closed; when none is idle, the
//!   new one is refused. Both are logged (once per [`LOG_EVERY`], with
//!   counts).
//! - A connection with no request in progress for `idle` (`http.readTimeout`
//!   when set, as Go's `IdleTimeout` defaults to it, else [`IDLE_TIMEOUT`])
//!   is closed: HTTP/2 pings and window updates do not count as activity.
//! - A connection on which a blob body waits for the client for `stall`
//!   (`http.writeTimeout` when set, else [`STALL_TIMEOUT`]; see
//!   [`ConnectionLoad::waiting_since`]) is closed: an HTTP/2 stream whose
//!   window the client never opens pins its budget and chunks, and the
//!   stream cannot be reset from outside hyper, so its connection goes.
//! - A connection on which a handler waits for a request body's next frame
//!   for `read_stall` (`http.readTimeout` when set, else [`STALL_TIMEOUT`];
//!   see [`ConnectionLoad::reading_since`]) is closed, for the same reason.
//!
//! Closing is done through the connection's I/O: once [`Connections`]
//! marks it closed, its next read or write fails and hyper drops the
//! connection with all its streams. The connection is removed from the
//! table when it is marked, so it no longer counts towards the cap.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::Request;
use axum_server::accept::Accept;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;
use zot_api::connection::{CONNECTION_SEND_BUDGET, ConnectionLoad};

/// Idle connections are closed after this long without a request, unless
/// `http.readTimeout` is set.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection whose blob body waits this long for the client is closed,
/// unless `http.writeTimeout` is set.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most connections, whatever the open-file limit.
pub const MAX_CONNECTIONS: usize = 4096;
/// How often connections are checked for idleness and stalls.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// At most one log line per this long about the connection cap.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// `min(MAX_CONNECTIONS, nofile / 2)`: the other half is left for blob
/// files, the metadata store and logs.
pub fn connection_cap(nofile: u64) -> usize {
    usize::try_from(nofile / 2)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS)
}

/// The open connections and their limits.
#[derive(Debug)]
pub struct Connections {
    table: Mutex<Table>,
    cap: usize,
    idle: Duration,
    stall: Duration,
    read_stall: Duration,
}

#[derive(Debug, Default)]
struct Table {
    open: HashMap<u64, Arc<Tracked>>,
    next_id: u64,
    /// Connections refused or closed for the cap since the last log line.
    refused: u64,
    evicted: u64,
    last_log: Option<Instant>,
}

/// One open connection, as the table sees it.
#[derive(Debug)]
struct Tracked {
    load: Arc<ConnectionLoad>,
    closing: Closing,
    peer: Option<SocketAddr>,
}

/// Marks a connection to close; its I/O fails from then on.
#[derive(Debug, Default)]
struct Closing {
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Closing {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the connection is closed; registers the task to be woken
    /// when it is.
    fn poll_closed(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.closed.load(Ordering::Acquire)
    }
}

impl Connections {
    /// `cap` connections; closed when idle for `idle`, when a response
    /// waits for the client for `stall`, when a request body does for
    /// `read_stall`.
    pub fn new(
        cap: usize,
        idle: Duration,
        stall: Duration,
        read_stall: Duration,
    ) -> Arc<Connections> {
        Arc::new(Connections {
            table: Mutex::new(Table::default()),
            cap,
            idle,
            stall,
            read_stall,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection (closing the longest idle one at the cap),
    /// or refuses it.
    fn admit(&self, peer: Option<SocketAddr>) -> Option<(u64, Arc<Tracked>)> {
        let now = Instant::now();
        let mut table = self.lock();
        if table.open.len() >= self.cap {
            let victim = table
                .open
                .iter()
                .filter_map(|(id, t)| t.load.idle_for(now).map(|idle| (idle, *id)))
                .max()
                .map(|(_, id)| id);
            match victim.and_then(|id| table.open.remove(&id)) {
                Some(victim) => {
                    victim.closing.close();
                    table.evicted += 1;
                }
                None => table.refused += 1,
            }
            let due = table
                .last_log
                .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
            if due {
                tracing::warn!(
                    cap = self.cap,
                    idle_closed = table.evicted,
                    refused = table.refused,
                    "connection limit reached: closing idle connections, refusing new ones while none is idle"
                );
                (table.evicted, table.refused) = (0, 0);
                table.last_log = Some(now);
            }
            // No idle connection to close: the new one is refused.
            victim?;
        }
        let id = table.next_id;
        table.next_id += 1;
        let tracked = Arc::new(Tracked {
            load: ConnectionLoad::new(CONNECTION_SEND_BUDGET),
            closing: Closing::default(),
            peer,
        });
        table.open.insert(id, tracked.clone());
        Some((id, tracked))
    }

    fn forget(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    /// Closes the connections idle or stalled for too long.
    fn sweep(&self, now: Instant) {
        let mut table = self.lock();
        table.open.retain(|_, t| {
            if t.load.idle_for(now).is_some_and(|idle| idle >= self.idle) {
                tracing::debug!(peer = ?t.peer, idle_secs = self.idle.as_secs(), "closing an idle connection");
                t.closing.close();
                return false;
            }
            let stalled = t
                .load
                .waiting_since()
                .is_some_and(|at| now.saturating_duration_since(at) >= self.stall);
            if stalled {
                tracing::warn!(
                    peer = ?t.peer,
                    stall_secs = self.stall.as_secs(),
                    "closing a connection: a response made no progress"
                );
                t.closing.close();
                return false;
            }
            let read_stalled = t
                .load
                .reading_since()
                .is_some_and(|at| now.saturating_duration_since(at) >= self.read_stall);
            if read_stalled {
                tracing::warn!(
                    peer = ?t.peer,
                    stall_secs = self.read_stall.as_secs(),
                    "closing a connection: a request body made no progress"
                );
                t.closing.close();
                return false;
            }
            true
        });
    }

    /// Sweeps every [`SWEEP_EVERY`], for as long as the runtime runs.
    pub fn start_sweeping(self: &Arc<Self>) {
        let connections = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                connections.sweep(Instant::now());
            }
        });
    }
}

/// Accepts connections: admission against the cap, `TCP_NODELAY`, read
/// and write inactivity timeouts (`http.readTimeout`, `http.writeTimeout`:
/// as in Go, an idle keep-alive connection counts as a pause in reading),
/// and the connection's [`ConnectionLoad`] in each request's extensions.
#[derive(Clone, Debug)]
pub struct Acceptor {
    pub connections: Arc<Connections>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
}

impl<S: Send + 'static> Accept<TcpStream, S> for Acceptor {
    type Stream = Guarded<Pin<Box<TimeoutStream<TcpStream>>>>;
    type Service = WithLoad<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Some((id, tracked)) = self.connections.admit(stream.peer_addr().ok()) else {
            return std::future::ready(Err(io::Error::other("connection limit reached")));
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(self.read);
        stream.set_write_timeout(self.write);
        let service = WithLoad {
            inner: service,
            load: tracked.load.clone(),
        };
        let stream = Guarded {
            inner: Box::pin(stream),
            id,
            tracked,
            connections: self.connections.clone(),
        };
        std::future::ready(Ok((stream, service)))
    }
}

/// A connection's I/O, failing once the connection is closed by the table,
/// and leaving the table when dropped.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    id: u64,
    tracked: Arc<Tracked>,
    connections: Arc<Connections>,
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        self.connections.forget(self.id);
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the server",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.tracked.closing.poll_closed(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.tracked.closing.poll_closed(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.tracked.closing.poll_closed(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tracked.closing.poll_closed(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service of one connection: puts its [`ConnectionLoad`] in each
/// request's extensions.
#[derive(Clone, Debug)]
pub struct WithLoad<S> {
    inner: S,
    load: Arc<ConnectionLoad>,
}

impl<S, B> tower::Service<Request<B>> for WithLoad<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.load.clone());
        self.inner.call(req)
    }
}

/// Raises the soft open-file limit to the hard one (logged) and returns the
/// limit in force.
pub fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    #[expect(
        unsafe_code,
        reason = "no safe wrapper for getrlimit in our dependencies"
    )]
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if got != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "reading the open-file limit");
        return 1024;
    }
    let before = limit.rlim_cur;
    // An unlimited hard limit cannot be the soft one (the kernel caps it at
    // `fs.nr_open`); 1M is plenty.
    let target = limit.rlim_max.min(1 << 20);
    if target <= before {
        tracing::info!(limit = before, "open-file limit");
        return before;
    }
    limit.rlim_cur = target;
    // SAFETY: setrlimit only reads the struct it is given.
    #[expect(
        unsafe_code,
        reason = "no safe wrapper for setrlimit in our dependencies"
    )]
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    if set != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), limit = before, "raising the open-file limit");
        return before;
    }
    tracing::info!(from = before, to = target, "open-file limit raised");
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_files_and_stays_under_4096() {
        assert_eq!(connection_cap(1024), 512);
        assert_eq!(connection_cap(1 << 20), 4096);
        assert_eq!(connection_cap(1), 1);
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_goes_and_busy_ones_stay() {
        let c = Connections::new(2, IDLE_TIMEOUT, STALL_TIMEOUT, STALL_TIMEOUT);
        let (_, first) = c.admit(None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let (_, second) = c.admit(None).unwrap();
        // Both idle: the first (idle longer) makes room for the third.
        let (_, third) = c.admit(None).unwrap();
        assert!(first.closing.closed.load(Ordering::Acquire));
        assert!(!second.closing.closed.load(Ordering::Acquire));
        assert_eq!(c.open(), 2);
        // Busy connections are never closed for a new one: it is refused.
        let _busy = (second.load.start_request(), third.load.start_request());
        assert!(c.admit(None).is_none());
        assert!(!second.closing.closed.load(Ordering::Acquire));
        assert!(!third.closing.closed.load(Ordering::Acquire));
    }

    #[test]
    fn idle_connections_are_closed_after_the_idle_time() {
        let c = Connections::new(10, Duration::from_millis(50), STALL_TIMEOUT, STALL_TIMEOUT);
        let (_, t) = c.admit(None).unwrap();
        c.sweep(Instant::now());
        assert!(!t.closing.closed.load(Ordering::Acquire));
        c.sweep(Instant::now() + Duration::from_millis(60));
        assert!(t.closing.closed.load(Ordering::Acquire));
        assert_eq!(c.open(), 0);
    }
}

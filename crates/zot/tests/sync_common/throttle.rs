//! A throttling TCP proxy: bytes from the upstream reach the client at a
//! set rate, in small pieces, as they come (no buffering of responses), so
//! a mirror behind it sees a blob arrive slowly. Counts the bytes sent to
//! clients and the request lines sent upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the proxy saw.
#[derive(Default)]
pub struct Seen {
    /// Bytes sent to clients (responses), over all connections.
    pub sent: AtomicU64,
    /// Request bytes from clients, for counting request lines.
    requests: Mutex<Vec<u8>>,
}

pub struct ThrottleProxy {
    pub addr: String,
    pub seen: Arc<Seen>,
}

/// Piece written at once, and the pause after each.
const PIECE: usize = 16 * 1024;

impl ThrottleProxy {
    /// A proxy to `upstream` sending responses at `bytes_per_sec`.
    pub fn start(upstream: &str, bytes_per_sec: u64) -> ThrottleProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let seen = Arc::new(Seen::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let pause = Duration::from_secs_f64(PIECE as f64 / bytes_per_sec as f64);
        let s = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(pipe(conn, upstream.clone(), s.clone(), pause));
                }
            });
        });
        ThrottleProxy { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Response bytes sent to clients so far.
    pub fn sent(&self) -> u64 {
        self.seen.sent.load(Ordering::SeqCst)
    }

    /// How many requests sent upstream start with `prefix` (`GET /v2/...`).
    pub fn requests(&self, prefix: &str) -> usize {
        let all = self.seen.requests.lock().expect("requests");
        String::from_utf8_lossy(&all)
            .split("\r\n")
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

async fn pipe(client: tokio::net::TcpStream, upstream: String, seen: Arc<Seen>, pause: Duration) {
    let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let s = seen.clone();
    let requests = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || uw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            s.requests
                .lock()
                .expect("requests")
                .extend_from_slice(&buf[..n]);
        }
        let _ = uw.shutdown().await;
    });
    let mut buf = vec![0u8; PIECE];
    while let Ok(n) = ur.read(&mut buf).await {
        if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen.sent.fetch_add(n as u64, Ordering::SeqCst);
        tokio::time::sleep(pause).await;
    }
    let _ = cw.shutdown().await;
    requests.abort();
}

//! Connection limits against the real binary (issue 15, point 8):
//!
//! - HTTP/2 streams whose receive window never opens: at most 100 per
//!   connection, memory bounded by the per-connection budget, and the
//!   connection closed once a body has waited `http.writeTimeout`;
//! - an idle HTTP/2 connection kept alive by pings is closed after the idle
//!   time (`http.readTimeout`), and so is one whose stream never sends the
//!   body it announced;
//! - the open-file limit is raised at start, connections are capped at half
//!   of it, and a normal client is still served (idle ones make room) while
//!   hundreds of idle connections are open, with a log line;
//! - manifest deletes whose clients reset the connection right after
//!   sending them are, each, either not applied at all or applied, served
//!   and audited (never written to `index.json` only).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A `zot serve` whose config sections get the keys of `patch`'s merged in
/// (`{"http": {...}, "log": {...}}`), optionally run under
/// `prlimit --nofile=SOFT:HARD`.
struct Zot {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Zot {
    fn start(patch: Value, nofile: Option<(u64, u64)>) -> Zot {
        let dir = tempfile::tempdir().unwrap();
        let mut config = json!({
            "distSpecVersion": "1.1.1",
            "storage": { "rootDirectory": dir.path().join("root"), "gc": false },
            "http": { "address": "127.0.0.1", "port": "0" },
            "log": { "level": "debug" },
        });
        if let Value::Object(sections) = patch {
            for (section, keys) in sections {
                if let Value::Object(keys) = keys {
                    for (k, v) in keys {
                        config[&section][k] = v;
                    }
                }
            }
        }
        let path = dir.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let binary = env!("CARGO_BIN_EXE_zot");
        let mut command = match nofile {
            Some((soft, hard)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send(v["address"].as_str().unwrap_or_default().to_owned());
                }
                lines.lock().unwrap().push(std::mem::take(&mut line));
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Zot {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().concat()
    }

    /// Waits up to `limit` for a log line containing `text`.
    fn wait_log(&self, text: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.logs().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn client(&self) -> common::Client {
        common::Client::new(&format!("http://{}", self.addr))
    }
}

impl Drop for Zot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over a fresh HTTP/1.1 connection: the status line, or the
/// error (within 10 s).
fn plain_get(addr: &str, path: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: zot\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn h2_get(addr: &str, path: &str) -> axum::http::Request<()> {
    axum::http::Request::get(format!("http://{addr}{path}"))
        .body(())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_streams_with_closed_windows_are_bounded_and_cut() {
    let zot = Zot::start(json!({ "http": { "writeTimeout": "3s" } }), None);
    let blob = vec![7u8; 4 * 1024 * 1024];
    let client = zot.client();
    let digest = tokio::task::spawn_blocking(move || client.push_blob("big", &blob))
        .await
        .unwrap();
    let path = format!("/v2/big/blobs/{digest}");
    let before = zot.rss_kib();

    let mut connections = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(&zot.addr).await.unwrap();
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .unwrap();
        let closed = tokio::spawn(connection);
        // The server's SETTINGS arrive with the first exchange.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let max = send.current_max_send_streams();
        assert!(max <= 100, "the server allows {max} concurrent streams");
        // Beyond the server's limit, the client queues streams itself.
        for _ in 0..150 {
            let mut ready = send.clone().ready().await.unwrap();
            let (response, _) = ready.send_request(h2_get(&zot.addr, &path), true).unwrap();
            streams.push(response);
        }
        connections.push((send, closed));
    }
    // Less than writeTimeout later: every stream is pinned by its window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown_mib = zot.rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 100,
        "200 stalled downloads grew the registry by {grown_mib} MiB"
    );

    // The bodies wait for their clients longer than writeTimeout: cut.
    for (_send, closed) in connections {
        let ended = tokio::time::timeout(Duration::from_secs(15), closed).await;
        assert!(ended.is_ok(), "a stalled connection is still open");
    }
    assert!(
        zot.wait_log("a response made no progress", Duration::from_secs(5)),
        "{}",
        zot.logs()
    );
    drop(streams);
    // The budget came back: a normal download works.
    let client = zot.client();
    let got = tokio::task::spawn_blocking(move || client.get(&path))
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), 4 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2_connection_answering_pings_is_closed_after_the_idle_time() {
    let zot = Zot::start(json!({ "http": { "readTimeout": "2s" } }), None);
    let tcp = tokio::net::TcpStream::connect(&zot.addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut pings = connection.ping_pong().unwrap();
    let closed = tokio::spawn(connection);
    // One request, answered: a working connection. (The client closes the
    // connection itself once its last `SendRequest` is dropped: kept.)
    let mut send = send.ready().await.unwrap();
    let (response, _) = send.send_request(h2_get(&zot.addr, "/v2/"), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let idle_from = Instant::now();
    // Then only pings, every 500 ms (each is read by the server).
    let pinging = tokio::spawn(async move {
        while pings.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let ended = tokio::time::timeout(Duration::from_secs(10), closed).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection was kept for 10 s");
    let after = idle_from.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "closed after {after:?}, before the idle time"
    );
    pinging.abort();
    drop(send);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_that_never_sends_its_body_is_cut_despite_pings() {
    let zot = Zot::start(json!({ "http": { "readTimeout": "2s" } }), None);
    let tcp = tokio::net::TcpStream::connect(&zot.addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut pings = connection.ping_pong().unwrap();
    let closed = tokio::spawn(connection);
    let mut send = send.ready().await.unwrap();
    // A manifest PUT whose body never comes (no END_STREAM, no DATA).
    let put = axum::http::Request::put(format!("http://{}/v2/r/manifests/t", zot.addr))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(())
        .unwrap();
    let (_response, _body) = send.send_request(put, false).unwrap();
    let pinging = tokio::spawn(async move {
        while pings.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let ended = tokio::time::timeout(Duration::from_secs(10), closed).await;
    assert!(
        ended.is_ok(),
        "a stream stalled in its body kept its connection"
    );
    assert!(
        zot.wait_log("a request body made no progress", Duration::from_secs(5)),
        "{}",
        zot.logs()
    );
    pinging.abort();
    drop(send);
}

#[test]
fn connections_are_capped_with_a_log_line_and_a_normal_client_is_served() {
    // Soft 150, hard 200: raised to 200 at start; cap = 100.
    let zot = Zot::start(json!({}), Some((150, 200)));
    assert!(
        zot.wait_log("open-file limit raised", Duration::from_secs(5)),
        "{}",
        zot.logs()
    );
    // 250 idle connections: more than the cap, and than the open-file limit.
    let idle: Vec<std::net::TcpStream> = (0..250)
        .map(|_| std::net::TcpStream::connect(&zot.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let status = plain_get(&zot.addr, "/v2/");
    assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"), "{}", zot.logs());
    assert!(
        zot.wait_log("connection limit reached", Duration::from_secs(5)),
        "{}",
        zot.logs()
    );
    // The oldest idle connections were closed to make room.
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    match first.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the oldest idle connection is still open: {other:?}"),
    }
}

/// Tags of `repo` named in its `index.json`.
fn tags_on_disk(root: &std::path::Path, repo: &str) -> Vec<String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(root.join(repo).join("index.json")).unwrap())
            .unwrap();
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_whose_clients_reset_are_applied_served_and_audited_alike() {
    use tokio::io::AsyncWriteExt;
    let logs = tempfile::tempdir().unwrap();
    let audit = logs.path().join("audit.log");
    let zot = Zot::start(json!({ "log": { "audit": audit } }), None);
    let root = zot._dir.path().join("root");
    let client = zot.client();
    let tags: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
    let pushed = tags.clone();
    tokio::task::spawn_blocking(move || {
        let image = common::fixtures::multi_layer_image("reset");
        image.push(&client, "r", &pushed[0]);
        for tag in &pushed[1..] {
            client
                .put_manifest("r", tag, &image.manifest.media_type, &image.manifest.bytes)
                .expect_status(201, tag);
        }
    })
    .await
    .unwrap();
    assert_eq!(tags_on_disk(&root, "r"), tags);

    // Each DELETE is followed, after 0 to 5 ms, by a reset of its connection.
    for (i, tag) in tags.iter().enumerate() {
        let mut tcp = tokio::net::TcpStream::connect(&zot.addr).await.unwrap();
        tcp.set_zero_linger().unwrap();
        let req = format!(
            "DELETE /v2/r/manifests/{tag} HTTP/1.1\r\nHost: zot\r\nContent-Length: 0\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_micros(50 * (i as u64 % 100))).await;
        drop(tcp);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let on_disk = tags_on_disk(&root, "r");
    let client = zot.client();
    let served = tokio::task::spawn_blocking(move || client.get("/v2/r/tags/list"))
        .await
        .unwrap();
    let mut served: Vec<String> = match served.status {
        200 => serde_json::from_slice::<Value>(&served.body).unwrap()["tags"]
            .as_array()
            .map(|t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    served.sort();
    assert_eq!(served, on_disk, "tags served differ from index.json");
    let text = std::fs::read_to_string(&audit).unwrap_or_default();
    let mut audited: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["method"] == "DELETE" && v["status"] == 202)
        .map(|v| {
            v["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    audited.sort();
    let deleted: Vec<String> = tags.into_iter().filter(|t| !on_disk.contains(t)).collect();
    assert!(!deleted.is_empty(), "no delete reached the registry");
    assert_eq!(audited, deleted, "deleted tags and audit lines differ");
}

//! Upstreams for the sync tests: Debian's `docker-registry` (distribution
//! 2.8) started on a free port, and a tiny fault-injecting HTTP/1.1 proxy
//! put in front of a real registry (answers a status instead of
//! forwarding, flips the last byte of chosen responses, delays blob
//! requests, counts requests in flight), and a throttling TCP proxy
//! (`throttle.rs`) that passes responses on slowly as they come.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod mirror;
pub mod throttle;

/// A running `docker-registry serve`.
pub struct Distribution {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Distribution {
    pub fn start() -> Distribution {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry must be installed (scripts/test installs it)");
        let d = Distribution {
            child,
            addr,
            _dir: dir,
        };
        wait_for_v2(&d.url());
        d
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `GET <url>/v2/` answers at all.
pub fn wait_for_v2(url: &str) {
    let client = crate::common::Client::new(url);
    let start = Instant::now();
    while client.try_request("GET", "/v2/", &[], None).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the proxy does to the requests it sees.
#[derive(Default, Debug)]
pub struct Faults {
    /// Answers given instead of forwarding, to the next requests, in order:
    /// (status, `Retry-After` seconds).
    pub answers: Vec<(u16, Option<u64>)>,
    /// Responses to request paths containing one of these get their last
    /// byte flipped.
    pub corrupt: Vec<String>,
    /// Responses to request paths containing one of these are cut off
    /// half-way through the body and the connection closed.
    pub truncate: Vec<String>,
    /// Delay before forwarding a blob request.
    pub blob_delay: Duration,
    /// Request lines seen (`GET /v2/...`).
    pub seen: Vec<String>,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

/// A fault-injecting proxy on its own thread and runtime.
pub struct FaultProxy {
    pub addr: String,
    pub faults: Arc<Mutex<Faults>>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let f = faults.clone();
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
                    tokio::spawn(serve(conn, upstream.clone(), f.clone()));
                }
            });
        });
        FaultProxy { addr, faults }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Faults) -> R) -> R {
        f(&mut self.faults.lock().expect("faults"))
    }
}

/// Reads one request head (requests of the client under test have no body).
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}

async fn serve(mut conn: tokio::net::TcpStream, upstream: String, faults: Arc<Mutex<Faults>>) {
    while let Some(head) = read_head(&mut conn).await {
        let text = String::from_utf8_lossy(&head).into_owned();
        let line = text.lines().next().unwrap_or_default().to_owned();
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let (answer, corrupt, truncate, delay) = {
            let mut f = faults.lock().expect("faults");
            f.seen.push(line.clone());
            f.in_flight += 1;
            f.max_in_flight = f.max_in_flight.max(f.in_flight);
            let answer = (!f.answers.is_empty()).then(|| f.answers.remove(0));
            let corrupt = f.corrupt.iter().any(|c| path.contains(c.as_str()));
            let truncate = f.truncate.iter().any(|c| path.contains(c.as_str()));
            let delay = if path.contains("/blobs/") {
                f.blob_delay
            } else {
                Duration::ZERO
            };
            (answer, corrupt, truncate, delay)
        };
        let response = match answer {
            Some((status, retry_after)) => {
                let mut r = format!("HTTP/1.1 {status} Fault\r\ncontent-length: 0\r\n");
                if let Some(s) = retry_after {
                    r.push_str(&format!("retry-after: {s}\r\n"));
                }
                r.push_str("\r\n");
                Some(r.into_bytes())
            }
            None => {
                tokio::time::sleep(delay).await;
                forward(&text, &upstream, corrupt, line.starts_with("HEAD ")).await
            }
        };
        faults.lock().expect("faults").in_flight -= 1;
        let Some(mut response) = response else { return };
        if truncate {
            // Head and half the body, then the connection drops.
            let head = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |p| p + 4);
            response.truncate(head + (response.len() - head) / 2);
            let _ = conn.write_all(&response).await;
            return;
        }
        if conn.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Sends the request upstream on a connection of its own and returns the
/// whole response (with `Connection: close` both ways, the body runs to
/// the end of the stream).
async fn forward(head: &str, upstream: &str, corrupt: bool, is_head: bool) -> Option<Vec<u8>> {
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("host:")) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
        if i == 0 {
            out.push_str(&format!("host: {upstream}\r\nconnection: close\r\n"));
        }
    }
    out.push_str("\r\n");
    let mut up = tokio::net::TcpStream::connect(upstream).await.ok()?;
    up.write_all(out.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await.ok()?;
    // The client keeps its connection: say how long the body is (zot and
    // distribution send Content-Length) and drop `Connection: close`.
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let (resp_head, body) = response.split_at(split);
    let resp_head = String::from_utf8_lossy(resp_head)
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut body = body.to_vec();
    if corrupt
        && !is_head
        && let Some(last) = body.last_mut()
    {
        *last ^= 0xff;
    }
    let mut r = format!("{resp_head}\r\n\r\n").into_bytes();
    r.extend_from_slice(&body);
    Some(r)
}

/// A file in `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// A one-layer OCI image whose content depends on `seed`.
pub fn small_image(seed: &str) -> crate::common::Image {
    crate::common::fixtures::image(
        ("linux", "amd64"),
        &[vec![("seed.txt", seed.as_bytes().to_vec())]],
        false,
    )
}

/// An OCI artifact referring to `subject` (as cosign and notation push
/// signatures): its manifest and its blobs.
pub fn referrer(
    subject: &crate::common::Blob,
    artifact_type: &str,
    seed: &str,
) -> (crate::common::Blob, Vec<crate::common::Blob>) {
    use crate::common::Blob;
    let config = Blob::new("application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let layer = Blob::new("application/octet-stream", seed.as_bytes().to_vec());
    let manifest = Blob::json(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
        }),
    );
    (manifest, vec![config, layer])
}

/// Pushes a referrer's blobs and manifest (by digest).
pub fn push_referrer(
    client: &crate::common::Client,
    repo: &str,
    manifest: &crate::common::Blob,
    blobs: &[crate::common::Blob],
) {
    for b in blobs {
        client.push_blob(repo, &b.bytes);
    }
    client
        .put_manifest(
            repo,
            &manifest.digest,
            &manifest.media_type,
            &manifest.bytes,
        )
        .expect_status(201, "PUT referrer");
}

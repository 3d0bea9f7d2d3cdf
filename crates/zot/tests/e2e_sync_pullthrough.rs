//! Streaming pull-through (issue 10, point 5) with the real binary: a
//! mirror with `onDemand` in front of another instance of our registry,
//! reached through a throttling TCP proxy (bytes arrive slowly) or the
//! fault proxy (a blob whose bytes do not match its digest, a connection
//! dropped mid-blob). Two clients read the same blob while it arrives and
//! get the right bytes from one upstream transfer, the first byte before
//! the upstream finished; a mismatch or a drop cuts the clients' bodies
//! off and stores nothing; a manifest is answered while its image is
//! still being copied.

mod common;
mod sync_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Config, Registry};
use sync_common::FaultProxy;
use sync_common::throttle::ThrottleProxy;

/// A registry fetching on demand from `url`.
fn mirror(url: &str) -> Registry {
    Registry::start_with(
        Config::default().with_extensions(json!({ "sync": { "registries": [{
            "urls": [url],
            "onDemand": true,
            "maxRetries": 0,
            "retryDelay": "10ms",
        }]}})),
    )
}

/// What a streamed `GET` got.
#[derive(Debug)]
struct Got {
    status: u16,
    content_length: Option<u64>,
    body: Vec<u8>,
    /// Response bytes the proxy had sent when the first body byte came.
    proxy_sent_at_first_byte: Option<u64>,
}

impl Got {
    fn complete(&self) -> bool {
        self.content_length == Some(self.body.len() as u64)
    }
}

/// `GET target` over a connection of its own, reading the body as it
/// comes (to its `Content-Length`, or until the connection ends);
/// `proxy_sent` is read when the first body byte arrives.
fn get(addr: &str, target: &str, headers: &[(&str, &str)], proxy_sent: &dyn Fn() -> u64) -> Got {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut buf).expect("read head");
        assert!(n > 0, "connection closed before the head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    let mut body = raw[split..].to_vec();
    let mut first = (!body.is_empty()).then(proxy_sent);
    while content_length.is_none_or(|l| (body.len() as u64) < l) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if first.is_none() {
                    first = Some(proxy_sent());
                }
                body.extend_from_slice(&buf[..n]);
            }
        }
    }
    Got {
        status,
        content_length,
        body,
        proxy_sent_at_first_byte: first,
    }
}

/// Waits until `f` holds.
fn wait_until(what: &str, registry: &Registry, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}; log:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_clients_read_a_blob_while_it_arrives_from_one_upstream_transfer() {
    let upstream = Registry::start();
    let len = 6 * 1024 * 1024;
    let bytes = common::fixtures::noise("pull-through", len);
    let digest = upstream.client().push_blob("big/blob", &bytes);
    // 6 MiB at 3 MiB/s: about 2 s upstream.
    let proxy = ThrottleProxy::start(&upstream.url(), 3 * 1024 * 1024);
    let down = mirror(&proxy.url());
    let target = format!("/v2/big/blob/blobs/{digest}");
    let addr = down.addr().to_owned();
    let sent = {
        let seen = proxy.seen.clone();
        move || seen.sent.load(std::sync::atomic::Ordering::SeqCst)
    };

    let first = {
        let (addr, target, sent) = (addr.clone(), target.clone(), sent.clone());
        std::thread::spawn(move || get(&addr, &target, &[], &sent))
    };
    // The second client (and a range) come once a part has arrived.
    wait_until("a part of the blob arrives", &down, || sent() > 1024 * 1024);
    let joined_at = sent();
    let second = {
        let (addr, target, sent) = (addr.clone(), target.clone(), sent.clone());
        std::thread::spawn(move || get(&addr, &target, &[], &sent))
    };
    let ranged = {
        let (addr, target, sent) = (addr.clone(), target.clone(), sent.clone());
        std::thread::spawn(move || get(&addr, &target, &[("Range", "bytes=100-199")], &sent))
    };
    // A HEAD of the blob while it arrives answers as for a stored blob.
    let head = down.client().head(&target);
    assert_eq!(head.status, 200, "HEAD of a blob arriving");
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert!(
        sent() < len as u64,
        "the HEAD came before the upstream finished"
    );
    let first = first.join().expect("first");
    let second = second.join().expect("second");
    let ranged = ranged.join().expect("ranged");

    for (name, got) in [("first", &first), ("second", &second)] {
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(got.content_length, Some(len as u64), "{name}");
        assert!(got.body == bytes, "{name}: the bytes differ");
    }
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, bytes[100..200]);
    assert!(
        joined_at < len as u64,
        "the second client came before the upstream finished ({joined_at} sent)"
    );
    let at_first_byte = first.proxy_sent_at_first_byte.expect("first byte");
    assert!(
        at_first_byte < len as u64,
        "the first byte came before the upstream finished ({at_first_byte} of {len} sent)"
    );
    assert_eq!(
        proxy.requests("GET /v2/big/blob/blobs/"),
        1,
        "one upstream transfer"
    );
    // The same transfer stored the blob; later reads are local.
    let client = down.client();
    wait_until("the blob is stored", &down, || {
        client.head(&target).status == 200
    });
    assert_eq!(client.get(&target).body, bytes);
    assert_eq!(proxy.requests("GET /v2/big/blob/blobs/"), 1);
    // A blob no upstream has is 404.
    let absent = common::fixtures::sha256_digest(b"absent");
    assert_eq!(
        client.get(&format!("/v2/big/blob/blobs/{absent}")).status,
        404
    );
    assert_eq!(
        client.head(&format!("/v2/big/blob/blobs/{absent}")).status,
        404
    );
}

/// A blob whose transfer fails (as `fault` sets the proxy) cuts off the
/// client's body and stores nothing; a later read after the fault is
/// gone gets the blob.
fn failed_transfer_stores_nothing(seed: &str, fault: impl Fn(&mut sync_common::Faults, &str)) {
    let upstream = Registry::start();
    let bytes = common::fixtures::noise(seed, 3 * 1024 * 1024);
    let digest = upstream.client().push_blob("app", &bytes);
    let proxy = FaultProxy::start(&upstream.url());
    let hex = digest.trim_start_matches("sha256:").to_owned();
    proxy.with(|f| fault(f, &hex));
    let down = mirror(&proxy.url());
    let target = format!("/v2/app/blobs/{digest}");
    for _ in 0..2 {
        let got = get(down.addr(), &target, &[], &|| 0);
        assert_eq!(got.status, 200);
        assert!(
            !got.complete(),
            "a complete-looking body ({} of {:?} bytes)",
            got.body.len(),
            got.content_length
        );
        assert!(got.body.len() < bytes.len());
    }
    let client = down.client();
    // Nothing stored, no upload left behind.
    wait_until("the failed pulls end", &down, || {
        down.logs().matches("pull-through failed").count() >= 2
    });
    assert_eq!(client.head(&target).status, 404);
    let uploads = down.root().join("app/.uploads");
    let left = std::fs::read_dir(&uploads).map_or(0, |d| d.count());
    assert_eq!(left, 0, "upload files left in {}", uploads.display());
    // Without the fault, the blob comes.
    proxy.with(|f| {
        f.corrupt.clear();
        f.truncate.clear();
    });
    let got = get(down.addr(), &target, &[], &|| 0);
    assert!(got.complete() && got.body == bytes);
}

#[test]
fn a_digest_mismatch_cuts_the_clients_off_and_stores_nothing() {
    failed_transfer_stores_nothing("mismatch", |f, hex| f.corrupt = vec![hex.to_owned()]);
}

#[test]
fn an_upstream_dropping_mid_blob_cuts_the_clients_off_and_stores_nothing() {
    failed_transfer_stores_nothing("dropped", |f, hex| f.truncate = vec![hex.to_owned()]);
}

#[test]
fn a_manifest_is_answered_while_its_image_is_copied() {
    let upstream = Registry::start();
    let layer = common::fixtures::noise("pending-layer", 4 * 1024 * 1024);
    let image = common::fixtures::image(("linux", "amd64"), &[vec![("big.bin", layer)]], false);
    image.push(&upstream.client(), "app", "v1");
    let proxy = ThrottleProxy::start(&upstream.url(), 2 * 1024 * 1024);
    let down = mirror(&proxy.url());
    let client = down.client();
    let big = image
        .blobs()
        .into_iter()
        .max_by_key(|b| b.size())
        .expect("layer")
        .clone();

    let m = client.get_manifest("app", "v1");
    m.expect_status(200, "manifest");
    assert_eq!(m.body, image.manifest.bytes);
    assert!(
        proxy.sent() < big.size(),
        "answered before the layer arrived ({} sent)",
        proxy.sent()
    );
    // Its blobs are on their way: a HEAD answers as for stored ones.
    let head = client.head(&format!("/v2/app/blobs/{}", big.digest));
    assert_eq!(head.status, 200, "HEAD of a blob of the image being copied");
    assert_eq!(
        head.header("content-length"),
        Some(big.size().to_string().as_str())
    );
    assert!(
        proxy.sent() < big.size(),
        "the HEAD came before the layer arrived"
    );
    // The client's blob reads share the copy's transfers.
    for blob in image.blobs() {
        let r = client.get(&format!("/v2/app/blobs/{}", blob.digest));
        assert!(r.body == blob.bytes, "blob {}", blob.digest);
    }
    assert_eq!(
        proxy.requests(&format!("GET /v2/app/blobs/{}", big.digest)),
        1
    );
    // The image is then stored and tagged.
    wait_until("the image is stored", &down, || {
        let tags = client.get("/v2/app/tags/list");
        tags.status == 200 && tags.json()["tags"] == json!(["v1"])
    });
    // Log lines reach the file up to a couple of milliseconds later.
    let logged = || -> Vec<Value> {
        down.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &Value| v["message"] == "sync: image fetched on demand")
            .collect()
    };
    wait_until("the fetch is logged", &down, || !logged().is_empty());
    assert_eq!(logged().len(), 1, "{}", down.logs());
}

//! The S3 server restarted in the middle of a push (issue 9, Tests: "the
//! client's push fails cleanly or completes; nothing half-written is ever
//! served"). The real binary on a SeaweedFS server of the test's own; a
//! 24 MiB blob (parts of 5 MiB) is sent over a raw socket, and SeaweedFS is
//! killed (`kill -9`) once half of it is through, then started again on the
//! same folder and ports while the rest is sent. Monolithic (`PUT
//! ?digest=` with the body: staged at the blob key) and streamed chunked
//! (one `PATCH`, then `PUT ?digest=`: copied from the upload key).
//!
//! Checked: the push answers (no hang) either `201` or `503 UNAVAILABLE`
//! with `Retry-After` (the store was away during it, not an internal
//! error); while the server is down and after it is back, the blob is
//! never served unless the push answered `201`, and a read meeting the
//! outage answers `503` too; a retry of a failed push completes; the blob
//! is then served whole with its digest, and a manifest naming it is
//! pushed and pulled, by the same process (the registry recovers without
//! a restart). And with the server down for good: blob reads and a
//! manifest push answer `503 UNAVAILABLE` with `Retry-After`, `/readyz`
//! is `503`, and both recover once it is back.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::registry::Config;
use common::{Client, Registry, fixtures};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SIZE: usize = 24 << 20;

/// How a push sends its body.
#[derive(Clone, Copy, Debug)]
enum Push {
    /// `PUT <location>?digest=` with the body.
    Monolithic,
    /// `PATCH <location>` with the body, then `PUT ?digest=` without one.
    Streamed,
}

/// An answer read off a raw socket.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// One request over a fresh socket whose body is sent by a thread that
/// calls `midway` once half of it is written. The answer; `None` when the
/// connection ended without an answer.
fn send_with_pause(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    midway: impl FnOnce() + Send + 'static,
) -> Option<Raw> {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    // The whole exchange must end well within this: a hang fails the test.
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        let half = body.len() / 2;
        writer.write_all(head.as_bytes())?;
        writer.write_all(&body[..half])?;
        writer.flush()?;
        midway();
        writer.write_all(&body[half..])?;
        writer.flush()
    });
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let sent = sender.join().unwrap_or_else(|_| panic!("sender panicked"));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if let Err(e) = &read {
        assert!(
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
            "{method} {path}: no answer within 300 s (a hang)"
        );
    }
    let status = answer.get(9..12).and_then(|s| s.parse::<u16>().ok())?;
    if status < 300 {
        assert!(
            sent.is_ok(),
            "{method} {path} answered {status} before its body was sent"
        );
    }
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    Some(Raw {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

fn location(client: &Client, repo: &str) -> String {
    let started = client.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    started.expect_status(202, "POST upload");
    let loc = started
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {started}"))
        .to_owned();
    // A path for the raw request.
    match loc.find("/v2/") {
        Some(i) => loc[i..].to_owned(),
        None => loc,
    }
}

fn with_digest(loc: &str, digest: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

/// Whether an answer is a clean failure: a 5xx with an OCI error body.
fn assert_clean_error(what: &str, status: u16, body: &str) {
    assert!(
        (500..600).contains(&status),
        "{what}: answered {status}, neither 201/202 nor a 5xx: {body}"
    );
    let v: serde_json::Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("{what}: {status} without an OCI error body ({e}): {body}"));
    assert!(
        v["errors"].as_array().is_some_and(|a| !a.is_empty()),
        "{what}: {body}"
    );
}

/// Whether an answer is the store's outage: `503 UNAVAILABLE` with
/// `Retry-After` (not `500 UNKNOWN`); `body` is `None` for a `HEAD`.
fn assert_unavailable(what: &str, status: u16, retry_after: Option<&str>, body: Option<&str>) {
    let text = body.unwrap_or_default();
    assert_eq!(status, 503, "{what}: the S3 server was away: {text}");
    if let Some(body) = body {
        let v: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("{what}: 503 without an OCI error body ({e}): {body}"));
        assert_eq!(v["errors"][0]["code"], "UNAVAILABLE", "{what}: {body}");
    }
    assert!(
        retry_after.is_some_and(|r| r.parse::<u32>().is_ok()),
        "{what}: no Retry-After"
    );
}

/// The value of header `name` in a raw answer's head.
fn raw_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The blob is not served (404 while unknown; `503 UNAVAILABLE` while the
/// S3 server is away), or served whole with its digest: never a part.
fn assert_not_half_served(client: &Client, repo: &str, digest: &str, data: &[u8]) {
    let Ok(got) = client.try_request("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], None)
    else {
        return; // the registry closed the connection: nothing served
    };
    match got.status {
        200 => {
            assert_eq!(got.body.len(), data.len(), "{repo}: a blob served short");
            assert_eq!(
                fixtures::sha256_digest(&got.body),
                digest,
                "{repo}: served other bytes"
            );
        }
        404 => {}
        s => assert_unavailable(
            &format!("{repo}: GET blob"),
            s,
            got.header("retry-after"),
            Some(&got.text()),
        ),
    }
}

/// One push with the S3 server killed half-way and started again; returns
/// whether it answered success.
fn push_through_a_restart(
    registry: &Registry,
    server: &'static seaweed::Seaweed,
    repo: &str,
    data: &[u8],
    how: Push,
) -> bool {
    let client = registry.client();
    let digest = fixtures::sha256_digest(data);
    let loc = location(&client, repo);
    let midway = || server.stop_server();
    let (method, path) = match how {
        Push::Monolithic => ("PUT", with_digest(&loc, &digest)),
        Push::Streamed => ("PATCH", loc.clone()),
    };
    let (down_client, down_repo, down_digest, down_data) = (
        client.clone(),
        repo.to_owned(),
        digest.clone(),
        data.to_vec(),
    );
    let answer = send_with_pause(registry.addr(), method, &path, data, move || {
        midway();
        // While it is down (a read may wait for it): nothing of the blob
        // is served.
        let reader = std::thread::spawn(move || {
            assert_not_half_served(&down_client, &down_repo, &down_digest, &down_data)
        });
        std::thread::sleep(Duration::from_secs(2));
        server.restart();
        if reader.join().is_err() {
            panic!("a read while the S3 server was away served a partial blob");
        }
    });
    // SeaweedFS is back (the sender thread restarted it before the body ended).
    assert_not_half_served(&client, repo, &digest, data);
    let ok = match (how, answer) {
        (Push::Monolithic, Some(Raw { status: 201, .. })) => true,
        (Push::Streamed, Some(Raw { status: 202, .. })) => {
            let put = client.request("PUT", &with_digest(&loc, &digest), &[], Some(b""));
            match put.status {
                201 => true,
                s => {
                    assert_clean_error("PUT after the PATCH", s, &put.text());
                    false
                }
            }
        }
        (_, Some(Raw { status, head, body })) => {
            eprintln!("{how:?} push answered {status}: {}", body.trim());
            let retry_after = raw_header(&head, "retry-after");
            assert_unavailable(&format!("{how:?} push"), status, retry_after, Some(&body));
            false
        }
        (_, None) => panic!("{how:?} push: the connection ended without an answer"),
    };
    assert_not_half_served(&client, repo, &digest, data);
    ok
}

#[test]
fn a_push_survives_or_fails_cleanly_when_the_s3_server_restarts() {
    let server: &'static seaweed::Seaweed = Box::leak(Box::new(seaweed::Seaweed::start()));
    let bucket = server.bucket();
    let registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage("remoteCache", json!(false)),
    );
    let client = registry.client();
    for (i, how) in [Push::Monolithic, Push::Streamed].into_iter().enumerate() {
        let repo = format!("e2e/s3-restart/{i}");
        let data = fixtures::noise(&format!("s3-restart-{i}"), SIZE);
        let digest = fixtures::sha256_digest(&data);
        let started = Instant::now();
        let done = push_through_a_restart(&registry, server, &repo, &data, how);
        eprintln!(
            "{how:?} push through a restart: success {done} after {:?}",
            started.elapsed()
        );
        if !done {
            // Not acknowledged: not served; a retry completes.
            let head = client.head(&format!("/v2/{repo}/blobs/{digest}"));
            assert_eq!(head.status, 404, "{how:?}: a failed push left the blob");
            assert_eq!(client.push_blob(&repo, &data), digest);
        }
        let got = client.get(&format!("/v2/{repo}/blobs/{digest}"));
        got.expect_status(200, "GET the blob");
        assert_eq!(
            fixtures::sha256_digest(&got.body),
            digest,
            "{how:?}: the blob served"
        );

        // A manifest naming it, pushed and pulled by the same process.
        let config = client.push_blob(&repo, b"{}");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": SIZE }],
        })
        .to_string();
        client
            .put_manifest(
                &repo,
                "1.0",
                "application/vnd.oci.image.manifest.v1+json",
                manifest.as_bytes(),
            )
            .expect_status(201, "PUT manifest");
        let pulled = client.get(&format!("/v2/{repo}/manifests/1.0"));
        pulled.expect_status(200, "GET manifest");
        assert!(
            pulled.body == manifest.as_bytes(),
            "{how:?}: the manifest served differs"
        );
    }
}

#[test]
fn requests_while_the_s3_server_is_down_answer_503_until_it_is_back() {
    let server = seaweed::Seaweed::start();
    let bucket = server.bucket();
    let registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage("remoteCache", json!(false)),
    );
    let client = registry.client();
    let repo = "e2e/s3-down";
    let layer = client.push_blob(repo, b"a layer");
    let config = client.push_blob(repo, b"{}");
    client.get("/readyz").expect_status(200, "ready");

    server.stop_server();
    let blob = format!("/v2/{repo}/blobs/{layer}");
    let head = client.head(&blob);
    assert_unavailable("HEAD blob", head.status, head.header("retry-after"), None);
    let got = client.get(&blob);
    assert_unavailable(
        "GET blob",
        got.status,
        got.header("retry-after"),
        Some(&got.text()),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 7 }],
    })
    .to_string();
    let media = "application/vnd.oci.image.manifest.v1+json";
    let put = client.put_manifest(repo, "1.0", media, manifest.as_bytes());
    assert_unavailable(
        "PUT manifest",
        put.status,
        put.header("retry-after"),
        Some(&put.text()),
    );
    let ready = client.get("/readyz");
    assert_eq!(
        ready.status, 503,
        "/readyz while the S3 server is away: {ready}"
    );

    server.restart();
    client
        .head(&blob)
        .expect_status(200, "HEAD blob once S3 is back");
    client
        .get("/readyz")
        .expect_status(200, "ready once S3 answered");
    client
        .put_manifest(repo, "1.0", media, manifest.as_bytes())
        .expect_status(201, "PUT manifest once S3 is back");
}

//! Scale-out with a shared metadata store: two `zot serve` processes with
//! one configuration (S3 layouts in one SeaweedFS bucket, metadata in one
//! `redis-server`, `storage.cacheDriver`), both started by the test.
//! A push through A is pullable by tag through B at once; tag lists and
//! catalogs are the same on both; a delete through B is gone on A; with
//! Redis stopped, requests needing metadata answer `503 UNAVAILABLE`,
//! and once it is back both serve again without a restart.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

#[path = "../../meta/tests/redis_common/mod.rs"]
mod redis_common;

use std::time::{Duration, Instant};

use common::fixtures;
use common::registry::Config;
use common::{Client, Registry};
use serde_json::json;

/// GraphQL `RepoListWithNewestImage` (names and their newest tag).
const SEARCH: &str = "/v2/_zot/ext/search?query=%7B%20RepoListWithNewestImage%20%7B%20Results%20%7B%20Name%20NewestImage%20%7B%20Tag%20%7D%20%7D%20%7D%20%7D";

fn config(s3: serde_json::Value, redis_url: &str) -> Config {
    Config::default()
        .with_extensions(json!({"search": {"enable": true}}))
        .with_storage("storageDriver", s3)
        // remoteCache is true by default for S3 with dedupe (as zot).
        .with_storage(
            "cacheDriver",
            json!({"name": "redis", "url": redis_url, "keyprefix": "e2e"}),
        )
}

fn body(client: &Client, path: &str) -> String {
    let r = client.get(path);
    r.expect_status(200, path);
    r.text()
}

/// Waits (polling) until `f` holds, or panics after `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_instances_share_one_bucket_and_one_redis() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let mut redis = redis_common::RedisServer::start();
    let a = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let b = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let (ca, cb) = (a.client(), b.client());
    let repo = "scale/app";

    let image = fixtures::image(
        ("linux", "amd64"),
        &[vec![("etc/motd", b"shared metadata\n".to_vec())]],
        false,
    );
    image.push(&ca, repo, "1.0");

    // Through B at once: by tag, the same manifest and blobs.
    let got = cb.get_manifest(repo, "1.0");
    got.expect_status(200, "B: manifest by tag pushed through A");
    assert_eq!(got.body, image.manifest.bytes);
    assert_eq!(
        got.header("docker-content-digest"),
        Some(image.manifest.digest.as_str())
    );
    for blob in image.blobs() {
        let r = cb.get(&format!("/v2/{repo}/blobs/{}", blob.digest));
        r.expect_status(200, "B: blob pushed through A");
        assert!(r.body == blob.bytes, "blob {} differs", blob.digest);
    }

    // A second tag through B; both list the same tags and catalog.
    image.push(&cb, repo, "2.0");
    let other = fixtures::image(("linux", "arm64"), &[vec![("x", b"y".to_vec())]], false);
    other.push(&cb, "scale/other", "latest");
    for path in [format!("/v2/{repo}/tags/list"), "/v2/_catalog".to_owned()] {
        assert_eq!(body(&ca, &path), body(&cb, &path), "{path}");
    }
    assert_eq!(
        body(&ca, &format!("/v2/{repo}/tags/list")),
        json!({"name": repo, "tags": ["1.0", "2.0"]}).to_string()
    );
    let catalog: serde_json::Value = ca.get("/v2/_catalog").json();
    assert_eq!(catalog["repositories"], json!(["scale/app", "scale/other"]));
    // Search reads the shared store too: the same answer everywhere.
    let found = body(&ca, SEARCH);
    assert!(found.contains("scale/other"), "{found}");
    assert_eq!(found, body(&cb, SEARCH), "search through A and B");

    // Deleted through B: gone on A at once.
    cb.request(
        "DELETE",
        &format!("/v2/scale/other/manifests/{}", other.manifest.digest),
        &[],
        None,
    )
    .expect_status(202, "DELETE through B");
    ca.get_manifest("scale/other", "latest").expect_oci_error(
        404,
        "MANIFEST_UNKNOWN",
        "A: deleted through B",
    );
    ca.get_manifest("scale/other", &other.manifest.digest)
        .expect_oci_error(404, "MANIFEST_UNKNOWN", "A: deleted through B, by digest");
    let after = body(&ca, SEARCH);
    assert_ne!(after, found, "A's search saw the delete through B");
    assert_eq!(after, body(&cb, SEARCH), "search through A and B");

    // Redis away: requests needing metadata answer 503 with an OCI error.
    redis.stop();
    for c in [&ca, &cb] {
        c.get_manifest(repo, "1.0").expect_oci_error(
            503,
            "UNAVAILABLE",
            "manifest by tag, Redis stopped",
        );
        c.get("/v2/_catalog")
            .expect_oci_error(503, "UNAVAILABLE", "catalog, Redis stopped");
    }
    eventually(Duration::from_secs(20), "/readyz reports it", || {
        ca.get("/readyz").status == 503
    });

    // Back: both serve again without a restart, data intact.
    redis.restart();
    for c in [&ca, &cb] {
        eventually(Duration::from_secs(30), "serving again", || {
            c.get_manifest(repo, "1.0").status == 200
        });
    }
    eventually(Duration::from_secs(30), "ready again", || {
        ca.get("/readyz").status == 200 && cb.get("/readyz").status == 200
    });
    let third = fixtures::image(("linux", "amd64"), &[vec![("z", b"3".to_vec())]], false);
    third.push(&ca, repo, "3.0");
    cb.get_manifest(repo, "3.0")
        .expect_status(200, "B: pushed through A after the outage");
    assert_eq!(
        body(&cb, &format!("/v2/{repo}/tags/list")),
        json!({"name": repo, "tags": ["1.0", "2.0", "3.0"]}).to_string()
    );
}

#[test]
fn a_second_instance_does_not_rebuild_a_store_in_step() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let redis = redis_common::RedisServer::start();
    let a = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let image = fixtures::image(("linux", "amd64"), &[vec![("f", b"1".to_vec())]], false);
    image.push(&a.client(), "first/app", "1.0");
    let b = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let logs = b.logs();
    assert!(
        logs.contains("marked in step with the layouts"),
        "B compared the store again:\n{logs}"
    );
    b.client()
        .get_manifest("first/app", "1.0")
        .expect_status(200, "B: pushed through A before B started");
    assert!(
        a.logs().contains("metadata in the shared store"),
        "{}",
        a.logs()
    );
}

#[test]
fn an_instance_starts_while_redis_is_away_and_recovers_when_it_is_back() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let mut redis = redis_common::RedisServer::start();
    redis.stop();
    let a = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let ca = a.client();
    ca.get("/v2/_catalog")
        .expect_oci_error(503, "UNAVAILABLE", "catalog, Redis away at start-up");
    let r = ca.get("/readyz");
    assert_eq!(r.status, 503, "{r}");
    assert!(
        a.logs().contains("cannot be reached"),
        "the start-up says why:\n{}",
        a.logs()
    );

    redis.restart();
    eventually(Duration::from_secs(30), "ready once Redis is back", || {
        ca.get("/readyz").status == 200
    });
    let image = fixtures::image(("linux", "amd64"), &[vec![("f", b"up".to_vec())]], false);
    image.push(&ca, "late/app", "1.0");
    ca.get_manifest("late/app", "1.0")
        .expect_status(200, "after Redis came back");
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with
/// `openssl`: (CA certificate, server certificate, server key).
fn private_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=zot test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=redis",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write san.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "redis.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("redis.pem"),
        dir.join("redis.key"),
    )
}

#[test]
fn rediss_verifies_the_server_against_the_configured_roots() {
    let certs = tempfile::tempdir().expect("a temporary folder");
    let (ca, cert, key) = private_ca(certs.path());
    let redis = redis_common::RedisServer::start_tls(&cert, &key);
    assert!(redis.url().starts_with("rediss://"));
    let server = seaweed::shared();
    let bucket = server.bucket();
    let ca = ca.to_str().expect("a UTF-8 path");
    let trusting =
        || config(server.driver_json(&bucket), &redis.url()).with_env("SSL_CERT_FILE", ca);
    let a = Registry::start_with(trusting());
    let b = Registry::start_with(trusting());
    let repo = "tls/app";
    let image = fixtures::image(
        ("linux", "amd64"),
        &[vec![("etc/motd", b"metadata over TLS\n".to_vec())]],
        false,
    );
    image.push(&a.client(), repo, "1.0");
    // B knows the tag only from the shared store, over TLS too.
    let got = b.client().get_manifest(repo, "1.0");
    got.expect_status(200, "B: manifest by tag pushed through A");
    assert_eq!(got.body, image.manifest.bytes);

    // An instance that does not trust the CA never talks to that server:
    // it starts failed and answers 503 rather than serving without its
    // metadata.
    let untrusting = Registry::start_with(config(server.driver_json(&bucket), &redis.url()));
    let r = untrusting.client().get_manifest(repo, "1.0");
    r.expect_status(503, "an instance whose roots do not hold the CA");
    assert!(
        untrusting.logs().to_lowercase().contains("certificate"),
        "the refusal names the certificate: {}",
        untrusting.logs()
    );
}

//! The object store away is a passing condition, not an internal error
//! (issue 9, Faults): a connection refused and a server error (5xx) after
//! the driver's retries fail with `Unavailable` (answered `503`), and the
//! driver reports itself unreachable until the store answers again; an
//! answer that is a genuine refusal (403) keeps its meaning. Against a
//! tiny HTTP server answering one status to everything, and a real
//! SeaweedFS stopped and started again.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use s3_common::seaweed;
use std::io::{Read, Write};
use std::net::TcpListener;
use zot_oci::{Digest, RepoName};
use zot_storage::{Backend, Options, S3Backend, S3Options, open_s3};

/// A server answering `status` to every request, on a free port; the
/// thread lives as long as the test process.
fn answering(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let body = "<Error><Code>Test</Code></Error>";
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn driver(endpoint: String) -> S3Backend {
    let config = zot_config::S3Config {
        bucket: "b".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        force_path_style: true,
        secure: false,
        skip_verify: false,
        root_directory: "zot".into(),
        chunk_size: 5 << 20,
        storage_class: None,
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        credentials_file: None,
    };
    S3Backend::open(&config, &S3Options::default()).unwrap()
}

#[tokio::test]
async fn server_errors_and_refused_connections_are_unavailable() {
    for status in ["503 Service Unavailable", "500 Internal Server Error"] {
        let s3 = driver(answering(status));
        assert!(s3.reachable());
        let e = s3.size("a/index.json").await.unwrap_err();
        assert!(zot_storage::is_unavailable(&e), "{status}: {e}");
        let e = s3.write_atomic("a/index.json", b"{}").await.unwrap_err();
        assert!(zot_storage::is_unavailable(&e), "{status}: {e}");
        assert!(!s3.reachable(), "{status}");
    }

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let s3 = driver(format!("http://{addr}"));
    let e = s3.read("a/index.json").await.unwrap_err();
    assert!(zot_storage::is_unavailable(&e), "refused: {e}");
    assert!(!s3.reachable());
}

#[tokio::test]
async fn a_refusal_is_not_unavailable() {
    let s3 = driver(answering("403 Forbidden"));
    let e = s3.size("a/index.json").await.unwrap_err();
    assert!(!zot_storage::is_unavailable(&e), "{e}");
    assert!(s3.reachable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_until_it_is_back() {
    let server = seaweed::Seaweed::start();
    let bucket = server.bucket();
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_s3(
        dir.path(),
        &server.config(&bucket, "zot", 5 << 20),
        &S3Options::default(),
        Options::default(),
    )
    .await
    .unwrap();
    let r: RepoName = "down/repo".parse().unwrap();
    let d = Digest::sha256_of(b"x");
    assert_eq!(reg.blob_size(&r, &d).await.unwrap(), None);
    assert!(reg.storage_reachable());

    tokio::task::block_in_place(|| server.stop_server());
    let e = reg.blob_size(&r, &d).await.unwrap_err();
    assert!(e.is_storage_unavailable(), "{e}");
    assert!(!reg.storage_reachable());

    tokio::task::block_in_place(|| server.restart());
    assert_eq!(reg.blob_size(&r, &d).await.unwrap(), None);
    assert!(reg.storage_reachable());
}

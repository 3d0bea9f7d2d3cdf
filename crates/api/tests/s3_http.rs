//! The /v2 protocol over S3 storage (a SeaweedFS server started by this
//! test binary): chunked uploads with `Content-Range` (a 20 MiB blob in
//! five PATCHes over 5 MiB parts), upload status, ranged blob reads,
//! manifests by tag and digest, tags, deletes.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::Digest as _;
use std::sync::Arc;
use tower::ServiceExt;

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_on_s3_storage() {
    let server = seaweed::shared();
    let config = server.config(&server.bucket(), "zot", 5 << 20);
    let meta = tempfile::tempdir().unwrap();
    let (registry, _) = zot_storage::open_s3(
        meta.path(),
        &config,
        &zot_storage::S3Options::default(),
        zot_storage::Options::default(),
    )
    .await
    .unwrap();
    let app = zot_api::router(zot_api::AppState::new(Arc::new(registry), vec![]));

    // Chunked: five PATCHes of 4 MiB with Content-Range.
    let big = content(20 << 20, 9);
    let (status, headers, _) =
        call(&app, Method::POST, "/v2/s3/app/blobs/uploads/", &[], vec![]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut location = headers["location"].to_str().unwrap().to_owned();
    for (i, piece) in big.chunks(4 << 20).enumerate() {
        let start = i * (4 << 20);
        let range = format!("{start}-{}", start + piece.len() - 1);
        let (status, headers, _) = call(
            &app,
            Method::PATCH,
            &location,
            &[
                ("content-range", range.clone()),
                ("content-type", "application/octet-stream".into()),
            ],
            piece.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "PATCH {range}");
        assert_eq!(headers["range"], format!("0-{}", start + piece.len() - 1));
        location = headers["location"].to_str().unwrap().to_owned();
    }
    // Upload status: the acknowledged range.
    let (status, headers, _) = call(&app, Method::GET, &location, &[], vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["range"], format!("0-{}", (20 << 20) - 1));
    // A chunk that does not follow: 416.
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &location,
        &[("content-range", "5-9".into())],
        b"xxxxx".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    let digest = sha256(&big);
    let sep = if location.contains('?') { '&' } else { '?' };
    let (status, _, _) = call(
        &app,
        Method::PUT,
        &format!("{location}{sep}digest={digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Read back whole and by range.
    let blob = format!("/v2/s3/app/blobs/{digest}");
    let (status, headers, body) = call(&app, Method::HEAD, &blob, &[], vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], (20u64 << 20).to_string());
    assert!(body.is_empty());
    let (status, _, body) = call(&app, Method::GET, &blob, &[], vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == big, "the blob read back differs");
    let from = (5 << 20) - 3;
    let (status, _, body) = call(
        &app,
        Method::GET,
        &blob,
        &[("range", format!("bytes={from}-{}", from + 9))],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&body[..], &big[from..from + 10]);

    // Monolithic config, then a manifest by tag.
    let cfg = b"{}".to_vec();
    let cfg_digest = sha256(&cfg);
    let (status, _, _) = call(
        &app,
        Method::POST,
        &format!("/v2/s3/app/blobs/uploads/?digest={cfg_digest}"),
        &[],
        cfg,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cfg_digest}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{}}}]}}"#,
        20 << 20
    );
    let media = (
        "content-type",
        "application/vnd.oci.image.manifest.v1+json".to_owned(),
    );
    let (status, headers, _) = call(
        &app,
        Method::PUT,
        "/v2/s3/app/manifests/v1",
        &[media],
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let m_digest = headers["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(m_digest, sha256(manifest.as_bytes()));
    for reference in ["v1", m_digest.as_str()] {
        let (status, _, body) = call(
            &app,
            Method::GET,
            &format!("/v2/s3/app/manifests/{reference}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, manifest.as_bytes());
    }
    let (_, _, tags) = call(&app, Method::GET, "/v2/s3/app/tags/list", &[], vec![]).await;
    assert_eq!(&tags[..], br#"{"name":"s3/app","tags":["v1"]}"#);

    // Delete the manifest, then the layer.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/v2/s3/app/manifests/{m_digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = call(&app, Method::GET, "/v2/s3/app/manifests/v1", &[], vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&app, Method::DELETE, &blob, &[], vec![]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = call(&app, Method::HEAD, &blob, &[], vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

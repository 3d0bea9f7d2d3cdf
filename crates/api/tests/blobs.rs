//! The base endpoint, health probes, extension discovery, and reading and
//! deleting blobs: headers, byte ranges, per-repository visibility and
//! deduplicated storage.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::Method;
use common::{TestApp, blob_rel, sha256};
use std::os::unix::fs::MetadataExt;

#[tokio::test]
async fn base_endpoint_announces_the_api_version() {
    let app = TestApp::new().await;
    for uri in ["/v2/", "/v2"] {
        let r = app.get(uri).await;
        r.assert_status(200);
        assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
        assert_eq!(r.json(), serde_json::json!({}));
    }
    let r = app.head("/v2/").await;
    r.assert_status(200);
    assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn health_probes() {
    let app = TestApp::new().await;
    for uri in ["/livez", "/readyz", "/startupz"] {
        let r = app.get(uri).await;
        r.assert_status(200);
        assert_eq!(r.text(), "ok");
        app.head(uri).await.assert_status(200);
        app.post(uri, "").await.assert_error(404, "UNSUPPORTED");
    }
    app.get("/nowhere").await.assert_error(404, "UNSUPPORTED");
    app.get("/v3/").await.assert_error(404, "UNSUPPORTED");
}

#[tokio::test]
async fn discover_lists_no_extensions() {
    let app = TestApp::new().await;
    let r = app.get("/v2/_oci/ext/discover").await;
    r.assert_status(200);
    assert_eq!(r.h("content-type"), "application/json");
    assert_eq!(r.json(), serde_json::json!({ "extensions": [] }));
}

#[tokio::test]
async fn unknown_api_path_is_not_found() {
    let app = TestApp::new().await;
    let r = app.get("/v2/a/whatever/x").await;
    r.assert_error(404, "UNSUPPORTED");
    assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn blob_head_and_get() {
    let app = TestApp::new().await;
    let data = b"hello, blob".to_vec();
    let d = app.push_blob("r", &data).await;
    let uri = format!("/v2/r/blobs/{d}");

    let head = app.head(&uri).await;
    head.assert_status(200);
    assert_eq!(head.h("content-length"), data.len().to_string());
    assert_eq!(head.h("docker-content-digest"), d);
    assert!(head.body.is_empty());

    let get = app.get(&uri).await;
    get.assert_status(200);
    assert_eq!(get.h("content-length"), data.len().to_string());
    assert_eq!(get.h("docker-content-digest"), d);
    assert_eq!(get.h("content-type"), "application/octet-stream");
    assert_eq!(get.body, data);

    // A client that escapes the ':' of the digest.
    let escaped = app.get(&uri.replace(':', "%3A")).await;
    escaped.assert_status(200);
    assert_eq!(escaped.body, data);
}

#[tokio::test]
async fn empty_blob() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"").await;
    let r = app.get(&format!("/v2/r/blobs/{d}")).await;
    r.assert_status(200);
    assert_eq!(r.h("content-length"), "0");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn unknown_blob_is_blob_unknown() {
    let app = TestApp::new().await;
    let d = sha256(b"never pushed");
    app.get(&format!("/v2/r/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    app.head(&format!("/v2/r/blobs/{d}"))
        .await
        .assert_status(404);
    app.delete(&format!("/v2/r/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn blob_is_visible_only_in_its_repository() {
    let app = TestApp::new().await;
    let d = app.push_blob("mine", b"private").await;
    app.get(&format!("/v2/other/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    app.get(&format!("/v2/mine/blobs/{d}"))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn range_requests() {
    let app = TestApp::new().await;
    let data = b"0123456789".to_vec();
    let d = app.push_blob("r", &data).await;
    let uri = format!("/v2/r/blobs/{d}");
    // (Range, Content-Range, body)
    let cases: &[(&str, &str, &[u8])] = &[
        ("bytes=0-4", "bytes 0-4/10", b"01234"),
        ("bytes=5-", "bytes 5-9/10", b"56789"),
        ("bytes=-3", "bytes 7-9/10", b"789"),
        ("bytes=8-100", "bytes 8-9/10", b"89"),
        ("bytes=3-3", "bytes 3-3/10", b"3"),
        ("bytes=-20", "bytes 0-9/10", b"0123456789"),
    ];
    for (range, content_range, body) in cases {
        let r = app.get_with(&uri, &[("range", range)]).await;
        r.assert_status(206);
        assert_eq!(r.h("content-range"), *content_range, "{range}");
        assert_eq!(r.h("content-length"), body.len().to_string(), "{range}");
        assert_eq!(r.h("docker-content-digest"), d);
        assert_eq!(&r.body[..], *body, "{range}");

        let h = app.call(Method::HEAD, &uri, &[("range", range)], "").await;
        h.assert_status(206);
        assert_eq!(h.h("content-range"), *content_range, "HEAD {range}");
        assert!(h.body.is_empty());
    }
    // Ranges the server may ignore: the whole blob.
    for range in ["bytes=5-2", "items=0-1", "bytes=x-"] {
        let r = app.get_with(&uri, &[("range", range)]).await;
        r.assert_status(200);
        assert_eq!(r.body, data, "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_range() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"0123456789").await;
    let uri = format!("/v2/r/blobs/{d}");
    for range in ["bytes=10-", "bytes=100-200", "bytes=-0"] {
        let r = app.get_with(&uri, &[("range", range)]).await;
        r.assert_status(416);
        r.assert_error(416, "RANGE_INVALID");
        assert_eq!(r.h("content-range"), "bytes */10", "{range}");
    }
}

#[tokio::test]
async fn delete_blob() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"to delete").await;
    let uri = format!("/v2/r/blobs/{d}");
    let r = app.delete(&uri).await;
    r.assert_status(202);
    assert_eq!(r.h("content-length"), "0");
    app.head(&uri).await.assert_status(404);
    app.get(&uri).await.assert_error(404, "BLOB_UNKNOWN");
    app.delete(&uri).await.assert_error(404, "BLOB_UNKNOWN");
    assert!(!app.root().join("r/blobs").join(blob_rel(&d)).exists());
}

fn inode(app: &TestApp, repo: &str, d: &str) -> (u64, u64) {
    let m = std::fs::metadata(app.root().join(repo).join("blobs").join(blob_rel(d))).unwrap();
    (m.ino(), m.nlink())
}

#[tokio::test]
async fn dedupe_shares_identical_uploads_and_deletes_independently() {
    let app = TestApp::new().await;
    let data = b"shared layer".to_vec();
    let d = app.push_blob("a", &data).await;
    assert_eq!(app.push_blob("b", &data).await, d);
    let (ino_a, nlink) = inode(&app, "a", &d);
    let (ino_b, _) = inode(&app, "b", &d);
    assert_eq!(ino_a, ino_b, "identical blobs share one file");
    assert_eq!(nlink, 2);

    app.delete(&format!("/v2/a/blobs/{d}"))
        .await
        .assert_status(202);
    app.get(&format!("/v2/a/blobs/{d}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    let r = app.get(&format!("/v2/b/blobs/{d}")).await;
    r.assert_status(200);
    assert_eq!(r.body, data);
    assert_eq!(inode(&app, "b", &d), (ino_b, 1));
}

#[tokio::test]
async fn without_dedupe_identical_uploads_are_separate_files() {
    let app = TestApp::builder().dedupe(false).build().await;
    let data = b"not shared".to_vec();
    let d = app.push_blob("a", &data).await;
    app.push_blob("b", &data).await;
    assert_ne!(inode(&app, "a", &d).0, inode(&app, "b", &d).0);
    assert_eq!(inode(&app, "a", &d).1, 1);
}

#[tokio::test]
async fn mount_with_dedupe_shares_the_file() {
    let app = TestApp::new().await;
    let data = b"mounted layer".to_vec();
    let d = app.push_blob("src", &data).await;
    let r = app
        .post(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), "")
        .await;
    r.assert_status(201);
    assert_eq!(r.h("location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(inode(&app, "src", &d).0, inode(&app, "dst", &d).0);

    app.delete(&format!("/v2/src/blobs/{d}"))
        .await
        .assert_status(202);
    let r = app.get(&format!("/v2/dst/blobs/{d}")).await;
    r.assert_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn mount_without_dedupe_copies() {
    let app = TestApp::builder().dedupe(false).build().await;
    let data = b"copied layer".to_vec();
    let d = app.push_blob("src", &data).await;
    app.post(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), "")
        .await
        .assert_status(201);
    assert_ne!(inode(&app, "src", &d).0, inode(&app, "dst", &d).0);
    app.delete(&format!("/v2/src/blobs/{d}"))
        .await
        .assert_status(202);
    let r = app.get(&format!("/v2/dst/blobs/{d}")).await;
    r.assert_status(200);
    assert_eq!(r.body, data);
    assert!(app.upload_files("dst").is_empty(), "no copy left behind");
}

//! Hostile and malformed input: invalid repository names on every endpoint,
//! invalid digests and tags, unsupported methods; and the storage left
//! exactly as it was by every refused request.

mod common;

use axum::http::Method;
use common::{OCI_MANIFEST, TestApp, image_manifest, sha256};
use serde_json::json;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn bad_names() -> Vec<String> {
    vec![
        "../x".into(),
        "x/..".into(),
        "x/../y".into(),
        "..".into(),
        "%2e%2e/x".into(),
        "%2E%2E/x".into(),
        "x/%2e%2e/y".into(),
        "a%2fb".into(),
        "Upper".into(),
        "lower/Upper".into(),
        "a".repeat(256),
        format!("{}/{}", "a".repeat(200), "b".repeat(55)),
        "a//b".into(),
        "-a".into(),
        "a_".into(),
        "a___b".into(),
        "a..b".into(),
        "_zot".into(),
        "a/.uploads".into(),
        "a%20b".into(),
        "a%00b".into(),
    ]
}

/// Every endpoint that takes a name, for `name`.
fn endpoints(name: &str) -> Vec<(Method, String)> {
    let id = uuid::Uuid::new_v4();
    vec![
        (Method::GET, format!("/v2/{name}/tags/list")),
        (Method::GET, format!("/v2/{name}/manifests/latest")),
        (Method::HEAD, format!("/v2/{name}/manifests/{D}")),
        (Method::PUT, format!("/v2/{name}/manifests/latest")),
        (Method::DELETE, format!("/v2/{name}/manifests/latest")),
        (Method::GET, format!("/v2/{name}/blobs/{D}")),
        (Method::DELETE, format!("/v2/{name}/blobs/{D}")),
        (Method::POST, format!("/v2/{name}/blobs/uploads/")),
        (
            Method::POST,
            format!("/v2/{name}/blobs/uploads/?digest={D}"),
        ),
        (Method::GET, format!("/v2/{name}/blobs/uploads/{id}")),
        (Method::PATCH, format!("/v2/{name}/blobs/uploads/{id}")),
        (
            Method::PUT,
            format!("/v2/{name}/blobs/uploads/{id}?digest={D}"),
        ),
        (Method::GET, format!("/v2/{name}/referrers/{D}")),
    ]
}

#[tokio::test]
async fn invalid_names_are_refused_everywhere() {
    let app = TestApp::new().await;
    app.push_image("x", Some("latest"), "x").await;
    let before = app.snapshot();
    for name in bad_names() {
        for (method, uri) in endpoints(&name) {
            let r = app
                .call(
                    method.clone(),
                    &uri,
                    &[("content-type", OCI_MANIFEST)],
                    "{}",
                )
                .await;
            assert_eq!(r.status, 400, "{method} {uri}: {}", r.text());
            if method != Method::HEAD {
                assert_eq!(
                    r.json()["errors"][0]["code"],
                    "NAME_INVALID",
                    "{method} {uri}"
                );
            }
        }
    }
    assert!(
        app.snapshot() == before,
        "a refused request changed storage"
    );
    let outside = app.root().parent().unwrap();
    assert!(!outside.join("x").join("blobs").exists());
    assert!(!outside.join("y").exists());
}

#[tokio::test]
async fn longest_valid_name() {
    let app = TestApp::new().await;
    let name = "a".repeat(255);
    let img = app.push_image(&name, Some("t"), "long").await;
    assert_eq!(app.tags(&name).await, ["t"]);
    assert_eq!(
        app.get(&format!("/v2/{name}/manifests/t")).await.body,
        img.manifest
    );
    let nested = format!("{}/{}", "b".repeat(127), "c".repeat(127));
    app.push_image(&nested, Some("t"), "nested").await;
    assert_eq!(app.catalog().await, [name, nested]);
}

#[tokio::test]
async fn invalid_digests() {
    let app = TestApp::new().await;
    app.push_image("r", Some("latest"), "r").await;
    let bad = [
        "sha256:abc".to_owned(),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "0".repeat(65)),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha512:{}", "0".repeat(64)),
        format!("md5:{}", "0".repeat(32)),
        format!("sha256{}", "0".repeat(64)),
        "latest".to_owned(),
        format!("sha256%3A{}", "z".repeat(64)),
    ];
    let before = app.snapshot();
    for d in &bad {
        for (method, uri) in [
            (Method::GET, format!("/v2/r/blobs/{d}")),
            (Method::HEAD, format!("/v2/r/blobs/{d}")),
            (Method::DELETE, format!("/v2/r/blobs/{d}")),
            (Method::GET, format!("/v2/r/referrers/{d}")),
            (Method::POST, format!("/v2/r/blobs/uploads/?digest={d}")),
            (
                Method::POST,
                format!("/v2/r/blobs/uploads/?mount={d}&from=r"),
            ),
        ] {
            let r = app.call(method.clone(), &uri, &[], "data").await;
            assert_eq!(r.status, 400, "{method} {uri}: {}", r.text());
            if method != Method::HEAD {
                assert_eq!(
                    r.json()["errors"][0]["code"],
                    "DIGEST_INVALID",
                    "{method} {uri}"
                );
            }
        }
        // A manifest reference with a ':' is a digest.
        if d.contains(':') {
            for method in [Method::GET, Method::PUT, Method::DELETE] {
                let uri = format!("/v2/r/manifests/{d}");
                let r = app.call(method.clone(), &uri, &[], "{}").await;
                assert_eq!(r.status, 400, "{method} {uri}: {}", r.text());
                assert_eq!(
                    r.json()["errors"][0]["code"],
                    "DIGEST_INVALID",
                    "{method} {uri}"
                );
            }
        }
    }
    assert!(
        app.snapshot() == before,
        "a refused request changed storage"
    );
}

#[tokio::test]
async fn invalid_tags() {
    let app = TestApp::new().await;
    let img = app.push_image("r", Some("latest"), "r").await;
    let before = app.snapshot();
    for tag in [
        "-x",
        ".x",
        ".INVALID_MANIFEST_NAME",
        "%2e%2e",
        "a%2Fb",
        "a%20b",
        &"t".repeat(129),
    ] {
        // No manifest can have such a reference: reading or deleting it is
        // 404 MANIFEST_UNKNOWN (OCI conformance 1.1.1); pushing it is 400.
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            let uri = format!("/v2/r/manifests/{tag}");
            let r = app
                .call(
                    method.clone(),
                    &uri,
                    &[("content-type", OCI_MANIFEST)],
                    img.manifest.clone(),
                )
                .await;
            match method {
                Method::PUT => {
                    r.assert_error(400, "TAG_INVALID");
                }
                Method::HEAD => assert_eq!(r.status, 404, "HEAD {tag}"),
                _ => {
                    r.assert_error(404, "MANIFEST_UNKNOWN");
                }
            }
        }
    }
    assert!(app.snapshot() == before);
    // The longest tag is fine.
    let longest = "t".repeat(128);
    app.push_manifest("r", &longest, OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(app.tags("r").await, ["latest", longest.as_str()]);
}

#[tokio::test]
async fn unsupported_methods() {
    let app = TestApp::new().await;
    app.push_image("r", Some("latest"), "r").await;
    let id = uuid::Uuid::new_v4();
    let cases = [
        (Method::POST, "/v2/".to_owned()),
        (Method::DELETE, "/v2/".to_owned()),
        (Method::PUT, "/v2/_catalog".to_owned()),
        (Method::POST, "/v2/_oci/ext/discover".to_owned()),
        (Method::DELETE, "/v2/r/tags/list".to_owned()),
        (Method::POST, "/v2/r/manifests/latest".to_owned()),
        (Method::PATCH, "/v2/r/manifests/latest".to_owned()),
        (Method::PUT, format!("/v2/r/blobs/{D}")),
        (Method::POST, format!("/v2/r/blobs/{D}")),
        (Method::PATCH, format!("/v2/r/blobs/{D}")),
        (Method::GET, "/v2/r/blobs/uploads/".to_owned()),
        (Method::PUT, "/v2/r/blobs/uploads/".to_owned()),
        (Method::POST, format!("/v2/r/blobs/uploads/{id}")),
        (Method::DELETE, format!("/v2/r/referrers/{D}")),
        (Method::PUT, format!("/v2/r/referrers/{D}")),
        (Method::OPTIONS, "/v2/r/manifests/latest".to_owned()),
    ];
    let before = app.snapshot();
    for (method, uri) in cases {
        let r = app.call(method.clone(), &uri, &[], "x").await;
        assert_eq!(r.status, 405, "{method} {uri}: {}", r.text());
        assert_eq!(
            r.json()["errors"][0]["code"],
            "UNSUPPORTED",
            "{method} {uri}"
        );
        assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
    }
    assert!(app.snapshot() == before);
    assert_eq!(app.tags("r").await, ["latest"]);
}

/// A sequence of refused requests against a repository with content and a
/// used upload folder: nothing on disk changes, nothing served changes.
#[tokio::test]
async fn refused_requests_leave_storage_unchanged() {
    let app = TestApp::new().await;
    let img = app.push_image("r", Some("latest"), "r").await;
    let open = app.start_upload("r").await;
    app.call(Method::PATCH, &open, &[("content-range", "0-2")], "abc")
        .await
        .assert_status(202);
    let before = app.snapshot();
    let index_before = app.read_file("r/index.json");

    let wrong = sha256(b"other");
    app.post(&format!("/v2/r/blobs/uploads/?digest={wrong}"), "content")
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.call(Method::PATCH, &open, &[("content-range", "0-2")], "abc")
        .await
        .assert_error(416, "BLOB_UPLOAD_INVALID");
    app.call(Method::PATCH, &open, &[("content-range", "x")], "abc")
        .await
        .assert_error(400, "BLOB_UPLOAD_INVALID");
    app.call(Method::PUT, &open, &[], "")
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.delete(&format!("/v2/r/blobs/{wrong}"))
        .await
        .assert_error(404, "BLOB_UNKNOWN");
    app.delete("/v2/r/manifests/nope")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    app.delete(&format!("/v2/r/manifests/{wrong}"))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    let missing = image_manifest(&img.config, &[b"missing"], json!({}));
    app.put_manifest("r", "latest", OCI_MANIFEST, &missing)
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    app.put_manifest("r", "latest", OCI_MANIFEST, b"{")
        .await
        .assert_error(400, "MANIFEST_INVALID");
    app.put_manifest("r", &wrong, OCI_MANIFEST, &img.manifest)
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.get("/v2/r/tags/list?n=-1")
        .await
        .assert_error(400, "PAGINATION_NUMBER_INVALID");

    assert!(
        app.snapshot() == before,
        "a refused request changed storage"
    );
    assert_eq!(app.read_file("r/index.json"), index_before);
    let r = app.get("/v2/r/manifests/latest").await;
    assert_eq!(r.body, img.manifest);
    assert_eq!(app.get(&open).await.h("range"), "0-2");
}

//! Integrity under races and untrusted content on disk: what a client is
//! told was stored is exactly what is stored, and content that does not
//! match its digest is never served.

mod common;

use axum::http::Method;
use common::{TestApp, sha256};
use sha2::Digest as _;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

fn blob_path(app: &TestApp, repo: &str, digest: &str) -> std::path::PathBuf {
    app.root()
        .join(format!("{repo}/blobs/sha256/{}", &digest[7..]))
}

/// A chunk sent while the session is being completed must not land in the
/// verified blob: either it came first (and the digest no longer matches),
/// or it finds the session gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunks_racing_completion_never_corrupt_the_blob() {
    let app = Arc::new(TestApp::new().await);
    for round in 0..20 {
        let data = vec![round as u8; 2 << 20];
        let digest = sha256(&data);
        let loc = app.start_upload("r").await;
        app.call(Method::PATCH, &loc, &[], data.clone())
            .await
            .assert_status(202);
        let put = {
            let (app, uri) = (app.clone(), format!("{loc}?digest={digest}"));
            tokio::spawn(async move { app.call(Method::PUT, &uri, &[], Vec::new()).await })
        };
        let mut evil = Vec::new();
        for _ in 0..4 {
            let (app, loc) = (app.clone(), loc.clone());
            evil.push(tokio::spawn(async move {
                app.call(Method::PATCH, &loc, &[], b"EVIL".to_vec()).await
            }));
        }
        let put = put.await.unwrap();
        for e in evil {
            let r = e.await.unwrap();
            assert!(
                r.status == 202 || r.status == 404,
                "PATCH: {} {}",
                r.status,
                r.text()
            );
        }
        match put.status.as_u16() {
            201 => {
                let stored = std::fs::read(blob_path(&app, "r", &digest)).unwrap();
                assert_eq!(
                    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&stored))),
                    digest
                );
            }
            400 => {
                put.assert_error(400, "DIGEST_INVALID");
            }
            other => panic!("PUT answered {other}: {}", put.text()),
        }
        // The session is over either way.
        app.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    assert!(
        std::fs::read_dir(app.root().join("r/.uploads"))
            .unwrap()
            .next()
            .is_none()
    );
}

/// The same content pushed to many repositories at once is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_to_many_repositories_share_one_inode() {
    let app = Arc::new(TestApp::new().await);
    let data = vec![7u8; 3 << 20];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (app, data) = (app.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            app.push_blob(&format!("par{i}"), &data).await
        }));
    }
    let mut inodes = std::collections::BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let digest = t.await.unwrap();
        // Every repository holds the blob, all as one file.
        let path = blob_path(&app, &format!("par{i}"), &digest);
        let m = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("par{i} lacks its blob {}: {e}", path.display()));
        inodes.insert(m.ino());
    }
    assert_eq!(inodes.len(), 1, "one copy of the content");
}

/// A manifest's digest cannot be deleted through the blobs endpoint, which
/// would leave its tags pointing at nothing.
#[tokio::test]
async fn deleting_a_manifest_as_a_blob_is_refused() {
    let app = TestApp::new().await;
    let img = app.push_image("r", Some("v1"), "m").await;
    app.delete(&format!("/v2/r/blobs/{}", img.digest))
        .await
        .assert_error(405, "UNSUPPORTED");
    let got = app.get("/v2/r/manifests/v1").await;
    got.assert_status(200);
    assert_eq!(got.body, img.manifest);
}

/// `index.json` of a layout is untrusted: a wrong size in it must not
/// become a wrong Content-Length, and content that does not match its
/// digest is not served.
#[tokio::test]
async fn sizes_and_content_on_disk_are_checked() {
    let mut app = TestApp::new().await;
    let img = app.push_image("r", Some("v1"), "m").await;
    let index_path = app.root().join("r/index.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    let wrong = index.replace(&format!("\"size\":{}", img.manifest.len()), "\"size\":999");
    assert_ne!(index, wrong);
    std::fs::write(&index_path, wrong).unwrap();
    app.restart().await;
    for method in [Method::GET, Method::HEAD] {
        let r = app
            .call(method, "/v2/r/manifests/v1", &[], Vec::new())
            .await;
        r.assert_status(200);
        assert_eq!(r.h("content-length"), img.manifest.len().to_string());
    }
    // Flip a byte of the manifest file: it is no longer served.
    let file = blob_path(&app, "r", &img.digest);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 1;
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, bytes).unwrap();
    app.restart().await;
    app.get(&format!("/v2/r/manifests/{}", img.digest))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

/// Descriptor sizes in a pushed manifest must match the stored blobs: a blob
/// of another size is no blob of that descriptor (the same answer as a
/// missing blob, naming no stored size).
#[tokio::test]
async fn descriptor_sizes_are_checked() {
    let app = TestApp::new().await;
    let config = app.push_blob("r", b"{}").await;
    let layer = app.push_blob("r", b"layer").await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": common::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 6}],
    });
    let r = app
        .put_manifest(
            "r",
            "v1",
            common::OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    r.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    app.get("/v2/r/manifests/v1")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

/// A Content-Range whose end overflows is a clean 400, not a panic.
#[tokio::test]
async fn overflowing_content_range_is_refused() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    app.call(
        Method::PATCH,
        &loc,
        &[("content-range", "0-18446744073709551615")],
        b"abc".to_vec(),
    )
    .await
    .assert_error(400, "BLOB_UPLOAD_INVALID");
}

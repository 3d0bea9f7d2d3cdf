//! Blob uploads: sessions, monolithic and chunked pushes, status, cancel,
//! digest verification (nothing stored on a mismatch), sha512, and
//! cross-repository mounts.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::Method;
use common::{TestApp, blob_rel, sha256, sha512};

/// PATCHes `data` at `start` to the session at `location`.
async fn patch(app: &TestApp, location: &str, start: usize, data: &[u8]) -> common::TestResponse {
    let range = format!("{start}-{}", start + data.len() - 1);
    let len = data.len().to_string();
    app.call(
        Method::PATCH,
        location,
        &[
            ("content-type", "application/octet-stream"),
            ("content-range", &range),
            ("content-length", &len),
        ],
        data.to_vec(),
    )
    .await
}

async fn put(app: &TestApp, location: &str, digest: &str, data: &[u8]) -> common::TestResponse {
    let len = data.len().to_string();
    app.call(
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[
            ("content-type", "application/octet-stream"),
            ("content-length", &len),
        ],
        data.to_vec(),
    )
    .await
}

fn upload_id(location: &str) -> &str {
    location.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn start_session() {
    let app = TestApp::new().await;
    let r = app.post("/v2/r/blobs/uploads/", "").await;
    r.assert_status(202);
    let location = r.h("location");
    let id = r.h("docker-upload-uuid");
    assert_eq!(location, format!("/v2/r/blobs/uploads/{id}"));
    assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");
    assert_eq!(r.h("range"), "0-0");
    // Without the trailing slash too.
    app.post("/v2/r/blobs/uploads", "").await.assert_status(202);
}

#[tokio::test]
async fn monolithic_post() {
    let app = TestApp::new().await;
    let data = b"monolithic".to_vec();
    let d = sha256(&data);
    let r = app
        .post(&format!("/v2/r/blobs/uploads/?digest={d}"), data.clone())
        .await;
    r.assert_status(201);
    assert_eq!(r.h("location"), format!("/v2/r/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(app.get(&format!("/v2/r/blobs/{d}")).await.body, data);
    assert!(app.upload_files("r").is_empty());
}

#[tokio::test]
async fn put_with_the_whole_content() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    let data = b"in the final PUT".to_vec();
    let d = sha256(&data);
    let r = put(&app, &loc, &d, &data).await;
    r.assert_status(201);
    assert_eq!(r.h("location"), format!("/v2/r/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(app.get(&format!("/v2/r/blobs/{d}")).await.body, data);
    assert!(app.upload_files("r").is_empty());
}

#[tokio::test]
async fn chunked_upload_with_and_without_a_final_chunk() {
    let app = TestApp::new().await;
    for final_chunk in [false, true] {
        let loc = app.start_upload("r").await;
        let data = format!("chunk one|chunk two|final {final_chunk}").into_bytes();
        let d = sha256(&data);
        let (a, rest) = data.split_at(10);
        let (b, c) = rest.split_at(10);

        let r = patch(&app, &loc, 0, a).await;
        r.assert_status(202);
        assert_eq!(r.h("location"), loc);
        assert_eq!(r.h("range"), "0-9");
        assert_eq!(r.h("docker-upload-uuid"), upload_id(&loc));

        let r = patch(&app, &loc, 10, b).await;
        r.assert_status(202);
        assert_eq!(r.h("range"), "0-19");

        let status = app.get(&loc).await;
        status.assert_status(204);
        assert_eq!(status.h("range"), "0-19");
        assert_eq!(status.h("location"), loc);

        let r = if final_chunk {
            put(&app, &loc, &d, c).await
        } else {
            patch(&app, &loc, 20, c).await.assert_status(202);
            put(&app, &loc, &d, b"").await
        };
        r.assert_status(201);
        assert_eq!(r.h("docker-content-digest"), d);
        assert_eq!(app.get(&format!("/v2/r/blobs/{d}")).await.body, data);
        // The session is over.
        app.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
        patch(&app, &loc, data.len(), b"x")
            .await
            .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    assert!(app.upload_files("r").is_empty());
}

#[tokio::test]
async fn patch_without_content_range_appends() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    for part in [&b"abc"[..], b"def"] {
        app.call(Method::PATCH, &loc, &[], part.to_vec())
            .await
            .assert_status(202);
    }
    assert_eq!(app.get(&loc).await.h("range"), "0-5");
    put(&app, &loc, &sha256(b"abcdef"), b"")
        .await
        .assert_status(201);
}

#[tokio::test]
async fn out_of_order_chunk_is_refused() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    patch(&app, &loc, 0, b"01234").await.assert_status(202);
    for start in [0, 3, 6] {
        let r = patch(&app, &loc, start, b"xyz").await;
        r.assert_error(416, "BLOB_UPLOAD_INVALID");
        assert_eq!(r.h("range"), "0-4", "the client learns where to resume");
    }
    // The refused chunks left nothing behind: the upload still has 5 bytes.
    assert_eq!(app.get(&loc).await.h("range"), "0-4");
    // A final PUT whose chunk does not follow is refused the same way.
    let r = app
        .call(
            Method::PUT,
            &format!("{loc}?digest={}", sha256(b"0123456789")),
            &[("content-range", "7-11"), ("content-length", "5")],
            b"56789".to_vec(),
        )
        .await;
    r.assert_error(416, "BLOB_UPLOAD_INVALID");
    patch(&app, &loc, 5, b"56789").await.assert_status(202);
    put(&app, &loc, &sha256(b"0123456789"), b"")
        .await
        .assert_status(201);
}

#[tokio::test]
async fn malformed_content_range() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    for range in [
        "abc",
        "5",
        "4-2",
        "a-b",
        "bytes 1-x",
        "0-18446744073709551615",
    ] {
        let r = app
            .call(
                Method::PATCH,
                &loc,
                &[("content-range", range), ("content-length", "3")],
                b"abc".to_vec(),
            )
            .await;
        r.assert_error(400, "BLOB_UPLOAD_INVALID");
    }
    // A range whose length disagrees with Content-Length.
    let r = app
        .call(
            Method::PATCH,
            &loc,
            &[("content-range", "0-9"), ("content-length", "3")],
            b"abc".to_vec(),
        )
        .await;
    r.assert_error(400, "BLOB_UPLOAD_INVALID");
    // Accepted prefixes.
    for (range, start) in [("bytes 0-2/*", 0), ("bytes=3-5", 3)] {
        let r = app
            .call(
                Method::PATCH,
                &loc,
                &[("content-range", range), ("content-length", "3")],
                b"abc".to_vec(),
            )
            .await;
        r.assert_status(202);
        assert_eq!(r.h("range"), format!("0-{}", start + 2));
    }
}

#[tokio::test]
async fn cancel_upload() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    patch(&app, &loc, 0, b"partial").await.assert_status(202);
    assert_eq!(app.upload_files("r").len(), 1);
    app.delete(&loc).await.assert_status(204);
    app.get(&loc).await.assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    patch(&app, &loc, 7, b"more")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    put(&app, &loc, &sha256(b"partial"), b"")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    app.delete(&loc)
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(app.upload_files("r").is_empty());
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let app = TestApp::new().await;
    let wrong = sha256(b"something else");

    // Monolithic POST.
    let r = app
        .post(&format!("/v2/r/blobs/uploads/?digest={wrong}"), "content")
        .await;
    r.assert_error(400, "DIGEST_INVALID");
    app.head(&format!("/v2/r/blobs/{wrong}"))
        .await
        .assert_status(404);
    app.head(&format!("/v2/r/blobs/{}", sha256(b"content")))
        .await
        .assert_status(404);
    assert!(app.upload_files("r").is_empty());

    // Chunked, then a PUT with a wrong digest.
    let loc = app.start_upload("r").await;
    patch(&app, &loc, 0, b"chunked content")
        .await
        .assert_status(202);
    put(&app, &loc, &wrong, b"")
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.head(&format!("/v2/r/blobs/{wrong}"))
        .await
        .assert_status(404);
    app.head(&format!("/v2/r/blobs/{}", sha256(b"chunked content")))
        .await
        .assert_status(404);
    assert!(app.upload_files("r").is_empty());
    assert!(!app.root().join("r/blobs").join(blob_rel(&wrong)).exists());
}

#[tokio::test]
async fn put_needs_a_valid_digest() {
    let app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    app.call(Method::PUT, &loc, &[], "data")
        .await
        .assert_error(400, "DIGEST_INVALID");
    for bad in [
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nocolon",
    ] {
        app.call(Method::PUT, &format!("{loc}?digest={bad}"), &[], "data")
            .await
            .assert_error(400, "DIGEST_INVALID");
        app.post(&format!("/v2/r/blobs/uploads/?digest={bad}"), "data")
            .await
            .assert_error(400, "DIGEST_INVALID");
    }
    // The session survived the refusals, empty.
    let r = app.get(&loc).await;
    r.assert_status(204);
    assert_eq!(r.h("range"), "0-0");
    put(&app, &loc, &sha256(b"ok"), b"ok")
        .await
        .assert_status(201);
}

#[tokio::test]
async fn unknown_and_malformed_upload_ids() {
    let app = TestApp::new().await;
    let unknown = format!("/v2/r/blobs/uploads/{}", uuid::Uuid::new_v4());
    app.get(&unknown)
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    patch(&app, &unknown, 0, b"x")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    put(&app, &unknown, &sha256(b"x"), b"x")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    app.delete(&unknown)
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    for bad in ["not-a-uuid", "..", "%2e%2e", "1234"] {
        app.get(&format!("/v2/r/blobs/uploads/{bad}"))
            .await
            .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    // A session belongs to its repository.
    let loc = app.start_upload("r").await;
    let elsewhere = format!("/v2/other/blobs/uploads/{}", upload_id(&loc));
    app.get(&elsewhere)
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    patch(&app, &elsewhere, 0, b"x")
        .await
        .assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    app.get(&loc).await.assert_status(204);
}

#[tokio::test]
async fn sha512_digests() {
    let app = TestApp::new().await;
    let data = b"sha512 content".to_vec();
    let d = sha512(&data);
    app.post(&format!("/v2/r/blobs/uploads/?digest={d}"), data.clone())
        .await
        .assert_status(201);
    let r = app.get(&format!("/v2/r/blobs/{d}")).await;
    r.assert_status(200);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.body, data);

    let loc = app.start_upload("r").await;
    let chunked = b"sha512 in chunks".to_vec();
    patch(&app, &loc, 0, &chunked[..6]).await.assert_status(202);
    let d2 = sha512(&chunked);
    put(&app, &loc, &d2, &chunked[6..]).await.assert_status(201);
    assert_eq!(app.get(&format!("/v2/r/blobs/{d2}")).await.body, chunked);

    let wrong = sha512(b"other");
    app.post(&format!("/v2/r/blobs/uploads/?digest={wrong}"), data)
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.head(&format!("/v2/r/blobs/{wrong}"))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn mount_from_another_repository() {
    let app = TestApp::new().await;
    let data = b"to mount".to_vec();
    let d = app.push_blob("src", &data).await;
    let r = app
        .post(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), "")
        .await;
    r.assert_status(201);
    assert_eq!(r.h("location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(app.get(&format!("/v2/dst/blobs/{d}")).await.body, data);
    // Mounting again, or into the repository that has it, is a no-op.
    app.post(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), "")
        .await
        .assert_status(201);
    app.post(&format!("/v2/src/blobs/uploads/?mount={d}&from=src"), "")
        .await
        .assert_status(201);
}

#[tokio::test]
async fn mount_of_an_unknown_blob_opens_a_session() {
    let app = TestApp::new().await;
    app.push_blob("src", b"present").await;
    let missing = sha256(b"absent");
    let r = app
        .post(
            &format!("/v2/dst/blobs/uploads/?mount={missing}&from=src"),
            "",
        )
        .await;
    r.assert_status(202);
    let loc = r.h("location").to_owned();
    assert!(loc.starts_with("/v2/dst/blobs/uploads/"), "{loc}");
    app.head(&format!("/v2/dst/blobs/{missing}"))
        .await
        .assert_status(404);
    // The session works.
    put(&app, &loc, &missing, b"absent")
        .await
        .assert_status(201);
    // A `from` repository that does not exist: a session too.
    let r = app
        .post(
            &format!("/v2/x/blobs/uploads/?mount={missing}&from=nowhere"),
            "",
        )
        .await;
    r.assert_status(202);
}

#[tokio::test]
async fn mount_without_from_finds_the_blob() {
    let app = TestApp::new().await;
    let data = b"somewhere".to_vec();
    let d = app.push_blob("src", &data).await;
    let r = app
        .post(&format!("/v2/dst/blobs/uploads/?mount={d}"), "")
        .await;
    r.assert_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(app.get(&format!("/v2/dst/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn mount_with_bad_parameters() {
    let app = TestApp::new().await;
    let d = app.push_blob("src", b"x").await;
    app.post("/v2/dst/blobs/uploads/?mount=sha256:abc&from=src", "")
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.post(&format!("/v2/dst/blobs/uploads/?mount={d}&from=../src"), "")
        .await
        .assert_error(400, "NAME_INVALID");
    app.head(&format!("/v2/dst/blobs/{d}"))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn upload_survives_a_restart() {
    let mut app = TestApp::new().await;
    let loc = app.start_upload("r").await;
    let data = b"before restart|after restart".to_vec();
    patch(&app, &loc, 0, &data[..15]).await.assert_status(202);
    app.restart().await;
    let r = app.get(&loc).await;
    r.assert_status(204);
    assert_eq!(r.h("range"), "0-14");
    patch(&app, &loc, 15, &data[15..]).await.assert_status(202);
    put(&app, &loc, &sha256(&data), b"")
        .await
        .assert_status(201);
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{}", sha256(&data)))
            .await
            .body,
        data
    );
}

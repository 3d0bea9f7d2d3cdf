//! Many requests at once, on a multi-threaded runtime: the same blob through
//! separate sessions, the same manifest to the same tag, many tags to one
//! repository, and racing chunks on one session. Every request must succeed
//! (or be refused cleanly) and nothing may be lost or duplicated.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::Method;
use common::{OCI_MANIFEST, TestApp, image_manifest, sha256};
use serde_json::json;
use std::sync::Arc;

const N: usize = 50;

fn files_in(app: &TestApp, rel: &str) -> Vec<String> {
    std::fs::read_dir(app.root().join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_through_many_sessions() {
    let app = Arc::new(TestApp::new().await);
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let d = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..N {
        let (app, data, d) = (app.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            let loc = app.start_upload("r").await;
            let (a, b) = data.split_at(1000 + i);
            let range = format!("0-{}", a.len() - 1);
            app.call(
                Method::PATCH,
                &loc,
                &[("content-range", &range)],
                a.to_vec(),
            )
            .await
            .assert_status(202);
            app.call(Method::PUT, &format!("{loc}?digest={d}"), &[], b.to_vec())
                .await
                .status
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    assert_eq!(
        files_in(&app, "r/blobs/sha256"),
        [d.trim_start_matches("sha256:")]
    );
    assert!(
        app.upload_files("r").is_empty(),
        "{:?}",
        app.upload_files("r")
    );
    let r = app.get(&format!("/v2/r/blobs/{d}")).await;
    r.assert_status(200);
    assert!(r.body == data, "the stored blob is intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_monolithic_to_many_repositories() {
    let app = Arc::new(TestApp::new().await);
    let data = b"everyone has this layer".to_vec();
    let d = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..N {
        let (app, data, d) = (app.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            let repo = format!("repo{i:02}");
            app.post(&format!("/v2/{repo}/blobs/uploads/?digest={d}"), data)
                .await
                .status
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    for i in 0..N {
        let r = app.get(&format!("/v2/repo{i:02}/blobs/{d}")).await;
        r.assert_status(200);
        assert_eq!(r.body, data);
        assert!(app.upload_files(&format!("repo{i:02}")).is_empty());
    }
    assert_eq!(app.catalog().await.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_manifest_to_the_same_tag() {
    let app = Arc::new(TestApp::new().await);
    app.push_blob("r", b"{}").await;
    app.push_blob("r", b"layer").await;
    let m = image_manifest(b"{}", &[b"layer"], json!({}));
    let d = sha256(&m);
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (app, m) = (app.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            let r = app.put_manifest("r", "latest", OCI_MANIFEST, &m).await;
            (
                r.status.as_u16(),
                r.header("docker-content-digest").map(str::to_owned),
            )
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (201, Some(d.clone())));
    }
    assert_eq!(app.tags("r").await, ["latest"]);
    let r = app.get("/v2/r/manifests/latest").await;
    assert_eq!(r.body, m);
    let index = app.layout_index("r");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(entries[0]["digest"], d);
    let tmp: Vec<_> = files_in(&app, "r/blobs/sha256")
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tags_at_once_none_lost() {
    let app = Arc::new(TestApp::new().await);
    app.push_blob("r", b"{}").await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            // Half share one manifest, half have their own.
            let m = image_manifest(
                b"{}",
                &[],
                json!({ "annotations": { "n": (i % 2 * i).to_string() } }),
            );
            app.put_manifest("r", &format!("t{i:02}"), OCI_MANIFEST, &m)
                .await
                .status
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let expected: Vec<String> = (0..N).map(|i| format!("t{i:02}")).collect();
    assert_eq!(app.tags("r").await, expected);
    let index = app.layout_index("r");
    let mut tagged: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect();
    tagged.sort();
    assert_eq!(tagged, expected, "index.json lists every tag once");
    for t in &expected {
        app.head(&format!("/v2/r/manifests/{t}"))
            .await
            .assert_status(200);
    }
    // And they survive a rebuild from index.json.
    let mut app = Arc::into_inner(app).unwrap();
    app.restart_with(|root| std::fs::remove_file(root.join("_zot/meta.redb")).unwrap())
        .await;
    assert_eq!(app.tags("r").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_chunks_on_one_session() {
    let app = Arc::new(TestApp::new().await);
    let loc = app.start_upload("r").await;
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let (app, loc) = (app.clone(), loc.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .call(
                    Method::PATCH,
                    &loc,
                    &[("content-range", "0-4"), ("content-length", "5")],
                    vec![b'a' + i; 5],
                )
                .await;
            r.status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses[0], 202);
    assert!(statuses[1..].iter().all(|&s| s == 416), "{statuses:?}");
    assert_eq!(app.get(&loc).await.h("range"), "0-4");
}

/// A push of a manifest racing with the deletion of the same manifest: when
/// the push's tag survives, the manifest it names must be readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_racing_delete_of_the_same_manifest() {
    let app = Arc::new(TestApp::new().await);
    let img = app.push_image("r", Some("base"), "raced").await;
    let mut broken = Vec::new();
    for i in 0..60 {
        let tag = format!("t{i}");
        let push = {
            let (app, m, tag) = (app.clone(), img.manifest.clone(), tag.clone());
            tokio::spawn(async move {
                app.put_manifest("r", &tag, OCI_MANIFEST, &m)
                    .await
                    .status
                    .as_u16()
            })
        };
        let delete = {
            let (app, d) = (app.clone(), img.digest.clone());
            tokio::spawn(async move {
                app.delete(&format!("/v2/r/manifests/{d}"))
                    .await
                    .status
                    .as_u16()
            })
        };
        assert_eq!(push.await.unwrap(), 201);
        assert!([202, 404].contains(&delete.await.unwrap()));
        if app.tags("r").await.contains(&tag) {
            let r = app.get(&format!("/v2/r/manifests/{tag}")).await;
            if r.status != 200 || r.body != img.manifest {
                broken.push((tag.clone(), r.status.as_u16()));
            }
        }
        // Start the next round with the manifest present.
        app.push_manifest("r", "base", OCI_MANIFEST, &img.manifest)
            .await;
    }
    assert!(broken.is_empty(), "tags naming a lost manifest: {broken:?}");
}

//! Restarts: the metadata store is a cache of the OCI layouts on disk, so
//! deleting it, or changing a layout behind the registry's back, must not
//! change what is served once the registry is reopened. Also repository
//! names whose folders meet the layout's own file names.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::{
    OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, TestApp, desc, image_manifest, index_manifest, sha256,
};
use serde_json::{Value, json};
use std::path::Path;

fn remove_meta(root: &Path) {
    std::fs::remove_file(root.join("_zot/meta.redb")).unwrap();
}

/// Everything a client can observe about the pushed content.
async fn observe(app: &TestApp, subject: &str) -> Value {
    let mut repos = serde_json::Map::new();
    for repo in app.catalog().await {
        let tags = app.tags(&repo).await;
        let mut manifests = serde_json::Map::new();
        for t in &tags {
            let r = app.get(&format!("/v2/{repo}/manifests/{t}")).await;
            r.assert_status(200);
            manifests.insert(
                t.clone(),
                json!([
                    r.h("content-type"),
                    r.h("docker-content-digest"),
                    sha256(&r.body)
                ]),
            );
        }
        let r = app.get(&format!("/v2/{repo}/referrers/{subject}")).await;
        let mut referrers = r.json()["manifests"].as_array().unwrap().clone();
        referrers.sort_by_key(|d| d["digest"].as_str().unwrap().to_owned());
        repos.insert(
            repo,
            json!({ "tags": tags, "manifests": manifests, "referrers": referrers }),
        );
    }
    Value::Object(repos)
}

/// Pushes images, an index, a digest-only manifest and referrers; returns
/// the subject digest and the digest-only manifest.
async fn populate(app: &TestApp) -> (String, common::Image) {
    let one = app.push_image("app", Some("v1"), "one").await;
    let two = app.push_image("app", Some("v2"), "two").await;
    app.push_manifest("app", "latest", OCI_MANIFEST, &two.manifest)
        .await;
    let index = index_manifest(&[&one.manifest, &two.manifest]);
    app.push_manifest("app", "multi", OCI_INDEX, &index).await;
    let loose = app.push_image("app", None, "loose").await;
    app.push_blob("app", b"{}").await;
    app.push_blob("app", b"sig").await;
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": desc(OCI_EMPTY, b"{}"),
        "layers": [desc("application/octet-stream", b"sig")],
        "subject": desc(OCI_MANIFEST, &one.manifest),
        "annotations": { "k": "v" },
    }))
    .unwrap();
    app.push_manifest("app", &sha256(&sig), OCI_MANIFEST, &sig)
        .await;
    app.push_image("org/team/tool", Some("1.0"), "tool").await;
    app.push_blob("blobs-only", b"data").await;
    (one.digest, loose)
}

#[tokio::test]
async fn metadata_rebuilt_from_layouts() {
    let mut app = TestApp::new().await;
    let (subject, loose) = populate(&app).await;
    let before = observe(&app, &subject).await;
    assert_eq!(before["app"]["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(before["app"]["referrers"][0]["annotations"]["k"], "v");

    app.restart().await;
    assert_eq!(observe(&app, &subject).await, before, "after a restart");

    app.restart_with(remove_meta).await;
    assert_eq!(
        observe(&app, &subject).await,
        before,
        "after losing the metadata"
    );
    assert_eq!(app.catalog().await, ["app", "blobs-only", "org/team/tool"]);
    let r = app
        .get(&format!("/v2/app/manifests/{}", loose.digest))
        .await;
    r.assert_status(200);
    assert_eq!(r.body, loose.manifest);
    app.get(&format!("/v2/blobs-only/blobs/{}", sha256(b"data")))
        .await
        .assert_status(200);
    // Writes work on the rebuilt store, and dedupe still finds blobs.
    app.push_image("app", Some("v3"), "three").await;
    app.post(
        &format!("/v2/new/blobs/uploads/?mount={}", sha256(b"data")),
        "",
    )
    .await
    .assert_status(201);
    app.delete("/v2/app/manifests/v1").await.assert_status(202);
    assert_eq!(app.tags("app").await, ["latest", "multi", "v2", "v3"]);
}

#[tokio::test]
async fn layout_written_by_hand_is_served() {
    let mut app = TestApp::new().await;
    app.push_image("existing", Some("t"), "e").await;
    let config = b"{\"hand\":\"made\"}".to_vec();
    let layer = b"hand layer".to_vec();
    let manifest = image_manifest(&config, &[&layer], json!({}));
    let d = sha256(&manifest);
    app.restart_with(|root| {
        let dir = root.join("vendor/handmade");
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for blob in [&config, &layer, &manifest] {
            let hex = sha256(blob).trim_start_matches("sha256:").to_owned();
            std::fs::write(dir.join("blobs/sha256").join(hex), blob).unwrap();
        }
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST, "digest": d, "size": manifest.len(),
                "annotations": { "org.opencontainers.image.ref.name": "1.0" },
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    })
    .await;
    assert_eq!(app.catalog().await, ["existing", "vendor/handmade"]);
    assert_eq!(app.tags("vendor/handmade").await, ["1.0"]);
    let r = app.get("/v2/vendor/handmade/manifests/1.0").await;
    r.assert_status(200);
    assert_eq!(r.h("content-type"), OCI_MANIFEST);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.body, manifest);
    let r = app
        .get(&format!("/v2/vendor/handmade/blobs/{}", sha256(&layer)))
        .await;
    assert_eq!(r.body, layer);
    // The registry writes into it as into its own.
    app.push_manifest("vendor/handmade", "1.1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(app.tags("vendor/handmade").await, ["1.0", "1.1"]);
}

#[tokio::test]
async fn index_json_changed_behind_its_back() {
    let mut app = TestApp::new().await;
    let a = app.push_image("r", Some("a"), "a").await;
    let b = app.push_image("r", Some("b"), "b").await;
    app.push_image("gone", Some("t"), "gone").await;
    app.restart_with(|root| {
        // Retag by hand: `a` removed, `c` added pointing at b's manifest.
        let path = root.join("r/index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let entries = index["manifests"].as_array_mut().unwrap();
        entries.retain(|e| e["annotations"]["org.opencontainers.image.ref.name"] != "a");
        entries.push(json!({
            "mediaType": OCI_MANIFEST, "digest": b.digest, "size": b.manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "c" },
        }));
        std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::remove_dir_all(root.join("gone")).unwrap();
    })
    .await;
    assert_eq!(app.tags("r").await, ["b", "c"]);
    app.get("/v2/r/manifests/a")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    let r = app.get("/v2/r/manifests/c").await;
    assert_eq!(r.h("docker-content-digest"), b.digest);
    assert_eq!(r.body, b.manifest);
    // Listed nowhere any more: a's manifest is unknown.
    app.get(&format!("/v2/r/manifests/{}", a.digest))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(app.catalog().await, ["r"]);
    app.get("/v2/gone/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
}

/// A repository exists from its first stored blob or manifest on: a failed
/// or cancelled upload leaves none behind. The catalog and tag list say the
/// same before and after a restart, and after the metadata is lost.
#[tokio::test]
async fn failed_uploads_leave_no_repository() {
    let mut app = TestApp::new().await;
    app.push_image("real", Some("t"), "real").await;
    app.post(
        &format!("/v2/ghost/blobs/uploads/?digest={}", sha256(b"x")),
        "y",
    )
    .await
    .assert_error(400, "DIGEST_INVALID");
    let loc = app.start_upload("phantom").await;
    app.delete(&loc).await.assert_status(204);
    let catalog = app.catalog().await;
    let ghost = app.get("/v2/ghost/tags/list").await;
    app.restart().await;
    assert_eq!(app.catalog().await, catalog, "after a restart");
    app.restart_with(remove_meta).await;
    assert_eq!(app.catalog().await, catalog, "after losing the metadata");
    let after = app.get("/v2/ghost/tags/list").await;
    assert_eq!((after.status, after.body), (ghost.status, ghost.body));
    assert_eq!(catalog, ["real"]);
    assert_eq!(
        ghost.status, 404,
        "NAME_UNKNOWN for a repository never stored"
    );
}

/// `blobs` is a valid first name component: a repository may be named
/// `blobs` or `blobs/y`.
#[tokio::test]
async fn repositories_named_blobs_survive_a_restart() {
    let mut app = TestApp::new().await;
    for repo in ["blobs", "blobs/y"] {
        app.push_image(repo, Some("t"), repo).await;
    }
    let repos = ["blobs", "blobs/y"];
    assert_eq!(app.catalog().await, repos);
    app.restart().await;
    assert_eq!(app.catalog().await, repos);
    app.restart_with(remove_meta).await;
    assert_eq!(app.catalog().await, repos);
    for repo in repos {
        assert_eq!(app.tags(repo).await, ["t"], "{repo}");
    }
}

/// A repository nested in another's `blobs` folder would be written into
/// that layout: names with `blobs` after the first component are refused,
/// and the parent stays a clean layout.
#[tokio::test]
async fn repository_inside_another_repositorys_blob_folder_is_refused() {
    let mut app = TestApp::new().await;
    let a = app.push_image("a", Some("t"), "a").await;
    for child in ["a/blobs", "a/blobs/sha256", "a/blobs/x"] {
        app.post(&format!("/v2/{child}/blobs/uploads/"), "")
            .await
            .assert_error(400, "NAME_INVALID");
    }
    assert_eq!(app.catalog().await, ["a"]);
    app.restart_with(remove_meta).await;
    assert_eq!(app.catalog().await, ["a"], "after losing the metadata");
    assert_eq!(app.get("/v2/a/manifests/t").await.body, a.manifest);
}

/// Name components such as `index.json` and `oci-layout` are valid, and
/// must not collide with the parent repository's layout files.
#[tokio::test]
async fn nested_names_equal_to_layout_files() {
    let app = TestApp::new().await;
    app.push_image("n", Some("t"), "n").await;
    for child in ["n/index.json", "n/oci-layout"] {
        let r = app.post(&format!("/v2/{child}/blobs/uploads/"), "").await;
        assert!(
            r.status == 202 || r.status == 400,
            "{child}: a session or NAME_INVALID, not {} {}",
            r.status,
            r.text()
        );
        if r.status == 202 {
            app.push_image(child, Some("t"), child).await;
            assert_eq!(app.tags(child).await, ["t"]);
        }
    }
    assert_eq!(app.tags("n").await, ["t"]);
    app.get("/v2/n/manifests/t").await.assert_status(200);
    app.push_image("n", Some("t2"), "n2").await;
}

/// The other order: the child first, then the parent.
#[tokio::test]
async fn parent_pushed_after_a_child_named_like_a_layout_file() {
    let app = TestApp::new().await;
    let r = app.post("/v2/m/index.json/blobs/uploads/", "").await;
    if r.status == 202 {
        app.push_image("m/index.json", Some("t"), "child").await;
    } else {
        r.assert_error(400, "NAME_INVALID");
    }
    app.push_image("m", Some("t"), "parent").await;
    assert_eq!(app.tags("m").await, ["t"]);
}

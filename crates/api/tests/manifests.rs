//! Manifests: pushing by tag and by digest, every validation a push goes
//! through (with storage left untouched by a refusal), reading by tag and
//! digest, deleting by digest and by tag, and moving tags.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::Method;
use common::{
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, TestApp,
    blob_rel, desc, image_manifest, index_manifest, sha256, sha512,
};
use serde_json::json;

/// Tags listed in `index.json` for `digest`, and whether it is listed at all.
fn index_entries(app: &TestApp, repo: &str, digest: &str) -> (Vec<String>, bool) {
    let index = app.layout_index(repo);
    let entries: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["digest"] == digest)
        .collect();
    let tags = entries
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect();
    (tags, !entries.is_empty())
}

#[tokio::test]
async fn push_by_tag_and_read_back() {
    let app = TestApp::new().await;
    app.push_blob("r", b"{}").await;
    app.push_blob("r", b"layer").await;
    let m = image_manifest(b"{}", &[b"layer"], json!({}));
    let d = sha256(&m);
    let r = app.put_manifest("r", "v1", OCI_MANIFEST, &m).await;
    r.assert_status(201);
    assert_eq!(r.h("location"), format!("/v2/r/manifests/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.header("oci-subject"), None);

    for reference in ["v1", d.as_str()] {
        let uri = format!("/v2/r/manifests/{reference}");
        let get = app.get(&uri).await;
        get.assert_status(200);
        assert_eq!(get.h("content-type"), OCI_MANIFEST);
        assert_eq!(get.h("content-length"), m.len().to_string());
        assert_eq!(get.h("docker-content-digest"), d);
        assert_eq!(get.body, m);
        let head = app.head(&uri).await;
        head.assert_status(200);
        assert_eq!(head.h("content-type"), OCI_MANIFEST);
        assert_eq!(head.h("content-length"), m.len().to_string());
        assert_eq!(head.h("docker-content-digest"), d);
        assert!(head.body.is_empty());
    }
    assert_eq!(index_entries(&app, "r", &d), (vec!["v1".to_owned()], true));
    assert_eq!(app.read_file(&format!("r/blobs/{}", blob_rel(&d))), m);
    assert_eq!(app.tags("r").await, ["v1"]);
}

#[tokio::test]
async fn push_by_digest() {
    let app = TestApp::new().await;
    let img = app.push_image("r", None, "by-digest").await;
    let r = app.get(&format!("/v2/r/manifests/{}", img.digest)).await;
    r.assert_status(200);
    assert_eq!(r.body, img.manifest);
    assert_eq!(index_entries(&app, "r", &img.digest), (vec![], true));
    assert!(app.tags("r").await.is_empty());

    // The same body again, by digest: still one entry.
    app.push_manifest("r", &img.digest, OCI_MANIFEST, &img.manifest)
        .await;
    let count = app.layout_index("r")["manifests"].as_array().unwrap().len();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn push_by_sha512_digest() {
    let app = TestApp::new().await;
    app.push_blob("r", b"{}").await;
    let m = image_manifest(b"{}", &[], json!({}));
    let d = sha512(&m);
    let r = app.put_manifest("r", &d, OCI_MANIFEST, &m).await;
    r.assert_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.h("location"), format!("/v2/r/manifests/{d}"));
    let get = app.get(&format!("/v2/r/manifests/{d}")).await;
    get.assert_status(200);
    assert_eq!(get.h("docker-content-digest"), d);
    assert_eq!(get.body, m);
}

#[tokio::test]
async fn subject_is_echoed() {
    let app = TestApp::new().await;
    let subject = app.push_image("r", Some("v1"), "subject").await;
    app.push_blob("r", b"{}").await;
    let referrer = image_manifest(
        b"{}",
        &[],
        json!({ "subject": desc(OCI_MANIFEST, &subject.manifest) }),
    );
    let r = app.put_manifest("r", "sig", OCI_MANIFEST, &referrer).await;
    r.assert_status(201);
    assert_eq!(r.h("oci-subject"), subject.digest);
}

#[tokio::test]
async fn content_type_parameters_and_missing_media_type() {
    let app = TestApp::new().await;
    app.push_blob("r", b"{}").await;
    let m = image_manifest(b"{}", &[], json!({}));
    app.put_manifest("r", "a", &format!("{OCI_MANIFEST}; charset=utf-8"), &m)
        .await
        .assert_status(201);
    // No mediaType in the body: the Content-Type says what it is.
    let mut v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    v.as_object_mut().unwrap().remove("mediaType");
    let bare = serde_json::to_vec(&v).unwrap();
    app.put_manifest("r", "b", OCI_MANIFEST, &bare)
        .await
        .assert_status(201);
    let r = app.get("/v2/r/manifests/b").await;
    assert_eq!(r.h("content-type"), OCI_MANIFEST);
    assert_eq!(r.body, bare);
}

/// A refused push of `body` as `reference` with `content_type`: the error,
/// and nothing changed on disk nor in what the registry serves.
async fn assert_refused(
    app: &TestApp,
    reference: &str,
    content_type: &str,
    body: &[u8],
    status: u16,
    code: &str,
) {
    let before = app.snapshot();
    let tags_before = app.tags("r").await;
    app.put_manifest("r", reference, content_type, body)
        .await
        .assert_error(status, code);
    assert!(
        app.snapshot() == before,
        "storage changed by a refused push"
    );
    assert_eq!(app.tags("r").await, tags_before);
    if !reference.contains(':') && !reference.starts_with('-') {
        app.get(&format!("/v2/r/manifests/{reference}"))
            .await
            .assert_error(404, "MANIFEST_UNKNOWN");
    }
    app.get(&format!("/v2/r/manifests/{}", sha256(body)))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

/// An app with repository `r` holding one image tagged `base`.
async fn app_with_repo(docker2s2: bool) -> (TestApp, common::Image) {
    let app = TestApp::builder().docker2s2(docker2s2).build().await;
    let img = app.push_image("r", Some("base"), "base").await;
    (app, img)
}

#[tokio::test]
async fn malformed_manifests_are_refused() {
    let (app, img) = app_with_repo(true).await;
    let invalid = "MANIFEST_INVALID";
    assert_refused(&app, "t", OCI_MANIFEST, b"{not json", 400, invalid).await;
    assert_refused(&app, "t", OCI_MANIFEST, b"", 400, invalid).await;
    assert_refused(&app, "t", OCI_MANIFEST, b"[]", 400, invalid).await;
    let v3 = image_manifest(&img.config, &[], json!({ "schemaVersion": 3 }));
    assert_refused(&app, "t", OCI_MANIFEST, &v3, 400, invalid).await;
    let no_version = image_manifest(&img.config, &[], json!({ "schemaVersion": null }));
    assert_refused(&app, "t", OCI_MANIFEST, &no_version, 400, invalid).await;
    // The body says manifest, the header says index.
    let m = image_manifest(&img.config, &[], json!({}));
    assert_refused(&app, "t", OCI_INDEX, &m, 400, invalid).await;
    let unknown_type = image_manifest(&img.config, &[], json!({ "mediaType": "text/plain" }));
    assert_refused(&app, "t", "text/plain", &unknown_type, 400, invalid).await;
    let no_config =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}))
            .unwrap();
    assert_refused(&app, "t", OCI_MANIFEST, &no_config, 400, invalid).await;
    let bad_desc = image_manifest(
        &img.config,
        &[],
        json!({ "layers": [{"mediaType": "x", "digest": "sha256:xyz", "size": 1}] }),
    );
    assert_refused(&app, "t", OCI_MANIFEST, &bad_desc, 400, invalid).await;
    // An invalid tag.
    assert_refused(&app, "-bad", OCI_MANIFEST, &m, 400, "TAG_INVALID").await;
}

#[tokio::test]
async fn docker_schema1_is_refused() {
    let (app, _) = app_with_repo(true).await;
    let schema1 = serde_json::to_vec(&json!({
        "schemaVersion": 1, "name": "r", "tag": "t", "architecture": "amd64",
        "fsLayers": [{"blobSum": sha256(b"x")}], "history": [],
    }))
    .unwrap();
    for ct in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        assert_refused(&app, "old", ct, &schema1, 400, "MANIFEST_INVALID").await;
    }
}

fn docker_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc(DOCKER_CONFIG, config),
        "layers": [desc(DOCKER_LAYER, layer)],
    }))
    .unwrap()
}

#[tokio::test]
async fn docker_schema2_accepted_when_enabled() {
    let (app, img) = app_with_repo(true).await;
    let m = docker_manifest(&img.config, &img.layer);
    let d = app.push_manifest("r", "docker", DOCKER_MANIFEST, &m).await;
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [desc(DOCKER_MANIFEST, &m)],
    }))
    .unwrap();
    app.push_manifest("r", "list", DOCKER_LIST, &list).await;
    let r = app.get("/v2/r/manifests/docker").await;
    r.assert_status(200);
    assert_eq!(r.h("content-type"), DOCKER_MANIFEST);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.body, m);
    assert_eq!(
        app.head("/v2/r/manifests/list").await.h("content-type"),
        DOCKER_LIST
    );
}

#[tokio::test]
async fn docker_schema2_refused_when_disabled() {
    let (app, img) = app_with_repo(false).await;
    let m = docker_manifest(&img.config, &img.layer);
    assert_refused(&app, "docker", DOCKER_MANIFEST, &m, 400, "MANIFEST_INVALID").await;
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [desc(OCI_MANIFEST, &img.manifest)],
    }))
    .unwrap();
    assert_refused(&app, "list", DOCKER_LIST, &list, 400, "MANIFEST_INVALID").await;
}

#[tokio::test]
async fn missing_blobs_are_refused() {
    let (app, img) = app_with_repo(true).await;
    let absent = b"never uploaded".to_vec();
    let m = image_manifest(&img.config, &[&img.layer, &absent], json!({}));
    app.put_manifest("r", "t", OCI_MANIFEST, &m)
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_refused(&app, "t", OCI_MANIFEST, &m, 400, "MANIFEST_BLOB_UNKNOWN").await;
    let r = app.put_manifest("r", &sha256(&m), OCI_MANIFEST, &m).await;
    r.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], sha256(&absent));
    // A missing config.
    let m = image_manifest(b"no such config", &[&img.layer], json!({}));
    assert_refused(&app, "t", OCI_MANIFEST, &m, 400, "MANIFEST_BLOB_UNKNOWN").await;
    // A blob held by another repository does not count.
    app.push_blob("other", &absent).await;
    let m = image_manifest(&img.config, &[&absent], json!({}));
    assert_refused(&app, "t", OCI_MANIFEST, &m, 400, "MANIFEST_BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn non_distributable_layers_need_no_blob() {
    let (app, img) = app_with_repo(true).await;
    let m = image_manifest(
        &img.config,
        &[],
        json!({ "layers": [desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", b"foreign")] }),
    );
    app.push_manifest("r", "foreign", OCI_MANIFEST, &m).await;
}

#[tokio::test]
async fn fresh_repository_is_not_created_by_a_refused_push() {
    let app = TestApp::new().await;
    let m = image_manifest(b"{}", &[], json!({}));
    app.put_manifest("fresh", "t", OCI_MANIFEST, &m)
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert!(!app.root().join("fresh").exists());
    assert!(app.catalog().await.is_empty());
    app.get("/v2/fresh/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn manifest_too_large() {
    let (app, img) = app_with_repo(true).await;
    let pad = "x".repeat(4 * 1024 * 1024);
    let big = image_manifest(&img.config, &[], json!({ "annotations": { "pad": pad } }));
    assert!(big.len() > 4 * 1024 * 1024);
    // Declared too large.
    assert_refused(&app, "big", OCI_MANIFEST, &big, 413, "SIZE_INVALID").await;
    // Found too large while reading (no Content-Length).
    let before = app.snapshot();
    app.call(
        Method::PUT,
        "/v2/r/manifests/big",
        &[("content-type", OCI_MANIFEST)],
        big.clone(),
    )
    .await
    .assert_error(413, "SIZE_INVALID");
    assert!(app.snapshot() == before);
    // Exactly 4 MiB is accepted.
    let base = image_manifest(&img.config, &[], json!({ "annotations": { "pad": "" } }));
    let fill = 4 * 1024 * 1024 - base.len();
    let exact = image_manifest(
        &img.config,
        &[],
        json!({ "annotations": { "pad": "y".repeat(fill) } }),
    );
    assert_eq!(exact.len(), 4 * 1024 * 1024);
    app.push_manifest("r", "exact", OCI_MANIFEST, &exact).await;
}

#[tokio::test]
async fn digest_reference_must_match_the_body() {
    let (app, img) = app_with_repo(true).await;
    let m = image_manifest(&img.config, &[], json!({ "annotations": { "a": "b" } }));
    let wrong = sha256(b"not this body");
    assert_refused(&app, &wrong, OCI_MANIFEST, &m, 400, "DIGEST_INVALID").await;
    let wrong512 = sha512(b"not this body");
    assert_refused(&app, &wrong512, OCI_MANIFEST, &m, 400, "DIGEST_INVALID").await;
    assert_refused(&app, "sha256:abc", OCI_MANIFEST, &m, 400, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn index_needs_its_manifests() {
    let (app, img) = app_with_repo(true).await;
    let unknown = image_manifest(&img.config, &[], json!({ "annotations": { "x": "y" } }));
    let index = index_manifest(&[&img.manifest, &unknown]);
    assert_refused(
        &app,
        "multi",
        OCI_INDEX,
        &index,
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    // Once the child is pushed, the index is accepted.
    app.push_manifest("r", &sha256(&unknown), OCI_MANIFEST, &unknown)
        .await;
    let d = app.push_manifest("r", "multi", OCI_INDEX, &index).await;
    let r = app.get("/v2/r/manifests/multi").await;
    assert_eq!(r.h("content-type"), OCI_INDEX);
    assert_eq!(r.h("docker-content-digest"), d);
    // A child in another repository does not count.
    assert_refused_in(&app, "elsewhere", &index).await;
}

/// An index child must be a stored manifest, not any blob: GC, scrub and
/// the start-up rebuild parse every child.
#[tokio::test]
async fn index_children_must_be_stored_manifests() {
    let (app, img) = app_with_repo(true).await;
    // A layer (or the config, valid JSON) is a blob of the repository, not
    // a manifest.
    for blob in [&img.layer, &img.config] {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [desc(OCI_MANIFEST, blob)],
        }))
        .unwrap();
        assert_refused(
            &app,
            "multi",
            OCI_INDEX,
            &index,
            400,
            "MANIFEST_BLOB_UNKNOWN",
        )
        .await;
    }
    // A stored manifest under the wrong size.
    let mut child = desc(OCI_MANIFEST, &img.manifest);
    child["size"] = json!(img.manifest.len() + 1);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child],
    }))
    .unwrap();
    assert_refused(&app, "multi", OCI_INDEX, &index, 400, "MANIFEST_INVALID").await;
}

async fn assert_refused_in(app: &TestApp, repo: &str, index: &[u8]) {
    app.put_manifest(repo, "multi", OCI_INDEX, index)
        .await
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    app.get(&format!("/v2/{repo}/manifests/multi"))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn unknown_manifests() {
    let (app, _) = app_with_repo(true).await;
    for uri in [
        "/v2/r/manifests/nope".to_owned(),
        format!("/v2/r/manifests/{}", sha256(b"nope")),
        "/v2/unknown/manifests/latest".to_owned(),
    ] {
        app.get(&uri).await.assert_error(404, "MANIFEST_UNKNOWN");
        app.head(&uri).await.assert_status(404);
        app.delete(&uri).await.assert_error(404, "MANIFEST_UNKNOWN");
    }
}

#[tokio::test]
async fn delete_by_digest_removes_the_manifest_and_its_tags() {
    let app = TestApp::new().await;
    let img = app.push_image("r", Some("a"), "del").await;
    app.push_manifest("r", "b", OCI_MANIFEST, &img.manifest)
        .await;
    let keep = app.push_image("r", Some("keep"), "keep").await;
    assert_eq!(app.tags("r").await, ["a", "b", "keep"]);

    let r = app.delete(&format!("/v2/r/manifests/{}", img.digest)).await;
    r.assert_status(202);
    assert_eq!(r.h("content-length"), "0");
    for uri in [
        format!("/v2/r/manifests/{}", img.digest),
        "/v2/r/manifests/a".to_owned(),
        "/v2/r/manifests/b".to_owned(),
    ] {
        app.get(&uri).await.assert_error(404, "MANIFEST_UNKNOWN");
    }
    assert_eq!(app.tags("r").await, ["keep"]);
    assert_eq!(index_entries(&app, "r", &img.digest), (vec![], false));
    assert!(
        !app.root()
            .join("r/blobs")
            .join(blob_rel(&img.digest))
            .exists()
    );
    // Its blobs and the other image stay.
    app.head(&format!("/v2/r/blobs/{}", sha256(&img.layer)))
        .await
        .assert_status(200);
    app.get("/v2/r/manifests/keep").await.assert_status(200);
    assert_eq!(
        app.get(&format!("/v2/r/manifests/{}", keep.digest))
            .await
            .body,
        keep.manifest
    );
    app.delete(&format!("/v2/r/manifests/{}", img.digest))
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_by_tag_removes_only_the_tag() {
    let app = TestApp::new().await;
    let img = app.push_image("r", Some("a"), "tagdel").await;
    app.push_manifest("r", "b", OCI_MANIFEST, &img.manifest)
        .await;

    let r = app.delete("/v2/r/manifests/a").await;
    r.assert_status(202);
    app.get("/v2/r/manifests/a")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(app.tags("r").await, ["b"]);
    let get = app.get(&format!("/v2/r/manifests/{}", img.digest)).await;
    get.assert_status(200);
    assert_eq!(get.body, img.manifest);
    assert_eq!(
        index_entries(&app, "r", &img.digest),
        (vec!["b".to_owned()], true)
    );

    app.delete("/v2/r/manifests/b").await.assert_status(202);
    assert!(app.tags("r").await.is_empty());
    app.get(&format!("/v2/r/manifests/{}", img.digest))
        .await
        .assert_status(200);
    assert_eq!(index_entries(&app, "r", &img.digest), (vec![], true));
    app.delete("/v2/r/manifests/b")
        .await
        .assert_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn tag_moves_to_another_manifest() {
    let app = TestApp::new().await;
    let one = app.push_image("r", Some("latest"), "one").await;
    let two = app.push_image("r", Some("latest"), "two").await;
    let r = app.get("/v2/r/manifests/latest").await;
    assert_eq!(r.h("docker-content-digest"), two.digest);
    assert_eq!(r.body, two.manifest);
    assert_eq!(app.tags("r").await, ["latest"]);
    // The old manifest stays, untagged.
    let old = app.get(&format!("/v2/r/manifests/{}", one.digest)).await;
    old.assert_status(200);
    assert_eq!(old.body, one.manifest);
    assert_eq!(index_entries(&app, "r", &one.digest), (vec![], true));
    assert_eq!(
        index_entries(&app, "r", &two.digest),
        (vec!["latest".to_owned()], true)
    );
    // Deleting the old one leaves the tag alone.
    app.delete(&format!("/v2/r/manifests/{}", one.digest))
        .await
        .assert_status(202);
    assert_eq!(
        app.get("/v2/r/manifests/latest")
            .await
            .h("docker-content-digest"),
        two.digest
    );
}

/// As zot answers: a manifest an index names is not deleted by digest
/// (`405 DENIED`), until the index is; deleting its tag alone is allowed.
#[tokio::test]
async fn a_child_of_an_index_is_deleted_only_after_the_index() {
    let (app, img) = app_with_repo(true).await;
    let index = index_manifest(&[&img.manifest]);
    let parent = app.push_manifest("r", "multi", OCI_INDEX, &index).await;
    let child = format!("/v2/r/manifests/{}", sha256(&img.manifest));
    let r = app.delete(&child).await;
    r.assert_error(405, "DENIED");
    assert!(r.text().contains(&parent), "{}", r.text());
    app.get(&child).await.assert_status(200);
    app.delete("/v2/r/manifests/multi").await.assert_status(202);
    app.delete(&child).await.assert_error(405, "DENIED");
    app.delete(&format!("/v2/r/manifests/{parent}"))
        .await
        .assert_status(202);
    app.delete(&child).await.assert_status(202);
    app.get(&child).await.assert_error(404, "MANIFEST_UNKNOWN");
}

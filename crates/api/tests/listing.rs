//! Listings: tags and catalog (sorted, paginated with `n`, `last` and a
//! `Link` header) and the referrers API (artifact types, annotations, the
//! `artifactType` filter).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use common::{OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, TestApp, desc, sha256};
use serde_json::{Value, json};

async fn tag_all(app: &TestApp, repo: &str, tags: &[&str]) {
    let img = app.push_image(repo, None, repo).await;
    for t in tags {
        app.push_manifest(repo, t, OCI_MANIFEST, &img.manifest)
            .await;
    }
}

/// Follows `Link` headers from `uri`; returns the pages' `key` lists.
async fn pages(app: &TestApp, uri: &str, key: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut next = Some(uri.to_owned());
    while let Some(uri) = next.take() {
        let r = app.get(&uri).await;
        r.assert_status(200);
        assert_eq!(r.h("content-type"), "application/json");
        out.push(serde_json::from_value(r.json()[key].clone()).unwrap());
        if let Some(link) = r.header("link") {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("malformed Link {link:?}"));
            next = Some(target.to_owned());
        }
        assert!(out.len() < 20, "pagination does not end");
    }
    out
}

#[tokio::test]
async fn tags_are_sorted() {
    let app = TestApp::new().await;
    tag_all(&app, "r", &["b", "a", "c", "A1", "_x", "1.0", "a-1"]).await;
    let r = app.get("/v2/r/tags/list").await;
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({ "name": "r", "tags": ["1.0", "A1", "_x", "a", "a-1", "b", "c"] })
    );
    assert_eq!(r.header("link"), None);
}

#[tokio::test]
async fn tags_pagination() {
    let app = TestApp::new().await;
    tag_all(&app, "ns/r", &["e", "d", "c", "b", "a"]).await;
    let r = app.get("/v2/ns/r/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], json!(["a", "b"]));
    assert_eq!(r.h("link"), "</v2/ns/r/tags/list?n=2&last=b>; rel=\"next\"");
    assert_eq!(
        pages(&app, "/v2/ns/r/tags/list?n=2", "tags").await,
        [vec!["a", "b"], vec!["c", "d"], vec!["e"]]
    );
    // A page that ends exactly at the end has no Link.
    let r = app.get("/v2/ns/r/tags/list?n=5").await;
    assert_eq!(r.json()["tags"].as_array().unwrap().len(), 5);
    assert_eq!(r.header("link"), None);
    // `last` alone, and a `last` that is not a tag.
    let r = app.get("/v2/ns/r/tags/list?last=c").await;
    assert_eq!(r.json()["tags"], json!(["d", "e"]));
    let r = app.get("/v2/ns/r/tags/list?n=1&last=bb").await;
    assert_eq!(r.json()["tags"], json!(["c"]));
    let r = app.get("/v2/ns/r/tags/list?last=z").await;
    assert_eq!(r.json()["tags"], json!([]));
}

#[tokio::test]
async fn invalid_pagination_numbers() {
    let app = TestApp::new().await;
    tag_all(&app, "r", &["a"]).await;
    for n in ["-1", "abc", "1.5", "99999999999999999999999"] {
        app.get(&format!("/v2/r/tags/list?n={n}"))
            .await
            .assert_error(400, "PAGINATION_NUMBER_INVALID");
        app.get(&format!("/v2/_catalog?n={n}"))
            .await
            .assert_error(400, "PAGINATION_NUMBER_INVALID");
    }
}

#[tokio::test]
async fn tags_of_unknown_repository() {
    let app = TestApp::new().await;
    tag_all(&app, "known", &["a"]).await;
    app.get("/v2/unknown/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
    app.get("/v2/known/sub/tags/list")
        .await
        .assert_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn repository_with_only_blobs_has_no_tags() {
    let app = TestApp::new().await;
    app.push_blob("blobsonly", b"x").await;
    let r = app.get("/v2/blobsonly/tags/list").await;
    r.assert_status(200);
    assert_eq!(r.json(), json!({ "name": "blobsonly", "tags": [] }));
}

#[tokio::test]
async fn catalog_sorted_and_paginated() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/v2/_catalog").await.json(),
        json!({ "repositories": [] })
    );
    for repo in ["zeta", "alpha", "alpha/nested", "mid-dle", "b.c"] {
        app.push_image(repo, Some("t"), repo).await;
    }
    let all = ["alpha", "alpha/nested", "b.c", "mid-dle", "zeta"];
    assert_eq!(app.catalog().await, all);
    let r = app.get("/v2/_catalog?n=2").await;
    assert_eq!(
        r.h("link"),
        "</v2/_catalog?n=2&last=alpha%2Fnested>; rel=\"next\""
    );
    let got = pages(&app, "/v2/_catalog?n=2", "repositories").await;
    assert_eq!(
        got,
        [
            vec!["alpha", "alpha/nested"],
            vec!["b.c", "mid-dle"],
            vec!["zeta"]
        ]
    );
    let r = app.get("/v2/_catalog?n=10&last=b.c").await;
    assert_eq!(r.json()["repositories"], json!(["mid-dle", "zeta"]));
    assert_eq!(r.header("link"), None);
}

/// An artifact manifest about `subject` with an empty config.
fn artifact(
    subject: &[u8],
    artifact_type: Option<&str>,
    annotations: Value,
    payload: &[u8],
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_EMPTY, b"{}"),
        "layers": [desc("application/octet-stream", payload)],
        "subject": desc(OCI_MANIFEST, subject),
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    if !annotations.is_null() {
        m["annotations"] = annotations;
    }
    serde_json::to_vec(&m).unwrap()
}

async fn referrers(
    app: &TestApp,
    repo: &str,
    subject: &str,
    query: &str,
) -> (Vec<Value>, Option<String>) {
    let r = app
        .get(&format!("/v2/{repo}/referrers/{subject}{query}"))
        .await;
    r.assert_status(200);
    assert_eq!(r.h("content-type"), OCI_INDEX);
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let mut list = v["manifests"].as_array().unwrap().clone();
    list.sort_by_key(|d| d["digest"].as_str().unwrap().to_owned());
    (list, r.header("oci-filters-applied").map(str::to_owned))
}

#[tokio::test]
async fn referrers_list_and_filter() {
    let app = TestApp::new().await;
    let subject = app.push_image("r", Some("v1"), "subject").await;
    app.push_blob("r", b"{}").await;
    app.push_blob("r", b"sig").await;
    app.push_blob("r", b"sbom").await;
    let sig = artifact(
        &subject.manifest,
        Some("application/vnd.example.sig+json"),
        json!({ "org.opencontainers.image.created": "2024-01-01T00:00:00Z", "k": "v" }),
        b"sig",
    );
    let sig_d = app
        .push_manifest("r", &sha256(&sig), OCI_MANIFEST, &sig)
        .await;
    // No artifactType: the config's media type stands in.
    let sbom = artifact(&subject.manifest, None, Value::Null, b"sbom");
    let sbom_d = app
        .push_manifest("r", "sbom-tag", OCI_MANIFEST, &sbom)
        .await;
    // An index can refer too.
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle",
        "manifests": [],
        "subject": desc(OCI_MANIFEST, &subject.manifest),
    }))
    .unwrap();
    let idx_d = app.push_manifest("r", &sha256(&idx), OCI_INDEX, &idx).await;

    let mut expected = vec![
        json!({
            "mediaType": OCI_MANIFEST, "digest": sig_d, "size": sig.len(),
            "artifactType": "application/vnd.example.sig+json",
            "annotations": { "org.opencontainers.image.created": "2024-01-01T00:00:00Z", "k": "v" },
        }),
        json!({
            "mediaType": OCI_MANIFEST, "digest": sbom_d, "size": sbom.len(),
            "artifactType": OCI_EMPTY,
        }),
        json!({
            "mediaType": OCI_INDEX, "digest": idx_d, "size": idx.len(),
            "artifactType": "application/vnd.example.bundle",
        }),
    ];
    expected.sort_by_key(|d| d["digest"].as_str().unwrap().to_owned());
    let (all, filters) = referrers(&app, "r", &subject.digest, "").await;
    assert_eq!(all, expected);
    assert_eq!(filters, None);

    let (only_sig, filters) = referrers(
        &app,
        "r",
        &subject.digest,
        "?artifactType=application%2Fvnd.example.sig%2Bjson",
    )
    .await;
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(only_sig.len(), 1);
    assert_eq!(only_sig[0]["digest"], sig_d);
    let (empty_type, _) = referrers(
        &app,
        "r",
        &subject.digest,
        "?artifactType=application%2Fvnd.oci.empty.v1%2Bjson",
    )
    .await;
    assert_eq!(empty_type.len(), 1);
    assert_eq!(empty_type[0]["digest"], sbom_d);
    let (none, filters) = referrers(
        &app,
        "r",
        &subject.digest,
        "?artifactType=application/x-none",
    )
    .await;
    assert!(none.is_empty());
    assert_eq!(filters.as_deref(), Some("artifactType"));

    // Removing a referrer removes it from the list.
    app.delete(&format!("/v2/r/manifests/{sig_d}"))
        .await
        .assert_status(202);
    let (left, _) = referrers(&app, "r", &subject.digest, "").await;
    let digests: Vec<_> = left.iter().map(|d| d["digest"].clone()).collect();
    assert!(!digests.contains(&json!(sig_d)));
    assert_eq!(left.len(), 2);
    // Untagging a referrer does not.
    app.delete("/v2/r/manifests/sbom-tag")
        .await
        .assert_status(202);
    assert_eq!(referrers(&app, "r", &subject.digest, "").await.0.len(), 2);
    app.delete(&format!("/v2/r/manifests/{sbom_d}"))
        .await
        .assert_status(202);
    app.delete(&format!("/v2/r/manifests/{idx_d}"))
        .await
        .assert_status(202);
    assert!(referrers(&app, "r", &subject.digest, "").await.0.is_empty());
}

#[tokio::test]
async fn referrers_of_unknown_subjects_are_empty() {
    let app = TestApp::new().await;
    let subject = app.push_image("r", Some("v1"), "s").await;
    let unknown = sha256(b"no such manifest");
    assert!(referrers(&app, "r", &unknown, "").await.0.is_empty());
    assert!(referrers(&app, "r", &subject.digest, "").await.0.is_empty());
    assert!(referrers(&app, "nope", &unknown, "").await.0.is_empty());
    app.get("/v2/r/referrers/sha256:abc")
        .await
        .assert_error(400, "DIGEST_INVALID");
    app.get("/v2/r/referrers/latest")
        .await
        .assert_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn referrers_before_their_subject_and_per_repository() {
    let app = TestApp::new().await;
    // The subject is never pushed to `r`: the referrer is still accepted and listed.
    let subject = b"{\"not\":\"pushed\"}".to_vec();
    app.push_blob("r", b"{}").await;
    app.push_blob("r", b"p").await;
    let a = artifact(&subject, Some("application/x-a"), Value::Null, b"p");
    let r = app.put_manifest("r", "a", OCI_MANIFEST, &a).await;
    r.assert_status(201);
    assert_eq!(r.h("oci-subject"), sha256(&subject));
    let (list, _) = referrers(&app, "r", &sha256(&subject), "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], sha256(&a));
    // Another repository does not see it.
    assert!(
        referrers(&app, "other", &sha256(&subject), "")
            .await
            .0
            .is_empty()
    );
}

/// A media type never contains a space, so a `+` in the query string can
/// only be the `+` of a structured-syntax suffix (`+json`): clients that do
/// not escape it (curl users, hand-written URLs) must still be understood.
#[tokio::test]
async fn artifact_type_filter_with_an_unescaped_plus() {
    let app = TestApp::new().await;
    let subject = app.push_image("r", Some("v1"), "subject").await;
    app.push_blob("r", b"{}").await;
    app.push_blob("r", b"p").await;
    let a = artifact(
        &subject.manifest,
        Some("application/vnd.example+json"),
        Value::Null,
        b"p",
    );
    app.push_manifest("r", "a", OCI_MANIFEST, &a).await;
    let (list, filters) = referrers(
        &app,
        "r",
        &subject.digest,
        "?artifactType=application/vnd.example+json",
    )
    .await;
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(list.len(), 1, "the filter must match the artifact");
}

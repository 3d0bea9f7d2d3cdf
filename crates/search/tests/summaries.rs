//! Derived summary fields (zot-interfaces §1.6): index summaries, history
//! pairing, repository totals, times, platforms, and failures.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn index_summary_fills_blanks_from_first_manifest() {
    let h = Harness::world();
    let d = h
        .data(
            r#"{ Image(image: "apps/web:2.0") { Digest MediaType Size LastUpdated Title Description Vendor
                IsSigned DownloadCount
                Manifests { Digest ConfigDigest Size LastUpdated Platform { Os Arch } DownloadCount
                  IsSigned Layers { Digest Size } ArtifactType } } }"#,
        )
        .await;
    let img = &d["Image"];
    assert_eq!(img["Digest"], web_2().digest.to_string());
    assert_eq!(img["MediaType"], OCI_INDEX);
    assert_eq!(img["Size"], "5200");
    assert_eq!(img["LastUpdated"], "2024-05-02T00:00:00Z");
    assert_eq!(img["Title"], "web");
    assert_eq!(img["Description"], "web index");
    assert_eq!(img["Vendor"], "WebCo");
    assert_eq!(img["DownloadCount"], 7);
    let manifests = &img["Manifests"];
    assert_eq!(
        pluck(manifests, "Digest"),
        [
            web_2_amd().digest.to_string(),
            web_2_arm().digest.to_string()
        ]
    );
    assert_eq!(
        manifests[0]["Platform"],
        json!({"Os": "linux", "Arch": "amd64"})
    );
    // The arm64 config names no platform: the index descriptor's.
    assert_eq!(
        manifests[1]["Platform"],
        json!({"Os": "linux", "Arch": "arm64/v8"})
    );
    assert_eq!(manifests[0]["Size"], "2600");
    assert_eq!(manifests[0]["LastUpdated"], "2024-05-01T00:00:00Z");
    assert_eq!(
        manifests[0]["ConfigDigest"],
        digest("config-web-2.0-amd64").to_string()
    );
    assert_eq!(
        manifests[0]["Layers"][1],
        json!({"Digest": digest("layer-app2").to_string(), "Size": "1000"})
    );
}

#[tokio::test]
async fn history_pairs_non_empty_entries_with_layers() {
    let h = Harness::world();
    let d = h
        .data(
            r#"{ Image(image: "alpine:3.19") { Manifests { History {
                Layer { Digest } HistoryDescription { Created CreatedBy EmptyLayer } } } }
                old: Image(image: "alpine:3.18") { Manifests { History {
                Layer { Digest } HistoryDescription { CreatedBy } } } } }"#,
        )
        .await;
    assert_eq!(
        d["Image"]["Manifests"][0]["History"],
        json!([
            {"Layer": {"Digest": digest(BASE2).to_string()},
             "HistoryDescription": {"Created": "2023-12-31T00:00:00Z", "CreatedBy": "ADD rootfs", "EmptyLayer": false}},
            {"Layer": null,
             "HistoryDescription": {"Created": null, "CreatedBy": "ENV A=1", "EmptyLayer": true}}
        ])
    );
    // No history: one entry per layer, empty description.
    assert_eq!(
        d["old"]["Manifests"][0]["History"],
        json!([{"Layer": {"Digest": digest(BASE1).to_string()}, "HistoryDescription": {"CreatedBy": null}}])
    );
}

#[tokio::test]
async fn repo_summary_of_multi_arch_repo() {
    let h = Harness::world();
    let d = h
        .data(
            r#"{ ExpandedRepoInfo(repo: "apps/web") { Summary { Size Platforms { Os Arch } Vendors
                 LastUpdated DownloadCount NewestImage { Tag IsSigned SignatureInfo { Tool } } } } }"#,
        )
        .await;
    assert_eq!(
        d["ExpandedRepoInfo"]["Summary"],
        json!({
            "Size": "7100",
            "Platforms": [{"Os": "linux", "Arch": "amd64"}, {"Os": "linux", "Arch": "arm64/v8"}],
            "Vendors": ["WebCo"], "LastUpdated": "2024-06-02T00:00:00Z", "DownloadCount": 8,
            "NewestImage": {"Tag": "1.0", "IsSigned": true, "SignatureInfo": [{"Tool": "notation"}]}
        })
    );
}

#[tokio::test]
async fn unknown_times_are_null_and_nanoseconds_shown() {
    let h = Harness::world();
    let d = h
        .data(
            r#"{ Image(image: "private/secret:v1") { PushTimestamp LastPullTimestamp TaggedTimestamp
                LastUpdated PushedBy DownloadCount Manifests { LastUpdated Vulnerabilities { MaxSeverity Count } } } }"#,
        )
        .await;
    assert_eq!(
        d["Image"],
        json!({"PushTimestamp": null, "LastPullTimestamp": null, "TaggedTimestamp": null,
               "LastUpdated": null, "PushedBy": "", "DownloadCount": 0,
               "Manifests": [{"LastUpdated": null, "Vulnerabilities": {"MaxSeverity": "", "Count": 0}}]})
    );
    let mem = world();
    mem.put(
        RepoBuilder::new("nanos")
            .tag(
                "1",
                &M {
                    created: Some("2024-03-04T05:06:07.123456789Z"),
                    ..M::new("nanos-1", &["l"])
                }
                .meta(),
                Some("2024-03-04T05:06:08.5+01:00"),
            )
            .build(),
    );
    let h = Harness::new(mem);
    let d = h
        .data(r#"{ Image(image: "nanos:1") { LastUpdated TaggedTimestamp } }"#)
        .await;
    assert_eq!(
        d["Image"],
        json!({"LastUpdated": "2024-03-04T05:06:07.123456789Z", "TaggedTimestamp": "2024-03-04T04:06:08.5Z"})
    );
}

#[tokio::test]
async fn history_longer_than_layers_reports_an_error_with_data() {
    let mem = world();
    let entry = |by: &str| zot_oci::image_meta::HistoryEntry {
        created_by: by.into(),
        ..Default::default()
    };
    mem.put(
        RepoBuilder::new("odd")
            .tag(
                "1",
                &M {
                    history: vec![entry("RUN a"), entry("RUN b")],
                    ..M::new("odd-1", &["only-layer"])
                }
                .meta(),
                None,
            )
            .build(),
    );
    let h = Harness::new(mem);
    let (status, body) = h
        .post(admin(), r#"{ Image(image: "odd:1") { Tag Manifests { History { HistoryDescription { CreatedBy } } } } }"#)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(body["data"]["Image"]["Tag"], "1");
    assert_eq!(
        body["data"]["Image"]["Manifests"][0]["History"],
        json!([{"HistoryDescription": {"CreatedBy": "RUN a"}}])
    );
    assert_eq!(
        body["errors"][0]["message"],
        "history has more non-empty entries than the manifest has layers"
    );
}

#[tokio::test]
async fn manifest_without_platform_shows_empty_strings() {
    let mem = world();
    mem.put(
        RepoBuilder::new("bare")
            .tag(
                "1",
                &M {
                    platform: None,
                    ..M::new("bare-1", &["b"])
                }
                .meta(),
                None,
            )
            .build(),
    );
    let h = Harness::new(mem);
    let d = h
        .data(r#"{ Image(image: "bare:1") { Manifests { Platform { Os Arch } } } }"#)
        .await;
    assert_eq!(
        d["Image"]["Manifests"][0]["Platform"],
        json!({"Os": "", "Arch": ""})
    );
    let d = h
        .data(r#"{ ExpandedRepoInfo(repo: "bare") { Summary { Platforms { Os } } } }"#)
        .await;
    assert_eq!(d["ExpandedRepoInfo"]["Summary"]["Platforms"], json!([]));
}

/// A source whose reads fail.
struct Broken;

impl zot_search::Source for Broken {
    fn repos(&self) -> Result<Vec<(String, u64)>, zot_search::SourceError> {
        Err(zot_search::SourceError(
            "disk on fire at /var/lib/zot".into(),
        ))
    }
    fn repo(
        &self,
        _: &str,
    ) -> Result<Option<std::sync::Arc<zot_search::RepoData>>, zot_search::SourceError> {
        Err(zot_search::SourceError(
            "disk on fire at /var/lib/zot".into(),
        ))
    }
    fn user_prefs(&self, _: &str) -> Result<zot_search::UserPrefs, zot_search::SourceError> {
        Err(zot_search::SourceError("disk on fire".into()))
    }
    fn toggle(
        &self,
        _: &str,
        _: zot_search::Pref,
        _: &str,
    ) -> Result<bool, zot_search::SourceError> {
        Err(zot_search::SourceError("disk on fire".into()))
    }
}

#[tokio::test]
async fn source_failures_are_not_leaked() {
    let search = zot_search::Search::new(std::sync::Arc::new(Broken));
    let body =
        json!({"query": r#"{ GlobalSearch(query: "a") { Page { TotalCount } } }"#}).to_string();
    let req = match axum::extract::Request::post("/").body(axum::body::Body::from(body)) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let resp = search.graphql(req, admin()).await;
    assert_eq!(resp.status(), axum::http::StatusCode::OK);
    let bytes = match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    let v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(v["data"], serde_json::Value::Null);
    assert_eq!(v["errors"][0]["message"], "internal error");
}

#[tokio::test]
async fn cosign_referrer_signs_the_index_not_its_manifests() {
    let mem = world();
    let sig = M {
        artifact_type: COSIGN,
        subject: Some(web_2().digest),
        platform: None,
        ..M::new("cosign-referrer", &["sig-a", "sig-b"])
    }
    .meta();
    mem.put(
        RepoBuilder::new("apps/web")
            .tag("2.0", &web_2(), None)
            .image(&web_2_amd())
            .image(&web_2_arm())
            .referrer(&sig, &[])
            .build(),
    );
    let h = Harness::new(mem);
    let d = h
        .data(r#"{ Image(image: "apps/web:2.0") { IsSigned SignatureInfo { Tool IsTrusted Author } Manifests { IsSigned SignatureInfo { Tool } } } }"#)
        .await;
    // One entry per signature layer; the children are not signed.
    assert_eq!(
        d["Image"],
        json!({
            "IsSigned": true,
            "SignatureInfo": [{"Tool": "cosign", "IsTrusted": false, "Author": ""},
                              {"Tool": "cosign", "IsTrusted": false, "Author": ""}],
            "Manifests": [{"IsSigned": false, "SignatureInfo": []}, {"IsSigned": false, "SignatureInfo": []}]
        })
    );
    // A signed newest image makes the repository pass HasToBeSigned only
    // when the newest image itself is signed.
    let d = h
        .data(r#"{ GlobalSearch(query: "apps/web", filter: {HasToBeSigned: true}) { Repos { Name NewestImage { Tag } } } }"#)
        .await;
    assert_eq!(
        d["GlobalSearch"]["Repos"],
        json!([{"Name": "apps/web", "NewestImage": {"Tag": "2.0"}}])
    );
}

#[tokio::test]
async fn repository_without_tags() {
    let h = Harness::world();
    let d = h
        .data(r#"{ ExpandedRepoInfo(repo: "empty") { Summary { Name Size NewestImage { Tag } Platforms { Os } LastUpdated } Images { Tag } } }"#)
        .await;
    assert_eq!(
        d["ExpandedRepoInfo"],
        json!({"Summary": {"Name": "empty", "Size": "0", "NewestImage": null, "Platforms": [], "LastUpdated": null}, "Images": []})
    );
}

#[tokio::test]
async fn filter_values_are_bounded() {
    let h = Harness::world();
    let long = "x".repeat(257);
    let q = format!(
        r#"{{ GlobalSearch(query: "a", filter: {{Arch: ["{long}"]}}) {{ Page {{ TotalCount }} }} }}"#
    );
    assert_eq!(
        h.error(&q).await,
        "max string size limit exceeded for filter parameter 'Arch'. max=256 current=257 request parameter has invalid value"
    );
}

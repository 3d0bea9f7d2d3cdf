//! Every query over the fixture world, with the derived fields checked
//! against zot's rules (zot-interfaces §1.3, §1.6).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn image_list_of_one_repo() {
    let h = Harness::world();
    let d = h
        .data(
            r#"{ ImageList(repo: "alpine") { Page { TotalCount ItemCount }
                Results { RepoName Tag Digest MediaType Size DownloadCount IsSigned
                  LastUpdated PushTimestamp PushedBy TaggedTimestamp LastPullTimestamp
                  Description Vendor Title ArtifactType IsDeletable
                  SignatureInfo { Tool IsTrusted Author }
                  Vulnerabilities { MaxSeverity Count CriticalCount } } } }"#,
        )
        .await;
    let list = &d["ImageList"];
    assert_eq!(list["Page"], json!({"TotalCount": 3, "ItemCount": 3}));
    // RELEVANCE = alphabetic; the cosign signature tag is not an image.
    assert_eq!(pluck(&list["Results"], "Tag"), ["3.18", "3.19", "latest"]);
    let first = &list["Results"][0];
    assert_eq!(first["RepoName"], "alpine");
    assert_eq!(first["Digest"], alpine_318().digest.to_string());
    assert_eq!(first["MediaType"], OCI_MANIFEST);
    assert_eq!(first["Size"], "1600");
    assert_eq!(first["DownloadCount"], 5);
    assert_eq!(first["IsSigned"], false);
    assert_eq!(first["SignatureInfo"], json!([]));
    assert_eq!(first["LastUpdated"], "2023-01-01T00:00:00Z");
    assert_eq!(first["PushTimestamp"], "2023-01-02T00:00:00Z");
    assert_eq!(first["PushedBy"], "alice");
    assert_eq!(first["TaggedTimestamp"], "2023-01-02T00:00:00Z");
    assert_eq!(first["LastPullTimestamp"], "2024-07-01T00:00:00Z");
    assert_eq!(first["Description"], "alpine 3.18");
    assert_eq!(first["Vendor"], "Alpine");
    assert_eq!(first["Title"], "");
    assert_eq!(first["ArtifactType"], OCI_CONFIG);
    assert_eq!(first["IsDeletable"], serde_json::Value::Null);
    assert_eq!(
        first["Vulnerabilities"],
        json!({"MaxSeverity": "", "Count": 0, "CriticalCount": 0})
    );
    let signed = &list["Results"][1];
    assert_eq!(signed["IsSigned"], true);
    assert_eq!(
        signed["SignatureInfo"],
        json!([{"Tool": "cosign", "IsTrusted": false, "Author": ""}])
    );
    // No tag time: the push time.
    assert_eq!(signed["TaggedTimestamp"], "2024-01-05T00:00:00Z");
}

#[tokio::test]
async fn image_list_of_every_repo_and_unknown_repo() {
    let h = Harness::world();
    let d = h
        .data(r#"{ ImageList(repo: "") { Page { TotalCount } Results { RepoName Tag } } }"#)
        .await;
    assert_eq!(d["ImageList"]["Page"]["TotalCount"], 9);
    assert_eq!(
        pluck(&d["ImageList"]["Results"], "RepoName"),
        [
            "alpine",
            "alpine",
            "alpine",
            "alpinex/other",
            "apps/web",
            "apps/web",
            "foo/myalpine",
            "private/secret",
            "tools/alpine-utils"
        ]
    );
    let d = h
        .data(r#"{ ImageList(repo: "nope") { Page { TotalCount ItemCount } Results { Tag } } }"#)
        .await;
    assert_eq!(
        d["ImageList"],
        json!({"Page": {"TotalCount": 0, "ItemCount": 0}, "Results": []})
    );
}

#[tokio::test]
async fn image_errors_and_unreadable() {
    let h = Harness::world();
    assert_eq!(
        h.error(r#"{ Image(image: "alpine") { Tag } }"#).await,
        "no reference provided"
    );
    assert_eq!(
        h.error(r#"{ Image(image: "alpine:") { Tag } }"#).await,
        "no reference provided"
    );
    assert_eq!(
        h.error(r#"{ Image(image: "alpine:9") { Tag } }"#).await,
        "can't find image: alpine:9"
    );
    assert_eq!(
        h.error(r#"{ Image(image: "nope:1") { Tag } }"#).await,
        "can't find image: nope:1"
    );
    let d = h
        .data_as(
            reader("eve", &["alpine"]),
            r#"{ Image(image: "private/secret:v1") { Tag RepoName Digest } }"#,
        )
        .await;
    assert_eq!(
        d["Image"],
        json!({"Tag": null, "RepoName": null, "Digest": null})
    );
}

#[tokio::test]
async fn expanded_repo_info() {
    let h = Harness::world();
    let q = r#"{ ExpandedRepoInfo(repo: "alpine") {
        Summary { Name LastUpdated Size Platforms { Os Arch } Vendors DownloadCount StarCount
                  IsStarred IsBookmarked Rank NewestImage { Tag } }
        Images { Tag IsDeletable } } }"#;
    let d = h.data(q).await;
    let info = &d["ExpandedRepoInfo"];
    assert_eq!(
        info["Summary"],
        json!({
            "Name": "alpine", "LastUpdated": "2024-02-01T00:00:00Z", "Size": "3200",
            "Platforms": [{"Os": "linux", "Arch": "amd64"}], "Vendors": ["Alpine"],
            "DownloadCount": 15, "StarCount": 2, "IsStarred": false, "IsBookmarked": false,
            "Rank": 0, "NewestImage": {"Tag": "3.19"}
        })
    );
    // UPDATE_TIME order, deletable for a viewer with delete rights.
    assert_eq!(pluck(&info["Images"], "Tag"), ["3.19", "3.18", "latest"]);
    assert_eq!(
        pluck(&info["Images"], "IsDeletable"),
        ["true", "true", "true"]
    );

    let d = h.data_as(reader("eve", &["alpine"]), q).await;
    assert_eq!(
        pluck(&d["ExpandedRepoInfo"]["Images"], "IsDeletable"),
        ["false", "false", "false"]
    );

    assert_eq!(
        h.error(r#"{ ExpandedRepoInfo(repo: "nope") { Summary { Name } } }"#)
            .await,
        "repo metadata not found for given repo name"
    );
    let d = h
        .data_as(
            anonymous(&["alpine"]),
            r#"{ ExpandedRepoInfo(repo: "apps/web") { Summary { Name } Images { Tag } } }"#,
        )
        .await;
    assert_eq!(
        d["ExpandedRepoInfo"],
        json!({"Summary": null, "Images": null})
    );
}

#[tokio::test]
async fn repo_list_with_newest_image() {
    let h = Harness::world();
    let d = h
        .data(r#"{ RepoListWithNewestImage { Page { TotalCount ItemCount } Results { Name NewestImage { Tag } } } }"#)
        .await;
    let list = &d["RepoListWithNewestImage"];
    // Repositories without tags are left out; UPDATE_TIME order, unknown
    // times last, ties by name.
    assert_eq!(list["Page"], json!({"TotalCount": 6, "ItemCount": 6}));
    assert_eq!(
        pluck(&list["Results"], "Name"),
        [
            "apps/web",
            "alpine",
            "alpinex/other",
            "foo/myalpine",
            "private/secret",
            "tools/alpine-utils"
        ]
    );
    assert_eq!(list["Results"][1]["NewestImage"], json!({"Tag": "3.19"}));
}

#[tokio::test]
async fn image_list_for_digest_substring_and_index() {
    let h = Harness::world();
    let base2 = digest(BASE2).to_string();
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ RepoName Tag }} }} }}"#,
        &base2[..20]
    );
    let d = h.data(&q).await;
    assert_eq!(
        pluck(&d["ImageListForDigest"]["Results"], "RepoName"),
        ["alpine", "tools/alpine-utils"]
    );
    // A layer of one platform: the index with only that manifest.
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ Tag Manifests {{ Digest }} }} }} }}"#,
        digest("layer-app3")
    );
    let d = h.data(&q).await;
    assert_eq!(
        d["ImageListForDigest"]["Results"],
        json!([{"Tag": "2.0", "Manifests": [{"Digest": web_2_arm().digest.to_string()}]}])
    );
    // The index digest itself: the whole index.
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ Tag Manifests {{ Digest }} }} }} }}"#,
        web_2().digest
    );
    let d = h.data(&q).await;
    assert_eq!(
        d["ImageListForDigest"]["Results"][0]["Manifests"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // A config digest matches too.
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ RepoName Tag }} }} }}"#,
        digest("config-alpine-3.18")
    );
    let d = h.data(&q).await;
    assert_eq!(
        pluck(&d["ImageListForDigest"]["Results"], "Tag"),
        ["3.18", "latest"]
    );
}

#[tokio::test]
async fn referrers_with_type_filter_and_bad_digest() {
    let h = Harness::world();
    let subject = web_1().digest;
    let q = format!(
        r#"{{ Referrers(repo: "apps/web", digest: "{subject}") {{ ArtifactType MediaType Digest Size Annotations {{ Key Value }} }} }}"#
    );
    let d = h.data(&q).await;
    let list = &d["Referrers"];
    assert_eq!(
        pluck(list, "ArtifactType"),
        [NOTATION, "application/spdx+json"]
    );
    assert_eq!(
        list[1]["Annotations"],
        json!([{"Key": "org.example.kind", "Value": "sbom"}])
    );
    assert_eq!(list[1]["Size"], 500);
    let q = format!(
        r#"{{ Referrers(repo: "apps/web", digest: "{subject}", type: ["application/spdx+json"]) {{ Digest }} }}"#
    );
    let d = h.data(&q).await;
    assert_eq!(
        pluck(&d["Referrers"], "Digest"),
        [sbom_for(&web_1()).digest.to_string()]
    );
    let q =
        format!(r#"{{ Referrers(repo: "apps/web", digest: "{subject}", type: []) {{ Digest }} }}"#);
    assert_eq!(
        h.data(&q).await["Referrers"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        h.error(r#"{ Referrers(repo: "apps/web", digest: "sha256:xyz") { Digest } }"#)
            .await,
        "bad digest string from request 'sha256:xyz'"
    );
    let q = format!(r#"{{ Referrers(repo: "apps/web", digest: "{subject}") {{ Digest }} }}"#);
    let d = h.data_as(anonymous(&["alpine"]), &q).await;
    assert_eq!(d["Referrers"], json!([]));
    // Also reachable from the image summary.
    let d = h
        .data(r#"{ Image(image: "apps/web:1.0") { Referrers { ArtifactType } } }"#)
        .await;
    assert_eq!(
        pluck(&d["Image"]["Referrers"], "ArtifactType"),
        [NOTATION, "application/spdx+json"]
    );
}

#[tokio::test]
async fn cve_queries_are_disabled() {
    let h = Harness::world();
    for q in [
        r#"{ CVEListForImage(image: "alpine:3.18") { Tag } }"#,
        r#"{ CVEDiffListForImages(minuend: {Repo: "alpine", Tag: "3.18"}, subtrahend: {Repo: "alpine", Tag: "3.19"}) { Page { TotalCount } } }"#,
        r#"{ ImageListForCVE(id: "CVE-2024-1") { Results { Tag } } }"#,
        r#"{ ImageListWithCVEFixed(id: "CVE-2024-1", image: "alpine") { Results { Tag } } }"#,
    ] {
        assert_eq!(h.error(q).await, "cve search is disabled", "{q}");
    }
}

#[tokio::test]
async fn starred_and_bookmarked_repos() {
    let h = Harness::world();
    h.source
        .toggle_for_test("alice", zot_search::Pref::Star, "apps/web");
    h.source
        .toggle_for_test("alice", zot_search::Pref::Star, "private/secret");
    h.source
        .toggle_for_test("alice", zot_search::Pref::Bookmark, "alpine");
    let alice = || reader("alice", &["alpine", "apps/web"]);
    let d = h
        .data_as(alice(), r#"{ StarredRepos { Page { TotalCount } Results { Name StarCount IsStarred IsBookmarked } } }"#)
        .await;
    // The unreadable starred repository is left out.
    assert_eq!(
        d["StarredRepos"],
        json!({"Page": {"TotalCount": 1}, "Results": [{"Name": "apps/web", "StarCount": 1, "IsStarred": true, "IsBookmarked": false}]})
    );
    let d = h
        .data_as(
            alice(),
            r#"{ BookmarkedRepos { Results { Name IsBookmarked } } }"#,
        )
        .await;
    assert_eq!(
        d["BookmarkedRepos"]["Results"],
        json!([{"Name": "alpine", "IsBookmarked": true}])
    );
    let d = h
        .data_as(
            anonymous(&["alpine", "apps/web"]),
            r#"{ StarredRepos { Page { TotalCount ItemCount } Results { Name } } }"#,
        )
        .await;
    assert_eq!(
        d["StarredRepos"],
        json!({"Page": {"TotalCount": 0, "ItemCount": 0}, "Results": []})
    );
}

trait ToggleForTest {
    fn toggle_for_test(&self, user: &str, pref: zot_search::Pref, repo: &str);
}

impl ToggleForTest for Memory {
    fn toggle_for_test(&self, user: &str, pref: zot_search::Pref, repo: &str) {
        use zot_search::Source;
        match self.toggle(user, pref, repo) {
            Ok(true) => {}
            other => panic!("toggle: {other:?}"),
        }
    }
}

#[tokio::test]
async fn newest_image_through_fragments_and_aliases() {
    let h = Harness::world();
    let d = h
        .data(
            r#"query { GlobalSearch(query: "alpine") { Repos { ...R } } }
               fragment R on RepoSummary { Name newest: NewestImage { Tag } }"#,
        )
        .await;
    assert_eq!(
        d["GlobalSearch"]["Repos"][0],
        json!({"Name": "alpine", "newest": {"Tag": "3.19"}})
    );
    let d = h
        .data(r#"{ RepoListWithNewestImage(requestedPage: {limit: 1}) { Results { ... on RepoSummary { NewestImage { Tag } } } } }"#)
        .await;
    assert_eq!(
        d["RepoListWithNewestImage"]["Results"][0],
        json!({"NewestImage": {"Tag": "1.0"}})
    );
}

#[tokio::test]
async fn whole_digest_reads_only_repositories_that_hold_it() {
    let h = Harness::world();
    h.data(r#"{ GlobalSearch(query: "") { Page { TotalCount } } }"#)
        .await;
    let before = h.source.reads();
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ RepoName Tag }} }} }}"#,
        digest("layer-app2")
    );
    let d = h.data(&q).await;
    assert_eq!(pluck(&d["ImageListForDigest"]["Results"], "Tag"), ["2.0"]);
    assert_eq!(h.source.reads(), before + 1, "only apps/web is read");
    // A fragment cannot use the keys: every readable repository is read.
    let d = h
        .data(r#"{ ImageListForDigest(id: "sha256:") { Page { TotalCount } } }"#)
        .await;
    assert_eq!(d["ImageListForDigest"]["Page"]["TotalCount"], 9);
}

//! The queries of zot's web UI (`project-zot/zui` `src/api.js`), sent as
//! the browser sends them.

use serde_json::json;
use zot_search::{Pref, Source};

use crate::common::*;
use crate::*;

/// Home page and explore: `endpoints.repoList`.
#[tokio::test]
async fn ui_repo_list() {
    let h = Harness::world();
    let q = "/v2/_zot/ext/search?query={RepoListWithNewestImage(requestedPage: {limit:15 offset:0}){Results {Name LastUpdated Size Platforms {Os Arch}  NewestImage { Tag Vulnerabilities {MaxSeverity Count} Description  Licenses Title Source IsSigned SignatureInfo { Tool IsTrusted Author } Documentation Vendor Labels} IsStarred IsBookmarked StarCount DownloadCount}}}";
    let d = ok(&h, ui_request(q), admin()).await;
    let results = &d["RepoListWithNewestImage"]["Results"];
    // UPDATE_TIME by default; the tag-less repository is left out.
    let names = pluck(results, "Name");
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(!names.contains(&"empty".to_owned()));
    let alpine = &results[names.iter().position(|n| n == "alpine").unwrap_or(99)];
    assert_eq!(alpine["NewestImage"]["Tag"], "3.19");
    assert_eq!(alpine["NewestImage"]["IsSigned"], true);
    assert_eq!(
        alpine["NewestImage"]["Vulnerabilities"],
        json!({"MaxSeverity": "", "Count": 0})
    );
    assert_eq!(alpine["NewestImage"]["Vendor"], "Config Vendor");
    assert_eq!(alpine["NewestImage"]["Labels"], "");
    assert_eq!(alpine["StarCount"], 2);
    assert_eq!(alpine["DownloadCount"], 15);
    assert_eq!(alpine["IsStarred"], false);
    assert_eq!(
        alpine["Platforms"],
        json!([{"Os": "linux", "Arch": "amd64"}])
    );
    assert!(size(&alpine["Size"]) > 0);
    // The newest tag time (latest, 2024-02-01) is later than any image.
    assert_eq!(alpine["LastUpdated"], "2024-02-01T00:00:00Z");
}

/// Repository page: `endpoints.detailedRepoInfo`.
#[tokio::test]
async fn ui_repo_page() {
    let h = Harness::world();
    let q = r#"/v2/_zot/ext/search?query={ExpandedRepoInfo(repo:"apps/web"){Images {Manifests {Digest Platform {Os Arch} Size} Vulnerabilities {MaxSeverity Count} Tag LastUpdated Vendor IsDeletable } Summary {Name LastUpdated Size Platforms {Os Arch} Vendors IsStarred IsBookmarked NewestImage {RepoName IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities {MaxSeverity Count} Manifests {Digest} Tag Vendor Title Documentation DownloadCount Source Description Licenses}}}}"#;
    let d = ok(&h, ui_request(q), admin()).await;
    let info = &d["ExpandedRepoInfo"];
    // Tags newest first (UPDATE_TIME): 1.0 (2024-06-01) before 2.0.
    assert_eq!(pluck(&info["Images"], "Tag"), ["1.0", "2.0"]);
    assert_eq!(info["Images"][0]["IsDeletable"], true);
    let index = &info["Images"][1];
    assert_eq!(index["Manifests"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        index["Manifests"][1]["Platform"],
        json!({"Os": "linux", "Arch": "arm64/v8"})
    );
    assert!(is_digest(&index["Manifests"][0]["Digest"]));
    let summary = &info["Summary"];
    assert_eq!(summary["Name"], "apps/web");
    assert_eq!(summary["Vendors"], json!(["WebCo"]));
    assert_eq!(summary["NewestImage"]["Tag"], "1.0");
    assert_eq!(summary["NewestImage"]["RepoName"], "apps/web");
    // Signed by a notation referrer.
    assert_eq!(summary["NewestImage"]["IsSigned"], true);
    assert_eq!(
        summary["NewestImage"]["SignatureInfo"],
        json!([{"Tool": "notation", "IsTrusted": false, "Author": ""}])
    );
    assert_eq!(summary["NewestImage"]["DownloadCount"], 1);

    // A reader without delete permission sees IsDeletable false.
    let d = ok(&h, ui_request(q), reader("ann", &["apps/web"])).await;
    assert_eq!(d["ExpandedRepoInfo"]["Images"][0]["IsDeletable"], false);
}

/// Tag page: `endpoints.detailedImageInfo`, then its referrers tab
/// (`endpoints.referrers`, which sends `type: ""`: every referrer).
#[tokio::test]
async fn ui_tag_page_and_referrers() {
    let h = Harness::world();
    let q = r#"/v2/_zot/ext/search?query={Image(image: "apps/web:1.0"){RepoName IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities {MaxSeverity Count}  Referrers {MediaType ArtifactType Size Digest Annotations{Key Value}} Tag Manifests {History {Layer {Size Digest} HistoryDescription {CreatedBy EmptyLayer}} Digest ConfigDigest LastUpdated Size Platform {Os Arch}} Vendor Licenses }}"#;
    let d = ok(&h, ui_request(q), admin()).await;
    let img = &d["Image"];
    assert_eq!(img["RepoName"], "apps/web");
    assert_eq!(img["Tag"], "1.0");
    assert_eq!(img["Referrers"].as_array().map(Vec::len), Some(2));
    let m = &img["Manifests"][0];
    assert!(is_digest(&m["ConfigDigest"]));
    assert_eq!(m["LastUpdated"], "2024-06-01T00:00:00Z");
    // No config history: one entry per layer, empty description.
    assert_eq!(m["History"].as_array().map(Vec::len), Some(2));
    assert_eq!(m["History"][0]["Layer"]["Size"], "1000");

    let web1 = web_1().digest.to_string();
    let q = format!(
        r#"/v2/_zot/ext/search?query={{Referrers(repo: "apps/web" digest: "{web1}" type: ""){{MediaType ArtifactType Size Digest Annotations{{Key Value}}}}}}"#
    );
    let d = ok(&h, ui_request(&q), admin()).await;
    assert_eq!(
        sorted(pluck(&d["Referrers"], "ArtifactType")),
        ["application/spdx+json", NOTATION]
    );
    let sbom = d["Referrers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["ArtifactType"] == "application/spdx+json")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        sbom["Annotations"],
        json!([{"Key": "org.example.kind", "Value": "sbom"}])
    );
    assert_eq!(sbom["MediaType"], OCI_MANIFEST);
}

/// Tag page tabs "depends on" and "is dependent on":
/// `endpoints.dependsOnForImage` / `isDependentOnForImage`.
#[tokio::test]
async fn ui_dependencies_tabs() {
    let h = Harness::world();
    let q = r#"/v2/_zot/ext/search?query={BaseImageList(image: "apps/web:1.0", requestedPage: {limit:15 offset:0}){Page {TotalCount ItemCount} Results { RepoName Tag Description Manifests {Digest Platform {Os Arch} Size} Vendor DownloadCount LastUpdated IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities {MaxSeverity Count}}}}"#;
    let d = ok(&h, ui_request(q), admin()).await;
    let base = &d["BaseImageList"];
    assert_eq!(base["Page"], json!({"TotalCount": 2, "ItemCount": 2}));
    assert_eq!(sorted(pluck(&base["Results"], "Tag")), ["3.18", "latest"]);
    assert_eq!(pluck(&base["Results"], "RepoName"), ["alpine", "alpine"]);

    let q = r#"/v2/_zot/ext/search?query={DerivedImageList(image: "alpine:3.18", requestedPage: {limit:15 offset:0}){Page {TotalCount ItemCount} Results {RepoName Tag Description Manifests {Digest Platform {Os Arch} Size} Vendor DownloadCount LastUpdated IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities {MaxSeverity Count}}}}"#;
    let d = ok(&h, ui_request(q), admin()).await;
    let derived = &d["DerivedImageList"];
    // UPDATE_TIME: web 1.0 (2024-06), web 2.0 (2024-05), secret (zero).
    assert_eq!(
        pluck(&derived["Results"], "RepoName"),
        ["apps/web", "apps/web", "private/secret"]
    );
    assert_eq!(pluck(&derived["Results"], "Tag"), ["1.0", "2.0", "v1"]);
    // Of the index, only the platform built on alpine.
    assert_eq!(
        derived["Results"][1]["Manifests"],
        json!([{"Digest": web_2_amd().digest.to_string(),
                "Platform": {"Os": "linux", "Arch": "amd64"}, "Size": "2600"}])
    );
    // A reader of apps/web alone does not see private/secret.
    let d = ok(&h, ui_request(q), reader("ann", &["alpine", "apps/web"])).await;
    assert_eq!(d["DerivedImageList"]["Page"]["TotalCount"], 2);
}

/// The explore page: `endpoints.globalSearch`, every sort and filter the
/// UI offers, and the header's suggestions (`endpoints.imageSuggestions`).
#[tokio::test]
async fn ui_global_search() {
    let h = Harness::world();
    let select = "{Page {TotalCount ItemCount} Repos {Name LastUpdated Size Platforms { Os Arch } IsStarred IsBookmarked NewestImage { Tag Vulnerabilities {MaxSeverity Count} Description IsSigned SignatureInfo { Tool IsTrusted Author } Licenses Vendor Labels } StarCount DownloadCount}}}";
    let search = |query: &str, sort: &str, filter: &str| {
        format!(
            "/v2/_zot/ext/search?query={{GlobalSearch(query:\"{query}\", requestedPage: {{limit:10 offset:0 sortBy: {sort}}} {filter}) {select}"
        )
    };
    let d = ok(&h, ui_request(&search("alpine", "RELEVANCE", "")), admin()).await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        [
            "alpine",
            "tools/alpine-utils",
            "foo/myalpine",
            "alpinex/other"
        ]
    );
    assert_eq!(d["GlobalSearch"]["Page"]["TotalCount"], 4);
    let d = ok(
        &h,
        ui_request(&search("alpine", "ALPHABETIC_DSC", "")),
        admin(),
    )
    .await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        [
            "tools/alpine-utils",
            "foo/myalpine",
            "alpinex/other",
            "alpine"
        ]
    );
    let d = ok(&h, ui_request(&search("", "DOWNLOADS", "")), admin()).await;
    let names = pluck(&d["GlobalSearch"]["Repos"], "Name");
    assert_eq!(&names[..2], ["alpine", "apps/web"], "{names:?}");

    // The filter the UI builds: JSON.stringify of the selected lists.
    let filter = r#",filter: { Os:["linux"] Arch:["amd64"] HasToBeSigned: true}"#;
    let d = ok(&h, ui_request(&search("", "UPDATE_TIME", filter)), admin()).await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        ["apps/web", "alpine"]
    );
    let filter = r#",filter: { Arch:["arm64/v8"]}"#;
    let d = ok(&h, ui_request(&search("", "RELEVANCE", filter)), admin()).await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["apps/web"]);

    // Bookmarks and stars lists on the home page.
    h.source
        .toggle("ann", Pref::Bookmark, "foo/myalpine")
        .unwrap_or_default();
    h.source
        .toggle("ann", Pref::Star, "alpine")
        .unwrap_or_default();
    let ann = || reader("ann", &["alpine", "foo/myalpine", "apps/web"]);
    let filter = ",filter: { IsBookmarked: true}";
    let d = ok(&h, ui_request(&search("", "RELEVANCE", filter)), ann()).await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["foo/myalpine"]);
    assert_eq!(d["GlobalSearch"]["Repos"][0]["IsBookmarked"], true);
    let filter = ",filter: { IsStarred: true}";
    let d = ok(&h, ui_request(&search("", "RELEVANCE", filter)), ann()).await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["alpine"]);
    assert_eq!(d["GlobalSearch"]["Repos"][0]["StarCount"], 3);

    let q = r#"/v2/_zot/ext/search?query={GlobalSearch(query:"alpine:3", requestedPage: {limit:9 offset:0 sortBy:RELEVANCE}) {Images {RepoName Tag}}}"#;
    let d = ok(&h, ui_request(q), admin()).await;
    assert_eq!(
        d["GlobalSearch"]["Images"],
        json!([{"RepoName": "alpine", "Tag": "3.18"}, {"RepoName": "alpine", "Tag": "3.19"}])
    );
}

/// Stars and bookmarks lists as zot's own tests query them.
#[tokio::test]
async fn starred_and_bookmarked_lists() {
    let h = Harness::world();
    h.source
        .toggle("ann", Pref::Star, "apps/web")
        .unwrap_or_default();
    let ann = reader("ann", &["apps/web"]);
    let q = "/v2/_zot/ext/search?query={StarredRepos(requestedPage: {limit:10 offset:0}) {Page {TotalCount ItemCount} Results {Name IsStarred StarCount}}}";
    let d = ok(&h, ui_request(q), ann.clone()).await;
    assert_eq!(
        d["StarredRepos"]["Results"],
        json!([{"Name": "apps/web", "IsStarred": true, "StarCount": 1}])
    );
    let q = "/v2/_zot/ext/search?query={BookmarkedRepos {Page {TotalCount} Results {Name}}}";
    let d = ok(&h, ui_request(q), ann).await;
    assert_eq!(d["BookmarkedRepos"]["Page"]["TotalCount"], 0);
}

/// The vulnerabilities tab and the "fixed in" list: every CVE query the UI
/// sends validates and answers zot's CVE-off error.
#[tokio::test]
async fn ui_cve_queries_answer_cve_disabled() {
    let h = Harness::world();
    for q in [
        r#"/v2/_zot/ext/search?query={CVEListForImage(image: "alpine:3.18", requestedPage: {limit:15 offset:0}, searchedCVE: "CVE-2023", excludedCVE: "CVE-2023-1", severity: "HIGH"){Tag Page {TotalCount ItemCount} CVEList {Id Title Description Severity Reference PackageList {Name PackagePath InstalledVersion FixedVersion}} Summary {Count UnknownCount LowCount MediumCount HighCount CriticalCount}}}"#,
        r#"/v2/_zot/ext/search?query={CVEListForImage(image: "alpine:3.18"){Tag Page {TotalCount ItemCount} CVEList {Id Title Description Severity Reference PackageList {Name PackagePath InstalledVersion FixedVersion}}}}"#,
        r#"/v2/_zot/ext/search?query={ImageListWithCVEFixed(id:"CVE-2023-1", image:"alpine", requestedPage: {limit:3 offset:0},filter:{ Os:["linux"] Arch:["amd64"]}) {Page {TotalCount ItemCount} Results {Tag}}}"#,
    ] {
        cve_disabled(&h, ui_request(q)).await;
    }
}

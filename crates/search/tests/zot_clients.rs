//! The queries zot's own clients send, verbatim, run against our schema
//! over the fixture world, over HTTP the way each client sends them.
//!
//! Query strings are interface data copied from:
//! - zot's web UI: `project-zot/zui` `src/api.js` (endpoints at commit
//!   4e76918251245392cf2c57c9a1a9822c70aa1670): GET requests, the query in
//!   the URL as the browser sends it (not form-encoded: `{`, `}`, `:`
//!   literal; spaces and quotes percent-encoded), with
//!   `X-ZOT-API-CLIENT: zot-ui` and `Content-Type: application/json`;
//! - `zli`: `project-zot/zot` `pkg/cli/client/service.go` (queries),
//!   `gql_queries.go` (the queries and argument lists it requires),
//!   `discover.go` (`CheckExtEndPointQuery`: the introspection query) and
//!   `client.go` (`makeGraphQLRequest`: GET, `?query=` form-encoded, the
//!   query also as the body, basic auth, any status but 200 an error).
//!
//! Each must pass validation; the CVE ones answer zot's resolver error
//! "cve search is disabled" (200, data null), as zot does with CVE off.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use zot_search::{Pref, Source, Viewer};

/// Percent-encodes what a browser encodes in a URL's query (space, `"`,
/// `#`, `<`, `>`, `'`, non-ASCII); the rest goes as written.
fn browser_query(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'"' | b'#' | b'<' | b'>' | b'\'' | b'`') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A GET as zot's UI sends it: `path_and_query` is the endpoint string of
/// `src/api.js` (`/v2/_zot/ext/search?query={...}`).
fn ui_request(path_and_query: &str) -> Request {
    let uri = browser_query(path_and_query);
    let req = Request::get(uri)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("x-zot-api-client", "zot-ui")
        .body(Body::empty());
    match req {
        Ok(r) => r,
        Err(e) => panic!("request: {e}"),
    }
}

/// A GET as zli sends it: `url.Values{"query": q}.Encode()`, the query
/// text also as the body.
fn zli_request(query: &str) -> Request {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    let req = Request::get(format!("/v2/_zot/ext/search?{encoded}"))
        .header("content-type", "application/json")
        .header("content-length", query.len().to_string())
        .body(Body::from(query.to_owned()));
    match req {
        Ok(r) => r,
        Err(e) => panic!("request: {e}"),
    }
}

/// Sends `req` as `viewer`; asserts 200 without errors; returns `data`.
async fn ok(h: &Harness, req: Request, viewer: Viewer) -> Value {
    let (status, body) = h.send(req, viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// Sends a CVE query: zot with CVE off answers 200, `data: null` and its
/// resolver error (not a validation error, which would be 422).
async fn cve_disabled(h: &Harness, req: Request) {
    let (status, body) = h.send(req, admin()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["message"], "cve search is disabled",
        "{body}"
    );
    assert!(body["errors"][0]["path"].is_array(), "{body}");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn is_digest(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// A decimal string, as zli's `strconv.Atoi` / `ParseUint` reads `Size`.
fn size(v: &Value) -> u64 {
    match v.as_str().map(str::parse::<u64>) {
        Some(Ok(n)) => n,
        _ => panic!("Size is not a decimal string: {v}"),
    }
}

// ---------------------------------------------------------------- zui

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

// ---------------------------------------------------------------- zli

/// `CheckExtEndPointQuery`: zli introspects the schema (with `__schema()`,
/// empty parentheses) and requires each query with exactly these argument
/// names, in this order, and its return type among `types`
/// (`gql_queries.go`).
#[tokio::test]
async fn zli_schema_check() {
    let h = Harness::world();
    let q = "\n\t\t{\n\t\t\t__schema() {\n\t\t\t\tqueryType {\n\t\t\t\t\tfields {\n\t\t\t\t\t\tname\n\t\t\t\t\t\targs {\n\t\t\t\t\t\t\tname\n\t\t\t\t\t\t}\n\t\t\t\t\t\ttype {\n\t\t\t\t\t\t\tname\n\t\t\t\t\t\t\tkind\n\t\t\t\t\t\t}\n\t\t\t\t\t}\n\t\t\t\t\t__typename\n\t\t\t\t}\n\t\t\t\ttypes {\n\t\t\t\t\tname\n\t\t\t\t\tfields {\n\t\t\t\t\t\tname\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\t\t}";
    let d = ok(&h, zli_request(q), admin()).await;
    let fields = d["__schema"]["queryType"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<String> = pluck(&d["__schema"]["types"], "name");
    let required: [(&str, &[&str], &str); 10] = [
        (
            "ImageList",
            &["repo", "requestedPage"],
            "PaginatedImagesResult",
        ),
        (
            "CVEDiffListForImages",
            &[
                "minuend",
                "subtrahend",
                "requestedPage",
                "searchedCVE",
                "excludedCVE",
            ],
            "CVEDiffResult",
        ),
        (
            "ImageListForDigest",
            &["id", "requestedPage"],
            "PaginatedImagesResult",
        ),
        (
            "BaseImageList",
            &["image", "digest", "requestedPage"],
            "PaginatedImagesResult",
        ),
        (
            "DerivedImageList",
            &["image", "digest", "requestedPage"],
            "PaginatedImagesResult",
        ),
        (
            "CVEListForImage",
            &[
                "image",
                "requestedPage",
                "searchedCVE",
                "excludedCVE",
                "severity",
            ],
            "CVEResultForImage",
        ),
        (
            "ImageListForCVE",
            &["id", "filter", "requestedPage"],
            "PaginatedImagesResult",
        ),
        (
            "ImageListWithCVEFixed",
            &["id", "image", "filter", "requestedPage"],
            "PaginatedImagesResult",
        ),
        ("Referrers", &["repo", "digest", "type"], "Referrer"),
        (
            "GlobalSearch",
            &["query", "filter", "requestedPage"],
            "GlobalSearchResult",
        ),
    ];
    for (name, args, ret) in required {
        let Some(f) = fields.iter().find(|f| f["name"] == name) else {
            panic!("{name} missing from queryType");
        };
        assert_eq!(pluck(&f["args"], "name"), args, "{name}");
        assert!(types.iter().any(|t| t == ret), "type {ret} missing");
    }
    assert_eq!(d["__schema"]["queryType"]["__typename"], "__Type");
}

/// The image queries of `zli image list|name|digest|derived|base` and
/// `zli search`: the fields zli parses must have zli's shapes (digests
/// parsable by go-digest, sizes by strconv).
#[tokio::test]
async fn zli_image_queries() {
    let h = Harness::world();
    let results = "Results {\n\t\t\t\tRepoName Tag\n\t\t\t\tDigest\n\t\t\t\tMediaType\n\t\t\t\tManifests {\n\t\t\t\t\tDigest\n\t\t\t\t\tConfigDigest\n\t\t\t\t\tSize\n\t\t\t\t\tPlatform {Os Arch}\n\t\t\t\t\tIsSigned\n\t\t\t\t\tLayers {Size Digest}\n\t\t\t\t\tLastUpdated\n\t\t\t\t}\n\t\t\t\tLastUpdated\n\t\t\t\tSize\n\t\t\t\tIsSigned\n\t\t\t}";
    let web1 = web_1().digest.to_string();
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (
            format!(
                r#"{{ ImageList(repo: "apps/web", requestedPage: {{sortBy: ALPHABETIC_ASC}}) {{ {results} }} }}"#
            ),
            "ImageList",
            vec!["apps/web:1.0", "apps/web:2.0"],
        ),
        (
            format!(
                r#"{{ ImageList(repo: "", requestedPage: {{sortBy: UPDATE_TIME}}) {{ {results} }} }}"#
            ),
            "ImageList",
            vec![
                "apps/web:1.0",
                "apps/web:2.0",
                "alpine:3.19",
                "alpine:3.18",
                "alpine:latest",
                "alpinex/other:1",
                "foo/myalpine:1",
                "private/secret:v1",
                "tools/alpine-utils:0.1",
            ],
        ),
        (
            format!(
                r#"{{ ImageListForDigest(id: "{web1}", requestedPage: {{sortBy: RELEVANCE}}) {{ {results} }} }}"#
            ),
            "ImageListForDigest",
            vec!["apps/web:1.0"],
        ),
        (
            format!(r#"{{ ImageListForDigest(id: "{web1}") {{ {results} }} }}"#),
            "ImageListForDigest",
            vec!["apps/web:1.0"],
        ),
        // `zli image digest <hex prefix>`: a substring of the digest.
        (
            format!(
                r#"{{ ImageListForDigest(id: "{}") {{ {results} }} }}"#,
                &web_1().digest.hex()[..8]
            ),
            "ImageListForDigest",
            vec!["apps/web:1.0"],
        ),
        (
            format!(
                r#"{{ DerivedImageList(image:"alpine:3.18", requestedPage: {{sortBy: ALPHABETIC_DSC}}){{ {results} }} }}"#
            ),
            "DerivedImageList",
            vec!["private/secret:v1", "apps/web:2.0", "apps/web:1.0"],
        ),
        (
            format!(
                r#"{{ BaseImageList(image:"apps/web:1.0", requestedPage: {{sortBy: ALPHABETIC_ASC}}){{ {results} }} }}"#
            ),
            "BaseImageList",
            vec!["alpine:3.18", "alpine:latest"],
        ),
    ];
    for (q, field, want) in cases {
        let d = ok(&h, zli_request(&q), admin()).await;
        let list = d[field]["Results"].as_array().cloned().unwrap_or_default();
        let got: Vec<String> = list
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["RepoName"].as_str().unwrap_or("?"),
                    r["Tag"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(got, want, "{q}");
        for r in &list {
            assert!(is_digest(&r["Digest"]), "{r}");
            size(&r["Size"]);
            let manifests = r["Manifests"].as_array().cloned().unwrap_or_default();
            assert!(!manifests.is_empty(), "{r}");
            for m in manifests {
                assert!(is_digest(&m["Digest"]), "{m}");
                assert!(is_digest(&m["ConfigDigest"]), "{m}");
                size(&m["Size"]);
                for l in m["Layers"].as_array().cloned().unwrap_or_default() {
                    assert!(is_digest(&l["Digest"]), "{l}");
                    size(&l["Size"]);
                }
            }
        }
    }
}

/// `zli search query` (GlobalSearch with images and repos) and
/// `zli image referrers` (Referrers without a type).
#[tokio::test]
async fn zli_search_and_referrers() {
    let h = Harness::world();
    let q = "\n\t\t{\n\t\t\tGlobalSearch(query:\"alpine\", requestedPage: {sortBy: RELEVANCE}){\n\t\t\t\tImages {\n\t\t\t\t\tRepoName\n\t\t\t\t\tTag\n\t\t\t\t\tMediaType\n\t\t\t\t\tDigest\n\t\t\t\t\tSize\n\t\t\t\t\tIsSigned\n\t\t\t\t\tLastUpdated\n\t\t\t\t\tManifests {\n\t\t\t\t\t\tDigest\n\t\t\t\t\t\tConfigDigest\n\t\t\t\t\t\tPlatform {Os Arch}\n\t\t\t\t\t\tSize\n\t\t\t\t\t\tIsSigned\n\t\t\t\t\t\tLayers {Size Digest}\n\t\t\t\t\t\tLastUpdated\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t\tRepos {\n\t\t\t\t\tName\n\t\t\t\t\tPlatforms { Os Arch }\n\t\t\t\t\tLastUpdated\n\t\t\t\t\tSize\n\t\t\t\t\tDownloadCount\n\t\t\t\t\tStarCount\n\t\t\t\t}\n\t\t\t}\n\t\t}";
    let d = ok(&h, zli_request(q), admin()).await;
    assert_eq!(d["GlobalSearch"]["Images"], json!([]));
    let repos = &d["GlobalSearch"]["Repos"];
    assert_eq!(pluck(repos, "Name")[0], "alpine");
    for r in repos.as_array().cloned().unwrap_or_default() {
        size(&r["Size"]);
    }
    let q = q.replace("query:\\\"alpine\\\"", "query:\"apps/web:\"");
    let q = q.replace("query:\"alpine\"", "query:\"apps/web:\"");
    let d = ok(&h, zli_request(&q), admin()).await;
    assert_eq!(pluck(&d["GlobalSearch"]["Images"], "Tag"), ["1.0", "2.0"]);
    assert_eq!(d["GlobalSearch"]["Repos"], json!([]));

    let web1 = web_1().digest.to_string();
    let q = format!(
        "\n\t\t{{\n\t\t\tReferrers( repo: \"apps/web\", digest: \"{web1}\" ){{\n\t\t\t\tArtifactType,\n\t\t\t\tDigest,\n\t\t\t\tMediaType,\n\t\t\t\tSize,\n\t\t\t\tAnnotations{{\n\t\t\t\t\tKey\n\t\t\t\t\tValue\n\t\t\t\t}}\n\t\t\t}}\n\t\t}}"
    );
    let d = ok(&h, zli_request(&q), admin()).await;
    let refs = d["Referrers"].as_array().cloned().unwrap_or_default();
    assert_eq!(refs.len(), 2);
    assert!(refs.iter().all(|r| r["Size"].as_i64() == Some(500)));
}

/// `zli cve ...`: each CVE query validates and answers the CVE-off error.
#[tokio::test]
async fn zli_cve_queries_answer_cve_disabled() {
    let h = Harness::world();
    let results = "Results { RepoName Tag Digest MediaType Manifests { Digest ConfigDigest Size Platform {Os Arch} IsSigned Layers {Size Digest} LastUpdated } LastUpdated Size IsSigned }";
    for q in [
        "{ CVEListForImage (image:\"alpine:3.18\", searchedCVE:\"\", requestedPage: {sortBy: SEVERITY}) { Tag CVEList { Id Title Severity Description PackageList {Name PackagePath InstalledVersion FixedVersion} } Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity } } }".to_owned(),
        format!("{{ ImageListForCVE(id: \"CVE-2023-1\", requestedPage: {{sortBy: ALPHABETIC_ASC}}) {{ {results} }} }}"),
        format!("{{ ImageListWithCVEFixed(id: \"CVE-2023-1\", image: \"alpine\") {{ {results} }} }}"),
        "{ CVEDiffListForImages( minuend: {Repo: \"alpine\", Tag: \"3.19\", Digest: \"\"}, subtrahend: {Repo: \"alpine\", Tag: \"3.18\", Digest: \"\", Platform: {Os: \"linux\", Arch: \"amd64\"}} ) { Minuend {Repo Tag} Subtrahend {Repo Tag} CVEList { Id Title Description Severity Reference PackageList {Name InstalledVersion FixedVersion} } Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount } Page {TotalCount ItemCount} } }".to_owned(),
    ] {
        cve_disabled(&h, zli_request(&q)).await;
    }
}

/// A script's query in the style of zot's search tests: a named operation
/// with variables and fragments, POSTed as JSON.
#[tokio::test]
async fn fragments_and_variables() {
    let h = Harness::world();
    let query = r#"
        fragment Img on ImageSummary { RepoName Tag Size LastUpdated }
        fragment Repo on RepoSummary { Name NewestImage { ...Img } }
        query Search($q: String!, $page: PageInput, $filter: Filter) {
            GlobalSearch(query: $q, requestedPage: $page, filter: $filter) {
                Page { TotalCount ItemCount }
                Repos { ...Repo }
                Images { ...Img }
            }
        }
        query Other { ImageList(repo: "alpine") { Page { TotalCount } } }"#;
    let body = json!({
        "query": query,
        "operationName": "Search",
        "variables": {
            "q": "web",
            "page": {"limit": 1, "offset": 0, "sortBy": "RELEVANCE"},
            "filter": {"Os": ["LINUX "], "Arch": ["arm64/v8"]}
        }
    });
    let req = Request::post("/v2/_zot/ext/search")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()));
    let req = match req {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let d = ok(&h, req, admin()).await;
    assert_eq!(
        d["GlobalSearch"],
        json!({
            "Page": {"TotalCount": 1, "ItemCount": 1},
            "Repos": [{"Name": "apps/web", "NewestImage": {
                "RepoName": "apps/web", "Tag": "1.0", "Size": "2600",
                "LastUpdated": "2024-06-01T00:00:00Z"}}],
            "Images": []
        })
    );
}

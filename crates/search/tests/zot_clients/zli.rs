//! The queries of `zli` (`project-zot/zot` `pkg/cli/client`), sent as zli
//! sends them; and a script's query with fragments and variables.

use axum::body::Body;
use axum::extract::Request;
use serde_json::json;

use crate::common::*;
use crate::*;

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

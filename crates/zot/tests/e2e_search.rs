//! The search extension end to end: the real binary with search on,
//! htpasswd users and accessControl; images pushed by skopeo (a multi-layer
//! image with annotations, a multi-arch index, a base image and one derived
//! from it by added layers, a cosign signature tag) and an artifact with a
//! `subject` pushed over plain HTTP; then zot's GraphQL queries answered over
//! HTTP to a plain JSON client, with zot's field names, semantics, status
//! codes and access filtering (zot-interfaces §1, §3.1, §3.2, §11).

mod auth_common;
mod common;
mod search_common;

use std::time::{Duration, Instant};

use auth_common::{call, push_image};
use common::fixtures::{self, Image, ImageIndex, OCI_INDEX, OCI_MANIFEST};
use common::{OciLayout, Registry};
use search_common::*;
use serde_json::json;

/// What the test pushed, for the assertions.
struct Pushed {
    app: Image,
    multi: ImageIndex,
    base: Image,
    derived: Image,
    hidden: Image,
    artifact: Image,
}

const CREATED: &str = "2025-03-04T05:06:07Z";

fn push_everything(registry: &Registry) -> Pushed {
    let work = registry.work_dir();
    let layout = OciLayout::create(&work.join("layout"));

    let app = annotated(
        fixtures::multi_layer_image("search-app"),
        json!({
            "org.opencontainers.image.title": "E2E App",
            "org.opencontainers.image.description": "an application for the search tests",
            "org.opencontainers.image.vendor": "zot-e2e",
            "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.source": "https://example.com/app",
            "org.opencontainers.image.documentation": "https://example.com/app/docs",
            "org.opencontainers.image.authors": "the e2e team",
            "org.opencontainers.image.created": CREATED,
        }),
    );
    layout.add_image(&app, "1.0");
    skopeo_push(registry, &layout, "1.0", "e2e/app", &work);

    let multi = fixtures::multi_platform_index("search-multi");
    layout.add_index(&multi, "multi");
    skopeo_push(registry, &layout, "multi", "e2e/multi", &work);
    // Retag as 1.0 through the registry API (the same index).
    let admin = auth("admin");
    call(
        &registry.client(),
        Some(&admin),
        "PUT",
        "/v2/e2e/multi/manifests/1.0",
        &[("content-type", OCI_INDEX)],
        Some(&multi.index.bytes),
    )
    .expect_status(201, "tag the index 1.0");

    // A base of two layers; derived and hidden add one layer each on top.
    let l1 = vec![("etc/os-release", b"ID=e2e-base\n".to_vec())];
    let l2 = vec![(
        "usr/lib/libbase.so",
        fixtures::noise("search-base", 64 * 1024),
    )];
    let base = fixtures::image(("linux", "amd64"), &[l1.clone(), l2.clone()], false);
    let derived = fixtures::image(
        ("linux", "amd64"),
        &[
            l1.clone(),
            l2.clone(),
            vec![("app/run", b"derived\n".to_vec())],
        ],
        false,
    );
    let hidden = fixtures::image(
        ("linux", "amd64"),
        &[l1, l2, vec![("secret/run", b"hidden\n".to_vec())]],
        false,
    );
    assert_eq!(
        base.layers[..],
        derived.layers[..2],
        "fixture layers are deterministic"
    );
    layout.add_image(&base, "base");
    layout.add_image(&derived, "derived");
    layout.add_image(&hidden, "hidden");
    for (tag, repo) in [
        ("base", "e2e/base"),
        ("derived", "e2e/derived"),
        ("hidden", "secret/hidden"),
    ] {
        skopeo_push(registry, &layout, tag, repo, &work);
    }
    for (repo, image) in [
        ("e2e/base", &base),
        ("e2e/derived", &derived),
        ("secret/hidden", &hidden),
    ] {
        call(
            &registry.client(),
            Some(&admin),
            "PUT",
            &format!("/v2/{repo}/manifests/1.0"),
            &[("content-type", OCI_MANIFEST)],
            Some(&image.manifest.bytes),
        )
        .expect_status(201, &format!("tag {repo}:1.0"));
    }

    // A cosign signature of e2e/app:1.0 in the legacy tag scheme, by skopeo.
    let sig_tag = format!("sha256-{}.sig", app.manifest.hex());
    let signature = cosign_signature(&app.manifest, &format!("{}/e2e/app", registry.addr()));
    layout.add_image(&signature, &sig_tag);
    skopeo_push(registry, &layout, &sig_tag, "e2e/app", &work);

    // An artifact whose subject is e2e/app:1.0, by plain HTTP.
    let artifact = artifact_for(&app.manifest);
    push_image(
        &registry.client(),
        Some(&admin),
        "e2e/app",
        &artifact,
        &artifact.manifest.digest,
    );

    Pushed {
        app,
        multi,
        base,
        derived,
        hidden,
        artifact,
    }
}

#[test]
fn search_answers_graphql_over_http_for_images_pushed_by_skopeo() {
    let mut registry = start(json!({ "search": { "enable": true } }), true);
    let p = push_everything(&registry);
    let c = registry.client();

    image_list(&c, &p);
    expanded_repo_info(&c, &p);
    global_search(&c, &p);
    derived_and_base(&c, &p);
    referrers_and_signatures(&c, &p);
    access_and_errors(&c);
    hostile_queries(&c, registry.addr());
    download_counts(&c, &p);
    stars_and_bookmarks(&c);
    discover_and_mgmt(&c);

    // The metadata survives a restart; a deleted store is rebuilt.
    registry.terminate(Duration::from_secs(10));
    registry.restart();
    let c = registry.client();
    let d = data(&c, Some("alice"), "{ StarredRepos { Results { Name } } }");
    assert_eq!(
        strings(&d["StarredRepos"]["Results"], "Name"),
        ["e2e/app"],
        "{d}"
    );
    image_list(&c, &p);
    registry.terminate(Duration::from_secs(10));
    std::fs::remove_file(registry.root().join("_zot/meta.redb")).expect("delete the store");
    registry.restart();
    image_list(&registry.client(), &p);
    derived_and_base(&registry.client(), &p);
}

fn image_list(c: &common::Client, p: &Pushed) {
    let q = r#"{ ImageList(repo: "e2e/app") { Page { TotalCount ItemCount }
        Results { RepoName Tag Digest MediaType Size LastUpdated IsSigned
          Title Description Vendor Licenses Source Documentation Authors ArtifactType
          Manifests { Digest ConfigDigest Size Platform { Os Arch }
            Layers { Digest Size } History { Layer { Digest } HistoryDescription { CreatedBy EmptyLayer } } } } } }"#;
    let d = data(c, Some("alice"), q);
    let list = &d["ImageList"];
    assert_eq!(
        list["Page"],
        json!({ "TotalCount": 1, "ItemCount": 1 }),
        "the signature tag is not an image: {d}"
    );
    let img = &list["Results"][0];
    assert_eq!(img["RepoName"], "e2e/app");
    assert_eq!(img["Tag"], "1.0");
    assert_eq!(img["Digest"], p.app.manifest.digest.as_str());
    assert_eq!(img["MediaType"], OCI_MANIFEST);
    assert_eq!(img["Size"], image_size(&p.app).to_string(), "{img}");
    assert_eq!(img["LastUpdated"], CREATED, "{img}");
    assert_eq!(img["Title"], "E2E App");
    assert_eq!(img["Description"], "an application for the search tests");
    assert_eq!(img["Vendor"], "zot-e2e");
    assert_eq!(img["Licenses"], "Apache-2.0");
    assert_eq!(img["Source"], "https://example.com/app");
    assert_eq!(img["Documentation"], "https://example.com/app/docs");
    assert_eq!(img["Authors"], "the e2e team");
    assert_eq!(
        img["ArtifactType"],
        fixtures::OCI_CONFIG,
        "config media type stands in"
    );
    assert_eq!(img["IsSigned"], true, "signed by the cosign tag: {img}");
    let m = &img["Manifests"][0];
    assert_eq!(m["Digest"], p.app.manifest.digest.as_str());
    assert_eq!(m["ConfigDigest"], p.app.config.digest.as_str());
    assert_eq!(m["Platform"], json!({ "Os": "linux", "Arch": "amd64" }));
    let layers: Vec<String> = p.app.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(strings(&m["Layers"], "Digest"), layers);
    let sizes: Vec<String> = p.app.layers.iter().map(|l| l.size().to_string()).collect();
    assert_eq!(strings(&m["Layers"], "Size"), sizes);
    let history = m["History"].as_array().expect("History");
    assert_eq!(history.len(), 3, "{m}");
    for (h, layer) in history.iter().zip(&layers) {
        assert_eq!(h["Layer"]["Digest"], layer.as_str());
        assert_eq!(h["HistoryDescription"]["CreatedBy"], "zot e2e fixture");
        assert_eq!(h["HistoryDescription"]["EmptyLayer"], false);
    }

    // The multi-arch index: one summary, a manifest per platform.
    let d = data(
        c,
        Some("alice"),
        r#"{ ImageList(repo: "e2e/multi", requestedPage: {sortBy: ALPHABETIC_ASC}) { Page { TotalCount }
            Results { Tag Digest MediaType Size Manifests { Digest Platform { Os Arch } } } } }"#,
    );
    let results = &d["ImageList"]["Results"];
    assert_eq!(strings(results, "Tag"), ["1.0", "multi"], "{d}");
    let idx = &results[0];
    assert_eq!(idx["Digest"], p.multi.index.digest.as_str());
    assert_eq!(idx["MediaType"], OCI_INDEX);
    let size: u64 = p.multi.images.iter().map(image_size).sum();
    assert_eq!(idx["Size"], size.to_string(), "{idx}");
    let platforms: Vec<String> = idx["Manifests"]
        .as_array()
        .expect("Manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["Platform"]["Os"].as_str().unwrap_or("?"),
                m["Platform"]["Arch"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(sorted(platforms), ["linux/amd64", "linux/arm64"]);

    // Every repository the caller may read, paged.
    let page = |user: &str, limit: i64, offset: i64| {
        data(
            c,
            Some(user),
            &format!(
                "{{ ImageList(repo: \"\", requestedPage: {{limit: {limit}, offset: {offset}, sortBy: ALPHABETIC_ASC}}) \
                 {{ Page {{ TotalCount ItemCount }} Results {{ RepoName Tag }} }} }}"
            ),
        )["ImageList"]
            .clone()
    };
    let first = page("alice", 3, 0);
    // app 1.0; base, derived and multi each under their own tag and 1.0.
    assert_eq!(
        first["Page"],
        json!({ "TotalCount": 7, "ItemCount": 3 }),
        "{first}"
    );
    assert_eq!(
        strings(&first["Results"], "RepoName"),
        ["e2e/app", "e2e/base", "e2e/base"]
    );
    let past = page("alice", 3, 9);
    assert_eq!(
        past["Page"],
        json!({ "TotalCount": 7, "ItemCount": 0 }),
        "{past}"
    );
    assert_eq!(past["Results"], json!([]));
    let everything = page("admin", 0, 0);
    let repos = strings(&everything["Results"], "RepoName");
    assert!(
        repos.iter().any(|r| r == "secret/hidden"),
        "admin reads secret/: {everything}"
    );
    assert!(
        !page("alice", 0, 0)["Results"]
            .to_string()
            .contains("secret/"),
        "alice does not"
    );
    let none = page("bob", 0, 0);
    assert_eq!(
        none["Page"]["TotalCount"], 0,
        "bob reads nothing pushed: {none}"
    );
}

fn expanded_repo_info(c: &common::Client, p: &Pushed) {
    let q = r#"{ ExpandedRepoInfo(repo: "e2e/app") {
        Summary { Name Platforms { Os Arch } Vendors NewestImage { Tag Digest } }
        Images { Tag Digest IsDeletable } } }"#;
    for (user, deletable) in [("alice", false), ("admin", true)] {
        let d = data(c, Some(user), q);
        let info = &d["ExpandedRepoInfo"];
        assert_eq!(info["Summary"]["Name"], "e2e/app", "{d}");
        assert_eq!(
            info["Summary"]["Platforms"],
            json!([{ "Os": "linux", "Arch": "amd64" }])
        );
        assert_eq!(info["Summary"]["Vendors"], json!(["zot-e2e"]));
        assert_eq!(
            info["Summary"]["NewestImage"]["Digest"],
            p.app.manifest.digest.as_str()
        );
        assert_eq!(
            strings(&info["Images"], "Tag"),
            ["1.0"],
            "no signature tag: {d}"
        );
        assert_eq!(info["Images"][0]["IsDeletable"], deletable, "{user}: {d}");
    }
    // A repository the caller may not read: an empty answer, no error.
    let d = data(
        c,
        Some("alice"),
        r#"{ ExpandedRepoInfo(repo: "secret/hidden") { Summary { Name } Images { Tag } } }"#,
    );
    let info = &d["ExpandedRepoInfo"];
    assert!(
        info["Images"].as_array().is_none_or(Vec::is_empty)
            && info["Summary"]["Name"].as_str().is_none_or(str::is_empty),
        "alice must learn nothing of secret/hidden: {d}"
    );
    let e = resolver_errors(
        c,
        Some("admin"),
        r#"{ ExpandedRepoInfo(repo: "e2e/nothing") { Summary { Name } } }"#,
    );
    assert!(
        e.iter().any(|m| m.contains("repo metadata not found")),
        "{e:?}"
    );
}

fn global_search(c: &common::Client, p: &Pushed) {
    let repos = |user: &str, q: &str| {
        let d = data(
            c,
            Some(user),
            &format!(
                "{{ GlobalSearch(query: \"{q}\") {{ Page {{ TotalCount }} Repos {{ Name NewestImage {{ Tag }} }} Images {{ RepoName Tag }} }} }}"
            ),
        );
        d["GlobalSearch"].clone()
    };
    let r = repos("alice", "e2e");
    assert_eq!(
        sorted(strings(&r["Repos"], "Name")),
        ["e2e/app", "e2e/base", "e2e/derived", "e2e/multi"],
        "{r}"
    );
    assert_eq!(r["Images"], json!([]), "repo search returns repos: {r}");
    let r = repos("alice", "app");
    assert_eq!(strings(&r["Repos"], "Name"), ["e2e/app"], "{r}");
    assert_eq!(r["Repos"][0]["NewestImage"]["Tag"], "1.0");
    assert_eq!(
        repos("alice", "hidden")["Repos"],
        json!([]),
        "filtered by accessControl"
    );
    assert_eq!(
        strings(&repos("admin", "hidden")["Repos"], "Name"),
        ["secret/hidden"]
    );

    // repo:tag-prefix
    let r = repos("alice", "e2e/multi:mu");
    assert_eq!(strings(&r["Images"], "Tag"), ["multi"], "{r}");
    let r = repos("alice", "e2e/multi:");
    assert_eq!(
        sorted(strings(&r["Images"], "Tag")),
        ["1.0", "multi"],
        "{r}"
    );
    // :tag across repositories
    let r = repos("alice", ":1.0");
    assert_eq!(
        sorted(strings(&r["Images"], "RepoName")),
        ["e2e/app", "e2e/base", "e2e/derived", "e2e/multi"],
        "{r}"
    );
    let r = repos("admin", ":1.0");
    assert!(
        strings(&r["Images"], "RepoName").contains(&"secret/hidden".to_owned()),
        "{r}"
    );
    // sha256: a manifest digest, then a layer three images share.
    let r = repos("alice", &p.app.manifest.digest);
    assert_eq!(strings(&r["Images"], "RepoName"), ["e2e/app"], "{r}");
    let r = repos("alice", &p.base.layers[0].digest);
    assert_eq!(
        sorted(strings(&r["Images"], "RepoName")),
        ["e2e/base", "e2e/base", "e2e/derived", "e2e/derived"],
        "{r}"
    );
    let r = repos("admin", &p.base.layers[0].digest);
    assert!(
        strings(&r["Images"], "RepoName").contains(&"secret/hidden".to_owned()),
        "{r}"
    );
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ GlobalSearch(query: "a:b:c") { Page { TotalCount } } }"#,
    );
    assert!(
        e.iter()
            .any(|m| m.contains("invalid image reference format")),
        "{e:?}"
    );
}

fn derived_and_base(c: &common::Client, p: &Pushed) {
    let list = |user: &str, query: &str, image: &str| {
        let d = data(
            c,
            Some(user),
            &format!(
                "{{ {query}(image: \"{image}\") {{ Page {{ TotalCount }} Results {{ RepoName Tag Digest }} }} }}"
            ),
        );
        d[query]["Results"].clone()
    };
    let derived = list("alice", "DerivedImageList", "e2e/base:1.0");
    assert_eq!(
        strings(&derived, "RepoName"),
        ["e2e/derived", "e2e/derived"],
        "{derived}"
    );
    assert_eq!(derived[0]["Digest"], p.derived.manifest.digest.as_str());
    let derived = list("admin", "DerivedImageList", "e2e/base:1.0");
    assert!(
        strings(&derived, "RepoName").contains(&"secret/hidden".to_owned()),
        "{derived}"
    );
    assert!(
        !derived.to_string().contains(&p.app.manifest.digest),
        "app shares no layer: {derived}"
    );

    let bases = list("alice", "BaseImageList", "e2e/derived:1.0");
    assert_eq!(
        sorted(strings(&bases, "RepoName")),
        ["e2e/base", "e2e/base"],
        "{bases}"
    );
    assert_eq!(bases[0]["Digest"], p.base.manifest.digest.as_str());
    let bases = list("admin", "BaseImageList", "secret/hidden:1.0");
    assert_eq!(
        sorted(strings(&bases, "RepoName")),
        ["e2e/base", "e2e/base"],
        "{bases}"
    );
    assert!(
        !bases.to_string().contains(&p.hidden.manifest.digest),
        "not its own base"
    );

    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ DerivedImageList(image: "e2e/base") { Page { TotalCount } } }"#,
    );
    assert!(
        e.iter().any(|m| m.contains("no reference provided")),
        "{e:?}"
    );
}

fn referrers_and_signatures(c: &common::Client, p: &Pushed) {
    let q = format!(
        "{{ Referrers(repo: \"e2e/app\", digest: \"{}\", type: []) {{ MediaType ArtifactType Size Digest Annotations {{ Key Value }} }} }}",
        p.app.manifest.digest
    );
    let d = data(c, Some("alice"), &q);
    let refs = &d["Referrers"];
    assert_eq!(
        refs.as_array().map(Vec::len),
        Some(1),
        "the artifact only: {d}"
    );
    let r = &refs[0];
    assert_eq!(r["Digest"], p.artifact.manifest.digest.as_str());
    assert_eq!(r["MediaType"], OCI_MANIFEST);
    assert_eq!(r["ArtifactType"], SBOM_TYPE);
    assert_eq!(r["Size"], p.artifact.manifest.size());
    assert!(
        r["Annotations"]
            .as_array()
            .is_some_and(|a| a.contains(&json!({ "Key": "org.example.kind", "Value": "sbom" }))),
        "{r}"
    );
    let q = format!(
        "{{ Referrers(repo: \"e2e/app\", digest: \"{}\", type: [\"application/vnd.example.other\"]) {{ Digest }} }}",
        p.app.manifest.digest
    );
    assert_eq!(data(c, Some("alice"), &q)["Referrers"], json!([]));
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ Referrers(repo: "e2e/app", digest: "sha256:nothex") { Digest } }"#,
    );
    assert!(e.iter().any(|m| m.contains("bad digest")), "{e:?}");

    let d = data(
        c,
        Some("alice"),
        r#"{ Image(image: "e2e/app:1.0") { Tag IsSigned SignatureInfo { Tool IsTrusted Author } Referrers { Digest } } }"#,
    );
    let img = &d["Image"];
    assert_eq!(img["IsSigned"], true, "{d}");
    assert_eq!(
        img["SignatureInfo"],
        json!([{ "Tool": "cosign", "IsTrusted": false, "Author": "" }]),
        "{d}"
    );
    assert_eq!(
        strings(&img["Referrers"], "Digest"),
        [p.artifact.manifest.digest.as_str()]
    );
    let d = data(
        c,
        Some("alice"),
        r#"{ Image(image: "e2e/base:1.0") { IsSigned SignatureInfo { Tool } } }"#,
    );
    assert_eq!(d["Image"]["IsSigned"], false, "{d}");
    assert_eq!(d["Image"]["SignatureInfo"], json!([]), "{d}");
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ Image(image: "e2e/app:9.9") { Tag } }"#,
    );
    assert!(
        e.iter()
            .any(|m| m.contains("can't find image: e2e/app:9.9")),
        "{e:?}"
    );
}

fn access_and_errors(c: &common::Client) {
    // Anonymous callers are refused when no anonymousPolicy exists.
    let r = post(c, None, "{ ImageList(repo: \"\") { Page { TotalCount } } }");
    r.expect_status(401, "anonymous search");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")),
        "{r}"
    );
    let r = call(
        c,
        Some(&basic_wrong()),
        "POST",
        ENDPOINT,
        &[("content-type", "application/json")],
        Some(b"{\"query\":\"{ __typename }\"}"),
    );
    r.expect_status(401, "wrong password");

    // Parse and validation errors: 422.
    post(c, Some("alice"), "{ ImageList(repo: ").expect_status(422, "syntax error");
    post(c, Some("alice"), "{ NoSuchQuery { x } }").expect_status(422, "unknown field");
    post(
        c,
        Some("alice"),
        "{ ImageList(repo: \"e2e/app\") { Results { NoSuchField } } }",
    )
    .expect_status(422, "unknown sub-field");
    call(c, Some(&auth("alice")), "GET", ENDPOINT, &[], None)
        .expect_status(422, "GET without a query");
    // GET with a query works too.
    let r = call(
        c,
        Some(&auth("alice")),
        "GET",
        &format!("{ENDPOINT}?query=%7B%20__typename%20%7D"),
        &[],
        None,
    );
    r.expect_status(200, "GET ?query=");
    assert_eq!(r.json()["data"]["__typename"], "Query", "{r}");

    // Resolver errors: 200 with errors (zot's texts).
    let e = resolver_errors(c, Some("alice"), r#"{ Image(image: "e2e/app") { Tag } }"#);
    assert!(
        e.iter().any(|m| m.contains("no reference provided")),
        "{e:?}"
    );
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ ImageList(repo: "", requestedPage: {limit: -1}) { Page { TotalCount } } }"#,
    );
    assert!(e.iter().any(|m| m.contains("negative")), "{e:?}");
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ ImageList(repo: "", requestedPage: {sortBy: STARS}) { Page { TotalCount } } }"#,
    );
    assert!(e.iter().any(|m| m.contains("not supported")), "{e:?}");
    let e = resolver_errors(
        c,
        Some("alice"),
        r#"{ CVEListForImage(image: "e2e/app:1.0") { Tag } }"#,
    );
    assert!(
        e.iter().any(|m| m.contains("cve search is disabled")),
        "{e:?}"
    );

    // Introspection is on.
    let d = data(c, Some("alice"), "{ __schema { queryType { name } } }");
    assert_eq!(d["__schema"]["queryType"]["name"], "Query");
}

fn basic_wrong() -> String {
    auth_common::basic("alice", "not-her-password")
}

/// Deep nesting, an alias flood, huge text and a huge page: each answered
/// with a clean error (or, for the page, an answer), never a crash.
fn hostile_queries(c: &common::Client, addr: &str) {
    let clean_error = |what: &str, query: &str| {
        let started = Instant::now();
        let r = post(c, Some("alice"), query);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(r.status, 200 | 400 | 413 | 422),
            "{what}: {}",
            r.status
        );
        if r.status == 200 {
            let doc = r.json();
            assert!(
                doc["errors"].as_array().is_some_and(|e| !e.is_empty()),
                "{what}: must be refused: {}",
                &r.text()[..r.text().len().min(300)]
            );
        }
    };
    let depth = 400;
    let nested = format!(
        "{{ __schema {{ types {{ fields {{ type {}name{} }} }} }} }}",
        "ofType { ".repeat(depth),
        " }".repeat(depth)
    );
    clean_error("deep nesting", &nested);
    // Under the 64 KiB text cap, so that the complexity limit must refuse it.
    let flood: String = (0..900)
        .map(|i| {
            format!(
                "a{i}:ImageList(repo:\"\"){{Results{{Manifests{{History{{Layer{{Digest}}}}}}}}}} "
            )
        })
        .collect();
    assert!(flood.len() < 64 << 10, "{}", flood.len());
    clean_error("alias flood", &format!("{{ {flood} }}"));
    // Past the 64 KiB cap: refused, by its length, before it is read.
    let huge = format!("{{ __typename }} #{}", "x".repeat(1 << 20));
    let (status, body) = post_expecting_continue(addr, "alice", &huge);
    assert!(
        matches!(status, 400 | 413 | 422),
        "1 MiB of query text: {status} {body}"
    );
    // A client that sends its whole body before reading (no Expect) still
    // reads the 413: a refused body of a few MiB is drained, not reset.
    let r = post(c, Some("alice"), &huge);
    assert_eq!(r.status, 413, "1 MiB sent whole: {r}");
    let doc: serde_json::Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("1 MiB of query text: the error is not JSON ({e}): {body}"));
    assert!(
        doc["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{doc}"
    );

    // A huge page size: either a page (as zot answers) or a clean refusal.
    let r = post(
        c,
        Some("alice"),
        r#"{ ImageList(repo: "", requestedPage: {limit: 2147483647}) { Page { TotalCount ItemCount } } }"#,
    );
    let doc = r.json();
    let refused = doc["errors"].as_array().is_some_and(|e| !e.is_empty());
    assert!(
        (r.status == 200 && (refused || doc["data"]["ImageList"]["Page"]["TotalCount"] == 7))
            || (r.status == 422 && refused),
        "a huge page size: {r} {doc}"
    );
    // Still serving.
    let d = data(c, Some("alice"), "{ __typename }");
    assert_eq!(d["__typename"], "Query");
}

fn download_counts(c: &common::Client, p: &Pushed) {
    let admin = auth("admin");
    let accept = [("accept", common::http::ACCEPT_ALL)];
    for _ in 0..2 {
        call(
            c,
            Some(&admin),
            "GET",
            "/v2/e2e/derived/manifests/1.0",
            &accept,
            None,
        )
        .expect_status(200, "GET");
    }
    call(
        c,
        Some(&admin),
        "HEAD",
        "/v2/e2e/derived/manifests/1.0",
        &accept,
        None,
    )
    .expect_status(200, "HEAD");
    let q = r#"{ Image(image: "e2e/derived:1.0") { Digest DownloadCount LastPullTimestamp } }"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let img = loop {
        let d = data(c, Some("alice"), q);
        if d["Image"]["DownloadCount"].as_i64().unwrap_or(0) >= 2 || Instant::now() > deadline {
            break d["Image"].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(img["Digest"], p.derived.manifest.digest.as_str());
    assert_eq!(
        img["DownloadCount"], 2,
        "two GETs, the HEAD does not count: {img}"
    );
    assert_ne!(img["LastPullTimestamp"], "0001-01-01T00:00:00Z", "{img}");
}

fn stars_and_bookmarks(c: &common::Client) {
    let prefs = |user: Option<&str>, action: &str, repo: &str| {
        let a = user.map(auth);
        call(
            c,
            a.as_deref(),
            "PUT",
            &format!("/v2/_zot/ext/userprefs?action={action}&repo={repo}"),
            &[],
            Some(b""),
        )
    };
    prefs(Some("alice"), "toggleStar", "e2e/app").expect_status(200, "star");
    prefs(Some("alice"), "toggleBookmark", "e2e/base").expect_status(200, "bookmark");
    prefs(Some("alice"), "toggleStar", "secret/hidden")
        .expect_status(403, "star an unreadable repo");
    prefs(Some("alice"), "toggleStar", "e2e/nothing").expect_status(404, "star an unknown repo");
    prefs(Some("alice"), "toggleNothing", "e2e/app").expect_status(400, "unknown action");
    prefs(None, "toggleStar", "e2e/app").expect_status(401, "anonymous");

    let q = "{ StarredRepos { Page { TotalCount } Results { Name IsStarred StarCount } } \
             BookmarkedRepos { Results { Name IsBookmarked } } }";
    let d = data(c, Some("alice"), q);
    assert_eq!(
        strings(&d["StarredRepos"]["Results"], "Name"),
        ["e2e/app"],
        "{d}"
    );
    assert_eq!(d["StarredRepos"]["Results"][0]["IsStarred"], true);
    assert_eq!(d["StarredRepos"]["Results"][0]["StarCount"], 1);
    assert_eq!(
        strings(&d["BookmarkedRepos"]["Results"], "Name"),
        ["e2e/base"],
        "{d}"
    );
    assert_eq!(d["BookmarkedRepos"]["Results"][0]["IsBookmarked"], true);
    let d = data(c, Some("admin"), q);
    assert_eq!(
        d["StarredRepos"]["Page"]["TotalCount"], 0,
        "stars are per user: {d}"
    );
    let d = data(
        c,
        Some("admin"),
        r#"{ GlobalSearch(query: "e2e/app") { Repos { Name StarCount IsStarred } } }"#,
    );
    assert_eq!(d["GlobalSearch"]["Repos"][0]["StarCount"], 1, "{d}");
    assert_eq!(d["GlobalSearch"]["Repos"][0]["IsStarred"], false, "{d}");
    let d = data(
        c,
        Some("alice"),
        r#"{ GlobalSearch(query: "e2e", filter: {IsStarred: true}) { Repos { Name } } }"#,
    );
    assert_eq!(
        strings(&d["GlobalSearch"]["Repos"], "Name"),
        ["e2e/app"],
        "{d}"
    );
    // Toggling twice undoes it.
    prefs(Some("alice"), "toggleBookmark", "e2e/base").expect_status(200, "unbookmark");
    let d = data(
        c,
        Some("alice"),
        "{ BookmarkedRepos { Page { TotalCount } } }",
    );
    assert_eq!(d["BookmarkedRepos"]["Page"]["TotalCount"], 0, "{d}");
}

fn discover_and_mgmt(c: &common::Client) {
    let r = call(c, None, "GET", "/v2/_zot/ext/mgmt", &[], None);
    r.expect_status(200, "mgmt is readable anonymously");
    let doc = r.json();
    assert_eq!(doc["http"]["auth"]["htpasswd"], json!({}), "{doc}");
    assert!(
        !r.text().contains("zot-e2e-") && !r.text().contains("\"path\""),
        "the path is never revealed: {r}"
    );
    assert!(doc["distSpecVersion"].is_string(), "{doc}");
    call(
        c,
        None,
        "GET",
        "/v2/_zot/ext/mgmt?resource=config",
        &[],
        None,
    )
    .expect_status(401, "only the exact URI is anonymous");

    call(c, None, "GET", "/v2/_oci/ext/discover", &[], None)
        .expect_status(401, "discover is behind authn");
    let r = call(
        c,
        Some(&auth("bob")),
        "GET",
        "/v2/_oci/ext/discover",
        &[],
        None,
    );
    r.expect_status(200, "discover");
    let doc = r.json();
    let ext = &doc["extensions"][0];
    assert_eq!(ext["name"], "_zot", "{doc}");
    let endpoints: Vec<String> = ext["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    for want in [
        "/v2/_zot/ext/search",
        "/v2/_zot/ext/userprefs",
        "/v2/_zot/ext/mgmt",
    ] {
        assert!(endpoints.iter().any(|e| e == want), "{want} in {doc}");
    }
}

#[test]
fn without_search_the_routes_are_absent() {
    let registry = start(json!({}), false);
    let c = registry.client();
    let body = br#"{"query":"{ __typename }"}"#;
    let r = c.request(
        "POST",
        ENDPOINT,
        &[("content-type", "application/json")],
        Some(body),
    );
    r.expect_status(404, "search off");
    c.get("/v2/_zot/ext/mgmt").expect_status(404, "mgmt off");
    let r = c.get("/v2/_oci/ext/discover");
    r.expect_status(200, "discover");
    assert!(!r.text().contains("_zot/ext/search"), "{r}");
    // Registered images are still served: the extension is not needed for that.
    let image = auth_common::small_image("no-search");
    image.push(&c, "plain/app", "1.0");
    c.get_manifest("plain/app", "1.0").expect_status(200, "GET");
}

//! Pagination, sort orders, filters, GlobalSearch forms and ranking,
//! base/derived images, and access filtering.

mod common;

use common::*;
use serde_json::json;

fn tags(v: &serde_json::Value) -> Vec<String> {
    match v.as_array() {
        Some(items) => items
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i["RepoName"].as_str().unwrap_or("?"),
                    i["Tag"].as_str().unwrap_or("?")
                )
            })
            .collect(),
        None => panic!("not a list: {v}"),
    }
}

async fn image_page(h: &Harness, page: &str) -> (serde_json::Value, Vec<String>) {
    let q = format!(
        r#"{{ ImageList(repo: "", requestedPage: {page}) {{ Page {{ TotalCount ItemCount }} Results {{ RepoName Tag }} }} }}"#
    );
    let d = h.data(&q).await;
    (
        d["ImageList"]["Page"].clone(),
        tags(&d["ImageList"]["Results"]),
    )
}

#[tokio::test]
async fn page_edges() {
    let h = Harness::world();
    let (p, all) = image_page(&h, "{}").await;
    assert_eq!(p, json!({"TotalCount": 9, "ItemCount": 9}));
    let (p, r) = image_page(&h, "{limit: 0, offset: 0}").await;
    assert_eq!((p["ItemCount"].clone(), r), (json!(9), all.clone()));
    let (p, r) = image_page(&h, "{limit: 0, offset: 3}").await;
    assert_eq!(p, json!({"TotalCount": 9, "ItemCount": 0}));
    assert!(r.is_empty());
    let (p, r) = image_page(&h, "{limit: 2, offset: 1}").await;
    assert_eq!(p, json!({"TotalCount": 9, "ItemCount": 2}));
    assert_eq!(r, all[1..3]);
    let (_, r) = image_page(&h, "{limit: 5, offset: 7}").await;
    assert_eq!(r, all[7..]);
    let (p, r) = image_page(&h, "{limit: 5, offset: 100}").await;
    assert_eq!(p, json!({"TotalCount": 9, "ItemCount": 0}));
    assert!(r.is_empty());
    // No limit with an offset is zot's empty page.
    let (_, r) = image_page(&h, "{offset: 8}").await;
    assert!(r.is_empty());
}

#[tokio::test]
async fn negative_values_and_refused_sorts() {
    let h = Harness::world();
    assert_eq!(
        h.error(r#"{ ImageList(repo: "", requestedPage: {limit: -1}) { Results { Tag } } }"#)
            .await,
        "pagination limit has negative value"
    );
    assert_eq!(
        h.error(r#"{ RepoListWithNewestImage(requestedPage: {offset: -2}) { Results { Name } } }"#)
            .await,
        "pagination offset has negative value"
    );
    assert_eq!(
        h.error(
            r#"{ GlobalSearch(query: "a", requestedPage: {limit: -1}) { Page { TotalCount } } }"#
        )
        .await,
        "requested page limit parameter can't be negative request parameter has invalid value"
    );
    assert_eq!(
        h.error(
            r#"{ GlobalSearch(query: "a", requestedPage: {offset: -1}) { Page { TotalCount } } }"#
        )
        .await,
        "requested page offset parameter can't be negative request parameter has invalid value"
    );
    for (q, sort) in [
        (
            r#"{ ImageList(repo: "", requestedPage: {sortBy: STARS}) { Results { Tag } } }"#,
            "STARS",
        ),
        (
            r#"{ RepoListWithNewestImage(requestedPage: {sortBy: SEVERITY}) { Results { Name } } }"#,
            "SEVERITY",
        ),
        (
            r#"{ GlobalSearch(query: "a", requestedPage: {sortBy: STARS}) { Page { TotalCount } } }"#,
            "STARS",
        ),
    ] {
        assert_eq!(
            h.error(q).await,
            format!(
                "sorting repos by '{sort}' is not supported the pagination sort criteria is not supported"
            )
        );
    }
}

#[tokio::test]
async fn image_sort_orders() {
    let h = Harness::world();
    let (_, asc) = image_page(&h, "{sortBy: ALPHABETIC_ASC}").await;
    let (_, rel) = image_page(&h, "{sortBy: RELEVANCE}").await;
    let (_, dsc) = image_page(&h, "{sortBy: ALPHABETIC_DSC}").await;
    assert_eq!(asc, rel);
    assert_eq!(dsc, asc.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(asc[0], "alpine:3.18");
    let (_, upd) = image_page(&h, "{sortBy: UPDATE_TIME, limit: 4}").await;
    assert_eq!(
        upd,
        ["apps/web:1.0", "apps/web:2.0", "alpine:3.19", "alpine:3.18"]
    );
    let (_, dl) = image_page(&h, "{sortBy: DOWNLOADS, limit: 4}").await;
    assert_eq!(
        dl,
        [
            "alpine:3.19",
            "apps/web:2.0",
            "alpine:3.18",
            "alpine:latest"
        ]
    );
}

#[tokio::test]
async fn repo_sort_orders() {
    let h = Harness::world();
    let names = |sort: &'static str| {
        let h = &h;
        async move {
            let q = format!(
                r#"{{ RepoListWithNewestImage(requestedPage: {{sortBy: {sort}}}) {{ Results {{ Name }} }} }}"#
            );
            pluck(
                &h.data(&q).await["RepoListWithNewestImage"]["Results"],
                "Name",
            )
        }
    };
    assert_eq!(
        names("ALPHABETIC_ASC").await,
        [
            "alpine",
            "alpinex/other",
            "apps/web",
            "foo/myalpine",
            "private/secret",
            "tools/alpine-utils"
        ]
    );
    assert_eq!(names("ALPHABETIC_DSC").await[0], "tools/alpine-utils");
    assert_eq!(names("DOWNLOADS").await[..2], ["alpine", "apps/web"]);
    assert_eq!(names("UPDATE_TIME").await[..2], ["apps/web", "alpine"]);
}

#[tokio::test]
async fn global_search_repo_ranking() {
    let h = Harness::world();
    let d = h
        .data(r#"{ GlobalSearch(query: "alpine") { Page { TotalCount ItemCount } Repos { Name Rank } Images { Tag } Layers { Digest } } }"#)
        .await;
    let g = &d["GlobalSearch"];
    assert_eq!(
        pluck(&g["Repos"], "Name"),
        [
            "alpine",
            "tools/alpine-utils",
            "foo/myalpine",
            "alpinex/other"
        ]
    );
    assert_eq!(pluck(&g["Repos"], "Rank"), ["0", "1", "3", "10"]);
    assert_eq!(g["Page"], json!({"TotalCount": 4, "ItemCount": 4}));
    assert_eq!(g["Images"], json!([]));
    assert_eq!(g["Layers"], json!([]));
    // Leading/trailing slashes and case are ignored; an empty query
    // matches every repository with tags.
    let d = h
        .data(r#"{ GlobalSearch(query: " /APPS/ ") { Repos { Name } } }"#)
        .await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["apps/web"]);
    let d = h
        .data(r#"{ GlobalSearch(query: "") { Page { TotalCount } } }"#)
        .await;
    assert_eq!(d["GlobalSearch"]["Page"]["TotalCount"], 6);
    let d = h
        .data(r#"{ GlobalSearch(query: "alpine", requestedPage: {limit: 2, offset: 1, sortBy: ALPHABETIC_ASC}) { Page { TotalCount ItemCount } Repos { Name } } }"#)
        .await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        ["alpinex/other", "foo/myalpine"]
    );
    assert_eq!(
        d["GlobalSearch"]["Page"],
        json!({"TotalCount": 4, "ItemCount": 2})
    );
}

/// Queries with folders rank by their last segment (which every matching
/// name contains: names without it are skipped before ranking).
#[tokio::test]
async fn global_search_by_folder_and_segment() {
    let h = Harness::world();
    let names = |q: &'static str| {
        let h = &h;
        async move {
            let d = h
                .data(&format!(
                    r#"{{ GlobalSearch(query: "{q}") {{ Repos {{ Name Rank }} }} }}"#
                ))
                .await;
            let g = &d["GlobalSearch"]["Repos"];
            (pluck(g, "Name"), pluck(g, "Rank"))
        }
    };
    assert_eq!(
        names("tools/alp").await,
        (vec!["tools/alpine-utils".to_owned()], vec!["1".to_owned()])
    );
    assert_eq!(
        names("foo/alpine").await,
        (vec!["foo/myalpine".to_owned()], vec!["3".to_owned()])
    );
    assert_eq!(names("bar/alpine").await.0, Vec::<String>::new());
    assert_eq!(names("apps/web").await.0, vec!["apps/web"]);
    assert_eq!(names("zzz").await.0, Vec::<String>::new());
}

/// Each repository of a page shows its own newest image, whether it was
/// read with the page (selected `NewestImage`) or while being written.
#[tokio::test]
async fn global_search_newest_images_belong_to_their_repositories() {
    let h = Harness::world();
    for query in [
        r#"{ GlobalSearch(query: "") { Repos { Name NewestImage { RepoName Tag } } } }"#,
        r#"{ GlobalSearch(query: "", requestedPage: {limit: 2, offset: 1, sortBy: ALPHABETIC_ASC}) { Repos { Name NewestImage { RepoName Tag } } } }"#,
    ] {
        let d = h.data(query).await;
        let repos = d["GlobalSearch"]["Repos"].as_array().unwrap().clone();
        assert!(!repos.is_empty(), "{query}");
        for r in &repos {
            assert_eq!(r["NewestImage"]["RepoName"], r["Name"], "{query}: {r}");
            assert!(r["NewestImage"]["Tag"].is_string(), "{query}: {r}");
        }
    }
    // Without NewestImage, the same names.
    let d = h
        .data(r#"{ GlobalSearch(query: "") { Repos { Name } } }"#)
        .await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name").len(), 6);
}

#[tokio::test]
async fn global_search_forms() {
    let h = Harness::world();
    let images = |q: &'static str| {
        let h = &h;
        async move {
            let q = format!(
                r#"{{ GlobalSearch(query: "{q}") {{ Page {{ TotalCount }} Images {{ RepoName Tag }} Repos {{ Name }} }} }}"#
            );
            let d = h.data(&q).await;
            assert_eq!(d["GlobalSearch"]["Repos"], json!([]));
            tags(&d["GlobalSearch"]["Images"])
        }
    };
    assert_eq!(images("alpine:3.1").await, ["alpine:3.18", "alpine:3.19"]);
    assert_eq!(
        images("alpine:").await,
        ["alpine:3.18", "alpine:3.19", "alpine:latest"]
    );
    assert_eq!(images("alp:3").await, Vec::<String>::new());
    assert_eq!(
        images(":1").await,
        [
            "alpine:3.18",
            "alpine:3.19",
            "alpinex/other:1",
            "apps/web:1.0",
            "foo/myalpine:1",
            "private/secret:v1",
            "tools/alpine-utils:0.1"
        ]
    );
    let base2 = digest(BASE2).to_string();
    let q = format!(
        r#"{{ GlobalSearch(query: "{}") {{ Images {{ RepoName Tag }} }} }}"#,
        base2.to_uppercase().replace("SHA256", "sha256")
    );
    assert_eq!(
        tags(&h.data(&q).await["GlobalSearch"]["Images"]),
        ["alpine:3.19", "tools/alpine-utils:0.1"]
    );
    assert_eq!(
        h.error(r#"{ GlobalSearch(query: "a:b:c") { Page { TotalCount } } }"#)
            .await,
        "invalid image reference format, use [repo:tag] or [repo@digest]"
    );
    assert_eq!(
        h.error(r#"{ GlobalSearch(query: "alpine@x") { Page { TotalCount } } }"#)
            .await,
        "invalid search query"
    );
    let long = "a".repeat(257);
    assert_eq!(
        h.error(&format!(
            r#"{{ GlobalSearch(query: "{long}") {{ Page {{ TotalCount }} }} }}"#
        ))
        .await,
        "max string size limit exceeded for query parameter. max=256 current=257 request parameter has invalid value"
    );
}

#[tokio::test]
async fn filters() {
    let h = Harness::world();
    let q = |filter: &str| {
        format!(
            r#"{{ GlobalSearch(query: ":", filter: {filter}) {{ Images {{ RepoName Tag }} }} }}"#
        )
    };
    let d = h.data(&q(r#"{Arch: [" ARM64/v8 ", ""]}"#)).await;
    assert_eq!(tags(&d["GlobalSearch"]["Images"]), ["apps/web:2.0"]);
    let d = h.data(&q(r#"{Os: ["windows"]}"#)).await;
    assert_eq!(d["GlobalSearch"]["Images"], json!([]));
    let d = h.data(&q(r#"{HasToBeSigned: true}"#)).await;
    assert_eq!(
        tags(&d["GlobalSearch"]["Images"]),
        ["alpine:3.19", "apps/web:1.0"]
    );
    // IsStarred is ignored for images.
    let d = h.data(&q(r#"{IsStarred: true}"#)).await;
    assert_eq!(
        d["GlobalSearch"]["Images"].as_array().map(Vec::len),
        Some(9)
    );

    let repos = |filter: &str| {
        format!(r#"{{ GlobalSearch(query: "", filter: {filter}) {{ Repos {{ Name }} }} }}"#)
    };
    let d = h.data(&repos(r#"{HasToBeSigned: true}"#)).await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        ["alpine", "apps/web"]
    );
    let d = h
        .data(&repos(r#"{Arch: ["arm64/v8"], Os: ["LINUX"]}"#))
        .await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["apps/web"]);
    use zot_search::Source;
    assert_eq!(
        h.source
            .toggle("admin", zot_search::Pref::Bookmark, "foo/myalpine")
            .ok(),
        Some(true)
    );
    let d = h.data(&repos(r#"{IsBookmarked: true}"#)).await;
    assert_eq!(pluck(&d["GlobalSearch"]["Repos"], "Name"), ["foo/myalpine"]);
    let d = h
        .data(&repos(r#"{IsBookmarked: false, IsStarred: false}"#))
        .await;
    assert_eq!(d["GlobalSearch"]["Repos"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn derived_images() {
    let h = Harness::world();
    let d = h
        .data(r#"{ DerivedImageList(image: "alpine:3.18") { Page { TotalCount } Results { RepoName Tag Manifests { Digest } } } }"#)
        .await;
    let r = &d["DerivedImageList"]["Results"];
    // UPDATE_TIME order; the image itself (and its other tag) are not derived.
    assert_eq!(
        tags(r),
        ["apps/web:1.0", "apps/web:2.0", "private/secret:v1"]
    );
    // The index shows only its matching platform.
    assert_eq!(
        r[1]["Manifests"],
        json!([{"Digest": web_2_amd().digest.to_string()}])
    );
    let d = h
        .data(r#"{ DerivedImageList(image: "alpine:3.19") { Results { RepoName Tag } } }"#)
        .await;
    assert_eq!(
        tags(&d["DerivedImageList"]["Results"]),
        ["tools/alpine-utils:0.1"]
    );
    // An image with no layers in common derives nothing.
    let d = h.data(r#"{ DerivedImageList(image: "foo/myalpine:1") { Page { TotalCount ItemCount } Results { Tag } } }"#).await;
    assert_eq!(
        d["DerivedImageList"],
        json!({"Page": {"TotalCount": 0, "ItemCount": 0}, "Results": []})
    );
    // Access: an unreadable derived image is left out.
    let d = h
        .data_as(
            reader("eve", &["alpine", "apps/web"]),
            r#"{ DerivedImageList(image: "alpine:3.18") { Results { RepoName Tag } } }"#,
        )
        .await;
    assert_eq!(
        tags(&d["DerivedImageList"]["Results"]),
        ["apps/web:1.0", "apps/web:2.0"]
    );
}

#[tokio::test]
async fn base_images_per_platform() {
    let h = Harness::world();
    let d = h
        .data(r#"{ BaseImageList(image: "apps/web:1.0") { Results { RepoName Tag } } }"#)
        .await;
    assert_eq!(
        tags(&d["BaseImageList"]["Results"]),
        ["alpine:3.18", "alpine:latest"]
    );
    let d = h
        .data(r#"{ BaseImageList(image: "apps/web:2.0") { Results { RepoName Tag } } }"#)
        .await;
    assert_eq!(
        tags(&d["BaseImageList"]["Results"]),
        ["alpine:3.18", "alpine:latest"]
    );
    let q = format!(
        r#"{{ BaseImageList(image: "apps/web:2.0", digest: "{}") {{ Results {{ RepoName Tag }} }} }}"#,
        web_2_arm().digest
    );
    assert_eq!(h.data(&q).await["BaseImageList"]["Results"], json!([]));
    let q = format!(
        r#"{{ BaseImageList(image: "apps/web:2.0", digest: "{}", requestedPage: {{limit: 1, sortBy: ALPHABETIC_DSC}}) {{ Results {{ RepoName Tag }} }} }}"#,
        web_2_amd().digest
    );
    assert_eq!(
        tags(&h.data(&q).await["BaseImageList"]["Results"]),
        ["alpine:latest"]
    );
    assert_eq!(
        h.error(r#"{ BaseImageList(image: "apps/web") { Results { Tag } } }"#)
            .await,
        "no reference provided"
    );
    assert_eq!(
        h.error(r#"{ DerivedImageList(image: "nope:1") { Results { Tag } } }"#)
            .await,
        "repository not found"
    );
    assert_eq!(
        h.error(r#"{ DerivedImageList(image: "alpine:9") { Results { Tag } } }"#)
            .await,
        "can't find image: alpine:9"
    );
}

#[tokio::test]
async fn access_filtering() {
    let h = Harness::world();
    let eve = || reader("eve", &["alpine", "tools/alpine-utils"]);
    let d = h
        .data_as(
            eve(),
            r#"{ ImageList(repo: "") { Results { RepoName Tag } } }"#,
        )
        .await;
    assert_eq!(
        tags(&d["ImageList"]["Results"]),
        [
            "alpine:3.18",
            "alpine:3.19",
            "alpine:latest",
            "tools/alpine-utils:0.1"
        ]
    );
    let d = h
        .data_as(
            eve(),
            r#"{ ImageList(repo: "private/secret") { Page { TotalCount } Results { Tag } } }"#,
        )
        .await;
    assert_eq!(
        d["ImageList"],
        json!({"Page": {"TotalCount": 0}, "Results": []})
    );
    let d = h
        .data_as(eve(), r#"{ GlobalSearch(query: "") { Repos { Name } } }"#)
        .await;
    assert_eq!(
        pluck(&d["GlobalSearch"]["Repos"], "Name"),
        ["alpine", "tools/alpine-utils"]
    );
    let d = h
        .data_as(
            eve(),
            r#"{ GlobalSearch(query: ":v1") { Images { Tag } } }"#,
        )
        .await;
    assert_eq!(d["GlobalSearch"]["Images"], json!([]));
    let d = h
        .data_as(eve(), r#"{ RepoListWithNewestImage { Results { Name } } }"#)
        .await;
    assert_eq!(
        pluck(&d["RepoListWithNewestImage"]["Results"], "Name"),
        ["alpine", "tools/alpine-utils"]
    );
    let q = format!(
        r#"{{ ImageListForDigest(id: "{}") {{ Results {{ RepoName }} }} }}"#,
        digest(BASE1)
    );
    let d = h.data_as(eve(), &q).await;
    assert_eq!(
        pluck(&d["ImageListForDigest"]["Results"], "RepoName"),
        ["alpine", "alpine"]
    );
    let d = h
        .data_as(
            eve(),
            r#"{ DerivedImageList(image: "private/secret:v1") { Page { TotalCount } } }"#,
        )
        .await;
    assert_eq!(d["DerivedImageList"]["Page"]["TotalCount"], 0);
    // Anonymous with no rights sees nothing, without errors.
    let nobody = || anonymous(&[]);
    let d = h.data_as(nobody(), r#"{ ImageList(repo: "") { Page { TotalCount } } GlobalSearch(query: "") { Page { TotalCount } } }"#).await;
    assert_eq!(d["ImageList"]["Page"]["TotalCount"], 0);
    assert_eq!(d["GlobalSearch"]["Page"]["TotalCount"], 0);
}

async fn cards_follow(h: Harness) {
    let count = |d: &serde_json::Value| d["GlobalSearch"]["Page"]["TotalCount"].clone();
    let q = r#"{ GlobalSearch(query: "") { Page { TotalCount } } }"#;
    assert_eq!(count(&h.data(q).await), 6);
    assert_eq!(h.search.cached_repos(), 7);
    let reads = h.source.reads();
    assert_eq!(count(&h.data(q).await), 6);
    assert_eq!(
        h.source.reads(),
        reads,
        "unchanged repositories are not re-read"
    );
    h.source.put(
        RepoBuilder::new("foo/myalpine")
            .tag("1", &M::new("myalpine-1", &["layer-my"]).meta(), None)
            .tag("2", &M::new("myalpine-2", &["layer-my2"]).meta(), None)
            .build(),
    );
    h.source.remove("alpinex/other");
    assert_eq!(count(&h.data(q).await), 5);
    assert_eq!(
        h.source.reads(),
        reads + 1,
        "only the changed repository is re-read"
    );
    assert_eq!(h.search.cached_repos(), 6);
    let d = h
        .data(r#"{ GlobalSearch(query: "foo/myalpine:") { Page { TotalCount } } }"#)
        .await;
    assert_eq!(count(&d), 2);
    // A star changes the generation: the card (StarCount) follows.
    use zot_search::Source;
    assert_eq!(
        h.source
            .toggle("admin", zot_search::Pref::Star, "alpine")
            .ok(),
        Some(true)
    );
    let d = h
        .data(r#"{ GlobalSearch(query: "alpine") { Repos { Name StarCount IsStarred } } }"#)
        .await;
    assert_eq!(
        d["GlobalSearch"]["Repos"][0],
        json!({"Name": "alpine", "StarCount": 3, "IsStarred": true})
    );
}

#[tokio::test]
async fn cards_follow_generations() {
    let h = Harness::world();
    cards_follow(h).await;
}

#[tokio::test]
async fn cards_follow_generations_without_version() {
    let mut source = world();
    source.unversioned = true;
    cards_follow(Harness::new(source)).await;
}

#[tokio::test]
async fn unchanged_version_skips_the_listing() {
    use std::sync::atomic::Ordering;
    let h = Harness::world();
    let q = r#"{ GlobalSearch(query: "alp") { Page { TotalCount } } }"#;
    h.data(q).await;
    let listed = h.source.listings.load(Ordering::SeqCst);
    h.data(q).await;
    h.data(q).await;
    assert_eq!(h.source.listings.load(Ordering::SeqCst), listed);
    h.source.remove("alpinex/other");
    let d = h
        .data(r#"{ GlobalSearch(query: "alp") { Page { TotalCount } Repos { Name } } }"#)
        .await;
    assert_eq!(d["GlobalSearch"]["Page"]["TotalCount"], 3, "{d}");
    assert_eq!(h.source.listings.load(Ordering::SeqCst), listed + 1);
}

#[tokio::test]
async fn long_lists_hold_few_repositories_at_a_time() {
    use std::sync::atomic::Ordering;
    let mem = Memory::default();
    for i in 0..60 {
        let name = format!("many/r{i:02}");
        let seed: &'static str = Box::leak(format!("many-{i}").into_boxed_str());
        mem.put(
            RepoBuilder::new(&name)
                .tag("a", &M::new(seed, &["shared-base"]).meta(), None)
                .tag(
                    "b",
                    &M::new(
                        Box::leak(format!("{seed}-b").into_boxed_str()),
                        &["shared-base", "x"],
                    )
                    .meta(),
                    None,
                )
                .build(),
        );
    }
    let h = Harness::new(mem);
    // Cards first (each repository read once, one at a time).
    h.data(r#"{ GlobalSearch(query: "") { Page { TotalCount } } }"#)
        .await;
    h.source.most_held.store(0, Ordering::SeqCst);
    let before = h.source.reads();
    let d = h
        .data(r#"{ ImageList(repo: "", requestedPage: {sortBy: UPDATE_TIME}) { Results { RepoName Tag Size Manifests { Digest } } } }"#)
        .await;
    assert_eq!(
        d["ImageList"]["Results"].as_array().map(Vec::len),
        Some(120)
    );
    let d = h
        .data(r#"{ RepoListWithNewestImage { Results { Name NewestImage { Tag Digest } } } }"#)
        .await;
    assert_eq!(
        d["RepoListWithNewestImage"]["Results"]
            .as_array()
            .map(Vec::len),
        Some(60)
    );
    let held = h.source.most_held.load(Ordering::SeqCst);
    assert!(held <= 14, "held {held} repositories at once"); // 10 per request, 4 kept hot
    // Sorted by name, each repository's two images share one read.
    h.data(r#"{ ImageList(repo: "") { Results { Tag } } }"#)
        .await;
    assert!(
        h.source.reads() - before <= 60 + 60 + 60,
        "reads: {}",
        h.source.reads() - before
    );
}

#[tokio::test]
async fn warm_builds_every_card_up_front() {
    let h = Harness::world();
    assert_eq!(h.search.cached_repos(), 0);
    let n = match h.search.warm() {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    };
    assert_eq!((n, h.search.cached_repos()), (7, 7));
    let reads = h.source.reads();
    h.data(r#"{ GlobalSearch(query: "") { Page { TotalCount } } }"#)
        .await;
    assert_eq!(h.source.reads(), reads);
}

#[tokio::test]
async fn a_repository_queried_again_is_not_read_again_until_it_changes() {
    let h = Harness::world();
    let q = r#"{ ImageList(repo: "alpine", requestedPage: {limit: 2, sortBy: UPDATE_TIME}) { Results { Tag Size } } }"#;
    let tags = |d: &serde_json::Value| pluck(&d["ImageList"]["Results"], "Tag");
    assert_eq!(tags(&h.data(q).await), ["3.19", "3.18"]);
    let reads = h.source.reads();
    assert_eq!(tags(&h.data(q).await), ["3.19", "3.18"]);
    let d = h
        .data(r#"{ ExpandedRepoInfo(repo: "alpine") { Images { Tag } } }"#)
        .await;
    assert_eq!(
        d["ExpandedRepoInfo"]["Images"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        h.source.reads(),
        reads,
        "unchanged: served from what was read"
    );
    // A change is seen at once.
    h.source.put(
        RepoBuilder::new("alpine")
            .tag(
                "3.20",
                &M {
                    created: Some("2025-01-01T00:00:00Z"),
                    ..M::new("alpine-3.20", &[BASE2])
                }
                .meta(),
                None,
            )
            .tag("3.19", &alpine_319(), None)
            .build(),
    );
    assert_eq!(tags(&h.data(q).await), ["3.20", "3.19"]);
    assert_eq!(
        h.source.reads(),
        reads + 2,
        "the card and the page each read it once"
    );
}

#[tokio::test]
async fn without_versions_every_query_reads() {
    let mut source = world();
    source.unversioned = true;
    let h = Harness::new(source);
    let q = r#"{ ImageList(repo: "alpine") { Results { Tag } } }"#;
    h.data(q).await;
    let reads = h.source.reads();
    h.data(q).await;
    assert!(h.source.reads() > reads);
}

//! The HTTP transport (gqlgen's status codes) and the limits that turn
//! hostile queries into clean errors.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

fn get(query_string: &str) -> Request {
    match Request::get(format!("/v2/_zot/ext/search?{query_string}")).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn post_raw(body: impl Into<Body>) -> Request {
    match Request::post("/v2/_zot/ext/search")
        .header("content-type", "application/json")
        .body(body.into())
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn first_error(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn get_and_post() {
    let h = Harness::world();
    let q = r#"query Q($r: String!) { ImageList(repo: $r) { Page { TotalCount } } }"#;
    let (status, body) = h
        .send(
            get(&format!(
                "query={}&variables={}&operationName=Q",
                enc(q),
                enc(r#"{"r":"alpine"}"#)
            )),
            admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"data": {"ImageList": {"Page": {"TotalCount": 3}}}})
    );

    let post = json!({"query": q, "variables": {"r": "apps/web"}, "operationName": "Q"});
    let (status, body) = h.send(post_raw(post.to_string()), admin()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["ImageList"]["Page"]["TotalCount"], 2);
}

#[tokio::test]
async fn transport_errors() {
    let h = Harness::world();
    let (status, body) = h.send(get(""), admin()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(first_error(&body), "no operation provided");

    let (status, _) = h
        .send(
            get(&format!(
                "query={}&variables=%7Bnope",
                enc("{ ImageList(repo:\"\") { Page { TotalCount } } }")
            )),
            admin(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = h.send(post_raw("{not json"), admin()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        first_error(&body).starts_with("json request body could not be decoded"),
        "{body}"
    );

    let (status, _) = h.send(post_raw(r#"{"variables": {}}"#), admin()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let put = match Request::put("/v2/_zot/ext/search").body(Body::empty()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let resp = h.search.graphql(put, admin()).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST, OPTIONS")
    );
}

#[tokio::test]
async fn parse_and_validation_errors_are_422_resolver_errors_200() {
    let h = Harness::world();
    let (status, body) = h.post(admin(), "{ ImageList(repo: ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["data"], Value::Null);
    assert!(!first_error(&body).is_empty());

    let (status, body) = h.post(admin(), r#"{ ImageList(repo: "") { Nope } }"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = h
        .post(admin(), r#"{ Image(image: "alpine:9") { Tag } }"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["path"], json!(["Image"]));
}

/// graphql-js `getIntrospectionQuery()`, as GraphiQL sends it.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test]
async fn introspection_passes_the_limits() {
    let h = Harness::world();
    let (status, body) = h.post(anonymous(&[]), INTROSPECTION).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let types = &body["data"]["__schema"]["types"];
    assert!(pluck(types, "name").contains(&"ImageSummary".to_owned()));
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn client_queries_pass_the_limits() {
    let h = Harness::world();
    // As zli asks for images (no page), and as a UI asks for a repository.
    let zli = r#"{ ImageList(repo: "") { Results { RepoName Tag Digest MediaType Size IsSigned
        Manifests { Digest ConfigDigest Size LastUpdated IsSigned Platform { Os Arch }
          Layers { Size Digest } Vulnerabilities { MaxSeverity Count } }
        LastUpdated Vulnerabilities { MaxSeverity Count } SignatureInfo { Tool IsTrusted Author } } } }"#;
    assert_eq!(
        h.data(zli).await["ImageList"]["Results"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
    let ui = r#"{ ExpandedRepoInfo(repo: "apps/web") {
        Images { Tag Digest MediaType Size DownloadCount LastUpdated IsSigned IsDeletable Vendor
          SignatureInfo { Tool IsTrusted Author } Vulnerabilities { MaxSeverity Count }
          Referrers { MediaType ArtifactType Size Digest Annotations { Key Value } }
          Manifests { Digest ConfigDigest Size LastUpdated IsSigned Platform { Os Arch }
            Layers { Size Digest } History { Layer { Size Digest } HistoryDescription { Created CreatedBy Author Comment EmptyLayer } }
            Vulnerabilities { MaxSeverity Count } Referrers { Digest } } }
        Summary { Name LastUpdated Size Platforms { Os Arch } Vendors DownloadCount StarCount IsStarred IsBookmarked
          NewestImage { Tag Title Description Documentation Licenses Source Authors Labels Vulnerabilities { MaxSeverity } } } } }"#;
    assert_eq!(
        h.data(ui).await["ExpandedRepoInfo"]["Images"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let home = r#"{ RepoListWithNewestImage(requestedPage: {limit: 10, offset: 0, sortBy: DOWNLOADS}) {
        Page { TotalCount ItemCount } Results { Name LastUpdated Size Platforms { Os Arch } Vendors
        DownloadCount StarCount IsStarred IsBookmarked NewestImage { Tag Manifests { Platform { Os Arch } } } } } }"#;
    assert_eq!(
        h.data(home).await["RepoListWithNewestImage"]["Page"]["ItemCount"],
        6
    );
}

fn post_json(query: &str, variables: Value) -> Request {
    post_raw(json!({"query": query, "variables": variables}).to_string())
}

async fn refused(h: &Harness, query: &str, variables: Value) -> String {
    let body = json!({"query": query, "variables": variables}).to_string();
    let (status, body) = h.send(post_raw(body), admin()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["data"], Value::Null);
    first_error(&body)
}

#[tokio::test]
async fn hostile_queries_get_clean_errors() {
    let h = Harness::world();
    // Deep nesting through introspection's cyclic types.
    let mut deep = String::from("{ __schema { types { ");
    for _ in 0..30 {
        deep.push_str("ofType { ");
    }
    deep.push_str("name");
    deep.push_str(&" }".repeat(33));
    assert_eq!(
        refused(&h, &deep, Value::Null).await,
        "Query is nested too deep."
    );

    // Nesting past what the parser recurses into.
    let bomb = format!("{}{}", "{ a ".repeat(5000), "}".repeat(5000));
    assert!(!refused(&h, &bomb, Value::Null).await.is_empty());

    // A huge page costs what an unpaged list costs (both return everything
    // there is, item by item): answered, as zot answers it, literal or
    // through variables, with the same data as the unpaged query.
    let nested = "Results { Manifests { Layers { Digest } History { Layer { Digest } } Referrers { Annotations { Key } } } }";
    let huge =
        format!(r#"{{ ImageList(repo: "", requestedPage: {{limit: 1000000}}) {{ {nested} }} }}"#);
    let unpaged = format!(r#"{{ ImageList(repo: "") {{ {nested} }} }}"#);
    let (status, body) = h.send(post_json(&huge, Value::Null), admin()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, all) = h.send(post_json(&unpaged, Value::Null), admin()).await;
    assert_eq!(body, all);
    assert!(body["errors"].is_null(), "{body}");
    let via_vars = r#"query($p: PageInput) { GlobalSearch(query: "", requestedPage: $p) { Repos { NewestImage { Manifests { Layers { Digest } } } } } }"#;
    let (status, body) = h
        .send(
            post_json(via_vars, json!({"p": {"limit": 2147483647}})),
            admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["errors"].is_null(), "{body}");

    // Aliases multiplying an unpaged list.
    let aliases: String = (0..200)
        .map(|i| {
            format!(r#"a{i}: ImageList(repo: "") {{ Results {{ Manifests {{ Digest }} }} }} "#)
        })
        .collect();
    assert_eq!(
        refused(&h, &format!("{{ {aliases} }}"), Value::Null).await,
        "Query is too complex."
    );

    // 1 MiB of query text never reaches the parser.
    let big = format!(
        "{{ ImageList(repo: \"{}\") {{ Page {{ TotalCount }} }} }}",
        "x".repeat(1 << 20)
    );
    let (status, body) = h
        .send(post_raw(json!({"query": big}).to_string()), admin())
        .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        first_error(&body)
    );
    let just_over = format!(
        "{{ ImageList(repo: \"{}\") {{ Page {{ TotalCount }} }} }}",
        "x".repeat(64 * 1024)
    );
    let (status, _) = h
        .send(post_raw(json!({"query": just_over}).to_string()), admin())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // (A GET cannot carry that much: a URI is at most 64 KiB.)

    // The search still answers afterwards.
    assert_eq!(
        h.data(r#"{ ImageList(repo: "alpine") { Page { TotalCount } } }"#)
            .await["ImageList"]["Page"]["TotalCount"],
        3
    );
}

#[tokio::test]
async fn bad_variables_and_operations_are_422() {
    let h = Harness::world();
    let q = r#"query($p: PageInput) { ImageList(repo: "", requestedPage: $p) { Page { TotalCount } } }"#;
    let body = json!({"query": q, "variables": {"p": {"limit": "ten"}}}).to_string();
    let (status, body) = h.send(post_raw(body), admin()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body = json!({"query": "query A { ImageList(repo: \"\") { Page { TotalCount } } }", "operationName": "B"}).to_string();
    let (status, body) = h.send(post_raw(body), admin()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Variables that are not an object.
    let body = json!({"query": q, "variables": [1]}).to_string();
    let (status, _) = h.send(post_raw(body), admin()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // OPTIONS is answered for CORS preflights.
    let req = match Request::options("/v2/_zot/ext/search").body(Body::empty()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        h.search.graphql(req, anonymous(&[])).await.status(),
        StatusCode::NO_CONTENT
    );
}

/// A query asked again with other string literals reuses the parse of its
/// shape (`plans.rs`): each answer is still that of its own literals, the
/// positions in its errors are those of its own text, and a query whose
/// literals make it invalid is refused though a valid one of the same
/// length was seen.
#[tokio::test]
async fn queries_of_one_shape() {
    let h = Harness::world();
    let name = |repo: &str| {
        format!(
            r#"{{ ExpandedRepoInfo(repo: "{repo}") {{ Summary {{ Name }} Images {{ Tag }} }} }}"#
        )
    };
    // "nothere1" and "apps/web" have one length, so one shape: the first
    // (an error from the resolver, so past validation) teaches it.
    assert_eq!(
        h.error(&name("nothere1")).await,
        "repo metadata not found for given repo name"
    );
    let web = h.data(&name("apps/web")).await;
    assert_eq!(web["ExpandedRepoInfo"]["Summary"]["Name"], "apps/web");
    assert_eq!(h.search.plan_stats(), (1, 1));
    for _ in 0..2 {
        let alpine = h.data(&name("alpine")).await;
        assert_eq!(alpine["ExpandedRepoInfo"]["Summary"]["Name"], "alpine");
        assert_eq!(pluck(&alpine["ExpandedRepoInfo"]["Images"], "Tag").len(), 3);
        let web = h.data(&name("apps/web")).await;
        assert_eq!(web["ExpandedRepoInfo"]["Summary"]["Name"], "apps/web");
        assert_eq!(
            {
                let mut tags = pluck(&web["ExpandedRepoInfo"]["Images"], "Tag");
                tags.sort();
                tags
            },
            ["1.0", "2.0"]
        );
    }
    // Errors: each answer's own message and position.
    let missing = |repo: &str| {
        format!("{{\n  ExpandedRepoInfo(repo: \"{repo}\") {{ Summary {{ Name }} }}\n}}")
    };
    let mut seen = Vec::new();
    for repo in ["nothere1", "nothere2", "nothere1"] {
        let (status, body) = h.post(admin(), &missing(repo)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            first_error(&body),
            "repo metadata not found for given repo name"
        );
        assert_eq!(
            body["errors"][0]["locations"],
            json!([{"line": 2, "column": 3}]),
            "{body}"
        );
        seen.push(body);
    }
    assert_eq!(seen[0], seen[2]);
    // Fields merged under one response name must have equal arguments:
    // equal literals pass, unequal ones of the same length do not.
    let merged = |a: &str, b: &str| {
        format!(
            r#"{{ ImageList(repo: "{a}") {{ Page {{ TotalCount }} }} ImageList(repo: "{b}") {{ Page {{ ItemCount }} }} }}"#
        )
    };
    let same = h.data(&merged("alpine", "alpine")).await;
    assert_eq!(same["ImageList"]["Page"]["TotalCount"], 3);
    for _ in 0..2 {
        let (status, body) = h.post(admin(), &merged("alpine", "alpinf")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(first_error(&body).contains("conflict"), "{body}");
    }
}

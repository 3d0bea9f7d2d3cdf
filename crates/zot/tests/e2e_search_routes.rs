//! The search extension's routes in the real binary without
//! authentication: with `extensions.search` on, discover lists `_zot` with
//! its endpoints, mgmt shows no login, userprefs refuses the (anonymous)
//! caller with 403 and GraphQL answers over HTTP; with it off, each route
//! is 404 `UNSUPPORTED` and discover lists nothing. (`e2e_search.rs` covers
//! the same with htpasswd and access control.)

mod common;

use serde_json::json;

use common::Registry;
use common::registry::Config;

const ENDPOINTS: &[&str] = &[
    "/v2/_zot/ext/search",
    "/v2/_zot/ext/userprefs",
    "/v2/_zot/ext/mgmt",
];

#[cfg(feature = "search")]
#[test]
fn search_on_serves_and_lists_the_zot_routes() {
    let registry = Registry::start_with(Config::default().with_extensions(json!({"search": {}})));
    let client = registry.client();
    let discover = client.get("/v2/_oci/ext/discover");
    discover.expect_status(200, "discover");
    let extensions = discover.json()["extensions"].clone();
    assert_eq!(extensions[0]["name"], "_zot", "{extensions}");
    assert_eq!(extensions[0]["endpoints"], json!(ENDPOINTS));

    let mgmt = client.get("/v2/_zot/ext/mgmt");
    mgmt.expect_status(200, "mgmt");
    let body: serde_json::Value = serde_json::from_slice(&mgmt.body).expect("mgmt is JSON");
    assert_eq!(body["distSpecVersion"], "1.1.1");
    assert_eq!(body["http"], json!({"auth": {}}));
    assert!(
        body["binaryType"]
            .as_str()
            .is_some_and(|t| t.contains("-search"))
    );

    // Without authentication every caller is anonymous: no preferences.
    let r = client.request(
        "PUT",
        "/v2/_zot/ext/userprefs?action=toggleStar&repo=none",
        &[],
        None,
    );
    r.expect_status(403, "anonymous userprefs");

    let query = br#"{"query":"{ RepoListWithNewestImage { Page { TotalCount } } }"}"#;
    let r = client.request(
        "POST",
        "/v2/_zot/ext/search",
        &[("content-type", "application/json")],
        Some(query),
    );
    r.expect_status(200, "GraphQL");
    assert_eq!(
        r.json()["data"]["RepoListWithNewestImage"]["Page"]["TotalCount"],
        0,
        "{}",
        r.text()
    );
}

#[test]
fn search_off_answers_404_and_lists_nothing() {
    let registry = Registry::start_with(
        Config::default().with_extensions(json!({"search": {"enable": false}})),
    );
    let client = registry.client();
    let discover = client.get("/v2/_oci/ext/discover");
    discover.expect_status(200, "discover");
    assert_eq!(discover.json(), json!({"extensions": []}));
    for path in ENDPOINTS {
        client.get(path).expect_oci_error(404, "UNSUPPORTED", path);
    }
}

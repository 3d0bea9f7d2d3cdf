//! The search extension's routes in the real binary: with
//! `extensions.search` off, each route is 404 `UNSUPPORTED` and discover
//! lists nothing.

mod common;

use serde_json::json;

use common::Registry;
use common::registry::Config;

const ENDPOINTS: &[&str] = &[
    "/v2/_zot/ext/search",
    "/v2/_zot/ext/userprefs",
    "/v2/_zot/ext/mgmt",
];

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

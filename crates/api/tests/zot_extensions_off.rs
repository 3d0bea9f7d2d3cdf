//! With the search extension off (no search handle, whatever the build),
//! the zot extension routes are no routes at all: 404 `UNSUPPORTED` for
//! every method, before authentication, as any unknown path under `/v2/`.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::TestApp;

const PATHS: &[&str] = &[
    "/v2/_zot/ext/search",
    "/v2/_zot/ext/search?query=%7BImageList%7D",
    "/v2/_zot/ext/search/sub/path",
    "/v2/_zot/ext/userprefs?action=toggleStar&repo=a",
    "/v2/_zot/ext/userprefs/x",
    "/v2/_zot/ext/mgmt",
    "/v2/_zot/ext/mgmt?resource=config",
];

#[tokio::test]
async fn every_route_is_404_when_search_is_off() {
    let app = TestApp::new().await;
    for path in PATHS {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let r = app.call(method.clone(), path, &[], Body::empty()).await;
            r.assert_error(404, "UNSUPPORTED");
            assert_eq!(
                r.h("docker-distribution-api-version"),
                "registry/2.0",
                "{method} {path}"
            );
        }
    }
    // Discover lists nothing.
    let r = app.get("/v2/_oci/ext/discover").await;
    r.assert_status(200);
    assert_eq!(r.json(), serde_json::json!({"extensions": []}));
}

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

#[path = "../common/mod.rs"]
mod common;
mod ui;
mod zli;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use common::*;
use serde_json::Value;
use zot_search::Viewer;

/// Percent-encodes what a browser encodes in a URL's query (space, `"`,
/// `#`, `<`, `>`, `'`, non-ASCII); the rest goes as written.
pub(crate) fn browser_query(q: &str) -> String {
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
pub(crate) fn ui_request(path_and_query: &str) -> Request {
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
pub(crate) fn zli_request(query: &str) -> Request {
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
pub(crate) async fn ok(h: &Harness, req: Request, viewer: Viewer) -> Value {
    let (status, body) = h.send(req, viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// Sends a CVE query: zot with CVE off answers 200, `data: null` and its
/// resolver error (not a validation error, which would be 422).
pub(crate) async fn cve_disabled(h: &Harness, req: Request) {
    let (status, body) = h.send(req, admin()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["message"], "cve search is disabled",
        "{body}"
    );
    assert!(body["errors"][0]["path"].is_array(), "{body}");
}

pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(crate) fn is_digest(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// A decimal string, as zli's `strconv.Atoi` / `ParseUint` reads `Size`.
pub(crate) fn size(v: &Value) -> u64 {
    match v.as_str().map(str::parse::<u64>) {
        Some(Ok(n)) => n,
        _ => panic!("Size is not a decimal string: {v}"),
    }
}

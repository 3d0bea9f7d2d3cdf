//! Cross-origin requests (`http.allowOrigin`) against the real binary:
//! preflights answered before authentication and granting nothing, the
//! origin and credential headers on every answer (refusals included), and
//! no CORS header at all when the key is absent.

mod auth_common;
mod common;

use auth_common::{basic, call, push_image, small_image, start_secure, write_htpasswd};
use common::Registry;
use common::http::Response;
use serde_json::{Value, json};

const USER: (&str, &str) = ("dev", "dev-secret-pw");
const UI: &str = "https://ui.example.com";

fn registry(allow_origin: Option<&str>) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, &[USER]);
    let mut http = json!({
        "auth": { "htpasswd": { "path": htpasswd } },
        "accessControl": { "repositories": { "**": {
            "policies": [{ "users": [USER.0], "actions": ["read", "create"] }],
            "anonymousPolicy": []
        } } }
    });
    if let Some(origin) = allow_origin {
        http["allowOrigin"] = Value::from(origin);
    }
    start_secure(http, json!({ "level": "info" }))
}

fn preflight(registry: &Registry, path: &str, method: &str) -> Response {
    let headers = [
        ("origin", UI),
        ("access-control-request-method", method),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    call(&registry.client(), None, "OPTIONS", path, &headers, None)
}

#[test]
fn a_configured_origin_gets_preflights_and_headers_on_every_answer() {
    let registry = registry(Some(UI));
    let client = registry.client();
    let auth = basic(USER.0, USER.1);
    push_image(&client, Some(&auth), "app", &small_image("cors"), "v1");

    // A preflight carries no credentials: answered before authentication.
    let resp = preflight(&registry, "/v2/app/manifests/v1", "PUT");
    resp.expect_status(204, "preflight of a manifest");
    assert_eq!(resp.header("access-control-allow-origin"), Some(UI));
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,DELETE,OPTIONS")
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed = resp
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(allowed.contains("Authorization"), "{resp}");
    let resp = preflight(&registry, "/v2/app/blobs/uploads/", "POST");
    resp.expect_status(204, "preflight of an upload");
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("POST,OPTIONS")
    );

    // The preflight granted nothing: the request itself is checked.
    let origin = [("origin", UI)];
    let resp = call(&client, None, "GET", "/v2/app/manifests/v1", &origin, None);
    resp.expect_oci_error(401, "UNAUTHORIZED", "anonymous read after a preflight");
    assert_eq!(resp.header("access-control-allow-origin"), Some(UI));
    let accept = [
        ("origin", UI),
        ("accept", "application/vnd.oci.image.manifest.v1+json"),
    ];
    let resp = call(
        &client,
        Some(&auth),
        "GET",
        "/v2/app/manifests/v1",
        &accept,
        None,
    );
    resp.expect_status(200, "authorised read");
    assert_eq!(resp.header("access-control-allow-origin"), Some(UI));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let exposed = resp
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(exposed.contains("Docker-Content-Digest") && exposed.contains("Link"));
    let resp = call(
        &client,
        Some(&auth),
        "GET",
        "/v2/app/tags/list",
        &origin,
        None,
    );
    resp.expect_status(200, "tags");
    assert_eq!(resp.header("access-control-allow-origin"), Some(UI));
}

#[test]
fn a_wildcard_origin_never_allows_credentials() {
    let registry = registry(Some("*"));
    let resp = preflight(&registry, "/v2/", "GET");
    resp.expect_status(204, "preflight of the base");
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("GET,HEAD,OPTIONS")
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        None,
        "{resp}"
    );
}

#[test]
fn without_allow_origin_no_cors_header_is_sent() {
    let registry = registry(None);
    let client = registry.client();
    let resp = preflight(&registry, "/v2/app/manifests/v1", "PUT");
    assert_ne!(resp.status, 204, "{resp}");
    assert_eq!(resp.header("access-control-allow-origin"), None, "{resp}");
    assert_eq!(resp.header("access-control-allow-methods"), None, "{resp}");
    let auth = basic(USER.0, USER.1);
    let resp = call(&client, Some(&auth), "GET", "/v2/", &[("origin", UI)], None);
    resp.expect_status(200, "base");
    assert_eq!(resp.header("access-control-allow-origin"), None, "{resp}");
}

//! Cross-origin requests from browsers (`http.allowOrigin`).
//!
//! Invariants:
//! - Without `allowOrigin` nothing here runs: no CORS header is sent, so a
//!   page of another site cannot read any answer (zot sends
//!   `Access-Control-Allow-Origin: *` then, which lets any page a user of an
//!   internal registry visits read what anonymous users may read).
//! - With it, every answer carries `Access-Control-Allow-Origin` (the
//!   configured value; it does not depend on the request, so no `Vary`), and
//!   `Access-Control-Allow-Credentials: true` only for one named origin on a
//!   registry with password logins (browsers refuse credentials with `*`).
//! - `OPTIONS` (a browser's preflight, which never carries credentials) is
//!   answered `204` here, before authentication, as zot does; it grants
//!   nothing: the request that follows is checked as any other.
//! - The headers a browser client needs to read (upload `Location`, `Link`
//!   pages, digests) are exposed, which zot does not do.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::endpoint::Endpoint;

/// Request headers a browser may send (zot's three, and what chunked
/// uploads and ranged reads need).
const ALLOW_HEADERS: &str = "Authorization,content-type,X-ZOT-API-CLIENT,Range,Content-Range";
/// Response headers a browser may read.
const EXPOSE_HEADERS: &str = "Docker-Content-Digest,Docker-Upload-UUID,Location,Link,Range,\
                              Content-Range,OCI-Subject,OCI-Filters-Applied,WWW-Authenticate";
/// Methods of paths that are not API endpoints (the token service, login
/// routes): the request itself is routed and checked as usual.
const ANY_METHODS: &str = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS";

/// The CORS answer of a registry with `http.allowOrigin` set.
#[derive(Debug, Clone)]
pub struct Cors {
    origin: HeaderValue,
    credentials: bool,
}

impl Cors {
    /// `origin`: `http.allowOrigin` (as the config validated it);
    /// `password_logins`: whether htpasswd or LDAP logins are configured.
    /// `None` when the value cannot be a header (the config refuses those).
    pub fn new(origin: &str, password_logins: bool) -> Option<Cors> {
        let value = HeaderValue::from_str(origin).ok()?;
        Some(Cors {
            credentials: password_logins && origin != "*",
            origin: value,
        })
    }

    /// The preflight answer for `path`, or `None` when `req` is not an
    /// `OPTIONS` request.
    pub(crate) fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::OPTIONS {
            return None;
        }
        let methods = match Endpoint::parse(req.uri().path()) {
            Some(Ok(endpoint)) => methods(&endpoint),
            _ => ANY_METHODS,
        };
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let headers = resp.headers_mut();
        self.decorate(headers);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        Some(resp)
    }

    /// Adds the headers every answer carries.
    pub(crate) fn decorate(&self, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// The methods `endpoint` answers, and `OPTIONS`.
fn methods(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Base => "GET,HEAD,OPTIONS",
        Endpoint::Catalog
        | Endpoint::Discover
        | Endpoint::Tags(_)
        | Endpoint::Referrers(..)
        | Endpoint::Mgmt
        | Endpoint::SyncStatus => "GET,OPTIONS",
        Endpoint::Manifest(..) => "GET,HEAD,PUT,DELETE,OPTIONS",
        Endpoint::Blob(..) => "GET,HEAD,DELETE,OPTIONS",
        Endpoint::UploadStart(_) => "POST,OPTIONS",
        Endpoint::Upload(..) => "GET,PATCH,PUT,DELETE,OPTIONS",
        Endpoint::Search => "GET,POST,OPTIONS",
        Endpoint::UserPrefs => "PUT,OPTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn options(path: &str) -> Request {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .body(Body::empty())
            .expect("request")
    }

    fn header(resp: &Response, name: header::HeaderName) -> Option<&str> {
        resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn preflight_names_the_endpoints_methods() {
        let cors = Cors::new("https://ui.example.com", true).expect("valid");
        let resp = cors
            .preflight(&options("/v2/a/b/manifests/latest"))
            .expect("preflight");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let allow = header(&resp, header::ACCESS_CONTROL_ALLOW_METHODS);
        assert_eq!(allow, Some("GET,HEAD,PUT,DELETE,OPTIONS"));
        let origin = header(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN);
        assert_eq!(origin, Some("https://ui.example.com"));
        let credentials = header(&resp, header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
        assert_eq!(credentials, Some("true"));
        let headers = header(&resp, header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap_or_default();
        assert!(headers.contains("Authorization") && headers.contains("X-ZOT-API-CLIENT"));
        let upload = cors
            .preflight(&options(
                "/v2/a/blobs/uploads/3fa85f64-5717-4562-b3fc-2c963f66afa6",
            ))
            .expect("preflight");
        let allow = header(&upload, header::ACCESS_CONTROL_ALLOW_METHODS);
        assert_eq!(allow, Some("GET,PATCH,PUT,DELETE,OPTIONS"));
        let other = cors
            .preflight(&options("/zot/auth/login"))
            .expect("preflight");
        assert_eq!(
            header(&other, header::ACCESS_CONTROL_ALLOW_METHODS),
            Some(ANY_METHODS)
        );
    }

    #[test]
    fn only_options_is_a_preflight() {
        let cors = Cors::new("*", true).expect("valid");
        let get = Request::builder()
            .uri("/v2/")
            .body(Body::empty())
            .expect("request");
        assert!(cors.preflight(&get).is_none());
    }

    #[test]
    fn credentials_only_for_a_named_origin_with_password_logins() {
        for (origin, logins, credentials) in [
            ("*", true, false),
            ("https://ui.example.com", false, false),
            ("https://ui.example.com", true, true),
        ] {
            let cors = Cors::new(origin, logins).expect("valid");
            let mut headers = HeaderMap::new();
            cors.decorate(&mut headers);
            assert_eq!(
                headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
                credentials,
                "{origin} {logins}"
            );
            assert_eq!(
                headers
                    .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                    .and_then(|v| v.to_str().ok()),
                Some(origin)
            );
        }
        assert!(Cors::new("https://a\r\nx: y", true).is_none());
    }
}

//! The identity keys of `http.auth`: `mtls` mapping options with zot's
//! names and aliases, and their problems.

use zot_config::{Config, Format, Problem};

fn mtls(section: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(
        &format!(
            r#"{{"storage": {{"rootDirectory": "/d"}},
                "http": {{"tls": {{"cert": "c", "key": "k", "cacert": "ca"}},
                          "auth": {{"mtls": {section}}}}}}}"#
        ),
        Format::Json,
    )
}

fn problems(result: Result<Config, Vec<Problem>>) -> Vec<String> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn mtls_options_and_aliases_are_read() {
    let config = mtls(
        r#"{"identityAttributes": ["cn", "DN", "rfc822name", "url", "DNS", "Email"],
            "uriSanPattern": "spiffe://example.org/workload/(.*)",
            "uriSanIndex": 1, "dnsSanIndex": 2, "emailSanIndex": 3}"#,
    )
    .expect("valid");
    let m = config.http.auth.and_then(|a| a.mtls).expect("mtls");
    assert_eq!(
        m.identity_attributes,
        ["CommonName", "Subject", "Email", "URI", "DNSName", "Email"]
    );
    assert_eq!(
        m.uri_san_pattern.as_deref(),
        Some("spiffe://example.org/workload/(.*)")
    );
    assert_eq!(
        (m.uri_san_index, m.dns_san_index, m.email_san_index),
        (1, 2, 3)
    );
}

#[test]
fn mtls_defaults_to_the_common_name() {
    let config = mtls("{}").expect("valid");
    let m = config.http.auth.and_then(|a| a.mtls).expect("mtls");
    assert_eq!(m.identity_attributes, ["CommonName"]);
    assert_eq!(m.uri_san_pattern, None);
    assert_eq!(
        (m.uri_san_index, m.dns_san_index, m.email_san_index),
        (0, 0, 0)
    );
}

#[test]
fn mtls_problems_name_their_keys() {
    let p = problems(mtls(r#"{"uriSanPattern": "spiffe://(unclosed"}"#));
    assert!(
        p.len() == 1
            && p[0].starts_with("http.auth.mtls.uriSanPattern: not a valid regular expression"),
        "{p:?}"
    );
    let p = problems(mtls(r#"{"uriSanPattern": "spiffe://example.org/.*"}"#));
    assert!(
        p.len() == 1 && p[0].contains("needs a capture group"),
        "{p:?}"
    );
    let p = problems(mtls(r#"{"identityAttributes": ["IP"], "uriSanIndex": -1}"#));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("http.auth.mtls.identityAttributes[0]: unknown identity attribute"));
    assert!(p[1].starts_with("http.auth.mtls.uriSanIndex: expected a non-negative integer"));
}

fn bearer(section: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(
        &format!(
            r#"{{"storage": {{"rootDirectory": "/d"}},
                "http": {{"auth": {{"bearer": {section}}}}}}}"#
        ),
        Format::Json,
    )
}

#[test]
fn bearer_oidc_issuers_are_read_and_cert_becomes_optional() {
    let config = bearer(
        r#"{"realm": "zot", "service": "s", "oidc": [
              {"issuer": "https://issuer.example", "audiences": ["zot"],
               "claimMapping": {"username": "claims.email", "groups": "claims.org.teams"}},
              {"issuer": "https://k8s.example", "audiences": ["a", "b"]}]}"#,
    )
    .expect("valid");
    let b = config.http.auth.and_then(|a| a.bearer).expect("bearer");
    assert_eq!(b.cert, None);
    assert_eq!(b.oidc.len(), 2);
    assert_eq!(b.oidc[0].username_claim, "claims.email");
    assert_eq!(b.oidc[0].groups_claim.as_deref(), Some("claims.org.teams"));
    assert_eq!(b.oidc[1].username_claim, "claims.sub");
    assert_eq!(b.oidc[1].audiences, ["a", "b"]);
}

#[test]
fn bearer_oidc_problems_name_their_keys() {
    let p = problems(bearer(r#"{"realm": "zot", "service": "s"}"#));
    assert_eq!(p, ["http.auth.bearer.cert: required"]);
    let p = problems(bearer(
        r#"{"realm": "zot", "service": "s", "oidc": [
              {"issuer": "issuer.example", "audiences": []},
              {"issuer": "https://x", "audiences": ["a"],
               "claimMapping": {"username": "claims.sub + '@x'"},
               "certificateAuthority": "PEM", "certificateAuthorityFile": "ca.pem",
               "skipIssuerVerification": true}]}"#,
    ));
    let expect = [
        "http.auth.bearer.oidc[0].issuer: expected an http(s) URL",
        "http.auth.bearer.oidc[0].audiences: at least one audience is required",
        "http.auth.bearer.oidc[1].claimMapping.username: only claim paths",
        "http.auth.bearer.oidc[1].certificateAuthorityFile: only one of",
        "http.auth.bearer.oidc[1].skipIssuerVerification",
    ];
    assert_eq!(p.len(), expect.len(), "{p:?}");
    for (got, want) in p.iter().zip(expect) {
        assert!(got.starts_with(want), "{got} does not start with {want}");
    }
}

fn auth(section: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(
        &format!(
            r#"{{"storage": {{"rootDirectory": "/d"}},
                "http": {{"auth": {section}}}}}"#
        ),
        Format::Json,
    )
}

#[test]
fn apikey_is_a_boolean_off_by_default() {
    let on = auth(r#"{"htpasswd": {"path": "/h"}, "APIKey": true}"#).expect("valid");
    assert!(on.http.auth.expect("auth").apikey);
    let off = auth(r#"{"htpasswd": {"path": "/h"}}"#).expect("valid");
    assert!(!off.http.auth.expect("auth").apikey);
    let bad = problems(auth(r#"{"apikey": "yes"}"#));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].starts_with("http.auth.apikey: "), "{bad:?}");
}

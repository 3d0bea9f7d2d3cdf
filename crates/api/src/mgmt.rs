//! The body of `GET /v2/_zot/ext/mgmt`: what zot's UI reads to decide which
//! login methods to offer, rendered once from the configuration at start-up.
//!
//! Invariants (zot's `extension_mgmt.go`, projected through its stripped
//! config):
//! - Keys in zot's order: `distSpecVersion`, `commit`, `releaseTag`,
//!   `binaryType`, `http.auth`.
//! - `http.auth.htpasswd` is `{}` exactly when an htpasswd file or LDAP is
//!   configured (a password login exists); the file's path and anything of
//!   LDAP are never shown.
//! - `http.auth.bearer` holds `realm` and `service` when an external token
//!   service is configured; its certificate is never shown.
//! - Nothing else of the configuration appears (no secrets, no paths): the
//!   body is built from a projection, not by filtering the whole config.
//! - `http.auth.apikey` is `true` when API keys are on, absent otherwise.
//! - `http.auth` is `{}` without authentication. (`openid`, which zot may
//!   list, is refused by this build's configuration.)

use serde::Serialize;
use zot_config::HttpConfig;

/// What the binary says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The source commit the binary was built from ("" when unknown).
    pub commit: String,
    /// The release, e.g. `v0.1.0`.
    pub release_tag: String,
    /// The extensions built in, zot-style: `-search-scrub-...` ("" for none).
    pub binary_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Mgmt<'a> {
    dist_spec_version: &'a str,
    commit: &'a str,
    release_tag: &'a str,
    binary_type: &'a str,
    http: Http<'a>,
}

#[derive(Serialize)]
struct Http<'a> {
    auth: Auth<'a>,
}

#[derive(Serialize)]
struct Auth<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    htpasswd: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer: Option<Bearer<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    apikey: bool,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Bearer<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    realm: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    service: &'a str,
}

/// The mgmt body for a registry reporting `dist_spec_version` with `http`.
pub fn render(dist_spec_version: &str, http: &HttpConfig, build: &BuildInfo) -> String {
    let auth = http.auth.as_ref();
    let body = Mgmt {
        dist_spec_version,
        commit: &build.commit,
        release_tag: &build.release_tag,
        binary_type: &build.binary_type,
        http: Http {
            auth: Auth {
                htpasswd: auth
                    .filter(|a| a.htpasswd.is_some() || a.ldap.is_some())
                    .map(|_| Empty {}),
                bearer: auth.and_then(|a| a.bearer.as_ref()).map(|b| Bearer {
                    realm: &b.realm,
                    service: &b.service,
                }),
                apikey: auth.is_some_and(|a| a.apikey),
            },
        },
    };
    // Plain structs of strings: serialising cannot fail.
    serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_config::{Config, Format};

    fn build() -> BuildInfo {
        BuildInfo {
            commit: "abc123".into(),
            release_tag: "v0.1.0".into(),
            binary_type: "-search-scrub".into(),
        }
    }

    fn mgmt(http: serde_json::Value) -> String {
        let config = serde_json::json!({
            "distSpecVersion": "1.1.0",
            "storage": {"rootDirectory": "/tmp/zot"},
            "http": http,
        });
        let config = Config::from_str(&config.to_string(), Format::Json).unwrap();
        render(&config.dist_spec_version, &config.http, &build())
    }

    const HEAD: &str = r#"{"distSpecVersion":"1.1.0","commit":"abc123","releaseTag":"v0.1.0","binaryType":"-search-scrub","#;

    #[test]
    fn without_auth_auth_is_empty() {
        let body = mgmt(serde_json::json!({"address": "127.0.0.1", "port": "8080"}));
        assert_eq!(body, format!(r#"{HEAD}"http":{{"auth":{{}}}}}}"#));
    }

    #[test]
    fn htpasswd_shows_as_an_empty_object_never_its_path() {
        let body = mgmt(serde_json::json!({
            "auth": {"htpasswd": {"path": "/etc/zot/secret-htpasswd"}, "failDelay": 5},
        }));
        assert_eq!(
            body,
            format!(r#"{HEAD}"http":{{"auth":{{"htpasswd":{{}}}}}}}}"#)
        );
        assert!(!body.contains("secret"));
    }

    #[test]
    fn ldap_shows_as_htpasswd_and_nothing_of_itself() {
        let body = mgmt(serde_json::json!({
            "auth": {"ldap": {
                "address": "ldap.example.org", "port": 389, "baseDN": "ou=users,dc=example",
                "userAttribute": "uid", "bindDN": "cn=admin", "bindPassword": "hunter2",
            }},
        }));
        assert_eq!(
            body,
            format!(r#"{HEAD}"http":{{"auth":{{"htpasswd":{{}}}}}}}}"#)
        );
        for secret in ["ldap.example.org", "hunter2", "cn=admin", "ldap"] {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }

    #[test]
    fn bearer_shows_realm_and_service_not_its_certificate() {
        let body = mgmt(serde_json::json!({
            "auth": {"bearer": {
                "realm": "https://auth.example.org/token", "service": "registry.example.org",
                "cert": "/etc/zot/auth.crt",
            }},
        }));
        assert_eq!(
            body,
            format!(
                r#"{HEAD}"http":{{"auth":{{"bearer":{{"realm":"https://auth.example.org/token","service":"registry.example.org"}}}}}}}}"#
            )
        );
        assert!(!body.contains("auth.crt"));
    }

    #[test]
    fn htpasswd_and_bearer_together() {
        let body = mgmt(serde_json::json!({
            "auth": {
                "htpasswd": {"path": "/etc/zot/htpasswd"},
                "bearer": {"realm": "r", "service": "s", "cert": "/c"},
            },
        }));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["http"],
            serde_json::json!({"auth": {"htpasswd": {}, "bearer": {"realm": "r", "service": "s"}}})
        );
    }

    #[test]
    fn apikey_is_true_when_on_and_absent_when_off() {
        let body = mgmt(serde_json::json!({
            "auth": {"htpasswd": {"path": "/etc/zot/htpasswd"}, "apikey": true},
        }));
        assert_eq!(
            body,
            format!(r#"{HEAD}"http":{{"auth":{{"htpasswd":{{}},"apikey":true}}}}}}"#)
        );
        let off = mgmt(serde_json::json!({
            "auth": {"htpasswd": {"path": "/etc/zot/htpasswd"}, "apikey": false},
        }));
        assert!(!off.contains("apikey"), "{off}");
        let with_bearer = mgmt(serde_json::json!({
            "auth": {"bearer": {"realm": "r", "service": "s", "cert": "/c"}, "apikey": true},
        }));
        let v: serde_json::Value = serde_json::from_str(&with_bearer).unwrap();
        assert_eq!(
            v["http"],
            serde_json::json!({"auth": {"bearer": {"realm": "r", "service": "s"}, "apikey": true}})
        );
    }

    #[test]
    fn client_certificates_alone_offer_no_login() {
        let body = mgmt(serde_json::json!({
            "tls": {"cert": "/c.pem", "key": "/k.pem", "cacert": "/ca.pem"},
            "auth": {"mtls": {}},
        }));
        assert_eq!(body, format!(r#"{HEAD}"http":{{"auth":{{}}}}}}"#));
    }
}

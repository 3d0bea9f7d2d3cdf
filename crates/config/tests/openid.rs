//! `http.auth.openid`, `sessionKeysFile`, `secureSession` and
//! `sessionDriver`: zot's keys read, their problems named by key path.

use zot_config::{Config, Format, ProviderKind, SessionDriver};

fn parse(text: &str) -> Result<Config, Vec<zot_config::Problem>> {
    Config::from_str(text, Format::Json)
}

#[test]
fn providers_defaults_and_session_keys() {
    let config = parse(
        r#"{"storage": {"rootDirectory": "/d"}, "http": {"auth": {
            "sessionKeysFile": "/k.json", "secureSession": true,
            "sessionDriver": {"name": "redis", "url": "redis://127.0.0.1:6379"},
            "openid": {"callbackAllowOrigins": ["http://ui.example:3000/"], "providers": {
                "oidc": {"name": "SSO", "issuer": "https://sso.example", "clientid": "zot",
                         "scopes": ["email"], "claimMapping": {"username": "preferred_username"}},
                "google": {"credentialsFile": "/g.json", "scopes": ["openid", "email"]},
                "github": {"clientid": "gh", "clientsecret": "s", "scopes": ["read:org"],
                           "authurl": "http://127.0.0.1:1/authorize"}}}}}}"#,
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    let auth = config.http.auth.unwrap_or_else(|| panic!("auth"));
    assert!(auth.secure_session);
    assert_eq!(auth.session_keys_file.as_deref(), Some("/k.json".as_ref()));
    assert_eq!(
        auth.session_driver,
        SessionDriver::Redis {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "zotsession".into()
        }
    );
    let openid = auth.openid.unwrap_or_else(|| panic!("openid"));
    assert_eq!(openid.callback_allow_origins, ["http://ui.example:3000"]);
    let p = |k| {
        openid
            .providers
            .iter()
            .find(|p| p.kind == k)
            .unwrap_or_else(|| panic!("{k:?}"))
    };
    let oidc = p(ProviderKind::Oidc);
    assert_eq!(oidc.scopes, ["openid", "email"], "openid prepended");
    assert_eq!(oidc.username_claim, "preferred_username");
    assert_eq!(oidc.groups_claim, "groups");
    assert_eq!(
        p(ProviderKind::Google).issuer.as_deref(),
        Some("https://accounts.google.com")
    );
    let github = p(ProviderKind::Github);
    assert_eq!(github.issuer, None);
    assert!(!format!("{github:?}").contains("\"s\""), "secret redacted");
}

#[test]
fn problems_named_by_key() {
    for (text, path) in [
        (
            r#"{"providers": {"okta": {"scopes": []}}}"#,
            "http.auth.openid.providers.okta",
        ),
        (
            r#"{"providers": {"oidc": {"clientid": "c", "scopes": []}}}"#,
            "http.auth.openid.providers.oidc.issuer",
        ),
        (
            r#"{"providers": {"oidc": {"clientid": "c", "issuer": "https://i"}}}"#,
            "http.auth.openid.providers.oidc.scopes",
        ),
        (
            r#"{"providers": {"oidc": {"issuer": "https://i", "scopes": []}}}"#,
            "http.auth.openid.providers.oidc.clientid",
        ),
        (
            r#"{"callbackAllowOrigins": ["http://ui.example/path"]}"#,
            "http.auth.openid.callbackAllowOrigins[0]",
        ),
        (
            r#"{"providers": {"github": {"clientid": "c", "scopes": [], "issuer": "https://i"}}}"#,
            "http.auth.openid.providers.github.issuer",
        ),
    ] {
        let text = format!(
            r#"{{"storage": {{"rootDirectory": "/d"}}, "http": {{"auth": {{"openid": {text}}}}}}}"#
        );
        let problems = parse(&text).err().unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.path == path),
            "{text}: expected a problem at {path}, got {problems:?}"
        );
    }
    let text = r#"{"storage": {"rootDirectory": "/d"}, "http": {"auth": {"sessionDriver": {"name": "memcached"}}}}"#;
    let problems = parse(text).err().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p.path == "http.auth.sessionDriver.name"),
        "{problems:?}"
    );
}

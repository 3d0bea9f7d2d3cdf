//! `Security::reloaded`: what a configuration reload keeps of the security
//! it replaces (the built-in token service while `http.auth.token` is
//! unchanged) and what it takes from the new configuration (access
//! control, users).

use zot_auth::{Action, Credentials, Security};
use zot_config::{Config, Format, HttpConfig};

/// `http` with an htpasswd file (an empty one: no password is checked
/// here), anonymous reads (so the registry is its own token server), and
/// `extra` merged into `http.auth.token`.
fn http(dir: &std::path::Path, anonymous: &[&str], token: serde_json::Value) -> HttpConfig {
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, "").expect("write htpasswd");
    let text = serde_json::json!({
        "storage": {"rootDirectory": dir.join("root")},
        "http": {
            "address": "127.0.0.1", "port": "5000",
            "auth": {"htpasswd": {"path": htpasswd}, "token": token},
            "accessControl": {"repositories": {"**": {"anonymousPolicy": anonymous}}}
        }
    });
    Config::from_str_with(
        &text.to_string(),
        Format::Json,
        zot_config::AVAILABLE_EXTENSIONS,
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
    .http
}

async fn bearer_ok(security: &Security, token: &str) -> bool {
    security
        .authenticate(Credentials::Bearer(token.to_owned()), None)
        .await
        .is_ok()
}

#[tokio::test]
async fn tokens_survive_a_reload_while_the_token_settings_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_settings = serde_json::json!({"enable": true});
    let first = http(dir.path(), &["read"], token_settings.clone());
    let running = Security::from_config(&first, None).expect("security");
    assert!(running.issues_tokens());
    let issued = running
        .issue_token(None, &["repository:app:pull".to_owned()])
        .expect("a token");
    assert!(bearer_ok(&running, &issued.token).await);

    // Access control changes: the new policy applies, the token stays valid.
    let second = http(dir.path(), &["read", "create"], token_settings);
    let reloaded = Security::reloaded(&second, &running, &first).expect("reloaded");
    assert!(bearer_ok(&reloaded, &issued.token).await);
    assert!(reloaded.allowed(None, "app", Action::Create));
    assert!(!running.allowed(None, "app", Action::Create));

    // Token settings change: a new service, whose key did not sign it.
    let third = http(
        dir.path(),
        &["read"],
        serde_json::json!({"enable": true, "service": "other"}),
    );
    let rekeyed = Security::reloaded(&third, &reloaded, &second).expect("reloaded");
    assert!(rekeyed.issues_tokens());
    assert!(!bearer_ok(&rekeyed, &issued.token).await);
}

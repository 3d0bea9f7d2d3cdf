//! Access control with long repository patterns: the most specific pattern
//! decides whatever its length (a matcher that gave up on long patterns let
//! a broader `**` rule with anonymous read take over).

use zot_auth::{Action, Identity, Method, Security};
use zot_config::{Config, Format};

fn security(repos: &[(&str, &str)]) -> Security {
    let repositories: Vec<String> = repos
        .iter()
        .map(|(pattern, policy)| format!("{pattern:?}: {policy}"))
        .collect();
    let text = format!(
        r#"{{"storage": {{"rootDirectory": "/tmp/unused"}},
            "http": {{"address": "127.0.0.1", "port": "5000",
                      "accessControl": {{"repositories": {{ {} }} }} }} }}"#,
        repositories.join(",")
    );
    let config = Config::from_str(&text, Format::Json).expect("valid config");
    Security::from_config(&config.http, None).expect("security")
}

fn user(name: &str) -> Identity {
    Identity {
        name: name.into(),
        groups: Vec::new(),
        method: Method::Htpasswd,
        grants: None,
        key: None,
    }
}

const ANONYMOUS_READ: &str = r#"{"anonymousPolicy": ["read"]}"#;
const ALICE_ONLY: &str = r#"{"policies": [{"users": ["alice"], "actions": ["read", "create"]}]}"#;

#[test]
fn reported_reproduction_gives_no_anonymous_read() {
    let repo = "internal/finance/payments/ledger/reconciliation/nightly-batch-worker";
    assert!(repo.len() > 64);
    let s = security(&[("**", ANONYMOUS_READ), (repo, ALICE_ONLY)]);
    assert!(!s.allowed(None, repo, Action::Read));
    assert!(!s.allowed(Some(&user("bob")), repo, Action::Read));
    assert!(s.allowed(Some(&user("alice")), repo, Action::Read));
    assert!(s.allowed(Some(&user("alice")), repo, Action::Create));
    // the broad rule still covers everything else
    assert!(s.allowed(None, "public/thing", Action::Read));
}

#[test]
fn patterns_up_to_255_bytes_with_stars_decide() {
    // a 255-byte name of 10-byte segments
    let segments: Vec<String> = (0..20).map(|i| format!("seg{i:02}-abcd")).collect();
    let mut repo = segments.join("/");
    repo.push_str(&"x".repeat(255 - repo.len()));
    assert_eq!(repo.len(), 255);
    let last = repo.rfind('/').expect("segments");
    let cases = [
        repo.clone(),
        format!("{}/**", &repo[..last]),
        format!("{}/*", &repo[..last]),
        format!("**/{}", &repo[repo.find('/').expect("segments") + 1..]),
        format!("{}*{}", &repo[..100], &repo[101..]),
        format!("{}/**/{}", &repo[..10], &repo[22..]),
    ];
    for pattern in &cases {
        let s = security(&[("**", ANONYMOUS_READ), (pattern, ALICE_ONLY)]);
        assert!(!s.allowed(None, &repo, Action::Read), "{pattern}");
        assert!(
            s.allowed(Some(&user("alice")), &repo, Action::Read),
            "{pattern}"
        );
    }
}

#[test]
fn invalid_pattern_is_a_config_problem() {
    let text = r#"{"storage": {"rootDirectory": "/tmp/unused"},
        "http": {"accessControl": {"repositories": {"team/[abc": {"anonymousPolicy": ["read"]}}}}}"#;
    let problems = Config::from_str(text, Format::Json).expect_err("refused");
    assert!(
        problems
            .iter()
            .any(|p| p.path.contains("team/[abc") && p.message.contains("invalid glob")),
        "{problems:?}"
    );
}

//! Keys that used to be accepted and then ignored or quietly altered:
//! `distSpecVersion` must be a version, `http.accessControl.metrics` and
//! `extensions.metrics` keys are checked, `http.auth.failDelay`
//! above an hour is refused rather than capped, and repository globs must
//! be valid.

use std::time::Duration;

use zot_config::{Config, Format, Problem};

fn load(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Json)
}

fn with(extra: &str) -> String {
    format!(r#"{{"storage": {{"rootDirectory": "/d"}}, {extra}}}"#)
}

fn problem_at(text: &str, path: &str, needle: &str) {
    let problems = load(text).expect_err("refused");
    assert!(
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(needle)),
        "expected {path}: …{needle}…, got {problems:?}"
    );
}

#[test]
fn dist_spec_version_must_be_a_version() {
    for good in ["1.1.1", "1.1.0", "1.0.0", "1.2.0-dev", "1.1.1+build.5"] {
        let config = load(&with(&format!(r#""distSpecVersion": "{good}""#)))
            .unwrap_or_else(|p| panic!("{good}: {p:?}"));
        assert_eq!(config.dist_spec_version, good);
    }
    for bad in [
        "", "latest", "1.1", "v1.1.1", "1.1.1.1", "01.1.1", "1.1.x", "1.1.1-",
    ] {
        problem_at(
            &with(&format!(r#""distSpecVersion": "{bad}""#)),
            "distSpecVersion",
            "not a version",
        );
    }
}

#[test]
fn access_control_metrics_keys_are_checked() {
    problem_at(
        &with(r#""http": {"accessControl": {"metrics": {"anonymousPolicy": ["pull"]}}}"#),
        "http.accessControl.metrics.anonymousPolicy[0]",
        "unknown action",
    );
    problem_at(
        &with(r#""http": {"accessControl": {"metrics": {"user": ["m"]}}}"#),
        "http.accessControl.metrics.user",
        "",
    );
}

#[test]
fn fail_delay_above_an_hour_is_refused_not_capped() {
    let auth = |delay: &str| {
        with(&format!(
            r#""http": {{"auth": {{"htpasswd": {{"path": "h"}}, "failDelay": {delay}}}}}"#
        ))
    };
    let config = load(&auth("3600")).expect("an hour is accepted");
    let delay = config.http.auth.as_ref().map(|a| a.fail_delay);
    assert_eq!(delay, Some(Duration::from_secs(3600)));
    problem_at(&auth("3601"), "http.auth.failDelay", "at most 3600");
    problem_at(&auth("\"2h\""), "http.auth.failDelay", "at most 3600");
}

#[test]
fn invalid_repository_globs_are_problems() {
    problem_at(
        &with(r#""http": {"accessControl": {"repositories": {"a/{b,c": {}}}}"#),
        "http.accessControl.repositories.a/{b,c",
        "invalid glob",
    );
    problem_at(
        &with(r#""storage": {"rootDirectory": "/d", "retention": {"policies": [{"repositories": ["x/[", "ok/**"]}]}}"#)
            .replacen(r#""storage": {"rootDirectory": "/d"}, "#, "", 1),
        "storage.retention.policies[0].repositories[0]",
        "invalid glob",
    );
}

#[test]
fn ldap_bind_password_never_appears_in_debug_output() {
    let config = load(&with(
        r#""http": {"auth": {"ldap": {"address": "ldap.example", "baseDN": "dc=x",
            "userAttribute": "uid", "bindDN": "cn=reader", "bindPassword": "hunter2-s3cret"}}}"#,
    ))
    .expect("loads");
    let ldap = config.http.auth.as_ref().and_then(|a| a.ldap.as_ref());
    assert_eq!(
        ldap.and_then(|l| l.bind_password.as_deref()),
        Some("hunter2-s3cret")
    );
    for text in [
        format!("{ldap:?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("cn=reader"), "{text}");
    }
}

#[test]
fn metrics_path_is_checked_and_defaults_to_slash_metrics() {
    for (bad, why) in [
        ("metrics", "start with /"),
        ("/", "not be /"),
        ("/v2", "not be /v2"),
        ("/v2/metrics", "not be /v2"),
        ("/a//b", "clean"),
        ("/a/../b", "clean"),
        ("/m/", "clean"),
        ("/readyz", "probe"),
    ] {
        problem_at(
            &with(&format!(
                r#""extensions": {{"metrics": {{"prometheus": {{"path": "{bad}"}}}}}}"#
            )),
            "extensions.metrics.prometheus.path",
            why,
        );
    }
    let path = |text: &str| {
        let cfg = load(&with(text)).expect("accepted");
        cfg.extension("metrics")
            .and_then(|e| e.metrics())
            .map(|m| m.path)
    };
    assert_eq!(
        path(r#""extensions": {"metrics": {}}"#).as_deref(),
        Some("/metrics")
    );
    assert_eq!(
        path(r#""extensions": {"metrics": {"prometheus": {"path": "/ops/m"}}}"#).as_deref(),
        Some("/ops/m")
    );
    assert_eq!(
        path(r#""extensions": {"metrics": {"enable": false}}"#),
        None
    );
}

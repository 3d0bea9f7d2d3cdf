//! The storage lifecycle keys: `storage.gcTimeWindow`, `storage.retention`,
//! `extensions.scrub` and `extensions.lint`; and `extensions.search` (with
//! `cve`) and `extensions.ui`.

use std::time::Duration;

use zot_config::{Config, Format, KeepTagsRule, Problem, RetentionPolicy, TimeWindow};

fn json(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Json)
}

fn paths(result: Result<Config, Vec<Problem>>) -> Vec<String> {
    match result {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(problems) => problems.into_iter().map(|p| p.path).collect(),
    }
}

#[test]
fn retention_with_zot_defaults_and_every_rule() {
    let config = json(
        r#"{"storage": {"rootDirectory": "/d", "retention": {"dryRun": true, "policies": [
            {"repositories": ["infra/*", "tmp/**"], "deleteReferrers": true,
             "keepTags": [{"patterns": ["v2.*"], "mostRecentlyPushedCount": 2,
                           "mostRecentlyPulledCount": 3, "pulledWithin": "720h", "pushedWithin": "1h"}]},
            {"keepTags": [{}]}
        ]}}}"#,
    )
    .expect("loads");
    let r = &config.storage.retention;
    assert!(r.dry_run);
    assert_eq!(r.delay, Duration::from_secs(24 * 3600));
    assert_eq!(
        r.policies,
        vec![
            RetentionPolicy {
                repositories: vec!["infra/*".into(), "tmp/**".into()],
                delete_referrers: true,
                delete_untagged: true,
                keep_tags: vec![KeepTagsRule {
                    patterns: vec!["v2.*".into()],
                    pulled_within: Some(Duration::from_secs(720 * 3600)),
                    pushed_within: Some(Duration::from_secs(3600)),
                    most_recently_pushed_count: Some(2),
                    most_recently_pulled_count: Some(3),
                }],
            },
            RetentionPolicy {
                repositories: vec![],
                delete_referrers: false,
                delete_untagged: true,
                keep_tags: vec![KeepTagsRule::default()],
            },
        ]
    );
}

#[test]
fn retention_problems_name_their_item() {
    assert_eq!(
        paths(json(
            r#"{"storage": {"rootDirectory": "/d", "retention": {"delay": "x", "policies": [
                {"keepTags": [{"patterns": ["ok", "("], "pushedWithin": 5.5, "colour": 1}]},
                {"deleteUntagged": "no"}
            ]}}}"#
        )),
        vec![
            "storage.retention.delay",
            "storage.retention.policies[0].keepTags[0].patterns[1]",
            "storage.retention.policies[0].keepTags[0].pushedWithin",
            "storage.retention.policies[0].keepTags[0].colour",
            "storage.retention.policies[1].deleteUntagged",
        ]
    );
}

#[test]
fn gc_time_window() {
    let config = json(r#"{"storage": {"rootDirectory": "/d", "gcTimeWindow": "22:30-06:00"}}"#)
        .expect("loads");
    let w = config.storage.gc_time_window.expect("set");
    assert_eq!((w.start_minute, w.end_minute), (22 * 60 + 30, 6 * 60));
    assert!(w.contains(23 * 60) && w.contains(0) && !w.contains(12 * 60));
    let day: TimeWindow = "01:00-08:00".parse().expect("valid");
    assert!(day.contains(60) && !day.contains(8 * 60));
    assert_eq!(
        paths(json(
            r#"{"storage": {"rootDirectory": "/d", "gcTimeWindow": "25:00-01:00"}}"#
        )),
        vec!["storage.gcTimeWindow"]
    );
}

/// An empty window would stop GC for good: refused.
#[test]
fn empty_gc_time_window_is_refused() {
    assert_eq!(
        paths(json(
            r#"{"storage": {"rootDirectory": "/d", "gcTimeWindow": "08:00-08:00"}}"#
        )),
        vec!["storage.gcTimeWindow"]
    );
    assert!("08:00-08:00".parse::<TimeWindow>().is_err());
    assert!("08:00-08:01".parse::<TimeWindow>().is_ok());
}

/// A run due outside the window starts when the window next opens; inside
/// it, at once. Times are seconds since the epoch (day 0 began at 00:00 UTC).
#[test]
fn gc_time_window_defers_a_due_run_to_its_opening() {
    use std::time::Duration;
    let at = |day: u64, h: u64, m: u64| Duration::from_secs(day * 86_400 + h * 3600 + m * 60);
    let start = |w: &str, due: Duration| {
        w.parse::<TimeWindow>()
            .expect("valid")
            .start_of_run_due_at(due)
    };
    // A day window.
    assert_eq!(start("02:00-03:00", at(10, 2, 30)), at(10, 2, 30));
    assert_eq!(start("02:00-03:00", at(10, 1, 59)), at(10, 2, 0));
    assert_eq!(start("02:00-03:00", at(10, 3, 0)), at(11, 2, 0));
    assert_eq!(start("02:00-03:00", at(10, 12, 0)), at(11, 2, 0));
    let within = at(10, 2, 0) + Duration::from_millis(1500);
    assert_eq!(start("02:00-03:00", within), within);
    // A window across midnight.
    assert_eq!(start("23:30-00:30", at(10, 12, 0)), at(10, 23, 30));
    assert_eq!(start("23:30-00:30", at(10, 23, 45)), at(10, 23, 45));
    assert_eq!(start("23:30-00:30", at(11, 0, 10)), at(11, 0, 10));
    assert_eq!(start("23:30-00:30", at(11, 0, 30)), at(11, 23, 30));
    assert_eq!(start("22:00-06:00", at(10, 6, 0)), at(10, 22, 0));
}

#[test]
fn scrub_and_lint_settings() {
    let config = json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {
            "scrub": {"interval": "2h"}, "lint": {"enable": true, "mandatoryAnnotations": ["a", "b"]}}}"#,
    )
    .expect("loads");
    let scrub = config
        .extension("scrub")
        .and_then(|e| e.scrub())
        .expect("on");
    assert_eq!(scrub.interval, Duration::from_secs(7200));
    let lint = config.extension("lint").and_then(|e| e.lint()).expect("on");
    assert_eq!(lint.mandatory_annotations, ["a", "b"]);

    let off =
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"lint": {}}}"#).expect("loads");
    assert!(off.extension("lint").and_then(|e| e.lint()).is_none());

    assert_eq!(
        paths(json(
            r#"{"storage": {"rootDirectory": "/d"}, "extensions": {
                "scrub": {"interval": "0", "x": 1}, "lint": {"mandatoryAnnotations": "a"}}}"#
        )),
        vec![
            "extensions.scrub.interval",
            "extensions.scrub.x",
            "extensions.lint.mandatoryAnnotations",
        ]
    );
    // A build without an extension refuses to enable it.
    let text = r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"scrub": {}}}"#;
    let problems = Config::from_str_with(text, Format::Json, &["lint"]).expect_err("refused");
    assert_eq!(
        problems[0].to_string(),
        "extensions.scrub: not available in this build"
    );
}

#[test]
fn search_settings_and_cve() {
    let config = json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {}}}"#)
        .expect("loads");
    let search = config
        .extension("search")
        .and_then(|e| e.search())
        .expect("on by presence");
    assert_eq!(search.cve, None);

    let config = json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {"enable": true,
            "CVE": {"updateInterval": "30m", "trivy": {"dbRepository": "example.org/db",
            "vulnSeveritySources": ["nvd", "ghsa"], "sbom": {"enable": true, "format": "cyclonedx"}}}}}}"#,
    )
    .expect("loads");
    let cve = config
        .extension("search")
        .and_then(|e| e.search())
        .and_then(|s| s.cve)
        .expect("cve on");
    // Shorter than 2 h is raised to 2 h, as zot does.
    assert_eq!(cve.update_interval, zot_config::MIN_CVE_UPDATE_INTERVAL);
    assert_eq!(cve.trivy.db_repository, "example.org/db");
    assert_eq!(
        cve.trivy.java_db_repository,
        zot_config::DEFAULT_TRIVY_JAVA_DB
    );
    assert_eq!(cve.trivy.vuln_severity_sources, ["nvd", "ghsa"]);
    assert!(cve.trivy.sbom);
    assert_eq!(cve.trivy.sbom_format, zot_config::SbomFormat::CycloneDx);

    let cve = json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {"cve": {"updateInterval": "24h"}}}}"#,
    )
    .expect("loads")
    .extension("search")
    .and_then(|e| e.search())
    .and_then(|s| s.cve)
    .expect("cve on");
    assert_eq!(cve.update_interval, Duration::from_secs(24 * 3600));
    assert_eq!(cve.trivy, zot_config::TrivyConfig::default());

    let off = json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {"enable": false, "cve": {}}}}"#,
    )
    .expect("loads");
    assert!(off.extension("search").and_then(|e| e.search()).is_none());
}

#[test]
fn search_and_ui_problems_name_their_keys() {
    assert_eq!(
        paths(json(
            r#"{"storage": {"rootDirectory": "/d"}, "extensions": {
                "search": {"cve": {"updateInterval": "soon", "trivy": {"dbRepository": "",
                "sbom": {"format": "xml", "x": 1}, "y": 2}, "z": 3}, "w": 4},
                "ui": {"enable": true, "path": "/ui"}}}"#
        )),
        [
            "extensions.search.cve.updateInterval",
            "extensions.search.cve.trivy.dbRepository",
            "extensions.search.cve.trivy.sbom.format",
            "extensions.search.cve.trivy.sbom.x",
            "extensions.search.cve.trivy.y",
            "extensions.search.cve.z",
            "extensions.search.w",
            "extensions.ui.path",
        ]
    );
    // ui needs search on, as in zot.
    let problems = json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {"enable": false}, "ui": {}}}"#,
    )
    .expect_err("refused");
    assert_eq!(paths(Err(problems.clone())), ["extensions.ui"]);
    assert!(
        problems[0].to_string().contains("search"),
        "{}",
        problems[0]
    );
    // A build without search refuses both by name.
    let text = r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {}, "ui": {}}}"#;
    let problems =
        Config::from_str_with(text, Format::Json, &["scrub", "lint"]).expect_err("refused");
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        lines,
        [
            "extensions.search: not available in this build",
            "extensions.ui: not available in this build",
        ]
    );
}

#[test]
fn cve_osv_source() {
    let cve = |osv: &str| {
        json(&format!(
            r#"{{"storage": {{"rootDirectory": "/d"}}, "extensions": {{"search": {{"cve": {{"osv": {osv}}}}}}}}}"#
        ))
        .map(|c| {
            c.extension("search")
                .and_then(|e| e.search())
                .and_then(|s| s.cve)
                .expect("cve on")
                .osv
        })
    };
    let default =
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"search": {"cve": {}}}}"#)
            .expect("loads")
            .extension("search")
            .and_then(|e| e.search())
            .and_then(|s| s.cve)
            .expect("cve on");
    assert_eq!(default.osv, zot_config::OsvConfig::default());
    assert_eq!(
        default.osv.source,
        zot_config::OsvSource::Url(zot_config::DEFAULT_OSV_URL.into())
    );

    let osv =
        cve(r#"{"url": "http://mirror.example/osv", "ecosystems": ["Debian", "PyPI", "Debian"]}"#)
            .expect("loads");
    assert_eq!(
        osv.source,
        zot_config::OsvSource::Url("http://mirror.example/osv".into())
    );
    assert_eq!(osv.ecosystems, ["Debian", "PyPI"]);
    let osv = cve(r#"{"path": "/srv/osv"}"#).expect("loads");
    assert_eq!(osv.source, zot_config::OsvSource::Path("/srv/osv".into()));
    let osv = cve(r#"{"repository": "registry.example:5000/osv/db:latest"}"#).expect("loads");
    assert_eq!(
        osv.source,
        zot_config::OsvSource::Repository("registry.example:5000/osv/db:latest".into())
    );

    let problems = |osv: &str| match cve(osv) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(p) => p.into_iter().map(|p| p.path).collect::<Vec<_>>(),
    };
    assert_eq!(
        problems(r#"{"url": "http://a", "path": "/b"}"#),
        ["extensions.search.cve.osv"]
    );
    assert_eq!(
        problems(r#"{"url": "ftp://a"}"#),
        ["extensions.search.cve.osv.url"]
    );
    assert_eq!(
        problems(r#"{"path": ""}"#),
        ["extensions.search.cve.osv.path"]
    );
    assert_eq!(
        problems(r#"{"repository": "just-a-name"}"#),
        ["extensions.search.cve.osv.repository"]
    );
    assert_eq!(
        problems(r#"{"repository": "host:5000/repo"}"#),
        ["extensions.search.cve.osv.repository"]
    );
    assert_eq!(
        problems(r#"{"ecosystems": ["Debian", "", "a/b", 3], "extra": 1}"#),
        [
            // Items of the wrong type first, then invalid names.
            "extensions.search.cve.osv.ecosystems[3]",
            "extensions.search.cve.osv.ecosystems[1]",
            "extensions.search.cve.osv.ecosystems[2]",
            "extensions.search.cve.osv.extra",
        ]
    );
    assert_eq!(problems(r#""http://a""#), ["extensions.search.cve.osv"]);
}

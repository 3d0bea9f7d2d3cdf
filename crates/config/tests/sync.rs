//! `extensions.sync`: zot's defaults, and each validation rule naming its
//! key path.

use std::time::Duration;

use zot_config::{Config, Format, Problem};

fn with_sync(sync: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(
        &format!(r#"{{"storage": {{"rootDirectory": "/d"}}, "extensions": {{"sync": {sync}}}}}"#),
        Format::Json,
    )
}

fn paths(result: Result<Config, Vec<Problem>>) -> Vec<String> {
    match result {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(p) => p
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect(),
    }
}

#[test]
fn defaults() {
    let config = match with_sync(
        r#"{"credentialsFile": "/c.json", "registries": [{"urls": ["https://r:5000"],
            "pollInterval": "1h", "content": [{"prefix": "/a/**", "destination": "/m/"}]}]}"#,
    ) {
        Ok(c) => c,
        Err(p) => panic!("{p:?}"),
    };
    let sync = config
        .extension("sync")
        .and_then(|e| e.sync())
        .expect("sync on");
    assert_eq!(
        sync.credentials_file.as_deref(),
        Some(std::path::Path::new("/c.json"))
    );
    let r = &sync.registries[0];
    assert_eq!(r.urls, ["https://r:5000"]);
    assert_eq!(r.poll_interval, Some(Duration::from_secs(3600)));
    assert!(r.tls_verify);
    assert!(!r.on_demand);
    assert!(r.sync_legacy_cosign_tags);
    assert_eq!(r.sync_timeout, Duration::from_secs(3 * 3600));
    assert_eq!(r.response_header_timeout, Duration::from_secs(30));
    assert_eq!(
        (r.max_retries, r.retry_delay, r.max_retry_delay),
        (None, None, None)
    );
    assert_eq!(r.content[0].prefix, "a/**");
    assert_eq!(r.content[0].destination.as_deref(), Some("m"));

    // maxRetryDelay defaults to retryDelay; a zero pollInterval is none.
    let config = with_sync(
        r#"{"registries": [{"urls": ["http://r"], "pollInterval": "0s", "maxRetries": 2, "retryDelay": "5s"}]}"#,
    )
    .expect("loads");
    let r = &config
        .extension("sync")
        .and_then(|e| e.sync())
        .expect("on")
        .registries[0];
    assert_eq!(r.poll_interval, None);
    assert_eq!(r.max_retries, Some(2));
    assert_eq!(r.max_retry_delay, Some(Duration::from_secs(5)));
}

#[test]
fn each_rule_names_its_key() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"registries": [{}]}"#,
            "extensions.sync.registries[0].urls: at least one URL",
        ),
        (
            r#"{"registries": [{"urls": ["ftp://r"]}]}"#,
            "extensions.sync.registries[0].urls[0]: must be",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "maxRetries": 3}]}"#,
            "extensions.sync.registries[0].maxRetries: needs retryDelay",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "retryDelay": "5s", "maxRetryDelay": "1s"}]}"#,
            "extensions.sync.registries[0].maxRetryDelay: must not be shorter",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "manifestCheckInterval": "1m"}]}"#,
            "extensions.sync.registries[0].manifestCheckInterval: needs onDemand",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "reqConcurrent": 0}]}"#,
            "extensions.sync.registries[0].reqConcurrent: expected an integer greater than 0",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "reqPerSec": -1}]}"#,
            "extensions.sync.registries[0].reqPerSec: expected a finite number",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "maxIdleConnsPerHost": 0}]}"#,
            "extensions.sync.registries[0].maxIdleConnsPerHost: expected an integer",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "content": [{"prefix": "a/[b"}]}]}"#,
            "extensions.sync.registries[0].content[0].prefix: invalid glob",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "content": [{"prefix": "a", "tags": {"regex": "("}}]}]}"#,
            "extensions.sync.registries[0].content[0].tags.regex: invalid regular expression",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "content": [{"prefix": "a", "tags": {"excludeRegex": "["}}]}]}"#,
            "extensions.sync.registries[0].content[0].tags.excludeRegex: invalid regular expression",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "content": [{"prefix": "a/b", "destination": "/", "stripPrefix": true}]}]}"#,
            "extensions.sync.registries[0].content[0].stripPrefix: with destination",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "content": [{}]}]}"#,
            "extensions.sync.registries[0].content[0].prefix: is required",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "credentialHelper": "vault"}]}"#,
            "extensions.sync.registries[0].credentialHelper: unknown credential helper",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "preserveDigest": true}]}"#,
            "extensions.sync.registries[0].preserveDigest: needs http.compat",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "oauth2CredentialHelper": {"tokenURL": "https://t"}}]}"#,
            "extensions.sync.registries[0].oauth2CredentialHelper.assertionFile: exactly one",
        ),
        (
            r#"{"registries": [{"urls": ["https://r"], "bogus": 1}]}"#,
            "extensions.sync.registries[0].bogus: unknown key",
        ),
        (
            r#"{"registries": {}}"#,
            "extensions.sync.registries: expected a list",
        ),
    ];
    for (sync, expected) in cases {
        let list = paths(with_sync(sync));
        assert_eq!(list.len(), 1, "{sync}: {list:?}");
        assert!(list[0].starts_with(expected), "{sync}: {list:?}");
    }
    // A /* glob makes stripPrefix with destination "/" valid.
    assert!(with_sync(
        r#"{"registries": [{"urls": ["https://r"], "content": [{"prefix": "a/*", "destination": "/", "stripPrefix": true}]}]}"#
    )
    .is_ok());
    // Remote storage needs downloadDir.
    let list = paths(Config::from_str(
        r#"{"storage": {"rootDirectory": "/d", "remoteCache": false, "storageDriver": {"name": "s3", "bucket": "b", "region": "r"}},
            "extensions": {"sync": {"registries": [{"urls": ["https://r"]}]}}}"#,
        Format::Json,
    ));
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        list[0].starts_with("extensions.sync.downloadDir: is required"),
        "{list:?}"
    );
}

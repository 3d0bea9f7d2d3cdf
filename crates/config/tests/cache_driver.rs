//! `storage.remoteCache` and `storage.cacheDriver` (zot's keys and rules):
//! the shared metadata store on Redis.

use std::time::Duration;

use zot_config::{CacheDriver, Config, Format, RedisMode, RedisTarget};

fn load(text: &str) -> Result<Config, Vec<String>> {
    Config::from_str(text, Format::Json).map_err(|ps| ps.iter().map(ToString::to_string).collect())
}

fn redis(config: &Config) -> &RedisTarget {
    match &config.storage.cache_driver {
        Some(CacheDriver::Redis(t)) => t,
        None => panic!("no cache driver in {config:?}"),
    }
}

const S3: &str = r#""storageDriver": {"name": "s3", "bucket": "b", "region": "r"}"#;

fn with_storage(keys: &str) -> String {
    format!(r#"{{"storage": {{"rootDirectory": "/d", {keys}}}}}"#)
}

#[test]
fn remote_storage_with_dedupe_defaults_to_the_remote_cache() {
    let c = load(&with_storage(&format!(
        r#"{S3}, "cacheDriver": {{"name": "redis", "url": "redis://localhost:6379"}}"#
    )))
    .unwrap();
    let t = redis(&c);
    assert_eq!(t.addrs, ["localhost:6379"]);
    assert_eq!(t.mode, RedisMode::Single);
    assert_eq!(t.key_prefix, "zot", "zot's default keyprefix");
    assert!(!c.storage.cache_driver_ignored);

    // Without a cacheDriver the default is an error (as zot), naming the fix.
    let problems = load(&with_storage(S3)).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("storage.remoteCache: is true by default")
            && problems[0].contains("remoteCache: false"),
        "{problems:?}"
    );
    // dedupe off, or remoteCache false: the embedded store, no problem.
    for keys in [
        format!(r#"{S3}, "dedupe": false"#),
        format!(r#"{S3}, "remoteCache": false"#),
    ] {
        let c = load(&with_storage(&keys)).unwrap();
        assert_eq!(c.storage.cache_driver, None);
    }
}

#[test]
fn remote_cache_needs_a_driver_and_a_driver_needs_remote_cache() {
    let problems = load(&with_storage(r#""remoteCache": true"#)).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("storage.remoteCache: needs storage.cacheDriver"),
        "{problems:?}"
    );
    // On local storage (the global store) Redis is allowed, as zot.
    let c = load(&with_storage(
        r#""remoteCache": true, "cacheDriver": {"name": "redis", "url": "redis://r:7000/2", "keyprefix": "reg1"}"#,
    ))
    .unwrap();
    assert_eq!(redis(&c).addrs, ["r:7000"]);
    assert_eq!(redis(&c).db, 2);
    assert_eq!(redis(&c).key_prefix, "reg1");
    // remoteCache false: the driver is ignored (the server warns), even
    // one this build lacks.
    for driver in [
        r#"{"name": "redis", "url": "redis://r"}"#,
        r#"{"name": "dynamodb", "region": "r"}"#,
    ] {
        let c = load(&with_storage(&format!(
            r#""remoteCache": false, "cacheDriver": {driver}"#
        )))
        .unwrap();
        assert_eq!(c.storage.cache_driver, None);
        assert!(c.storage.cache_driver_ignored);
    }
}

#[test]
fn dynamodb_and_unknown_drivers_are_refused() {
    let problems = load(&with_storage(&format!(
        r#"{S3}, "cacheDriver": {{"name": "dynamodb", "endpoint": "http://x", "region": "r", "cacheTablename": "T"}}"#
    )))
    .unwrap_err();
    assert_eq!(
        problems,
        ["storage.cacheDriver: not supported by this build"]
    );
    let problems = load(&with_storage(
        r#""remoteCache": true, "cacheDriver": {"name": "memcached"}"#,
    ))
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("storage.cacheDriver.name: unknown cache driver"),
        "{problems:?}"
    );
}

#[test]
fn individual_go_redis_keys() {
    let c = load(&with_storage(
        r#""remoteCache": true, "cacheDriver": {"name": "redis", "addr": ["h1:6379", "h2"],
            "username": "u", "password": "p", "dial_timeout": "5s", "pool_size": 3,
            "max_retries": 3, "route_randomly": false}"#,
    ))
    .unwrap();
    let t = redis(&c);
    assert_eq!(t.addrs, ["h1:6379", "h2:6379"]);
    assert_eq!(t.mode, RedisMode::Cluster, "several addresses: a cluster");
    assert_eq!(t.username.as_deref(), Some("u"));
    assert_eq!(t.password.as_deref(), Some("p"));
    assert_eq!(t.dial_timeout, Some(Duration::from_secs(5)));
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("\"p\""),
        "the password is never shown: {shown}"
    );

    let c = load(&with_storage(
        r#""remoteCache": true, "cacheDriver": {"name": "redis", "addr": ["s1:26379", "s2:26379"],
            "master_name": "zotmeta", "sentinel_password": "sp", "db": 1,
            "passwordfile": "/etc/zot/redis-password"}"#,
    ))
    .unwrap();
    let t = redis(&c);
    assert_eq!(
        t.mode,
        RedisMode::Sentinel {
            master_name: "zotmeta".into()
        }
    );
    assert_eq!(t.db, 1);
    assert_eq!(
        t.password_file.as_deref(),
        Some(std::path::Path::new("/etc/zot/redis-password"))
    );
    assert!(!format!("{c:?}").contains("\"sp\""));
}

#[test]
fn bad_redis_settings_name_their_key() {
    for (driver, expected) in [
        (
            r#"{"name": "redis", "url": "http://r"}"#,
            "storage.cacheDriver.url: expected a redis://",
        ),
        (
            r#"{"name": "redis", "url": "redis://r?bogus=1"}"#,
            "storage.cacheDriver.url: unexpected option",
        ),
        (
            r#"{"name": "redis", "url": "redis://r", "addr": "h"}"#,
            "storage.cacheDriver.addr: not read beside url",
        ),
        (
            r#"{"name": "redis", "addr": "h:x"}"#,
            "storage.cacheDriver.addr: invalid address",
        ),
        (
            r#"{"name": "redis", "addr": ["a", "b"], "db": 3}"#,
            "storage.cacheDriver.db: a Redis Cluster has only database 0",
        ),
        (
            r#"{"name": "redis", "bogus": 1}"#,
            "storage.cacheDriver.bogus: unknown key",
        ),
        (
            r#"{"name": "redis", "url": "redis://a?addr=b", "keyprefix": "z{1}"}"#,
            "storage.cacheDriver.keyprefix: with a Redis Cluster the prefix may not hold",
        ),
    ] {
        let problems = load(&with_storage(&format!(
            r#""remoteCache": true, "cacheDriver": {driver}"#
        )))
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{driver}: {problems:?}");
        assert!(problems[0].starts_with(expected), "{driver}: {problems:?}");
    }
}

#[test]
fn sub_paths_follow_zot_and_keep_their_keys_apart() {
    let sub = |keys: &str| {
        format!(
            r#"{{"storage": {{"rootDirectory": "/d", {S3}, "cacheDriver": {{"name": "redis", "url": "redis://r"}},
                "subPaths": {{"/a": {{"rootDirectory": "/e", {keys}}}}}}}}}"#
        )
    };
    // Local storage with remote caching: refused for a sub-path, as zot.
    let problems = load(&sub(r#""remoteCache": true"#)).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("storage.subPaths./a.remoteCache: cannot be true"),
        "{problems:?}"
    );
    // The same Redis and prefix as the default store: refused.
    let problems = load(&sub(&format!(
        r#"{S3}, "dedupe": true, "cacheDriver": {{"name": "redis", "url": "redis://r"}}"#
    )))
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("storage.subPaths./a.cacheDriver.keyprefix: the same Redis"),
        "{problems:?}"
    );
    // A prefix of its own: accepted.
    let c = load(&sub(&format!(
        r#"{S3}, "dedupe": true, "cacheDriver": {{"name": "redis", "url": "redis://r", "keyprefix": "a"}}"#
    )))
    .unwrap();
    match &c.storage.sub_paths["/a"].cache_driver {
        Some(CacheDriver::Redis(t)) => assert_eq!(t.key_prefix, "a"),
        None => panic!("sub-path without its driver"),
    }
}

#[test]
fn the_session_driver_reads_urls_as_the_cache_driver_and_hides_passwords() {
    let with = |url: &str| {
        format!(
            r#"{{"storage": {{"rootDirectory": "/d"}}, "http": {{"auth": {{"sessionDriver": {{"name": "redis", "url": "{url}"}}}}}}}}"#
        )
    };
    let c = load(&with("redis://u:hunter2@r:6380/1")).unwrap();
    let shown = format!("{:?}", c.http);
    assert!(!shown.contains("hunter2"), "{shown}");
    let problems = load(&with("redis://r?bogus=1")).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("http.auth.sessionDriver.url: required"),
        "{problems:?}"
    );
    // One server only: a cluster or sentinel URL is named, not used as one.
    for url in ["redis://a:1?addr=b:2", "redis://s:26379?master_name=m"] {
        let problems = load(&with(url)).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("http.auth.sessionDriver.url: sessions are kept on one"),
            "{problems:?}"
        );
    }
}

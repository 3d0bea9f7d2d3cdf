//! `storage.subPaths`: a store of its own per route prefix, read with the
//! keys of `storage` and zot's sub-path defaults; prefixes and root
//! directories that cannot work are problems naming their key path.

use std::path::PathBuf;
use std::time::Duration;

use zot_config::{Config, Format, Problem, StorageConfig};

fn json(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Json)
}

fn paths(result: Result<Config, Vec<Problem>>) -> Vec<String> {
    match result {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(problems) => problems.iter().map(|p| p.path.clone()).collect(),
    }
}

#[test]
fn sub_paths_have_their_own_settings_and_zots_defaults() {
    let config = json(
        r#"{"storage": {"rootDirectory": "/r", "subPaths": {
            "/a": {"rootDirectory": "/ra", "dedupe": true},
            "/b/c": {"rootDirectory": "/rb", "gc": true, "gcInterval": "1s",
                     "retention": {"delay": "2h", "policies": [{"keepTags": [{"patterns": ["v.*"]}]}]}},
            "/d": {"rootDirectory": "/rd", "gc": true, "gcDelay": "5m", "gcInterval": "10m", "commit": true}
        }}}"#,
    )
    .expect("loads");
    let subs = &config.storage.sub_paths;
    assert_eq!(
        subs.keys().collect::<Vec<_>>(),
        ["/a", "/b/c", "/d"],
        "keys as written"
    );
    let a = &subs["/a"];
    assert_eq!(a.root_directory, PathBuf::from("/ra"));
    assert!(
        a.dedupe && !a.gc,
        "a sub-path's gc defaults to false, as in zot"
    );
    assert_eq!(
        (a.gc_delay, a.gc_interval),
        (Duration::ZERO, Duration::ZERO)
    );
    let b = &subs["/b/c"];
    assert!(
        !b.dedupe,
        "a sub-path's dedupe defaults to false, as in zot"
    );
    assert!(b.gc);
    assert_eq!(b.gc_delay, Duration::from_secs(3600));
    assert_eq!(b.gc_interval, Duration::from_secs(1));
    assert_eq!(b.retention.delay, Duration::from_secs(7200));
    assert_eq!(b.retention.policies[0].keep_tags[0].patterns, ["v.*"]);
    let d = &subs["/d"];
    assert!(d.commit);
    assert_eq!(
        (d.gc_delay, d.gc_interval),
        (Duration::from_secs(300), Duration::from_secs(600))
    );
    assert!(a.sub_paths.is_empty());
    // The global section keeps its own defaults.
    assert!(config.storage.dedupe && config.storage.gc);
    assert_eq!(StorageConfig::route_prefix("/b/c/"), "b/c");
}

#[test]
fn bad_prefixes_and_roots_are_named() {
    let cases = [
        (r#""a": {"rootDirectory": "/x"}"#, "storage.subPaths.a"),
        (r#""/": {"rootDirectory": "/x"}"#, "storage.subPaths./"),
        (r#""/A": {"rootDirectory": "/x"}"#, "storage.subPaths./A"),
        (
            r#""/a//b": {"rootDirectory": "/x"}"#,
            "storage.subPaths./a//b",
        ),
        (
            r#""/a": {"rootDirectory": "/r"}"#,
            "storage.subPaths./a.rootDirectory",
        ),
        (
            r#""/a": {"rootDirectory": "/r/inner"}"#,
            "storage.subPaths./a.rootDirectory",
        ),
        (
            r#""/a": {"rootDirectory": "/"}"#,
            "storage.subPaths./a.rootDirectory",
        ),
        (
            r#""/a": {"dedupe": true}"#,
            "storage.subPaths./a.rootDirectory",
        ),
        (
            r#""/a": {"rootDirectory": "/x", "gc": true, "gcDelay": "0s"}"#,
            "storage.subPaths./a.gcDelay",
        ),
        (
            r#""/a": {"rootDirectory": "/x", "subPaths": {}}"#,
            "storage.subPaths./a.subPaths",
        ),
        (
            r#""/a": {"rootDirectory": "/x", "bogus": 1}"#,
            "storage.subPaths./a.bogus",
        ),
        (
            r#""/a": {"rootDirectory": "/x", "gc": "yes"}"#,
            "storage.subPaths./a.gc",
        ),
        (
            r#""/a": {"rootDirectory": "/x", "retention": {"delay": "soon"}}"#,
            "storage.subPaths./a.retention.delay",
        ),
    ];
    for (sub, path) in cases {
        let text = format!(r#"{{"storage": {{"rootDirectory": "/r", "subPaths": {{{sub}}}}}}}"#);
        let got = paths(json(&text));
        assert_eq!(got, [path], "{text}");
    }
}

#[test]
fn sub_paths_share_a_root_only_with_the_same_settings() {
    let same = r#"{"storage": {"rootDirectory": "/r", "subPaths": {
        "/a": {"rootDirectory": "/s", "dedupe": true},
        "/b": {"rootDirectory": "/s", "dedupe": true}}}}"#;
    json(same).expect("one store for both prefixes");
    let different = same.replacen(r#""dedupe": true}}"#, r#""dedupe": false}}"#, 1);
    assert_eq!(
        paths(json(&different)),
        ["storage.subPaths./b.rootDirectory"]
    );
    let nested = r#"{"storage": {"rootDirectory": "/r", "subPaths": {
        "/a": {"rootDirectory": "/s"},
        "/b": {"rootDirectory": "/s/b"}}}}"#;
    assert_eq!(paths(json(nested)), ["storage.subPaths./b.rootDirectory"]);
    let duplicate = r#"{"storage": {"rootDirectory": "/r", "subPaths": {
        "/a": {"rootDirectory": "/s"},
        "/a/": {"rootDirectory": "/t"}}}}"#;
    assert_eq!(paths(json(duplicate)), ["storage.subPaths./a/"]);
}

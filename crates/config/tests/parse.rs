//! Parsing from text: defaults, case-insensitive keys, JSON/YAML equivalence,
//! and every kind of problem, each naming its key path.

use std::path::PathBuf;
use std::time::Duration;

use zot_config::{Compat, Config, Format, LogLevel, Problem};

fn json(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Json)
}

fn yaml(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Yaml)
}

fn ok(result: Result<Config, Vec<Problem>>) -> Config {
    match result {
        Ok(config) => config,
        Err(problems) => panic!("expected Ok, got {problems:?}"),
    }
}

/// The problems as `path: message` strings.
fn problems(result: Result<Config, Vec<Problem>>) -> Vec<String> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts exactly one problem, at `path`, whose message contains `message`.
fn one_problem(result: Result<Config, Vec<Problem>>, path: &str, message: &str) {
    let list = match result {
        Ok(config) => panic!("expected a problem at {path}, got {config:?}"),
        Err(list) => list,
    };
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].path, path, "{list:?}");
    assert!(
        list[0].message.contains(message),
        "{:?} lacks {message:?}",
        list[0].message
    );
}

const MINIMAL: &str = r#"{"storage": {"rootDirectory": "/srv/zot"}}"#;

#[test]
fn defaults_are_zots() {
    let config = ok(json(MINIMAL));
    assert_eq!(config.dist_spec_version, "1.1.1");
    assert_eq!(config.storage.root_directory, PathBuf::from("/srv/zot"));
    assert!(config.storage.dedupe);
    assert!(config.storage.gc);
    assert_eq!(config.storage.gc_delay, Duration::from_secs(3600));
    assert_eq!(config.storage.gc_interval, Duration::from_secs(3600));
    assert!(!config.storage.commit);
    assert_eq!(config.http.address, "127.0.0.1");
    assert_eq!(config.http.port, 5000);
    assert_eq!(config.http.realm, "");
    assert!(config.http.compat.is_empty() && !config.docker2s2());
    assert!(config.http.tls.is_none());
    assert_eq!(config.log.level, LogLevel::Debug);
    assert_eq!((config.log.output, config.log.audit), (None, None));
    assert!(config.extensions.is_empty());
    assert_eq!(config.scheduler.num_workers, None);
}

#[test]
fn gc_off_zeroes_its_periods_unless_set() {
    let config = ok(json(r#"{"storage": {"rootDirectory": "/d", "gc": false}}"#));
    assert_eq!(
        (config.storage.gc_delay, config.storage.gc_interval),
        (Duration::ZERO, Duration::ZERO)
    );
    let config = ok(json(
        r#"{"storage": {"rootDirectory": "/d", "gc": false, "gcDelay": "5m"}}"#,
    ));
    assert_eq!(config.storage.gc_delay, Duration::from_secs(300));
}

#[test]
fn embedded_default() {
    let config = Config::embedded_default();
    assert_eq!(
        (config.http.address.as_str(), config.http.port),
        ("127.0.0.1", 5000)
    );
    assert_eq!(config.storage.root_directory, PathBuf::from("./zot-data"));
    assert!(config.storage.dedupe && config.docker2s2());
    assert_eq!(config.log.level, LogLevel::Info);
    assert_eq!(config.log.output, None);
}

#[test]
fn every_section_is_read() {
    let config = ok(json(
        r#"{
          "distSpecVersion": "1.1.0",
          "storage": {"rootDirectory": "/d", "dedupe": false, "gc": true, "gcDelay": "2h45m10s",
                      "gcInterval": 1500000000, "commit": true, "remoteCache": false},
          "http": {"address": "0.0.0.0", "port": 0, "realm": "reg", "compat": ["docker2s2"],
                   "tls": {"cert": "c.pem", "key": "k.pem"}},
          "log": {"level": "WARN", "output": "/var/log/zot.log", "audit": ""},
          "extensions": {"search": {"enable": false}, "lint": {"mandatoryAnnotations": ["a"]}},
          "scheduler": {"numWorkers": 8}
        }"#,
    ));
    assert_eq!(config.dist_spec_version, "1.1.0");
    assert!(!config.storage.dedupe && config.storage.commit);
    assert_eq!(
        config.storage.gc_delay,
        Duration::from_secs(2 * 3600 + 45 * 60 + 10)
    );
    assert_eq!(
        config.storage.gc_interval,
        Duration::from_millis(1500),
        "integers are nanoseconds"
    );
    assert_eq!(
        (config.http.address.as_str(), config.http.port),
        ("0.0.0.0", 0)
    );
    assert_eq!(config.http.realm, "reg");
    assert_eq!(config.http.compat, [Compat::Docker2s2]);
    let tls = config.http.tls.expect("tls");
    assert_eq!(
        (tls.cert, tls.key, tls.cacert),
        (PathBuf::from("c.pem"), PathBuf::from("k.pem"), None)
    );
    assert_eq!(config.log.level, LogLevel::Warn);
    assert_eq!(config.log.output, Some(PathBuf::from("/var/log/zot.log")));
    assert_eq!(config.log.audit, None, "an empty path means not set");
    let ext: Vec<(&str, bool)> = config
        .extensions
        .iter()
        .map(|e| (e.name.as_str(), e.enabled))
        .collect();
    assert_eq!(
        ext,
        [("search", false), ("lint", false)],
        "lint is off unless enabled"
    );
    assert_eq!(config.scheduler.num_workers, Some(8));
}

#[test]
fn keys_match_case_insensitively() {
    let config = ok(json(
        r#"{"DISTSPECVERSION": "1.1.1",
            "Storage": {"rootdirectory": "/d", "GCDELAY": "1m", "Dedupe": false},
            "HTTP": {"Port": "8080", "TLS": {"Cert": "c", "KEY": "k"}},
            "Log": {"Level": "info"},
            "Extensions": {"Search": {"Enable": false}},
            "Scheduler": {"numworkers": 2}}"#,
    ));
    assert_eq!(config.storage.root_directory, PathBuf::from("/d"));
    assert_eq!(config.storage.gc_delay, Duration::from_secs(60));
    assert!(!config.storage.dedupe);
    assert_eq!(config.http.port, 8080);
    assert!(config.http.tls.is_some());
    assert_eq!(config.log.level, LogLevel::Info);
    assert_eq!(config.extensions[0].name, "search");
    assert!(!config.extensions[0].enabled);
    assert_eq!(config.scheduler.num_workers, Some(2));
}

#[test]
fn keys_differing_only_in_case_are_a_problem() {
    let list = problems(json(
        r#"{"storage": {"rootDirectory": "/a", "rootdirectory": "/b"}}"#,
    ));
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0].contains("duplicate key"), "{list:?}");
}

#[test]
fn yaml_and_json_are_equivalent() {
    let from_json = ok(json(
        r#"{"distSpecVersion": "1.1.1",
            "storage": {"rootDirectory": "/d", "gc": false, "gcDelay": "90s"},
            "http": {"address": "::1", "port": "8080", "compat": ["docker2s2"]},
            "log": {"level": "error"},
            "extensions": {"metrics": {"enable": false, "prometheus": {"path": "/m"}}},
            "scheduler": {"numWorkers": 3}}"#,
    ));
    let from_yaml = ok(yaml(
        "distSpecVersion: '1.1.1'\n\
         storage:\n  rootDirectory: /d\n  gc: false\n  gcDelay: 90s\n\
         http:\n  address: '::1'\n  port: '8080'\n  compat: [docker2s2]\n\
         log:\n  level: error\n\
         extensions:\n  metrics:\n    enable: false\n    prometheus:\n      path: /m\n\
         scheduler:\n  numWorkers: 3\n",
    ));
    assert_eq!(from_json, from_yaml);
    // The same mistakes give the same problems.
    let bad_json =
        json(r#"{"storage": {"rootDirectoryy": "/d", "gc": "yes"}, "http": {"port": 70000}}"#);
    let bad_yaml = yaml("storage:\n  rootDirectoryy: /d\n  gc: 'yes'\nhttp:\n  port: 70000\n");
    assert_eq!(problems(bad_json), problems(bad_yaml));
}

#[test]
fn yaml_specifics() {
    // An unquoted port is a number; an empty section is absent; anchors and merge keys work.
    let config = ok(yaml(
        "storage:\n  rootDirectory: &root /d\n  dedupe: false\nlog:\nhttp:\n  <<: {port: 8081, realm: r}\n  realm: *root\n",
    ));
    assert_eq!(config.http.port, 8081);
    assert_eq!(
        config.http.realm, "/d",
        "an explicit key wins over a merged one"
    );
    assert!(!config.storage.dedupe);
    assert_eq!(config.log.level, LogLevel::Debug);
    let config = ok(yaml(
        "storage:\n  rootDirectory: /d\nextensions:\n  search:\n    enable: false\n",
    ));
    assert!(!config.extensions[0].enabled);
    // An empty extension section is present, so enabled by presence for
    // search (and trust, which this build lacks).
    let config = ok(yaml(
        "storage:\n  rootDirectory: /d\nextensions:\n  search:\n",
    ));
    assert!(config.extensions[0].enabled);
    let list = problems(yaml(
        "storage:\n  rootDirectory: /d\nextensions:\n  trust:\n",
    ));
    assert_eq!(list, ["extensions.trust: not available in this build"]);
}

#[test]
fn unknown_keys_name_their_path() {
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d", "rootDirectoryy": "/e"}}"#),
        "storage.rootDirectoryy",
        "unknown key",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "stroage": {}}"#),
        "stroage",
        "unknown key",
    );
    one_problem(
        json(
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"tls": {"cert": "c", "key": "k", "chain": "x"}}}"#,
        ),
        "http.tls.chain",
        "unknown key",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "log": {"format": "json"}}"#),
        "log.format",
        "unknown key",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "scheduler": {"workers": 1}}"#),
        "scheduler.workers",
        "unknown key",
    );
}

#[test]
fn unsupported_keys_name_their_path() {
    for (text, path) in [
        (
            r#"{"storage": {"rootDirectory": "/d", "storageDriver": {"name": "gcs"}}}"#,
            "storage.storageDriver",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d", "remoteCache": true, "cacheDriver": {"name": "dynamodb", "region": "r"}}}"#,
            "storage.cacheDriver",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d", "subPaths": {"/a": {"rootDirectory": "/e", "storageDriver": {"name": "azure"}}}}}"#,
            "storage.subPaths./a.storageDriver",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"auth": {"sessionHashKey": "k"}}}"#,
            "http.auth.sessionHashKey",
        ),
    ] {
        one_problem(json(text), path, "not supported by this build");
    }
}

/// `http.externalUrl` (the built-in token service's realm) and
/// `http.auth.token`: accepted when well formed, each bad value named.
#[test]
fn external_url_and_token_service() {
    let c = json(
        r#"{"storage": {"rootDirectory": "/d"}, "http": {"externalUrl": "https://r.example.org/",
            "auth": {"htpasswd": {"path": "/h"}, "token": {"path": "/t", "service": "r",
            "signingKey": "/k.pem", "lifetime": "2m", "enable": true}}}}"#,
    )
    .expect("valid");
    assert_eq!(
        c.http.external_url.as_deref(),
        Some("https://r.example.org")
    );
    let t = &c.http.auth.as_ref().expect("auth").token;
    assert_eq!((t.path.as_str(), t.service.as_str()), ("/t", "r"));
    assert_eq!(t.lifetime, std::time::Duration::from_secs(120));
    assert_eq!(
        t.signing_key.as_deref(),
        Some(std::path::Path::new("/k.pem"))
    );
    for (http, path) in [
        (r#"{"externalUrl": "ftp://x"}"#, "http.externalUrl"),
        (r#"{"externalUrl": "https://a b"}"#, "http.externalUrl"),
        (
            r#"{"auth": {"token": {"path": "/v2/token"}}}"#,
            "http.auth.token.path",
        ),
        (
            r#"{"auth": {"token": {"path": "relative"}}}"#,
            "http.auth.token.path",
        ),
        (
            r#"{"auth": {"token": {"service": ""}}}"#,
            "http.auth.token.service",
        ),
        (
            r#"{"auth": {"token": {"lifetime": "2h"}}}"#,
            "http.auth.token.lifetime",
        ),
        (
            r#"{"auth": {"token": {"lifetime": "59s"}}}"#,
            "http.auth.token.lifetime",
        ),
        (
            r#"{"auth": {"token": {"issuer": "x"}}}"#,
            "http.auth.token.issuer",
        ),
    ] {
        let text = format!(r#"{{"storage": {{"rootDirectory": "/d"}}, "http": {http}}}"#);
        let problems = json(&text).expect_err(&text);
        assert!(
            problems.iter().any(|p| p.path == path),
            "{text}: {problems:?}"
        );
    }
}

/// `http.allowOrigin`: `*` or one origin; anything a browser could not
/// compare with its `Origin` header is a problem.
#[test]
fn allow_origin() {
    let with = |origin: &str| {
        json(&format!(
            r#"{{"storage": {{"rootDirectory": "/d"}}, "http": {{"allowOrigin": {origin:?}}}}}"#
        ))
    };
    for (origin, read) in [
        ("*", Some("*")),
        ("https://ui.example.com", Some("https://ui.example.com")),
        ("http://127.0.0.1:8443", Some("http://127.0.0.1:8443")),
        ("http://[::1]:80", Some("http://[::1]:80")),
        ("", None),
    ] {
        assert_eq!(
            ok(with(origin)).http.allow_origin.as_deref(),
            read,
            "{origin}"
        );
    }
    assert_eq!(
        ok(json(r#"{"storage": {"rootDirectory": "/d"}}"#))
            .http
            .allow_origin,
        None
    );
    for origin in [
        "x",
        "ui.example.com",
        "https://",
        "https://ui.example.com/",
        "https://ui.example.com/path",
        "https://a.example.com, https://b.example.com",
        "https://a\r\nSet-Cookie: x",
        "ftp://a",
    ] {
        one_problem(with(origin), "http.allowOrigin", "expected");
    }
}

#[test]
fn extensions() {
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"foo": {}}}"#),
        "extensions.foo",
        "unknown extension",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"trust": {}}}"#),
        "extensions.trust",
        "not available in this build",
    );
    // zot ignores an enabled `extensions.apikey` (keys are
    // `http.auth.apikey`): accepted, whatever the build.
    let ignored = ok(json(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"apikey": {"enable": true}}}"#,
    ));
    assert!(ignored.extension("apikey").is_some_and(|e| e.enabled));
    assert!(ignored.http.auth.is_none());
    one_problem(
        json(
            r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"events": {"enable": true,
                "sinks": [{"type": "kafka", "address": "k:9092"}]}}}"#,
        ),
        "extensions.events.sinks[0].type",
        "unsupported event sink",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"scrub": {"enable": "yes"}}}"#),
        "extensions.scrub.enable",
        "expected true or false",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"ui": true}}"#),
        "extensions.ui",
        "expected a mapping",
    );
    one_problem(
        json(r#"{"storage": {"rootDirectory": "/d"}, "extensions": []}"#),
        "extensions",
        "expected a mapping",
    );
    // Once available, an enabled section loads and keeps its contents.
    let config = ok(Config::from_str_with(
        r#"{"storage": {"rootDirectory": "/d"}, "extensions": {"Sync": {"registries": [{"urls": ["https://r"]}]}}}"#,
        Format::Json,
        &["sync"],
    ));
    let sync = config.extension("sync").expect("sync");
    assert!(sync.enabled);
    assert_eq!(sync.raw["registries"][0]["urls"][0], "https://r");
}

#[test]
fn wrong_values_name_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"storage": {"rootDirectory": 5}}"#,
            "storage.rootDirectory",
            "expected a string",
        ),
        (
            r#"{"storage": {"rootDirectory": ""}}"#,
            "storage.rootDirectory",
            "must not be empty",
        ),
        (r#"{"storage": {}}"#, "storage.rootDirectory", "required"),
        (r#"{}"#, "storage.rootDirectory", "required"),
        (r#"{"storage": "/d"}"#, "storage", "expected a mapping"),
        (
            r#"{"storage": {"rootDirectory": "/d", "dedupe": "true"}}"#,
            "storage.dedupe",
            "expected true or false",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d", "gcDelay": "1 hour"}}"#,
            "storage.gcDelay",
            "invalid duration",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d", "gcInterval": "-1h"}}"#,
            "storage.gcInterval",
            "negative",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d", "gcDelay": 1.5}}"#,
            "storage.gcDelay",
            "expected a duration",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"port": "http"}}"#,
            "http.port",
            "0 to 65535",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"port": 65536}}"#,
            "http.port",
            "0 to 65535",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"port": -1}}"#,
            "http.port",
            "0 to 65535",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"address": ""}}"#,
            "http.address",
            "must not be empty",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"compat": ["docker2s1"]}}"#,
            "http.compat[0]",
            "unknown compatibility mode",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"compat": "docker2s2"}}"#,
            "http.compat",
            "expected a list",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"tls": {"cert": "c"}}}"#,
            "http.tls.key",
            "required",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"tls": {"key": "k"}}}"#,
            "http.tls.cert",
            "required",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "http": {"tls": {"cert": "", "key": "k"}}}"#,
            "http.tls.cert",
            "must not be empty",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "log": {"level": "verbose"}}"#,
            "log.level",
            "unknown log level",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "scheduler": {"numWorkers": -2}}"#,
            "scheduler.numWorkers",
            "non-negative integer",
        ),
        (
            r#"{"storage": {"rootDirectory": "/d"}, "distSpecVersion": 1.1}"#,
            "distSpecVersion",
            "expected a string",
        ),
        (r#"[1, 2]"#, "", "expected a mapping"),
    ];
    for (text, path, message) in cases {
        one_problem(json(text), path, message);
    }
}

#[test]
fn all_problems_are_collected() {
    let list = problems(json(
        r#"{"storage": {"gc": 1, "storageDriver": {}},
            "http": {"port": "x", "auth": {"apikey": "yes"}, "tls": {"cert": "c"}},
            "log": {"level": "loud"},
            "extensions": {"foo": {}, "trust": {}},
            "bogus": true}"#,
    ));
    let mut paths: Vec<&str> = list
        .iter()
        .map(|p| p.split(": ").next().unwrap_or(""))
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "bogus",
            "extensions.foo",
            "extensions.trust",
            "http.auth.apikey",
            "http.port",
            "http.tls.key",
            "log.level",
            "storage.gc",
            "storage.rootDirectory",
            "storage.storageDriver",
        ],
        "{list:#?}"
    );
}

#[test]
fn syntax_errors_are_one_problem_for_the_document() {
    let list = problems(json("{\"storage\": "));
    assert_eq!(list.len(), 1);
    assert!(list[0].starts_with("invalid JSON"), "{list:?}");
    let list = problems(yaml("storage: [unclosed\n"));
    assert!(list[0].starts_with("invalid YAML"), "{list:?}");
}

#[test]
fn files_pick_their_format_by_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let yaml_text = "storage:\n  rootDirectory: /d\nhttp:\n  port: 8080\n";
    let json_text = r#"{"storage": {"rootDirectory": "/d"}, "http": {"port": 8080}}"#;
    let from_yaml = ok(Config::from_file(&write("zot.yaml", yaml_text)));
    assert_eq!(
        from_yaml,
        ok(Config::from_file(&write("zot.YML", yaml_text)))
    );
    assert_eq!(
        from_yaml,
        ok(Config::from_file(&write("zot.json", json_text)))
    );
    // No known extension: JSON, then YAML.
    assert_eq!(
        from_yaml,
        ok(Config::from_file(&write("zot.conf", json_text)))
    );
    assert_eq!(from_yaml, ok(Config::from_file(&write("zot", yaml_text))));
    // A .json file is only JSON.
    let list = problems(Config::from_file(&write("yaml.json", yaml_text)));
    assert!(list[0].starts_with("invalid JSON"), "{list:?}");
    // Neither format.
    let list = problems(Config::from_file(&write("bad", "{: [")));
    assert!(list[0].contains("neither valid JSON"), "{list:?}");
    // Unreadable: the problem names the file.
    let missing = dir.path().join("missing.json");
    let Err(list) = Config::from_file(&missing) else {
        panic!("a missing file cannot load")
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].path, missing.display().to_string());
    assert!(list[0].message.starts_with("cannot read"), "{list:?}");
}

#[test]
fn security_sections_are_read() {
    let config = Config::from_str(
        r#"{"storage": {"rootDirectory": "/d"},
            "http": {"readTimeout": "2m", "writeTimeout": "30s",
              "tls": {"cert": "c", "key": "k", "cacert": "ca"},
              "auth": {"htpasswd": {"path": "h"}, "failDelay": 2,
                       "bearer": {"realm": "r", "service": "s", "cert": "b.pem"},
                       "ldap": {"address": "l", "baseDN": "dc=x", "userAttribute": "uid",
                                "credentialsFile": "creds.json", "userGroupAttribute": "memberOf"}},
              "accessControl": {"groups": {"devs": {"users": ["a"]}},
                "repositories": {"**": {"policies": [{"users": ["a"], "groups": ["devs"], "actions": ["read"]}],
                                         "defaultPolicy": ["read"], "anonymousPolicy": []}},
                "adminPolicy": {"users": ["admin"], "actions": ["read", "delete"]}},
              "ratelimit": {"rate": 10, "methods": [{"method": "get", "rate": 5}]}}}"#,
        Format::Json,
    )
    .expect("valid");
    let http = config.http;
    assert_eq!(http.read_timeout, Some(Duration::from_secs(120)));
    assert_eq!(http.tls.and_then(|t| t.cacert), Some(PathBuf::from("ca")));
    let auth = http.auth.expect("auth");
    assert_eq!(auth.htpasswd, Some(PathBuf::from("h")));
    assert_eq!(auth.fail_delay, Duration::from_secs(2));
    assert_eq!(auth.ldap.expect("ldap").port, 389);
    let access = http.access_control.expect("accessControl");
    assert_eq!(access.groups, [("devs".to_owned(), vec!["a".to_owned()])]);
    assert_eq!(access.repositories[0].1.default_policy, ["read"]);
    let rl = http.ratelimit.expect("ratelimit");
    assert_eq!(
        (rl.rate, rl.methods),
        (Some(10), vec![("GET".to_owned(), 5)])
    );
}

#[test]
fn unknown_actions_are_problems() {
    one_problem(
        json(
            r#"{"storage": {"rootDirectory": "/d"},
                "http": {"accessControl": {"repositories": {"**": {"defaultPolicy": ["pull"]}}}}}"#,
        ),
        "http.accessControl.repositories.**.defaultPolicy[0]",
        "unknown action",
    );
}

#[test]
fn the_secure_example_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/config-secure.json");
    let config = Config::from_file(&path).expect("examples/config-secure.json is valid");
    assert!(config.http.auth.is_some() && config.http.access_control.is_some());
}

//! Which keys of a reloaded configuration need a restart: [`split`] takes
//! the running configuration and a valid new one, and returns the
//! configuration to apply, the new one with every restart-only key put
//! back to its running value, and the names of the keys so put back (for
//! the one log line that reports them).
//!
//! Invariants:
//! - What [`split`] returns differs from the running configuration only in
//!   keys that a reload applies live (see `reload.rs`), so applying it
//!   never touches listeners, storage roots or routes.
//! - Every key whose new value was dropped is named, once, by its key path
//!   as the configuration file spells it (`http.port`,
//!   `storage.subPaths./a.rootDirectory`, `extensions.search`).

use zot_config::{Config, StorageConfig};

/// Extensions whose sections a reload does not apply: their routes,
/// storage options or tasks are built once at start-up. (`search` is
/// compared without `cve`, whose settings reload live — the database
/// refresh is restarted — except turning scanning on or off: search is
/// wired to the scanner at start-up.)
const RESTART_ONLY_EXTENSIONS: &[&str] = &["search", "ui", "mgmt", "trust", "apikey"];

/// Puts `running` back into `next` when they differ, naming `key`.
fn keep<T: PartialEq + Clone>(names: &mut Vec<String>, key: &str, running: &T, next: &mut T) {
    if running != next {
        names.push(key.to_owned());
        *next = running.clone();
    }
}

/// The configuration to apply (`loaded` with its restart-only keys at their
/// `running` values) and the names of the keys whose change is ignored.
pub fn split(running: &Config, loaded: Config) -> (Config, Vec<String>) {
    let mut next = loaded;
    let mut names = Vec::new();
    let n = &mut names;
    keep(
        n,
        "distSpecVersion",
        &running.dist_spec_version,
        &mut next.dist_spec_version,
    );
    let (old, new) = (&running.http, &mut next.http);
    keep(n, "http.address", &old.address, &mut new.address);
    keep(n, "http.port", &old.port, &mut new.port);
    keep(n, "http.tls", &old.tls, &mut new.tls);
    keep(n, "http.compat", &old.compat, &mut new.compat);
    keep(
        n,
        "http.allowOrigin",
        &old.allow_origin,
        &mut new.allow_origin,
    );
    // The key store is attached at start-up, and only when keys are on.
    let apikey = |h: &zot_config::HttpConfig| h.auth.as_ref().is_some_and(|a| a.apikey);
    if apikey(old) != apikey(new) {
        n.push("http.auth.apikey".to_owned());
        if let Some(auth) = &mut new.auth {
            auth.apikey = apikey(old);
        }
    }
    keep(
        n,
        "http.readTimeout",
        &old.read_timeout,
        &mut new.read_timeout,
    );
    keep(
        n,
        "http.writeTimeout",
        &old.write_timeout,
        &mut new.write_timeout,
    );
    keep(n, "log.output", &running.log.output, &mut next.log.output);
    keep(n, "log.audit", &running.log.audit, &mut next.log.audit);
    keep(n, "scheduler", &running.scheduler, &mut next.scheduler);
    keep(n, "cluster", &running.cluster, &mut next.cluster);
    store(n, "storage", &running.storage, &mut next.storage);
    let (old, new) = (&running.storage.sub_paths, &mut next.storage.sub_paths);
    if old.keys().ne(new.keys()) {
        names.push("storage.subPaths".to_owned());
        *new = old.clone();
    } else {
        for (prefix, settings) in new.iter_mut() {
            if let Some(running) = old.get(prefix) {
                store(
                    &mut names,
                    &format!("storage.subPaths.{prefix}"),
                    running,
                    settings,
                );
            }
        }
    }
    for name in RESTART_ONLY_EXTENSIONS {
        extension(&mut names, running, &mut next, name);
    }
    // Events: on or off, and the outbox bound (a store option), need a
    // restart; the sinks and `outbox.maxBackoff` do not.
    let events = |cfg: &Config| {
        cfg.extension("events")
            .and_then(|e| e.events())
            .map(|e| e.max_outbox_events)
    };
    if events(running) != events(&next) {
        names.push("extensions.events".to_owned());
        next.extensions.retain(|e| e.name != "events");
        if let Some(e) = running.extension("events") {
            next.extensions.push(e.clone());
        }
    }
    if let (Some(old), Some(new)) = (metrics(running), metrics(&next))
        && old.max_repository_labels != new.max_repository_labels
    {
        // The label table is made once; the new size is not used.
        names.push("extensions.metrics.maxRepositoryLabels".to_owned());
    }
    (next, names)
}

fn metrics(cfg: &Config) -> Option<zot_config::MetricsConfig> {
    cfg.extension("metrics").and_then(|e| e.metrics())
}

/// The restart-only keys of one store: where and how it is stored.
fn store(names: &mut Vec<String>, at: &str, running: &StorageConfig, next: &mut StorageConfig) {
    keep(
        names,
        &format!("{at}.rootDirectory"),
        &running.root_directory,
        &mut next.root_directory,
    );
    keep(
        names,
        &format!("{at}.storageDriver"),
        &running.storage_driver,
        &mut next.storage_driver,
    );
    keep(
        names,
        &format!("{at}.dedupe"),
        &running.dedupe,
        &mut next.dedupe,
    );
    keep(
        names,
        &format!("{at}.commit"),
        &running.commit,
        &mut next.commit,
    );
    keep(
        names,
        &format!("{at}.cacheDriver"),
        &running.cache_driver,
        &mut next.cache_driver,
    );
}

/// An extension section compared as a whole (`search` without its `cve`,
/// but with whether it has one), absent and present alike; a change puts
/// the running section back.
fn extension(names: &mut Vec<String>, running: &Config, next: &mut Config, name: &str) {
    let comparable = |cfg: &Config| {
        cfg.extension(name).map(|e| {
            let mut raw = e.raw.clone();
            let mut cve = false;
            if name == "search"
                && let serde_json::Value::Object(map) = &mut raw
            {
                cve = map.keys().any(|k| k.eq_ignore_ascii_case("cve"));
                map.retain(|k, _| !k.eq_ignore_ascii_case("cve"));
            }
            (e.enabled, raw, cve)
        })
    };
    if comparable(running) == comparable(next) {
        return;
    }
    names.push(format!("extensions.{name}"));
    next.extensions
        .retain(|e| !e.name.eq_ignore_ascii_case(name));
    if let Some(e) = running.extension(name) {
        next.extensions.push(e.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_config::Format;

    fn config(json: &str) -> Config {
        Config::from_str_with(json, Format::Json, zot_config::AVAILABLE_EXTENSIONS)
            .unwrap_or_else(|p| panic!("{p:?}"))
    }

    const BASE: &str = r#"{
        "storage": {"rootDirectory": "/srv/zot", "gc": true,
                    "subPaths": {"/a": {"rootDirectory": "/srv/a"}}},
        "http": {"address": "127.0.0.1", "port": "5000"},
        "log": {"level": "info"},
        "extensions": {"search": {"enable": true}, "scrub": {"interval": "24h"}}
    }"#;

    #[test]
    fn nothing_changed_names_nothing() {
        let running = config(BASE);
        let (next, names) = split(&running, running.clone());
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(next, running);
    }

    #[test]
    fn live_keys_pass_and_are_not_named() {
        let running = config(BASE);
        let loaded = config(
            r#"{
            "storage": {"rootDirectory": "/srv/zot", "gc": false, "gcDelay": "2h",
                        "subPaths": {"/a": {"rootDirectory": "/srv/a", "gcInterval": "3h"}}},
            "http": {"address": "127.0.0.1", "port": "5000", "realm": "other",
                     "ratelimit": {"rate": 10},
                     "accessControl": {"repositories": {"**": {"anonymousPolicy": ["read"]}}}},
            "log": {"level": "debug"},
            "extensions": {"search": {"enable": true}, "scrub": {"interval": "1h"},
                           "metrics": {}}
        }"#,
        );
        let (next, names) = split(&running, loaded.clone());
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(next, loaded);
    }

    #[test]
    fn cve_settings_reload_but_turning_scanning_on_needs_a_restart() {
        let running = config(BASE);
        let loaded = config(
            r#"{
            "storage": {"rootDirectory": "/srv/zot", "gc": true,
                        "subPaths": {"/a": {"rootDirectory": "/srv/a"}}},
            "http": {"address": "127.0.0.1", "port": "5000"},
            "log": {"level": "info"},
            "extensions": {"search": {"enable": true, "cve": {"updateInterval": "24h"}},
                           "scrub": {"interval": "24h"}}
        }"#,
        );
        let (next, names) = split(&running, loaded);
        assert_eq!(names, ["extensions.search"]);
        assert_eq!(next.extension("search"), running.extension("search"));
        // With scanning on in both, the settings pass.
        let on = |interval: &str| {
            config(&format!(
                r#"{{"storage": {{"rootDirectory": "/srv/zot", "gc": true,
                    "subPaths": {{"/a": {{"rootDirectory": "/srv/a"}}}}}},
                "http": {{"address": "127.0.0.1", "port": "5000"}},
                "extensions": {{"search": {{"enable": true, "cve": {{"updateInterval": "{interval}"}}}},
                               "scrub": {{"interval": "24h"}}}}}}"#
            ))
        };
        let (next, names) = split(&on("24h"), on("48h"));
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(next, on("48h"));
    }

    #[test]
    fn restart_only_keys_are_named_and_put_back() {
        let running = config(BASE);
        let loaded = config(
            r#"{
            "distSpecVersion": "1.0.0",
            "storage": {"rootDirectory": "/srv/other", "dedupe": false, "gc": false,
                        "subPaths": {"/a": {"rootDirectory": "/srv/b", "gcDelay": "3h"}}},
            "http": {"address": "0.0.0.0", "port": "5001", "readTimeout": "10s",
                     "allowOrigin": "https://ui.example.com"},
            "cluster": {"members": ["127.0.0.1:5001", "127.0.0.1:5002"],
                        "hashKey": "loremipsumdolors"},
            "log": {"level": "warn", "output": "/tmp/zot.log"},
            "scheduler": {"numWorkers": 3},
            "extensions": {"scrub": {"interval": "1h"}, "events": {"enable": true,
                "sinks": [{"type": "http", "address": "http://127.0.0.1:1/"}]}}
        }"#,
        );
        let (next, names) = split(&running, loaded);
        assert_eq!(
            names,
            [
                "distSpecVersion",
                "http.address",
                "http.port",
                "http.allowOrigin",
                "http.readTimeout",
                "log.output",
                "scheduler",
                "cluster",
                "storage.rootDirectory",
                "storage.dedupe",
                "storage.subPaths./a.rootDirectory",
                "extensions.search",
                "extensions.events",
            ]
        );
        // Put back: where things are.
        assert_eq!(next.http.port, running.http.port);
        assert_eq!(next.http.allow_origin, None);
        assert!(next.cluster.is_none());
        assert_eq!(next.storage.root_directory, running.storage.root_directory);
        assert!(next.storage.dedupe);
        assert_eq!(
            next.storage.sub_paths["/a"].root_directory,
            running.storage.sub_paths["/a"].root_directory
        );
        assert!(next.extension("search").is_some_and(|e| e.enabled));
        assert!(next.extension("events").is_none());
        // Kept from the new file: what is live.
        assert!(!next.storage.gc);
        assert_eq!(
            next.storage.sub_paths["/a"].gc_delay,
            std::time::Duration::from_secs(3 * 3600)
        );
        assert_eq!(next.log.level.as_str(), "warn");
        assert_eq!(
            next.extension("scrub")
                .and_then(|e| e.scrub())
                .map(|s| s.interval),
            Some(std::time::Duration::from_secs(3600))
        );
    }

    #[test]
    fn cors_and_turning_api_keys_on_need_a_restart_other_auth_does_not() {
        let with = |origin: &str, apikey: bool, fail_delay: &str| {
            config(&format!(
                r#"{{"storage": {{"rootDirectory": "/srv/zot"}},
                    "http": {{"allowOrigin": "{origin}", "auth": {{"apikey": {apikey},
                        "htpasswd": {{"path": "/etc/zot/htpasswd"}}, "failDelay": "{fail_delay}"}}}}}}"#
            ))
        };
        let running = with("https://a.example", false, "1s");
        let (next, names) = split(&running, with("https://b.example", true, "2s"));
        assert_eq!(names, ["http.allowOrigin", "http.auth.apikey"]);
        assert_eq!(next.http.allow_origin, running.http.allow_origin);
        let auth = next.http.auth.as_ref().expect("auth");
        assert!(!auth.apikey);
        assert_eq!(auth.fail_delay, std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_sub_path_added_or_removed_needs_a_restart() {
        let running = config(BASE);
        let loaded = config(
            r#"{"storage": {"rootDirectory": "/srv/zot",
                "subPaths": {"/b": {"rootDirectory": "/srv/b"}}},
                "http": {"address": "127.0.0.1", "port": "5000"}, "log": {"level": "info"},
                "extensions": {"search": {"enable": true}, "scrub": {"interval": "24h"}}}"#,
        );
        let (next, names) = split(&running, loaded);
        assert_eq!(names, ["storage.subPaths"]);
        assert_eq!(
            next.storage.sub_paths.keys().collect::<Vec<_>>(),
            ["/a"],
            "the running sub-paths stay"
        );
    }

    #[test]
    fn the_metrics_label_cap_is_named_but_metrics_stay_live() {
        let with = |labels: &str| {
            config(&format!(
                r#"{{"storage": {{"rootDirectory": "/srv/zot"}},
                    "extensions": {{"metrics": {{"maxRepositoryLabels": {labels}}}}}}}"#
            ))
        };
        let (_, names) = split(&with("10"), with("20"));
        assert_eq!(names, ["extensions.metrics.maxRepositoryLabels"]);
        let off = config(r#"{"storage": {"rootDirectory": "/srv/zot"}}"#);
        let (next, names) = split(&off, with("20"));
        assert!(names.is_empty(), "{names:?}");
        assert!(next.extension("metrics").is_some());
    }
}

//! Helpers of the sync tests that run a mirror: its start-up with
//! `extensions.sync.registries`, the runs it logged, its tags.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Config, Registry};

/// A registry syncing from `registries`.
pub fn mirror(registries: Value) -> Registry {
    Registry::start_with(
        Config::default().with_extensions(json!({ "sync": { "registries": registries } })),
    )
}

/// The `sync: run finished` log lines so far, as JSON.
pub fn runs(registry: &Registry) -> Vec<Value> {
    registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "sync: run finished")
        .collect()
}

/// Waits for the `n`th finished run and returns it.
pub fn wait_run(registry: &Registry, n: usize) -> Value {
    let start = Instant::now();
    loop {
        let r = runs(registry);
        if r.len() >= n {
            return r[n - 1].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no run #{n} of sync; log:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn tags(registry: &Registry, repo: &str) -> BTreeSet<String> {
    let r = registry.client().get(&format!("/v2/{repo}/tags/list"));
    if r.status == 404 {
        return BTreeSet::new();
    }
    r.expect_status(200, "tags");
    r.json()["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

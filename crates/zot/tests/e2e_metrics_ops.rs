//! The metrics of issue 12 beyond zot's request series, on the real
//! binary, read by the real Prometheus parser (`metrics_common`): the
//! manifest-cache hits and misses follow repeated reads, the storage lock
//! histogram (zot's `zot_storage_lock_latency_seconds`) counts every
//! acquisition, and sync runs, failures and on-demand fetches are counted
//! per upstream (a live one, and one that refuses connections), with each
//! synced repository a scheduler task named `sync`.

mod auth_common;
mod common;
mod metrics_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use auth_common::small_image;
use common::{Client, Config, Registry};
use metrics_common::{parse, sample};

fn metrics() -> Value {
    json!({"prometheus": {"path": "/metrics"}})
}

fn scrape(client: &Client) -> Value {
    let r = client.get("/metrics");
    r.expect_status(200, "scrape");
    parse(&r.text())
}

/// A counter's value (its family named without `_total`).
fn counter(f: &Value, name: &str, labels: Value) -> f64 {
    let family = name.strip_suffix("_total").unwrap_or(name);
    sample(f, family, name, labels.clone())
        .unwrap_or_else(|| panic!("no {name} {labels} in {}", f[family]))
}

#[test]
fn manifest_cache_hits_and_lock_waits_are_measured() {
    let registry = Registry::start_with(Config::default().with_extensions(json!({
        "metrics": metrics(),
    })));
    let client = registry.client();
    small_image("cache").push(&client, "ops/app", "v1");
    let cache = |f: &Value| {
        (
            counter(f, "zot_manifest_cache_hits_total", json!({})),
            counter(f, "zot_manifest_cache_misses_total", json!({})),
        )
    };
    let (hits, misses) = cache(&scrape(&client));
    for _ in 0..5 {
        client
            .get("/v2/ops/app/manifests/v1")
            .expect_status(200, "GET");
    }
    client
        .head("/v2/ops/app/manifests/v1")
        .expect_status(200, "HEAD");
    let f = scrape(&client);
    let (hits2, misses2) = cache(&f);
    assert_eq!(
        (hits2 - hits) + (misses2 - misses),
        6.0,
        "every read is a hit or a miss"
    );
    assert!(misses2 - misses <= 1.0, "read from disk once at most");
    assert!(hits2 - hits >= 5.0, "{hits} -> {hits2}");
    assert_eq!(f["zot_manifest_cache_hits"]["type"], "counter");

    // Tags pushed side by side: each takes the repository's lock.
    let name = "zot_storage_lock_latency_seconds";
    let root = registry.root().display().to_string();
    let labels = json!({"storageName": root, "lockType": "RWLock"});
    let count = |f: &Value| sample(f, name, &format!("{name}_count"), labels.clone());
    let before = count(&f).unwrap_or_else(|| panic!("no {labels} in {}", f[name]));
    let image = small_image("locks");
    image.push(&client, "ops/locks", "t0");
    std::thread::scope(|s| {
        for i in 1..=8 {
            let (client, image) = (&client, &image);
            s.spawn(move || {
                client
                    .put_manifest(
                        "ops/locks",
                        &format!("t{i}"),
                        &image.manifest.media_type,
                        &image.manifest.bytes,
                    )
                    .expect_status(201, "tag");
            });
        }
    });
    let f = scrape(&client);
    assert_eq!(f[name]["type"], "histogram");
    let after = count(&f).unwrap_or_default();
    assert!(after >= before + 9.0, "{before} -> {after}: {}", f[name]);
    // Buckets are cumulative and end at the count.
    let buckets: Vec<f64> = f[name]["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s[0] == format!("{name}_bucket")
                && s[1]["lockType"] == "RWLock"
                && s[1]["storageName"] == root.as_str()
        })
        .filter_map(|s| s[2].as_f64())
        .collect();
    assert_eq!(buckets.len(), 10, "{}", f[name]);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets.last().copied(), Some(after));
    for lock in ["RLock", "digest"] {
        let l = json!({"storageName": root, "lockType": lock});
        assert!(
            sample(&f, name, &format!("{name}_count"), l).is_some_and(|n| n >= 1.0),
            "{lock}: {}",
            f[name]
        );
    }
}

/// An address nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[test]
fn sync_runs_failures_and_tasks_are_counted_per_upstream() {
    let upstream = Registry::start();
    small_image("synced").push(&upstream.client(), "lib/app", "1");
    let live = upstream.url();
    let dead = refused_url();
    let mirror = Registry::start_with(Config::default().with_extensions(json!({
        "metrics": metrics(),
        "sync": {"registries": [
            {"urls": [live], "pollInterval": "1h", "content": [{"prefix": "**"}]},
            {"urls": [dead], "pollInterval": "1h", "onDemand": true,
             "maxRetries": 0, "retryDelay": "10ms",
             "content": [{"prefix": "**"}]},
        ]},
    })));
    let client = mirror.client();
    // Asked of the dead upstream only (the live one is not on demand).
    assert_eq!(client.get_manifest("lib/absent", "v1").status, 404);

    let live_l = || json!({"registry": live});
    let dead_l = || json!({"registry": dead});
    let tasks = "zot_scheduler_workers_tasks_duration_seconds";
    let start = Instant::now();
    let f = loop {
        let f = scrape(&client);
        let synced = sample(
            &f,
            tasks,
            &format!("{tasks}_count"),
            json!({"name": "sync"}),
        );
        if counter(&f, "zot_sync_runs_total", live_l()) >= 1.0
            && counter(&f, "zot_sync_run_failures_total", dead_l()) >= 1.0
            && synced.is_some_and(|n| n >= 1.0)
        {
            break f;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sync runs not counted within a minute: {f}\n{}",
            mirror.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    client
        .get_manifest("lib/app", "1")
        .expect_status(200, "synced");
    for (name, labels, want) in [
        ("zot_sync_run_failures_total", live_l(), 0.0),
        ("zot_sync_repository_failures_total", live_l(), 0.0),
        ("zot_sync_on_demand_fetches_total", live_l(), 0.0),
        ("zot_sync_on_demand_fetches_total", dead_l(), 1.0),
        ("zot_sync_on_demand_failures_total", dead_l(), 1.0),
        ("zot_sync_runs_total", dead_l(), -1.0),
    ] {
        let got = counter(&f, name, labels.clone());
        if want >= 0.0 {
            assert_eq!(got, want, "{name} {labels}");
        } else {
            let failures = counter(&f, "zot_sync_run_failures_total", dead_l());
            assert_eq!(got, failures, "every run of the dead upstream failed");
        }
    }
    assert_eq!(f["zot_sync_runs"]["type"], "counter");
}

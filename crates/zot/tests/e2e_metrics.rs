//! The metrics extension on the real binary: the scraped text is read by a
//! real parser (the `prometheus_client` Python package's
//! `text_string_to_metric_families`), counters follow the requests, invented
//! repository names get no label, discover does not list metrics (as zot),
//! and the endpoint is authorised as zot's MetricsAuthzHandler decides.
//!
//! The parser is `metrics_common`'s (a virtualenv that `scripts/test`
//! creates). A missing parser fails the test.

mod auth_common;
mod common;
mod metrics_common;

use serde_json::{Value, json};

use auth_common::{basic, call, small_image, write_htpasswd};
use common::{Config, Registry};
use metrics_common::{parse, parse_as, sample};

fn metrics_registry() -> Registry {
    Registry::start_with(
        Config::default().with_extensions(json!({"metrics": {"prometheus": {"path": "/metrics"}}})),
    )
}

#[test]
fn scraped_text_parses_and_counts_requests() {
    let registry = metrics_registry();
    let client = registry.client();
    small_image("m").push(&client, "e2e/app", "v1");
    for _ in 0..3 {
        client
            .get("/v2/e2e/app/manifests/v1")
            .expect_status(200, "pull");
    }
    for i in 0..20 {
        client
            .get(&format!("/v2/invented{i}/manifests/latest"))
            .expect_status(404, "invented");
    }
    let scrape = client.get("/metrics");
    scrape.expect_status(200, "scrape");
    assert!(
        scrape
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4"))
    );
    let f = parse(&scrape.text());
    for (family, kind) in [
        ("zot_http_requests", "counter"),
        ("zot_http_method_latency_seconds", "histogram"),
        ("zot_http_repo_latency_seconds", "summary"),
        ("zot_repo_downloads", "counter"),
        ("zot_repo_uploads", "counter"),
        ("zot_info", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_threads", "gauge"),
    ] {
        assert_eq!(f[family]["type"], kind, "{family}: {}", f[family]);
    }
    let get = |code: &str| {
        sample(
            &f,
            "zot_http_requests",
            "zot_http_requests_total",
            json!({"method": "GET", "code": code}),
        )
    };
    assert_eq!(get("200"), Some(3.0));
    assert_eq!(get("404"), Some(20.0));
    let downloads = sample(
        &f,
        "zot_repo_downloads",
        "zot_repo_downloads_total",
        json!({"repo": "e2e/app"}),
    );
    assert_eq!(downloads, Some(3.0));
    let uploads = sample(
        &f,
        "zot_repo_uploads",
        "zot_repo_uploads_total",
        json!({"repo": "e2e/app"}),
    );
    assert_eq!(uploads, Some(1.0));
    let inf = sample(
        &f,
        "zot_http_method_latency_seconds",
        "zot_http_method_latency_seconds_bucket",
        json!({"method": "GET", "le": "+Inf"}),
    );
    assert_eq!(inf, Some(23.0));
    let text = serde_json::to_string(&f).expect("JSON");
    assert!(!text.contains("invented"), "an invented name got a label");
    let info = &f["zot_info"]["samples"][0];
    assert_eq!(info[1]["version"], "1.1.1");
    assert!(
        info[1]["binaryType"]
            .as_str()
            .is_some_and(|b| b.contains("-metrics"))
    );
    assert!(
        sample(
            &f,
            "process_resident_memory_bytes",
            "process_resident_memory_bytes",
            json!({})
        )
        .is_some_and(|v| v > 1e6)
    );

    // OpenMetrics on request, read by the strict OpenMetrics parser.
    let om = client.request(
        "GET",
        "/metrics",
        &[(
            "accept",
            "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
        )],
        None,
    );
    om.expect_status(200, "OpenMetrics scrape");
    assert!(
        om.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text; version=1.0.0"))
    );
    let o = parse_as(&om.text(), true);
    assert_eq!(o["zot_http_requests"]["type"], "counter");
    assert_eq!(o["zot_http_method_latency_seconds"]["type"], "histogram");
    let get200 = sample(
        &o,
        "zot_http_requests",
        "zot_http_requests_total",
        json!({"method": "GET", "code": "200"}),
    );
    assert_eq!(get200, Some(3.0));

    // zot never lists metrics in discover.
    let discover = client.get("/v2/_oci/ext/discover");
    discover.expect_status(200, "discover");
    assert!(!discover.text().contains("metrics"), "{}", discover.text());
}

/// A registry with htpasswd users `metrics` and `bob`, metrics on, and
/// `accessControl` merged from `access`.
fn secured(access: Value) -> Registry {
    let mut registry = metrics_registry();
    registry.kill9();
    let htpasswd = registry.work_dir().join("htpasswd");
    write_htpasswd(&htpasswd, &[("metrics", "m-pass"), ("bob", "b-pass")]);
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("JSON");
    config["http"]["auth"] = json!({"htpasswd": {"path": htpasswd}});
    if !access.is_null() {
        config["http"]["accessControl"] = access;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    registry.restart();
    registry
}

fn status(registry: &Registry, auth: Option<&str>) -> u16 {
    call(&registry.client(), auth, "GET", "/metrics", &[], None).status
}

#[test]
fn metrics_users_may_read_others_are_refused() {
    let registry = secured(json!({
        "metrics": {"users": ["metrics"]},
        "repositories": {"**": {"anonymousPolicy": ["read"], "defaultPolicy": ["read", "create"]}},
    }));
    assert_eq!(status(&registry, Some(&basic("metrics", "m-pass"))), 200);
    assert_eq!(status(&registry, Some(&basic("bob", "b-pass"))), 403);
    assert_eq!(status(&registry, Some(&basic("metrics", "wrong"))), 401);
    // Anonymous reads of repositories do not open the metrics.
    assert_eq!(status(&registry, None), 401);
}

#[test]
fn anonymous_policy_opens_the_metrics_to_anyone() {
    let registry = secured(json!({"metrics": {"anonymousPolicy": ["read"]}}));
    assert_eq!(status(&registry, None), 200);
    // An authenticated user not listed in `users` is refused, as zot does.
    assert_eq!(status(&registry, Some(&basic("bob", "b-pass"))), 403);
}

#[test]
fn without_access_control_any_authenticated_user_may_read() {
    let registry = secured(Value::Null);
    assert_eq!(status(&registry, Some(&basic("bob", "b-pass"))), 200);
    assert_eq!(status(&registry, None), 401);
}

#[test]
fn scrapes_during_load_parse_and_never_go_backwards() {
    let registry = metrics_registry();
    let client = registry.client();
    small_image("load").push(&client, "e2e/load", "v1");
    let gets = |f: &Value| {
        sample(
            f,
            "zot_http_requests",
            "zot_http_requests_total",
            json!({"method": "GET", "code": "200"}),
        )
        .unwrap_or(0.0)
    };
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let client = registry.client();
            s.spawn(move || {
                for _ in 0..50 {
                    client
                        .get("/v2/e2e/load/manifests/v1")
                        .expect_status(200, "pull under load");
                }
            });
        }
        for _ in 0..5 {
            let scrape = client.get("/metrics");
            scrape.expect_status(200, "scrape under load");
            seen.push(gets(&parse(&scrape.text())));
        }
    });
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "a counter went backwards: {seen:?}"
    );
    let end = parse(&client.get("/metrics").text());
    assert_eq!(gets(&end), 200.0);
    let downloads = sample(
        &end,
        "zot_repo_downloads",
        "zot_repo_downloads_total",
        json!({"repo": "e2e/load"}),
    );
    assert_eq!(downloads, Some(200.0));
}

/// The bytes of the regular files under `dir`, as the registry measures a
/// repository.
fn disk_usage(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let t = entry.file_type().expect("file type");
        if t.is_dir() {
            total += disk_usage(&entry.path());
        } else if t.is_file() {
            total += entry.metadata().expect("metadata").len();
        }
    }
    total
}

#[test]
fn background_work_and_storage_are_measured() {
    let registry = Registry::start_with(
        Config::default()
            .with_gc(true)
            .with_storage("gcDelay", json!("1s"))
            .with_storage("gcInterval", json!("1s"))
            .with_extensions(json!({
                "metrics": {"prometheus": {"path": "/metrics"}},
                "scrub": {"enable": true, "interval": "1s"},
            })),
    );
    let client = registry.client();
    let keep = small_image("bg-keep");
    keep.push(&client, "bg/app", "v1");
    let gone = small_image("bg-gone");
    gone.push(&client, "bg/app", "v2");
    client
        .request("POST", "/v2/bg/app/blobs/uploads/", &[], None)
        .expect_status(202, "an upload left open");
    client
        .request(
            "DELETE",
            &format!("/v2/bg/app/manifests/{}", gone.manifest.digest),
            &[],
            None,
        )
        .expect_status(202, "delete v2");
    let repo_dir = registry.root().join("bg/app");
    let gone_layer = repo_dir
        .join("blobs/sha256")
        .join(gone.layers[0].digest.trim_start_matches("sha256:"));
    let value = |f: &Value, family: &str, name: &str, labels: Value| {
        sample(f, family, name, labels).unwrap_or(-1.0)
    };
    let start = std::time::Instant::now();
    let f = loop {
        let f = parse(&client.get("/metrics").text());
        let gc_blobs = value(
            &f,
            "zot_gc_deleted",
            "zot_gc_deleted_total",
            json!({"type": "blob"}),
        );
        let scrubs = value(&f, "zot_scrub_runs", "zot_scrub_runs_total", json!({}));
        let stored = value(
            &f,
            "zot_repo_storage_bytes",
            "zot_repo_storage_bytes",
            json!({"repo": "bg/app"}),
        );
        if gc_blobs >= 2.0
            && scrubs >= 1.0
            && !gone_layer.exists()
            && stored == disk_usage(&repo_dir) as f64
        {
            break f;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "GC, scrub and the sampler not seen within a minute: gc blobs {gc_blobs}, scrubs {scrubs}, stored {stored} (disk {}); output:\n{}",
            disk_usage(&repo_dir),
            registry.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let kept: u64 = [&keep.manifest, &keep.config]
        .into_iter()
        .chain(&keep.layers)
        .map(|b| b.bytes.len() as u64)
        .sum();
    let stored = value(
        &f,
        "zot_repo_storage_bytes",
        "zot_repo_storage_bytes",
        json!({"repo": "bg/app"}),
    );
    assert!(stored >= kept as f64, "{stored} < {kept}");
    assert_eq!(f["zot_repo_storage_bytes"]["type"], "gauge");

    let workers = value(
        &f,
        "zot_scheduler_workers_total",
        "zot_scheduler_workers_total",
        json!({}),
    );
    assert!(workers >= 1.0, "{}", f["zot_scheduler_workers_total"]);
    let tasks = "zot_scheduler_workers_tasks_duration_seconds";
    assert_eq!(f[tasks]["type"], "histogram");
    for kind in ["gc", "scrub"] {
        let n = value(&f, tasks, &format!("{tasks}_count"), json!({"name": kind}));
        assert!(n >= 1.0, "{kind} tasks: {}", f[tasks]);
    }
    let runs = value(
        &f,
        "zot_gc_runs",
        "zot_gc_runs_total",
        json!({"error": "false"}),
    );
    assert!(runs >= 1.0, "{}", f["zot_gc_runs"]);
    assert_eq!(f["zot_gc_duration_seconds"]["type"], "summary");
    assert_eq!(
        value(&f, "zot_gc_problems", "zot_gc_problems_total", json!({})),
        0.0
    );
    let checked = value(
        &f,
        "zot_scrub_blobs_checked",
        "zot_scrub_blobs_checked_total",
        json!({}),
    );
    assert!(checked >= 2.0, "{}", f["zot_scrub_blobs_checked"]);
    assert_eq!(
        value(
            &f,
            "zot_scrub_problems",
            "zot_scrub_problems_total",
            json!({})
        ),
        0.0
    );
    assert_eq!(
        value(
            &f,
            "zot_upload_sessions_open",
            "zot_upload_sessions_open",
            json!({})
        ),
        1.0
    );
    let meta = value(
        &f,
        "zot_meta_store_bytes",
        "zot_meta_store_bytes",
        json!({"store": "default"}),
    );
    let on_disk = std::fs::metadata(registry.root().join("_zot/meta.redb"))
        .expect("meta.redb")
        .len();
    assert!(
        meta > 0.0 && meta <= on_disk as f64 * 4.0,
        "{meta} vs {on_disk}"
    );

    // The same families pass the strict OpenMetrics parser.
    let om = client.request(
        "GET",
        "/metrics",
        &[("accept", "application/openmetrics-text; version=1.0.0")],
        None,
    );
    let o = parse_as(&om.text(), true);
    assert_eq!(o[tasks]["type"], "histogram");
    assert_eq!(o["zot_gc_deleted"]["type"], "counter");
}

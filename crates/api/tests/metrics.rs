//! Metrics recorded in-process: counters move with requests, the metrics
//! path itself is not counted, and repository labels exist only for
//! repositories answered with success, at most the configured number.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;

use common::{OCI_MANIFEST, TestApp};

/// `series → value` of a scrape (comments skipped).
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let r = app.get("/metrics").await;
    r.assert_status(200);
    assert!(r.h("content-type").starts_with("text/plain; version=0.0.4"));
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_with_requests_and_scrapes_are_not_counted() {
    let app = TestApp::builder().metrics(100).build().await;
    let img = app.push_image("team/app", Some("v1"), "seed").await;
    for _ in 0..2 {
        app.get("/v2/team/app/manifests/v1")
            .await
            .assert_status(200);
    }
    app.head(&format!("/v2/team/app/manifests/{}", img.digest))
        .await
        .assert_status(200);
    app.get("/v2/team/app/manifests/nope")
        .await
        .assert_status(404);
    let m = scrape(&app).await;
    assert_eq!(value(&m, r#"zot_repo_uploads_total{repo="team/app"}"#), 1.0);
    assert_eq!(
        value(&m, r#"zot_repo_downloads_total{repo="team/app"}"#),
        3.0
    );
    assert_eq!(
        value(&m, r#"zot_http_requests_total{code="404",method="GET"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"zot_http_requests_total{code="200",method="GET"}"#),
        2.0
    );
    assert!(value(&m, r#"zot_http_requests_total{code="201",method="PUT"}"#) >= 1.0);
    // 2 GET 200 + 1 GET 404 + 1 HEAD + the push: under the repository's label.
    let repo_count = value(
        &m,
        r#"zot_http_repo_latency_seconds_count{repo="team/app"}"#,
    );
    assert!(repo_count >= 5.0, "{repo_count}");
    let gets = value(&m, r#"zot_http_method_latency_seconds_count{method="GET"}"#);
    assert_eq!(gets, 3.0);
    assert_eq!(
        value(
            &m,
            r#"zot_http_method_latency_seconds_bucket{method="GET",le="+Inf"}"#
        ),
        gets
    );
    assert!(m.keys().any(|k| k.starts_with("zot_info{")));
    assert!(value(&m, "process_resident_memory_bytes") > 0.0);
    assert!(value(&m, "process_open_fds") > 0.0);
    assert!(value(&m, "process_threads") >= 1.0);
    // A second scrape: the first one was not counted.
    let again = scrape(&app).await;
    assert_eq!(
        value(
            &again,
            r#"zot_http_requests_total{code="200",method="GET"}"#
        ),
        2.0
    );
    let _ = OCI_MANIFEST;
}

#[tokio::test]
async fn invented_names_create_no_labels_and_the_cap_holds() {
    let app = TestApp::builder().metrics(2).build().await;
    for repo in ["a", "b", "c"] {
        app.push_image(repo, Some("t"), repo).await;
    }
    for i in 0..50 {
        app.get(&format!("/v2/ghost{i}/manifests/latest"))
            .await
            .assert_status(404);
        app.get(&format!("/v2/ghost{i}/tags/list")).await;
    }
    let m = scrape(&app).await;
    let labelled: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("zot_repo_uploads_total{"))
        .collect();
    assert_eq!(labelled.len(), 2, "{labelled:?}");
    assert!(
        !m.keys().any(|k| k.contains("ghost")),
        "an invented name got a label"
    );
    assert_eq!(value(&m, "zot_metrics_repo_labels"), 2.0);
    assert_eq!(value(&m, "zot_metrics_repo_labels_max"), 2.0);
    // The third repository's successful requests were refused a label.
    assert!(value(&m, "zot_metrics_repo_labels_dropped_total") >= 3.0);
    assert!(value(&m, r#"zot_http_repo_latency_seconds_count{repo="N/A"}"#) >= 100.0);
}

#[tokio::test]
async fn without_metrics_the_path_is_no_route() {
    let app = TestApp::new().await;
    app.get("/metrics").await.assert_status(404);
}

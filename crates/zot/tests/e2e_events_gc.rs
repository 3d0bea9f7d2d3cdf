//! Events of background deletions on the real binary: a retention policy
//! removing a tag makes `image.deleted` for the tag, then for the
//! manifest left untagged, each once, without `actor` or `request` (no
//! user asked), delivered through the outbox like a client's delete; GC
//! rounds that remove nothing make none (rounds counted by the metrics).

mod auth_common;
mod common;
mod events_common;
mod metrics_common;

use std::time::Duration;

use serde_json::json;

use auth_common::small_image;
use common::{Config, Registry};
use events_common::receiver::Receiver;

const DELETED: &str = "zotregistry.image.deleted";

#[test]
fn retention_deleting_a_tag_sends_image_deleted_once() {
    let receiver = Receiver::start();
    let registry = Registry::start_with(
        Config::default()
            .with_gc(true)
            .with_storage("gcInterval", json!("1s"))
            // Blobs stay (not what this test is about); manifests left
            // untagged go after a second.
            .with_storage("gcDelay", json!("1h"))
            .with_storage(
                "retention",
                json!({"delay": "1s", "policies": [{
                    "repositories": ["gc/**"],
                    "keepTags": [{"patterns": ["^keep$"]}],
                }]}),
            )
            .with_extensions(json!({
                "events": {"enable": true, "sinks": [{
                    "type": "http", "address": receiver.url(), "timeout": "1s",
                }]},
                "metrics": {"prometheus": {"path": "/metrics"}},
            })),
    );
    let client = registry.client();
    small_image("gc-keep").push(&client, "gc/app", "keep");
    let old = small_image("gc-old");
    old.push(&client, "gc/app", "old");
    let digest = old.manifest.digest.clone();

    let is_deleted = |r: &events_common::receiver::Received| r.event_type() == DELETED;
    let got = receiver.wait_for("retention's deletions", |g| {
        g.iter().filter(|r| is_deleted(r)).count() >= 2
    });
    let deleted: Vec<_> = got.iter().filter(|r| is_deleted(r)).collect();
    let refs: Vec<&str> = deleted
        .iter()
        .map(|r| r.data["reference"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(refs, vec!["old", digest.as_str()], "{got:#?}");
    for e in &deleted {
        assert_eq!(e.data["name"], "gc/app");
        assert_eq!(e.data["digest"], digest.as_str());
        assert_eq!(
            e.data["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert!(e.data.get("actor").is_none(), "{:?}", e.data);
        assert!(e.data.get("request").is_none(), "{:?}", e.data);
    }
    client
        .get("/v2/gc/app/manifests/keep")
        .expect_status(200, "the kept tag");
    client
        .get("/v2/gc/app/manifests/old")
        .expect_status(404, "the removed tag");

    // Two more GC rounds find nothing to remove: no more events.
    let gc_runs = || {
        let f = metrics_common::parse(&client.get("/metrics").text());
        metrics_common::sample(
            &f,
            "zot_gc_runs",
            "zot_gc_runs_total",
            json!({"error": "false"}),
        )
        .unwrap_or(0.0)
    };
    let seen = gc_runs();
    let start = std::time::Instant::now();
    while gc_runs() < seen + 2.0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "GC stopped: {}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let all = receiver.accepted();
    assert_eq!(all.iter().filter(|r| is_deleted(r)).count(), 2, "{all:#?}");
}

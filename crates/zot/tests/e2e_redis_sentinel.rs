//! The shared metadata store and upload state through a sentinel (issue
//! 9, point 3: "sentinel and cluster URLs parsed as zot does, tested at
//! least with one server"): `storage.cacheDriver.url` naming a sentinel
//! and `master_name`, as go-redis reads it; a real `redis-server` and a
//! sentinel watching it (`redis-server --sentinel`), both on free ports.
//! Two `zot serve` processes on one bucket: a push through A is pulled
//! through B, its tag listed by both, and its metadata is in the master
//! the sentinel names (found there with `redis-cli`).

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

#[path = "../../meta/tests/redis_common/mod.rs"]
mod redis_common;

use common::Registry;
use common::fixtures;
use common::registry::Config;
use serde_json::json;
use std::process::Command;

#[test]
fn two_instances_share_metadata_through_a_sentinel() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let master = redis_common::RedisServer::start();
    let sentinel = redis_common::RedisSentinel::start(&master, "zotmeta");
    let url = format!("redis://{}?master_name=zotmeta", sentinel.addr());
    let config = || {
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage(
                "cacheDriver",
                json!({"name": "redis", "url": url, "keyprefix": "sentinel"}),
            )
    };
    let a = Registry::start_with(config());
    let b = Registry::start_with(config());
    assert!(
        a.logs().contains("sentinel, master zotmeta"),
        "{}",
        a.logs()
    );

    let image = fixtures::image(
        ("linux", "amd64"),
        &[vec![("f", b"via sentinel".to_vec())]],
        false,
    );
    image.push(&a.client(), "sentinel/app", "1.0");
    let pulled = b.client().get_manifest("sentinel/app", "1.0");
    pulled.expect_status(200, "B: pushed through A");
    assert!(pulled.body == image.manifest.bytes, "B serves A's manifest");
    for c in [a.client(), b.client()] {
        let tags = c.get("/v2/sentinel/app/tags/list");
        tags.expect_status(200, "tags");
        assert_eq!(
            tags.json(),
            json!({"name": "sentinel/app", "tags": ["1.0"]})
        );
    }

    // The rows are in the master the sentinel named.
    let keys = Command::new("redis-cli")
        .args([
            "-p",
            &master.port.to_string(),
            "--scan",
            "--pattern",
            "{sentinel}:*",
        ])
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(
        keys.lines().any(|k| k.contains("sentinel/app")),
        "no row of the repository in the master:\n{keys}"
    );
}

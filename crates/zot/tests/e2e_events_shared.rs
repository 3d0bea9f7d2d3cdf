//! Events with several instances sharing one store (S3 layouts in one
//! SeaweedFS bucket, metadata and outbox in one `redis-server`): each
//! event reaches the sink once, not once per instance, whichever instance
//! made it; when the delivering instance is killed with `kill -9`, another
//! takes the sink over once its lease expires and sends what was left.

mod common;
mod events_common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

#[path = "../../meta/tests/redis_common/mod.rs"]
mod redis_common;

use std::collections::BTreeMap;

use common::registry::Config;
use common::{Registry, fixtures};
use events_common::receiver::{Received, Receiver};
use serde_json::{Value, json};

const UPDATED: &str = "zotregistry.image.updated";

fn config(s3: Value, redis_url: &str, receiver: &Receiver) -> Config {
    Config::default()
        .with_storage("storageDriver", s3)
        .with_storage(
            "cacheDriver",
            json!({"name": "redis", "url": redis_url, "keyprefix": "ev"}),
        )
        .with_extensions(json!({"events": {"enable": true, "sinks": [{
            "type": "http",
            "address": receiver.url(),
            "timeout": "2s",
        }]}}))
}

fn image(seed: &str) -> fixtures::Image {
    fixtures::image(
        ("linux", "amd64"),
        &[vec![("seed.txt", seed.as_bytes().to_vec())]],
        false,
    )
}

/// How many times each event id arrived.
fn per_id(got: &[Received]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in got {
        *out.entry(r.header("ce-id").to_owned()).or_default() += 1;
    }
    out
}

/// The tags of the `image.updated` events received.
fn updated_tags(got: &[Received]) -> Vec<String> {
    got.iter()
        .filter(|r| r.event_type() == UPDATED)
        .map(|r| r.data["reference"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Which instance logged that it delivers the sink.
fn deliverers(regs: &[&Registry]) -> Vec<usize> {
    regs.iter()
        .enumerate()
        .filter(|(_, r)| r.logs().contains("events: this instance delivers"))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn each_event_reaches_the_sink_once_and_a_killed_deliverer_is_replaced() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let redis = redis_common::RedisServer::start();
    let receiver = Receiver::start();
    let mut regs = [
        Registry::start_with(config(server.driver_json(&bucket), &redis.url(), &receiver)),
        Registry::start_with(config(server.driver_json(&bucket), &redis.url(), &receiver)),
    ];

    // Pushes through both instances, alternately.
    for i in 0..6 {
        image(&format!("shared {i}")).push(&regs[i % 2].client(), "ev/app", &format!("t{i}"));
    }
    receiver.wait_for("six image.updated events", |g| updated_tags(g).len() >= 6);
    // Both instances run lanes; they would each send every event without
    // the lease. Give a second sender time to show itself.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let got = receiver.accepted();
    let counts = per_id(&got);
    assert!(
        counts.values().all(|n| *n == 1),
        "an event reached the sink more than once: {counts:?}"
    );
    let mut tags = updated_tags(&got);
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5"]);
    let holders = deliverers(&[&regs[0], &regs[1]]);
    assert_eq!(
        holders.len(),
        1,
        "exactly one instance delivers: {holders:?}"
    );

    // The deliverer dies; events made through the other still arrive,
    // once its lease has expired (30 s after the last renewal).
    let holder = holders[0];
    regs[holder].kill9();
    let other = 1 - holder;
    image("after the crash").push(&regs[other].client(), "ev/app", "after");
    let got = receiver.wait_for("the event made after the deliverer died", |g| {
        updated_tags(g).iter().any(|t| t == "after")
    });
    assert!(
        regs[other]
            .logs()
            .contains("events: this instance delivers"),
        "the surviving instance took the sink over"
    );
    let counts = per_id(&got);
    assert!(
        counts.values().all(|n| *n == 1),
        "an event reached the sink more than once after the takeover: {counts:?}"
    );
}

//! The shared metadata store and upload state through a sentinel (issue
//! 9, point 3: "sentinel and cluster URLs parsed as zot does, tested at
//! least with one server"): `storage.cacheDriver.url` naming a sentinel
//! and `master_name`, as go-redis reads it; a real `redis-server` and a
//! sentinel watching it (`redis-server --sentinel`), both on free ports.
//! Two `zot serve` processes on one bucket: a push through A is pulled
//! through B, its tag listed by both, and its metadata is in the master
//! the sentinel names (found there with `redis-cli`). And a failover
//! (`SENTINEL FAILOVER` to a replica; the old master becomes a replica,
//! refusing writes): pushes succeed again without a restart, both the
//! metadata and the shared upload sessions now in the new master. And
//! reads after a failover: an instance that only reads serves no error
//! and nothing stale (the sentinel's `+switch-master` is followed at
//! once), and what another instance changes after the failover is served
//! within a second (issue 9: "no instance serves a deleted or moved tag
//! for more than one second").

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
use std::time::{Duration, Instant};

/// The keys of store `prefix` in the server on `port`.
fn keys(port: u16, prefix: &str) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--scan",
            "--pattern",
            &format!("{{{prefix}}}:*"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (polling) until `f` holds, or panics after `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A master watched by a sentinel (with a replica to promote, when
/// asked), and one bucket.
struct Sentinelled {
    bucket: String,
    master: redis_common::RedisServer,
    replica: Option<redis_common::RedisServer>,
    sentinel: redis_common::RedisSentinel,
}

impl Sentinelled {
    fn start(with_replica: bool) -> Sentinelled {
        let master = redis_common::RedisServer::start();
        let replica = with_replica.then(|| redis_common::RedisServer::start_replica(&master));
        let sentinel = redis_common::RedisSentinel::start(&master, "zotmeta");
        Sentinelled {
            bucket: seaweed::shared().bucket(),
            master,
            replica,
            sentinel,
        }
    }

    /// An instance's configuration: the bucket, the metadata through the
    /// sentinel under `keyprefix`.
    fn config(&self, keyprefix: &str) -> Config {
        let url = format!("redis://{}?master_name=zotmeta", self.sentinel.addr());
        Config::default()
            .with_storage("storageDriver", seaweed::shared().driver_json(&self.bucket))
            .with_storage(
                "cacheDriver",
                json!({"name": "redis", "url": url, "keyprefix": keyprefix}),
            )
    }

    /// Promotes the replica (see [`fail_over`]).
    fn fail_over(&self) {
        let replica = self.replica.as_ref().expect("started with a replica");
        fail_over(&self.master, replica, &self.sentinel);
    }
}

#[test]
fn two_instances_share_metadata_through_a_sentinel() {
    let set = Sentinelled::start(false);
    let a = Registry::start_with(set.config("sentinel"));
    let b = Registry::start_with(set.config("sentinel"));
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
    let found = keys(set.master.port, "sentinel");
    assert!(
        found.lines().any(|k| k.contains("sentinel/app")),
        "no row of the repository in the master:\n{found}"
    );
}

#[test]
fn pushes_work_again_after_a_failover_without_a_restart() {
    let set = Sentinelled::start(true);
    let a = Registry::start_with(set.config("failover"));
    let client = a.client();
    let first = fixtures::image(
        ("linux", "amd64"),
        &[vec![("f", b"before".to_vec())]],
        false,
    );
    first.push(&client, "failover/app", "1.0");

    set.fail_over();

    // A push (its upload sessions in the shared state, its rows in the
    // metadata store) works again, against the new master.
    let second = fixtures::image(("linux", "amd64"), &[vec![("f", b"after".to_vec())]], false);
    let push = || -> Result<(), String> {
        for blob in second.blobs() {
            client.try_push_blob("failover/app", &blob.bytes)?;
        }
        let put = client.try_put_manifest(
            "failover/app",
            "2.0",
            &second.manifest.media_type,
            &second.manifest.bytes,
        )?;
        (put.status == 201)
            .then_some(())
            .ok_or_else(|| put.to_string())
    };
    let mut last = String::new();
    eventually(Duration::from_secs(60), "a push after the failover", || {
        push().map_err(|e| last = e).is_ok()
    });
    eprintln!("last failure before the push went through: {last}");
    client
        .get_manifest("failover/app", "2.0")
        .expect_status(200, "pushed after the failover");
    client
        .get_manifest("failover/app", "1.0")
        .expect_status(200, "pushed before the failover");
    let found = keys(set.replica.as_ref().map_or(0, |r| r.port), "failover");
    let manifest = format!("kv:blobs:{}", second.manifest.digest);
    assert!(
        found.lines().any(|k| k.ends_with(&manifest)),
        "the new manifest is not in the new master:\n{found}"
    );
}

/// Waits until the replica holds the data and the sentinel knows it, then
/// promotes it (`SENTINEL FAILOVER`) and waits until the old master is a
/// replica (the sentinel closed its client connections then).
fn fail_over(
    master: &redis_common::RedisServer,
    replica: &redis_common::RedisServer,
    sentinel: &redis_common::RedisSentinel,
) {
    eventually(Duration::from_secs(30), "the replica is in sync", || {
        replica
            .ask(&["INFO", "replication"])
            .contains("master_link_status:up")
    });
    let port = replica.port.to_string();
    eventually(
        Duration::from_secs(30),
        "the sentinel sees the replica",
        || {
            sentinel
                .ask(&["SENTINEL", "replicas", "zotmeta"])
                .contains(&port)
        },
    );
    let answer = sentinel.ask(&["SENTINEL", "failover", "zotmeta"]);
    assert!(answer.contains("OK"), "SENTINEL FAILOVER: {answer}");
    eventually(Duration::from_secs(60), "the replica is the master", || {
        sentinel
            .ask(&["SENTINEL", "get-master-addr-by-name", "zotmeta"])
            .contains(&port)
    });
    eventually(
        Duration::from_secs(60),
        "the old master is a replica",
        || master.ask(&["ROLE"]).starts_with("slave"),
    );
}

#[test]
fn reads_follow_a_failover_at_once() {
    let set = Sentinelled::start(true);
    let a = Registry::start_with(set.config("reads"));
    let b = Registry::start_with(set.config("reads"));
    let (ca, cb) = (a.client(), b.client());
    let image = |text: &str| {
        fixtures::image(
            ("linux", "amd64"),
            &[vec![("f", text.as_bytes().to_vec())]],
            false,
        )
    };
    let (first, second, doomed) = (image("first"), image("second"), image("doomed"));
    first.push(&ca, "reads/app", "1.0");
    doomed.push(&ca, "reads/app", "old");
    // B reads: its pool holds connections to the master.
    for _ in 0..4 {
        let got = cb.get_manifest("reads/app", "1.0");
        got.expect_status(200, "B before the failover");
    }

    set.fail_over();

    // B, which wrote nothing, answers from the new master, without an
    // error on a connection the old one closed.
    for _ in 0..4 {
        let got = cb.get_manifest("reads/app", "1.0");
        got.expect_status(200, "B after the failover");
        assert!(got.body == first.manifest.bytes);
    }
    cb.get("/readyz")
        .expect_status(200, "B ready after the failover");

    // Through A: a tag moved, one pushed, one deleted, an upload started.
    second.push(&ca, "reads/app", "1.0");
    second.push(&ca, "reads/app", "2.0");
    ca.request("DELETE", "/v2/reads/app/manifests/old", &[], None)
        .expect_status(202, "DELETE tag old");
    let post = ca.request("POST", "/v2/reads/app/blobs/uploads/", &[], None);
    post.expect_status(202, "POST upload");
    let upload = post.header("location").unwrap_or_default().to_owned();

    // B serves every change within the second.
    eventually(Duration::from_secs(1), "B serves A's changes", || {
        cb.get_manifest("reads/app", "1.0").body == second.manifest.bytes
            && cb.get_manifest("reads/app", "2.0").status == 200
            && cb.get_manifest("reads/app", "old").status == 404
            && cb.get(&upload).status == 204
    });
}

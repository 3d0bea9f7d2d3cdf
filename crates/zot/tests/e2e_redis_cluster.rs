//! The shared metadata store and upload state in a Redis Cluster: three
//! masters (`redis-server --cluster-enabled yes` on free ports, joined by
//! `redis-cli --cluster create`) and zot's cluster URL
//! (`redis://host1:p1?addr=host2:p2&addr=host3:p3`), with a key prefix
//! whose slot the first address does not serve. Two `zot serve` processes
//! on one bucket:
//! - share the metadata (a push through A is listed and pulled through B)
//!   and the upload sessions (a chunked upload spread over both), every
//!   key of the store in the slot's master under `{<keyprefix>}`, none on
//!   the other masters;
//! - keep working, without a restart, while pushes go on through both and
//!   the slot migrates to another master key by key, then fails over to a
//!   replica of it (`CLUSTER FAILOVER`); an upload started before the
//!   migration is continued after it and finished after the failover.

mod common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

#[path = "../../meta/tests/redis_common/cluster.rs"]
mod redis_cluster;

use common::registry::Config;
use common::{Registry, fixtures, sha256_digest};
use redis_cluster::{RedisCluster, StopOnDrop};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A key prefix whose slot (of `{prefix}`, asked of the cluster itself)
/// the first node does not serve, and the slot.
fn prefix_off_the_first_node(cluster: &RedisCluster, base: &str) -> (String, u16) {
    (0..)
        .map(|i| {
            let p = format!("{base}{i}");
            let slot: u16 = cluster.nodes[0]
                .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(format!("{{{p}}}")));
            (p, slot)
        })
        .find(|(_, slot)| cluster.owner(*slot) != 0)
        .unwrap_or_else(|| unreachable!("an endless search"))
}

/// Two instances on a new bucket and `cluster`, keys under `prefix`.
fn instances(cluster: &RedisCluster, prefix: &str) -> (Registry, Registry) {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let config = || {
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage("remoteCache", json!(true))
            .with_storage(
                "cacheDriver",
                // A manual failover pauses the old master's writes for
                // up to 5 s (longer on a busy machine): waited out.
                json!({
                    "name": "redis",
                    "url": format!("{}&read_timeout=15s&write_timeout=15s", cluster.url()),
                    "keyprefix": prefix,
                }),
            )
    };
    (
        Registry::start_with(config()),
        Registry::start_with(config()),
    )
}

/// The keys of node `i` naming `prefix`.
fn keys_of(cluster: &RedisCluster, i: usize, prefix: &str) -> Vec<String> {
    cluster.nodes[i]
        .keys()
        .into_iter()
        .filter(|k| k.contains(prefix))
        .collect()
}

fn small(text: &str) -> fixtures::Image {
    fixtures::image(
        ("linux", "amd64"),
        &[vec![("f", text.as_bytes().to_vec())]],
        false,
    )
}

fn start_upload(reg: &Registry, repo: &str) -> String {
    let r = reg
        .client()
        .request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], None);
    r.expect_status(202, "POST upload");
    r.header("location")
        .unwrap_or_else(|| panic!("no Location"))
        .to_owned()
}

fn patch(reg: &Registry, location: &str, start: usize, chunk: &[u8]) {
    let range = format!("{start}-{}", start + chunk.len() - 1);
    let r = reg.client().request(
        "PATCH",
        location,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", &range),
        ],
        Some(chunk),
    );
    r.expect_status(202, "PATCH");
    assert_eq!(
        r.header("range").unwrap_or_default(),
        format!("0-{}", start + chunk.len() - 1)
    );
}

fn finish_upload(reg: &Registry, location: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let sep = if location.contains('?') { '&' } else { '?' };
    reg.client()
        .request("PUT", &format!("{location}{sep}digest={digest}"), &[], None)
        .expect_status(201, "PUT");
    digest
}

fn pull_blob(regs: &[&Registry], repo: &str, digest: &str, data: &[u8]) {
    for reg in regs {
        let got = reg.client().get(&format!("/v2/{repo}/blobs/{digest}"));
        got.expect_status(200, "GET blob");
        assert!(got.body == data, "the blob from {} differs", reg.addr());
    }
}

#[test]
fn two_instances_share_metadata_and_uploads_through_a_cluster() {
    let cluster = RedisCluster::start(3);
    let (prefix, slot) = prefix_off_the_first_node(&cluster, "share");
    let owner = cluster.owner(slot);
    let (a, b) = instances(&cluster, &prefix);
    assert!(a.logs().contains("(cluster)"), "{}", a.logs());

    let image = small("through a cluster");
    image.push(&a.client(), "cl/app", "1.0");
    let pulled = b.client().get_manifest("cl/app", "1.0");
    pulled.expect_status(200, "B: pushed through A");
    assert!(pulled.body == image.manifest.bytes, "B serves A's manifest");
    for c in [a.client(), b.client()] {
        let tags = c.get("/v2/cl/app/tags/list");
        tags.expect_status(200, "tags");
        assert_eq!(tags.json(), json!({"name": "cl/app", "tags": ["1.0"]}));
    }

    // POST on A, PATCHes on B then A, PUT on B.
    let data: Vec<u8> = (0..2 << 20).map(|i: u32| (i % 251) as u8).collect();
    let location = start_upload(&a, "cl/app");
    patch(&b, &location, 0, &data[..1 << 20]);
    patch(&a, &location, 1 << 20, &data[1 << 20..2 << 20]);
    let digest = finish_upload(&b, &location, &data[..]);
    pull_blob(&[&a, &b], "cl/app", &digest, &data);

    // Every key of the store in the slot's master, under the hash tag.
    let found = keys_of(&cluster, owner, &prefix);
    let tag = format!("{{{prefix}}}:");
    assert!(
        found.iter().any(|k| k.starts_with(&format!("{tag}kv:"))),
        "no metadata row in the slot's master: {found:?}"
    );
    assert!(found.iter().all(|k| k.starts_with(&tag)), "{found:?}");
    for i in (0..3).filter(|i| *i != owner) {
        assert_eq!(keys_of(&cluster, i, &prefix), Vec::<String>::new());
    }
}

#[test]
fn both_instances_keep_working_through_a_slot_migration_and_a_failover() {
    let mut cluster = RedisCluster::start(3);
    let (prefix, slot) = prefix_off_the_first_node(&cluster, "move");
    let first_owner = cluster.owner(slot);
    let (a, b) = instances(&cluster, &prefix);
    small("before").push(&a.client(), "mv/app", "0");

    // An upload started before the slot moves.
    let data: Vec<u8> = (0..2 << 20).map(|i: u32| (i % 241) as u8).collect();
    let location = start_upload(&a, "mv/app");
    patch(&a, &location, 0, &data[..1 << 20]);

    let to = (0..3).find(|i| *i != first_owner).unwrap_or_default();
    let stop = AtomicBool::new(false);
    let (ca, cb) = (a.client(), b.client());
    let pushed: u32 = std::thread::scope(|scope| {
        let pusher = scope.spawn(|| {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let (via, other) = if n.is_multiple_of(2) {
                    (&ca, &cb)
                } else {
                    (&cb, &ca)
                };
                let image = small(&format!("during {n}"));
                image.push(via, "mv/app", &n.to_string());
                let got = other.get_manifest("mv/app", &n.to_string());
                got.expect_status(200, "pulled through the other instance");
                assert!(
                    got.body == image.manifest.bytes,
                    "tag {n} names its manifest"
                );
            }
            n
        });
        let stopping = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_secs(1));
        cluster.move_slot(slot, to);
        patch(&b, &location, 1 << 20, &data[1 << 20..]);
        std::thread::sleep(Duration::from_secs(1));
        let replica = cluster.add_replica(to);
        cluster.failover(replica);
        std::thread::sleep(Duration::from_secs(1));
        drop(stopping);
        pusher
            .join()
            .unwrap_or_else(|_| panic!("the pusher failed"))
    });
    assert!(pushed > 1, "pushes ran meanwhile: {pushed}");
    let digest = finish_upload(&a, &location, &data);
    pull_blob(&[&a, &b], "mv/app", &digest, &data);
    small("after").push(&b.client(), "mv/app", "after");

    let new_owner = cluster.owner(slot);
    assert_eq!(new_owner, cluster.nodes.len() - 1, "the replica took over");
    let mut expected: Vec<String> = (1..=pushed).map(|n| n.to_string()).collect();
    expected.extend(["0".to_owned(), "after".to_owned()]);
    expected.sort();
    for c in [a.client(), b.client()] {
        let tags = c.get("/v2/mv/app/tags/list");
        tags.expect_status(200, "tags");
        assert_eq!(tags.json(), json!({"name": "mv/app", "tags": expected}));
    }
    assert!(
        keys_of(&cluster, first_owner, &prefix).is_empty(),
        "keys left on the first master"
    );
    let tag = format!("{{{prefix}}}:");
    let found = keys_of(&cluster, new_owner, &prefix);
    assert!(
        found.iter().any(|k| k.starts_with(&format!("{tag}kv:"))),
        "{found:?}"
    );
    assert!(found.iter().all(|k| k.starts_with(&tag)), "{found:?}");
}

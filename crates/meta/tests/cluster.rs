//! The metadata store in a Redis Cluster (three masters, `redis-server
//! --cluster-enabled yes` joined by `redis-cli --cluster create`): every
//! key of a store is in the slot of `{<keyprefix>}`, on the master serving
//! it, found through any seed node (the prefix is chosen so that the first
//! seed does not serve it); and two handles (instances) writing without a
//! pause keep working, losing no write and drawing one gapless event
//! sequence, while the slot migrates to another master key by key and then
//! fails over to a replica of that master. And a cluster requiring a
//! password: the seeds and the master are reached with the URL's.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

#[path = "redis_common/cluster.rs"]
mod redis_cluster;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis_cluster::{RedisCluster, StopOnDrop};
use zot_meta::{Change, ClusterNodes, ManifestRecord, MetaStore, OutboxEvent, RedisAddress};
use zot_oci::{Digest, RepoName};

fn address(cluster: &RedisCluster) -> RedisAddress {
    RedisAddress {
        url: format!("{}/0", cluster.nodes[0].url()),
        connect_timeout: Duration::from_secs(2),
        // A manual failover pauses the old master's writes for up to
        // 5 s (longer on a busy machine): waited out, not an outage.
        io_timeout: Duration::from_secs(15),
        sentinel: None,
        cluster: Some(ClusterNodes {
            urls: cluster.nodes.iter().map(|n| n.url()).collect(),
        }),
    }
}

/// A key prefix whose slot the first seed node does not serve, and the slot.
fn prefix_off_the_first_seed(cluster: &RedisCluster) -> (String, u16) {
    (0..)
        .map(|i| format!("meta{i}"))
        .map(|p| {
            let slot = zot_meta::key_slot(format!("{{{p}}}").as_bytes());
            (p, slot)
        })
        .find(|(_, slot)| cluster.owner(*slot) != 0)
        .unwrap()
}

fn rec(n: u32) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&n.to_be_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn event(n: u32) -> OutboxEvent {
    OutboxEvent {
        repo: "a".into(),
        event_type: "zotregistry.image.updated".into(),
        id: format!("id-{n}"),
        time: "2026-12-07T00:00:00Z".into(),
        data: "{}".into(),
    }
}

/// The keys of node `i` holding `prefix`.
fn keys_of(cluster: &RedisCluster, i: usize, prefix: &str) -> Vec<String> {
    cluster.nodes[i]
        .keys()
        .into_iter()
        .filter(|k| k.contains(prefix))
        .collect()
}

#[test]
fn a_store_follows_its_slot_through_a_migration_and_a_failover() {
    let mut cluster = RedisCluster::start(3);
    let (prefix, slot) = prefix_off_the_first_seed(&cluster);
    let first_owner = cluster.owner(slot);
    let address = address(&cluster);
    let stores: Vec<MetaStore> = (0..2)
        .map(|_| MetaStore::open_redis(&address, &prefix).unwrap())
        .collect();
    for s in &stores {
        s.set_outbox_limit(100_000);
    }
    let repo: RepoName = "a".parse().unwrap();
    stores[0]
        .apply(&repo, &[Change::SetTag("first".into(), rec(0))])
        .unwrap();
    assert_eq!(stores[1].tag(&repo, "first").unwrap(), Some(rec(0)));
    // Every key in the slot's master, under the one hash tag.
    let tag = format!("{{{prefix}}}:");
    let found = keys_of(&cluster, first_owner, &prefix);
    assert!(!found.is_empty(), "no key in the slot's master");
    assert!(found.iter().all(|k| k.starts_with(&tag)), "{found:?}");
    for i in (0..3).filter(|i| *i != first_owner) {
        assert_eq!(keys_of(&cluster, i, &prefix), Vec::<String>::new());
    }

    let to = (0..3).find(|i| *i != first_owner).unwrap();
    let stop = AtomicBool::new(false);
    let written: Vec<u32> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2u32)
            .map(|t| {
                let (s, repo, stop) = (&stores[t as usize], &repo, &stop);
                scope.spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let i = (t + 1) * 100_000 + n;
                        s.apply(
                            repo,
                            &[
                                Change::SetTag(format!("t{i}"), rec(i)),
                                Change::Event(Box::new(event(i))),
                            ],
                        )
                        .unwrap_or_else(|e| panic!("writer {t}, write {n}: {e}"));
                        let back = s
                            .tag(repo, &format!("t{i}"))
                            .unwrap_or_else(|e| panic!("reader {t}: {e}"));
                        assert_eq!(back, Some(rec(i)), "its own write read back");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let stopping = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_millis(500));
        cluster.move_slot(slot, to);
        std::thread::sleep(Duration::from_millis(500));
        let replica = cluster.add_replica(to);
        cluster.failover(replica);
        std::thread::sleep(Duration::from_millis(500));
        drop(stopping);
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(written.iter().all(|n| *n > 0), "both wrote: {written:?}");

    let new_owner = cluster.owner(slot);
    assert_eq!(new_owner, cluster.nodes.len() - 1, "the replica took over");
    assert!(
        keys_of(&cluster, first_owner, &prefix).is_empty(),
        "keys left on the first master"
    );
    let total: u32 = written.iter().sum::<u32>() + 1;
    for s in &stores {
        let (tags, _) = s.tags(&repo, None, 100_000).unwrap();
        assert_eq!(tags.len(), total as usize, "every write kept");
        assert!(s.healthy(), "no outage was reported");
    }
    let events = stores[1].outbox_after(0, 100_000).unwrap();
    let seqs: Vec<u64> = events.iter().map(|q| q.seq).collect();
    assert_eq!(
        seqs,
        (1..=u64::from(total - 1)).collect::<Vec<_>>(),
        "one gapless sequence"
    );
    let ids: BTreeSet<String> = events.into_iter().map(|q| q.event.id).collect();
    assert_eq!(ids.len(), (total - 1) as usize, "every event once");
    let found = keys_of(&cluster, new_owner, &prefix);
    assert!(found.iter().all(|k| k.starts_with(&tag)), "{found:?}");
}

#[test]
fn the_master_is_reached_with_the_seed_urls_credentials() {
    let cluster = RedisCluster::start_with(3, Some("s3cret"));
    let (prefix, slot) = prefix_off_the_first_seed(&cluster);
    let address = address(&cluster);
    let store = MetaStore::open_redis(&address, &prefix).unwrap();
    let repo: RepoName = "a".parse().unwrap();
    store
        .apply(&repo, &[Change::SetTag("v1".into(), rec(1))])
        .unwrap();
    assert_eq!(store.tag(&repo, "v1").unwrap(), Some(rec(1)));
    assert!(!keys_of(&cluster, cluster.owner(slot), &prefix).is_empty());

    let mut wrong = address.clone();
    wrong.url = wrong.url.replace("s3cret", "wrong");
    if let Some(c) = wrong.cluster.as_mut() {
        c.urls = c
            .urls
            .iter()
            .map(|u| u.replace("s3cret", "wrong"))
            .collect();
    }
    let refused = MetaStore::open_redis(&wrong, &prefix)
        .and_then(|s| s.tag(&repo, "v1"))
        .expect_err("a wrong password");
    assert!(
        refused.to_string().to_lowercase().contains("pass"),
        "{refused}"
    );
}

//! What only a shared store (Redis) has to show: key prefixes keep stores
//! apart, writers of several handles (instances) lose no update, and an
//! outage of the server is reported and recovered from.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use std::collections::BTreeSet;

use common::{Kind, Place};
use zot_meta::{Change, ManifestRecord, MetaStore, OutboxEvent};
use zot_oci::{Digest, RepoName};

fn rec(n: u32) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&n.to_be_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
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

#[test]
fn key_prefixes_keep_stores_apart() {
    let place = Place::new(Kind::Redis);
    let a = place.open_prefix("one");
    let b = place.open_prefix("two");
    a.apply(&repo("x"), &[Change::SetTag("v1".into(), rec(1))])
        .unwrap();
    b.apply(&repo("y"), &[Change::SetTag("v1".into(), rec(2))])
        .unwrap();
    assert_eq!(a.repos(None, 10).unwrap().0, ["x"]);
    assert_eq!(b.repos(None, 10).unwrap().0, ["y"]);
    assert_eq!(b.tag(&repo("x"), "v1").unwrap(), None);
    b.forget_repo("x").unwrap();
    assert_eq!(a.tag(&repo("x"), "v1").unwrap(), Some(rec(1)));
    // A second handle on the same prefix (another instance) sees it all.
    let a2 = place.open_prefix("one");
    assert_eq!(a2.tag(&repo("x"), "v1").unwrap(), Some(rec(1)));
}

#[test]
fn concurrent_writers_of_two_instances_lose_no_update() {
    let place = Place::new(Kind::Redis);
    let stores: Vec<MetaStore> = (0..2).map(|_| place.open()).collect();
    for s in &stores {
        s.set_search(true);
        s.set_outbox_limit(10_000);
    }
    let (threads, each) = (6u32, 15u32);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let s = &stores[(t % 2) as usize];
            scope.spawn(move || {
                for i in 0..each {
                    let n = t * 1000 + i;
                    s.apply(
                        &repo("a"),
                        &[
                            Change::PutManifest(rec(n)),
                            Change::SetTag(format!("t{n}"), rec(n)),
                            Change::Tagged(format!("t{n}"), u64::from(n)),
                            Change::Event(Box::new(event(n))),
                        ],
                    )
                    .unwrap();
                }
            });
        }
    });
    let m = &stores[0];
    let total = (threads * each) as usize;
    assert_eq!(m.tags(&repo("a"), None, 10_000).unwrap().0.len(), total);
    let events = m.outbox_after(0, 10_000).unwrap();
    let seqs: Vec<u64> = events.iter().map(|q| q.seq).collect();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "one gapless sequence"
    );
    let ids: BTreeSet<String> = events.into_iter().map(|q| q.event.id).collect();
    assert_eq!(ids.len(), total, "every event once");
    // Every write drew one generation of the store-wide sequence.
    assert_eq!(m.search_version().unwrap(), total as u64);
    assert_eq!(
        m.search_repo("a").unwrap().unwrap().generation,
        total as u64
    );
}

#[test]
fn an_outage_is_reported_and_recovered_from() {
    let mut place = Place::new(Kind::Redis);
    let m = place.open();
    m.apply(&repo("a"), &[Change::SetTag("v1".into(), rec(1))])
        .unwrap();
    place.server.as_mut().unwrap().stop();
    let err = m.tag(&repo("a"), "v1").unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!m.healthy());
    assert!(
        m.apply(&repo("a"), &[Change::SetTag("v2".into(), rec(2))])
            .unwrap_err()
            .is_unavailable()
    );
    assert!(m.probe().is_err());
    assert!(m.reopen().is_err(), "still away");

    place.server.as_mut().unwrap().restart();
    m.reopen().unwrap();
    m.probe().unwrap();
    assert!(
        !m.healthy(),
        "healthy only once the owner has resynchronised"
    );
    m.mark_healthy();
    assert_eq!(m.tag(&repo("a"), "v1").unwrap(), Some(rec(1)), "data kept");
    m.apply(&repo("a"), &[Change::SetTag("v2".into(), rec(2))])
        .unwrap();
    assert_eq!(m.tag(&repo("a"), "v2").unwrap(), Some(rec(2)));
}

#[test]
fn the_synced_mark_is_shared() {
    let place = Place::new(Kind::Redis);
    let a = place.open();
    assert!(!a.synced_mark().unwrap());
    a.set_synced_mark().unwrap();
    assert!(place.open().synced_mark().unwrap());
    assert!(!place.open_prefix("other").synced_mark().unwrap());
}

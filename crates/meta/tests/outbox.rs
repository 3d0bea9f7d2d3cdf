//! The events outbox: appended with the change it describes, numbered in
//! order, kept until every sink has acknowledged it, bounded.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use zot_meta::{Change, ManifestRecord, MetaStore, OutboxEvent};
use zot_oci::{Digest, RepoName};

fn event(repo: &str, n: u32) -> OutboxEvent {
    OutboxEvent {
        repo: repo.into(),
        event_type: "zotregistry.image.updated".into(),
        id: format!("id-{n}"),
        time: "2026-12-07T00:00:00Z".into(),
        data: format!(r#"{{"n":{n}}}"#),
    }
}

fn rec(n: u8) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&[n]),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn push(m: &MetaStore, repo: &str, n: u8) {
    let name: RepoName = repo.parse().unwrap();
    m.apply(
        &name,
        &[
            Change::PutManifest(rec(n)),
            Change::SetTag(format!("t{n}"), rec(n)),
            Change::Event(Box::new(event(repo, n.into()))),
        ],
    )
    .unwrap();
}

fn ids(m: &MetaStore, after: u64) -> Vec<String> {
    m.outbox_after(after, 100)
        .unwrap()
        .into_iter()
        .map(|q| q.event.id)
        .collect()
}

on_both! {
    fn events_are_numbered_in_order_with_their_change(kind) {
        let (_place, m) = common::open(kind);
        m.set_outbox_limit(100);
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        m.on_outbox_append(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        push(&m, "a", 1);
        push(&m, "b", 2);
        push(&m, "a", 3);
        assert_eq!(woken.load(Ordering::SeqCst), 3);
        let q = m.outbox_after(0, 10).unwrap();
        assert_eq!(
            q.iter().map(|q| q.seq).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "numbers follow the commits"
        );
        assert_eq!(q[1].event, event("b", 2));
        assert_eq!(ids(&m, 1), vec!["id-2", "id-3"]);
        // The change and its event are one: the tag is there too.
        assert!(m.tag(&"a".parse().unwrap(), "t3").unwrap().is_some());
    }
}

on_both! {
    fn events_off_keeps_nothing(kind) {
        let (_place, m) = common::open(kind);
        push(&m, "a", 1);
        assert_eq!(m.outbox_counts().unwrap(), (0, 0));
        assert!(m.tag(&"a".parse().unwrap(), "t1").unwrap().is_some());
    }
}

on_both! {
    fn an_event_leaves_when_every_sink_acknowledged_it(kind) {
        let (_place, m) = common::open(kind);
        m.set_outbox_limit(100);
        let sinks = vec!["http".to_owned(), "nats".to_owned()];
        assert_eq!(m.outbox_sinks(&sinks).unwrap(), vec![0, 0]);
        for n in 1..=4 {
            push(&m, "a", n);
        }
        m.outbox_ack("http", 3).unwrap();
        assert_eq!(m.outbox_counts().unwrap().0, 4, "nats has none yet");
        m.outbox_ack("nats", 2).unwrap();
        assert_eq!(ids(&m, 0), vec!["id-3", "id-4"]);
        // A cursor never goes back.
        m.outbox_ack("http", 1).unwrap();
        m.outbox_ack("nats", 3).unwrap();
        assert_eq!(ids(&m, 0), vec!["id-4"]);
        // Where another instance's delivery resumes.
        assert_eq!(m.outbox_cursor("http").unwrap(), 3);
        assert_eq!(m.outbox_cursor("nats").unwrap(), 3);
        assert_eq!(m.outbox_cursor("unknown").unwrap(), 0);
        // A new sink starts before the oldest event kept; a sink no longer
        // configured holds nothing back.
        let cursors = m
            .outbox_sinks(&["http".to_owned(), "new".to_owned()])
            .unwrap();
        assert_eq!(cursors, vec![3, 3]);
        m.outbox_ack("http", 4).unwrap();
        assert_eq!(ids(&m, 0), vec!["id-4"], "the new sink has not had it");
        m.outbox_ack("new", 4).unwrap();
        assert_eq!(m.outbox_counts().unwrap(), (0, 0));
        // With nothing kept, a new sink starts after the last number.
        push(&m, "a", 5);
        m.outbox_ack("http", 5).unwrap();
        m.outbox_ack("new", 5).unwrap();
        assert_eq!(m.outbox_sinks(&["later".to_owned()]).unwrap(), vec![5]);
    }
}

on_both! {
    fn the_oldest_are_dropped_beyond_the_limit_and_counted(kind) {
        let (_place, m) = common::open(kind);
        m.set_outbox_limit(3);
        m.outbox_sinks(&["http".to_owned()]).unwrap();
        for n in 1..=5 {
            push(&m, "a", n);
        }
        assert_eq!(m.outbox_counts().unwrap(), (3, 2));
        assert_eq!(ids(&m, 0), vec!["id-3", "id-4", "id-5"]);
        assert!(!m.outbox_contains(2).unwrap());
        assert!(m.outbox_contains(3).unwrap());
        // Refused pushes append alone, bounded the same way.
        m.append_events(&[event("b", 6)]).unwrap();
        assert_eq!(m.outbox_counts().unwrap(), (3, 3));
        assert_eq!(ids(&m, 0), vec!["id-4", "id-5", "id-6"]);
    }
}

on_both! {
    fn the_outbox_and_cursors_survive_a_reopen(kind) {
        let place = common::Place::new(kind);
        {
            let m = place.open();
            m.set_outbox_limit(100);
            m.outbox_sinks(&["http".to_owned()]).unwrap();
            push(&m, "a", 1);
            push(&m, "a", 2);
            m.outbox_ack("http", 1).unwrap();
        }
        let m = place.open();
        m.set_outbox_limit(100);
        assert_eq!(ids(&m, 0), vec!["id-2"]);
        push(&m, "a", 3);
        assert_eq!(
            m.outbox_after(0, 10).unwrap().last().unwrap().seq,
            3,
            "numbers go on after a reopen"
        );
    }
}

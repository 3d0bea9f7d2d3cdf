//! Property: the two backends answer the same. Random sequences of
//! operations (changes of every kind, rebuilds, removals, pulls, stars,
//! scanner rows, sessions, outbox acknowledgements) are applied to an
//! embedded store and to a Redis store, and after every operation
//! everything either store can be asked is compared. `PROPTEST_CASES`
//! runs more than the default 24 cases.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Kind, Place};
use proptest::prelude::*;
use zot_meta::{Change, ManifestRecord, MetaStore, OutboxEvent, PrefList, Pull};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest, RepoName};

const REPOS: [&str; 3] = ["a", "a/b", "c"];

fn digest(n: u8) -> Digest {
    Digest::sha256_of(&[n])
}

fn rec(n: u8) -> ManifestRecord {
    ManifestRecord {
        digest: digest(n),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn repo(i: u8) -> RepoName {
    REPOS[usize::from(i) % REPOS.len()].parse().unwrap()
}

#[derive(Debug, Clone)]
enum Ch {
    PutManifest(u8),
    RemoveManifest(u8),
    SetTag(u8, u8),
    RemoveTag(u8),
    AddBlob(u8),
    RemoveBlob(u8),
    HoldsContent(u8),
    Pushed(u8, u64),
    PutImage(u8),
    PushedBy(u8, u8),
    Tagged(u8, u64),
    PutReferrer(u8, u8),
    RemoveReferrer(u8, u8),
    Event(u8),
}

impl Ch {
    fn change(&self) -> Change {
        match *self {
            Ch::PutManifest(m) => Change::PutManifest(rec(m)),
            Ch::RemoveManifest(m) => Change::RemoveManifest(digest(m)),
            Ch::SetTag(t, m) => Change::SetTag(format!("t{t}"), rec(m)),
            Ch::RemoveTag(t) => Change::RemoveTag(format!("t{t}")),
            Ch::AddBlob(b) => Change::AddBlob(digest(b + 100)),
            Ch::RemoveBlob(b) => Change::RemoveBlob(digest(b + 100)),
            Ch::HoldsContent(b) => Change::HoldsContent(digest(b + 100)),
            Ch::Pushed(m, s) => Change::Pushed(digest(m), s),
            Ch::PutImage(m) => {
                Change::PutImage(Box::new(ImageMeta::from_manifest(digest(m), b"{}", None)))
            }
            Ch::PushedBy(m, u) => Change::PushedBy(digest(m), format!("user{u}")),
            Ch::Tagged(t, ns) => Change::Tagged(format!("t{t}"), ns),
            Ch::PutReferrer(s, r) => Change::PutReferrer {
                subject: digest(s),
                descriptor: Descriptor {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    digest: digest(r),
                    size: 1,
                    artifact_type: Some("x/y".into()),
                    annotations: None,
                    platform: None,
                    urls: None,
                },
            },
            Ch::RemoveReferrer(s, r) => Change::RemoveReferrer {
                subject: digest(s),
                referrer: digest(r),
            },
            Ch::Event(n) => Change::Event(Box::new(OutboxEvent {
                repo: "a".into(),
                event_type: "t".into(),
                id: format!("e{n}"),
                time: "2026-12-07T00:00:00Z".into(),
                data: "{}".into(),
            })),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Apply(u8, Vec<Ch>),
    Replace(u8, Vec<Ch>),
    Forget(u8),
    Pulls(Vec<(u8, u8, u64, u64)>),
    Toggle(u8, bool, u8),
    Findings(u8, u64),
    ForgetScans(u8),
    Session(u8, u8),
    Ack(u8, u64),
    Cards(u8, u64),
}

fn ch() -> impl Strategy<Value = Ch> + Clone {
    let m = 0u8..4;
    prop_oneof![
        m.clone().prop_map(Ch::PutManifest),
        m.clone().prop_map(Ch::RemoveManifest),
        (0u8..6, m.clone()).prop_map(|(t, m)| Ch::SetTag(t, m)),
        (0u8..6).prop_map(Ch::RemoveTag),
        (0u8..3).prop_map(Ch::AddBlob),
        (0u8..3).prop_map(Ch::RemoveBlob),
        (0u8..3).prop_map(Ch::HoldsContent),
        (m.clone(), 1u64..100).prop_map(|(m, s)| Ch::Pushed(m, s)),
        m.clone().prop_map(Ch::PutImage),
        (m.clone(), 0u8..2).prop_map(|(m, u)| Ch::PushedBy(m, u)),
        (0u8..3, 1u64..100).prop_map(|(t, n)| Ch::Tagged(t, n)),
        (m.clone(), m.clone()).prop_map(|(s, r)| Ch::PutReferrer(s, r)),
        (m.clone(), m).prop_map(|(s, r)| Ch::RemoveReferrer(s, r)),
        (0u8..50).prop_map(Ch::Event),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let changes = proptest::collection::vec(ch(), 0..10);
    prop_oneof![
        4 => (0u8..3, changes.clone()).prop_map(|(r, c)| Op::Apply(r, c)),
        1 => (0u8..3, changes).prop_map(|(r, c)| Op::Replace(r, c)),
        1 => (0u8..3).prop_map(Op::Forget),
        1 => proptest::collection::vec((0u8..3, 0u8..4, 1u64..100, 0u64..3), 0..4)
            .prop_map(Op::Pulls),
        1 => (0u8..2, any::<bool>(), 0u8..3).prop_map(|(u, s, r)| Op::Toggle(u, s, r)),
        1 => (0u8..3, 0u64..4).prop_map(|(d, v)| Op::Findings(d, v)),
        1 => (0u8..3).prop_map(Op::ForgetScans),
        1 => (0u8..3, 0u8..4).prop_map(|(k, what)| Op::Session(k, what)),
        1 => (0u8..2, 0u64..12).prop_map(|(s, n)| Op::Ack(s, n)),
        1 => (0u8..3, 0u64..30).prop_map(|(r, g)| Op::Cards(r, g)),
    ]
}

fn run(m: &MetaStore, op: &Op) -> String {
    let changes = |c: &[Ch]| c.iter().map(Ch::change).collect::<Vec<_>>();
    let r = match op {
        Op::Apply(r, c) => m.apply(&repo(*r), &changes(c)).map(|()| String::new()),
        Op::Replace(r, c) => m
            .replace_repo(&repo(*r), &changes(c))
            .map(|()| String::new()),
        Op::Forget(r) => m.forget_repo(repo(*r).as_str()).map(|()| String::new()),
        Op::Pulls(p) => {
            let pulls: Vec<Pull> = p
                .iter()
                .map(|(r, d, secs, count)| Pull {
                    repo: repo(*r),
                    digest: digest(*d),
                    secs: *secs,
                    count: *count,
                })
                .collect();
            m.record_downloads(&pulls).map(|()| String::new())
        }
        Op::Toggle(u, star, r) => {
            let list = if *star {
                PrefList::Starred
            } else {
                PrefList::Bookmarked
            };
            m.toggle_pref(&format!("user{u}"), list, repo(*r).as_str(), true)
                .map(|now| now.to_string())
        }
        Op::Findings(d, v) => {
            let d = digest(*d).to_string();
            m.put_scan(&d, b"inv")
                .and_then(|()| m.put_findings(&[(d, *v, vec![*v as u8])]))
                .map(|()| String::new())
        }
        Op::ForgetScans(d) => {
            let keep = digest(*d).to_string();
            m.forget_scans(|x| x == keep).map(|n| n.to_string())
        }
        Op::Session(k, what) => {
            let key = format!("s{k}");
            match what {
                0 => m.session_put(&key, b"v", 50).map(|()| String::new()),
                1 => m.session_take(&key, 10).map(|v| format!("{v:?}")),
                2 => m.session_delete(&key).map(|()| String::new()),
                _ => m.session_purge(60).map(|n| n.to_string()),
            }
        }
        Op::Ack(s, n) => m
            .outbox_ack(&format!("sink{s}"), *n)
            .map(|()| String::new()),
        Op::Cards(r, g) => m
            .save_search_cards(&[(repo(*r).as_str().to_owned(), *g, vec![1, 2])])
            .map(|()| String::new()),
    };
    r.unwrap()
}

/// Everything that can be asked of the store, as text.
fn observe(m: &MetaStore) -> String {
    let mut out = String::new();
    let mut say = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    say(format!("repos {:?}", m.repos(None, 100).unwrap()));
    say(format!(
        "repos after a {:?}",
        m.repos(Some("a"), 1).unwrap()
    ));
    let mut fps: Vec<_> = m.fingerprints().unwrap().into_iter().collect();
    fps.sort_by(|a, b| a.0.cmp(&b.0));
    say(format!("fingerprints {fps:?}"));
    for i in 0..3 {
        let r = repo(i);
        say(format!("{r} exists {:?}", m.repo_exists(&r).unwrap()));
        say(format!("{r} tags {:?}", m.tags(&r, None, 100).unwrap()));
        say(format!(
            "{r} tags after t0 {:?}",
            m.tags(&r, Some("t0"), 1).unwrap()
        ));
        say(format!(
            "{r} search {:?}",
            m.search_repo(r.as_str()).unwrap()
        ));
        say(format!(
            "{r} without image {:?}",
            m.manifests_without_image(r.as_str()).unwrap()
        ));
        for d in 0..4 {
            let dg = digest(d);
            say(format!(
                "{r} {d} manifest {:?}",
                m.manifest(&r, &dg).unwrap()
            ));
            say(format!("{r} {d} times {:?}", m.times(&r, &dg).unwrap()));
            say(format!(
                "{r} {d} referrers {:?}",
                m.referrers(&r, &dg).unwrap()
            ));
            say(format!("{r} {d} tags of {:?}", m.tags_of(&r, &dg).unwrap()));
        }
    }
    for b in 0..3 {
        let d = digest(b + 100);
        say(format!(
            "blob {b} {:?} {:?}",
            m.blob_repos(&d).unwrap(),
            m.blob_origin(&d).unwrap()
        ));
    }
    say(format!("version {}", m.search_version().unwrap()));
    say(format!("search repos {:?}", m.search_repos().unwrap()));
    say(format!("cards {:?}", m.search_cards().unwrap()));
    say(format!("outbox {:?}", m.outbox_after(0, 100).unwrap()));
    say(format!("outbox counts {:?}", m.outbox_counts().unwrap()));
    for u in 0..2 {
        say(format!(
            "prefs {u} {:?}",
            m.user_prefs(&format!("user{u}")).unwrap()
        ));
    }
    say(format!("scanned {:?}", m.scanned_digests().unwrap()));
    say(format!(
        "scanned after 0 {:?}",
        m.scanned_digests_after(Some(&digest(0).to_string()), 1)
            .unwrap()
    ));
    for d in 0..3 {
        let d = digest(d).to_string();
        say(format!(
            "scan {d} {:?} {:?}",
            m.scan(&d).unwrap(),
            m.findings(&d).unwrap()
        ));
    }
    for k in 0..3 {
        say(format!(
            "session {k} {:?}",
            m.session_get(&format!("s{k}"), 10).unwrap()
        ));
    }
    out
}

static CASE: AtomicUsize = AtomicUsize::new(0);

fn prepare(m: &MetaStore) {
    m.set_search(true);
    m.set_outbox_limit(6);
    m.outbox_sinks(&["sink0".to_owned(), "sink1".to_owned()])
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn both_backends_answer_the_same(ops in proptest::collection::vec(op(), 1..24)) {
        thread_local! {
            static REDIS: Place = Place::new(Kind::Redis);
        }
        let redb_place = Place::new(Kind::Redb);
        let redb = redb_place.open();
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let redis = REDIS.with(|p| p.open_prefix(&format!("case{case}")));
        prepare(&redb);
        prepare(&redis);
        for op in &ops {
            let a = run(&redb, op);
            let b = run(&redis, op);
            prop_assert_eq!(a, b, "answer to {:?}", op);
            prop_assert_eq!(observe(&redb), observe(&redis), "after {:?}", op);
        }
    }
}

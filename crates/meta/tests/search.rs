//! The search tables of the metadata store: kept in step by `Change`s,
//! removed with their manifests, tags and repositories, kept by rebuilds;
//! saved summaries handed back only while current.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use zot_meta::{Change, ManifestRecord, MetaStore, PrefList, Pull, SavedCard};
use zot_oci::image_meta::{ImageMeta, NOTATION_SIGNATURE};
use zot_oci::{Digest, RepoName};

fn rec(n: u8) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&[n]),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn image(n: u8) -> Box<ImageMeta> {
    Box::new(ImageMeta::from_manifest(rec(n).digest, b"{}", None))
}

fn open(kind: common::Kind) -> (common::Place, MetaStore) {
    let (place, m) = common::open(kind);
    m.set_search(true);
    (place, m)
}

fn push(m: &MetaStore, repo: &RepoName, n: u8, tag: &str, user: &str, at: u64) {
    m.apply(
        repo,
        &[
            Change::PutManifest(rec(n)),
            Change::Pushed(rec(n).digest, at),
            Change::PutImage(image(n)),
            Change::PushedBy(rec(n).digest, user.into()),
            Change::SetTag(tag.into(), rec(n)),
            Change::Tagged(tag.into(), at * 1_000_000_000),
        ],
    )
    .unwrap();
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn generation(m: &MetaStore, repo: &str) -> u64 {
    m.search_repo(repo).unwrap().unwrap().generation
}

on_both! {
    fn pushes_are_recorded_and_each_change_is_a_new_generation(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        let g1 = generation(&m, "a");
        push(&m, &a, 1, "v2", "bob", 200);
        let g2 = generation(&m, "a");
        assert!(g2 > g1);
        let r = m.search_repo("a").unwrap().unwrap();
        assert_eq!(r.images.len(), 1);
        assert_eq!(r.images[0].digest, rec(1).digest);
        let tags: Vec<(&str, Option<u64>)> = r
            .tags
            .iter()
            .map(|t| (t.tag.as_str(), t.tagged_ns))
            .collect();
        assert_eq!(
            tags,
            vec![("v1", Some(100_000_000_000)), ("v2", Some(200_000_000_000))]
        );
        assert_eq!(r.stats.len(), 1);
        assert_eq!(r.stats[0].pushed_by, "alice", "the first pusher is kept");
        assert_eq!(r.stats[0].pushed, Some(200));
        assert_eq!(m.search_repos().unwrap(), vec![("a".to_string(), g2)]);
        assert!(m.search_repo("nope").unwrap().is_none());

        // With search off, generations stay.
        m.set_search(false);
        push(&m, &a, 2, "v3", "carol", 300);
        assert_eq!(generation(&m, "a"), g2);
    }
}

on_both! {
    fn removals_drop_rows_even_with_search_off(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        push(&m, &a, 2, "v2", "alice", 100);
        m.record_downloads(&[Pull {
            repo: a.clone(),
            digest: rec(1).digest,
            secs: 5,
            count: 3,
        }])
        .unwrap();
        m.set_search(false);
        m.apply(
            &a,
            &[
                Change::RemoveTag("v1".into()),
                Change::RemoveManifest(rec(1).digest),
            ],
        )
        .unwrap();
        m.apply(&a, &[Change::RemoveTag("v2".into())]).unwrap();
        let r = m.search_repo("a").unwrap().unwrap();
        assert_eq!(r.images.len(), 1);
        assert!(r.tags.is_empty());
        assert!(r.stats.iter().all(|s| s.digest != rec(1).digest));
        assert!(m.image(a.as_str(), &rec(1).digest).unwrap().is_none());
    }
}

on_both! {
    fn a_rebuild_keeps_history_of_what_is_still_there(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        push(&m, &a, 2, "v2", "bob", 100);
        m.record_downloads(&[
            Pull {
                repo: a.clone(),
                digest: rec(1).digest,
                secs: 5,
                count: 3,
            },
            Pull {
                repo: a.clone(),
                digest: rec(2).digest,
                secs: 5,
                count: 4,
            },
        ])
        .unwrap();
        assert!(m.toggle_pref("u", PrefList::Starred, "a", true).unwrap());
        let before = generation(&m, "a");
        // The layout now holds manifest 1 under v1 only.
        m.replace_repo(
            &a,
            &[
                Change::PutManifest(rec(1)),
                Change::SetTag("v1".into(), rec(1)),
            ],
        )
        .unwrap();
        let r = m.search_repo("a").unwrap().unwrap();
        assert!(r.generation > before);
        assert_eq!(
            r.images.len(),
            1,
            "the record of a manifest still present is kept"
        );
        assert_eq!(r.tags.len(), 1);
        assert_eq!(r.tags[0].tagged_ns, Some(100_000_000_000));
        assert_eq!(r.stats.len(), 1);
        assert_eq!(
            (r.stats[0].downloads, r.stats[0].pushed_by.as_str()),
            (3, "alice")
        );
        assert_eq!(r.stars, 1);
        assert!(m.manifests_without_image("a").unwrap().is_empty());
    }
}

on_both! {
    fn forgetting_a_repository_drops_everything_of_it(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        let b: RepoName = "b".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        push(&m, &b, 1, "v1", "alice", 100);
        m.toggle_pref("u", PrefList::Starred, "a", true).unwrap();
        m.toggle_pref("u", PrefList::Bookmarked, "b", true).unwrap();
        m.forget_repo("a").unwrap();
        assert!(m.search_repo("a").unwrap().is_none());
        assert!(m.image("a", &rec(1).digest).unwrap().is_none());
        assert_eq!(
            m.user_prefs("u").unwrap(),
            vec![(PrefList::Bookmarked, "b".to_string())]
        );
        // Pushed again: a generation never seen before.
        let old = generation(&m, "b");
        push(&m, &a, 1, "v1", "alice", 100);
        let r = m.search_repo("a").unwrap().unwrap();
        assert!(r.generation > old);
        assert_eq!(r.stars, 0);
    }
}

on_both! {
    fn downloads_count_images_not_signatures_nor_unknown_manifests(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        let sig = format!(
            r#"{{"schemaVersion":2,"artifactType":"{NOTATION_SIGNATURE}","subject":{{"digest":"{}","size":1,"mediaType":"x"}}}}"#,
            rec(1).digest
        );
        let mut sig_meta = ImageMeta::from_manifest(rec(2).digest, sig.as_bytes(), None);
        sig_meta.digest = rec(2).digest;
        m.apply(
            &a,
            &[
                Change::PutManifest(rec(2)),
                Change::PutImage(Box::new(sig_meta)),
            ],
        )
        .unwrap();
        let pull = |n: u8, count| Pull {
            repo: a.clone(),
            digest: rec(n).digest,
            secs: 50,
            count,
        };
        m.record_downloads(&[pull(1, 2), pull(2, 5), pull(3, 7)])
            .unwrap();
        m.record_downloads(&[pull(1, 1)]).unwrap();
        let r = m.search_repo("a").unwrap().unwrap();
        let stat = |n: u8| r.stats.iter().find(|s| s.digest == rec(n).digest).cloned();
        assert_eq!(
            stat(1).map(|s| (s.downloads, s.pulled)),
            Some((3, Some(50)))
        );
        assert_eq!(
            stat(2).map(|s| (s.downloads, s.pulled)),
            Some((0, Some(50)))
        );
        assert!(stat(3).is_none());
        // A pull-time-only batch (record_pulls) counts nothing.
        m.record_pulls(&[(a.clone(), rec(1).digest, 60)]).unwrap();
        let r = m.search_repo("a").unwrap().unwrap();
        assert_eq!(r.stats[0].downloads + r.stats[1].downloads, 3);
    }
}

on_both! {
    fn stars_and_bookmarks(kind) {
        let (_d, m) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 100);
        assert!(m.toggle_pref("u1", PrefList::Starred, "a", true).unwrap());
        assert!(m.toggle_pref("u2", PrefList::Starred, "a", true).unwrap());
        assert!(
            m.toggle_pref("u1", PrefList::Bookmarked, "a", true)
                .unwrap()
        );
        assert_eq!(m.search_repo("a").unwrap().unwrap().stars, 2);
        assert!(!m.toggle_pref("u2", PrefList::Starred, "a", true).unwrap());
        assert_eq!(m.search_repo("a").unwrap().unwrap().stars, 1);
        assert_eq!(
            m.user_prefs("u1").unwrap(),
            vec![
                (PrefList::Starred, "a".to_string()),
                (PrefList::Bookmarked, "a".to_string())
            ]
        );
        assert!(m.user_prefs("u2").unwrap().is_empty());
        assert!(
            m.user_prefs("u").unwrap().is_empty(),
            "a prefix of a user is another user"
        );
        m.add_stars(&a, -5).unwrap();
        assert_eq!(m.search_repo("a").unwrap().unwrap().stars, 0);
    }
}

on_both! {
    fn the_indexed_mark(kind) {
        let (_d, m) = open(kind);
        assert!(!m.search_indexed().unwrap());
        m.set_search_indexed(true).unwrap();
        assert!(m.search_indexed().unwrap());
        m.set_search_indexed(false).unwrap();
        assert!(!m.search_indexed().unwrap());
    }
}

on_both! {
    fn the_version_moves_with_every_change_to_the_listing(kind) {
        let (_d, m) = open(kind);
        let start = m.search_version().unwrap();
        let a: RepoName = "a".parse().unwrap();
        push(&m, &a, 1, "v1", "alice", 10);
        let pushed = m.search_version().unwrap();
        assert!(pushed > start, "a push moves the version");
        assert_eq!(m.search_version().unwrap(), pushed, "reading does not");
        m.forget_repo("a").unwrap();
        let forgotten = m.search_version().unwrap();
        assert!(
            forgotten > pushed,
            "forgetting a repository moves the version"
        );
        assert!(m.search_repos().unwrap().is_empty());
    }
}

on_both! {
    fn a_batch_of_replacements_is_the_same_as_one_replacement_each(kind) {
        let (_d1, one) = open(kind);
        let (_d2, batch) = open(kind);
        let a: RepoName = "a".parse().unwrap();
        let b: RepoName = "b".parse().unwrap();
        let c: RepoName = "c".parse().unwrap();
        for m in [&one, &batch] {
            push(m, &a, 1, "v1", "alice", 100);
            push(m, &a, 2, "v2", "alice", 100);
            push(m, &c, 3, "v1", "carol", 300);
        }
        // a keeps manifest 1 only; b is new; c is untouched.
        let changes = vec![
            (
                a.clone(),
                vec![
                    Change::PutManifest(rec(1)),
                    Change::SetTag("v1".into(), rec(1)),
                ],
            ),
            (
                b.clone(),
                vec![
                    Change::PutManifest(rec(4)),
                    Change::PutImage(image(4)),
                    Change::SetTag("latest".into(), rec(4)),
                    Change::AddBlob(rec(4).digest),
                ],
            ),
        ];
        for (repo, c) in &changes {
            one.replace_repo(repo, c).unwrap();
        }
        let before = batch.search_version().unwrap();
        batch.replace_repos(&changes).unwrap();
        assert!(batch.search_version().unwrap() > before);
        assert!(batch.replace_repos(&[]).is_ok());
        assert_eq!(one.search_repos().unwrap().len(), 3);
        for name in ["a", "b", "c"] {
            let (x, y) = (
                one.search_repo(name).unwrap().unwrap(),
                batch.search_repo(name).unwrap().unwrap(),
            );
            assert_eq!(x.tags, y.tags, "{name}");
            assert_eq!(x.images, y.images, "{name}");
            assert_eq!(x.stats, y.stats, "{name}");
            let repo: RepoName = name.parse().unwrap();
            assert_eq!(
                one.tags(&repo, None, 10).unwrap(),
                batch.tags(&repo, None, 10).unwrap()
            );
        }
        assert_eq!(batch.search_repo("a").unwrap().unwrap().images.len(), 1);
        let mut fingerprinted: Vec<String> = batch.fingerprints().unwrap().into_keys().collect();
        fingerprinted.sort();
        assert_eq!(fingerprinted, ["a", "b", "c"]);
        assert_eq!(
            batch.blob_repos(&rec(4).digest).unwrap(),
            vec!["b".to_owned()]
        );
    }
}

// Saved search summaries: handed back only while their repository keeps
// the generation they were saved for, whatever changed it.

/// Saves a card of `repo` for its current generation.
fn save(m: &MetaStore, repo: &str, bytes: &[u8]) {
    let card: SavedCard = (repo.into(), generation(m, repo), bytes.to_vec());
    m.save_search_cards(&[card]).unwrap();
}

fn saved(m: &MetaStore) -> Vec<(String, Vec<u8>)> {
    m.search_cards()
        .unwrap()
        .into_iter()
        .map(|(name, saved_for, bytes)| {
            assert_eq!(saved_for, generation(m, &name));
            (name, bytes)
        })
        .collect()
}

on_both! {
    fn a_saved_card_is_current_until_its_repository_changes(kind) {
        let (_d, m) = open(kind);
        push(&m, &repo("a"), 1, "v1", "u", 1);
        push(&m, &repo("b"), 2, "v1", "u", 1);
        save(&m, "a", b"card a");
        save(&m, "b", b"card b");
        assert_eq!(
            saved(&m),
            vec![
                ("a".into(), b"card a".to_vec()),
                ("b".into(), b"card b".to_vec())
            ]
        );

        push(&m, &repo("a"), 3, "v2", "u", 1);
        assert_eq!(saved(&m), vec![("b".into(), b"card b".to_vec())]);

        // A card built for an older generation is not saved.
        let old = generation(&m, "b");
        push(&m, &repo("b"), 4, "v2", "u", 1);
        m.save_search_cards(&[("b".into(), old, b"stale".to_vec())])
            .unwrap();
        assert!(saved(&m).is_empty());
        // Nor one of a repository the store does not know.
        m.save_search_cards(&[("nope".into(), 1, b"x".to_vec())])
            .unwrap();
        assert!(saved(&m).is_empty());
    }
}

on_both! {
    fn changes_with_search_off_drop_the_card(kind) {
        let (_d, m) = open(kind);
        push(&m, &repo("a"), 1, "v1", "u", 1);
        push(&m, &repo("b"), 2, "v1", "u", 1);
        push(&m, &repo("c"), 3, "v1", "u", 1);
        for r in ["a", "b", "c"] {
            save(&m, r, r.as_bytes());
        }
        m.set_search(false);
        // Generations stand still with search off: the card must go instead.
        let before = generation(&m, "a");
        push(&m, &repo("a"), 4, "v2", "u", 1);
        assert_eq!(generation(&m, "a"), before);
        // A star changes the repository's star count.
        m.toggle_pref("alice", PrefList::Starred, "b", true)
            .unwrap();
        assert_eq!(saved(&m), vec![("c".into(), b"c".to_vec())]);
        m.set_search(true);
        m.forget_repo("c").unwrap();
        assert!(saved(&m).is_empty());
    }
}

on_both! {
    fn stars_and_rebuilds_make_the_card_stale(kind) {
        let (_d, m) = open(kind);
        push(&m, &repo("a"), 1, "v1", "u", 1);
        push(&m, &repo("b"), 2, "v1", "u", 1);
        save(&m, "a", b"a");
        save(&m, "b", b"b");
        m.toggle_pref("alice", PrefList::Starred, "a", true)
            .unwrap();
        let b: RepoName = "b".parse().unwrap();
        m.replace_repos(&[(b, vec![Change::PutManifest(rec(2))])])
            .unwrap();
        assert!(saved(&m).is_empty());
    }
}

on_both! {
    fn cards_survive_a_reopen(kind) {
        let place = common::Place::new(kind);
        {
            let m = place.open();
            m.set_search(true);
            push(&m, &repo("a"), 1, "v1", "u", 1);
            save(&m, "a", b"kept");
            m.flush().unwrap();
        }
        let m = place.open();
        m.set_search(true);
        assert_eq!(saved(&m), vec![("a".into(), b"kept".to_vec())]);
    }
}

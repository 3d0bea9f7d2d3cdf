//! Saved search summaries: handed back only while their repository keeps
//! the generation they were saved for, whatever changed it (a push with
//! search on or off, a star, a rebuild, a removal).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use zot_meta::{Change, ManifestRecord, MetaStore, PrefList, SavedCard};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Digest, RepoName};

fn rec(n: u8) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&[n]),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

fn push(m: &MetaStore, repo: &str, n: u8, tag: &str) {
    let repo: RepoName = repo.parse().unwrap();
    m.apply(
        &repo,
        &[
            Change::PutManifest(rec(n)),
            Change::PutImage(Box::new(ImageMeta::from_manifest(
                rec(n).digest,
                b"{}",
                None,
            ))),
            Change::SetTag(tag.into(), rec(n)),
        ],
    )
    .unwrap();
}

fn open() -> (tempfile::TempDir, MetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let m = MetaStore::open(&dir.path().join("m.redb")).unwrap();
    m.set_search(true);
    (dir, m)
}

fn generation(m: &MetaStore, repo: &str) -> u64 {
    m.search_repo(repo).unwrap().unwrap().generation
}

/// Saves a card of `repo` for its current generation.
fn save(m: &MetaStore, repo: &str, bytes: &[u8]) {
    let card: SavedCard = (repo.into(), generation(m, repo), bytes.to_vec());
    m.save_search_cards(&[card]).unwrap();
}

fn saved(m: &MetaStore) -> Vec<(String, Vec<u8>)> {
    m.search_cards()
        .unwrap()
        .into_iter()
        .map(|(name, generation, bytes)| {
            assert_eq!(generation, generation_of(m, &name));
            (name, bytes)
        })
        .collect()
}

fn generation_of(m: &MetaStore, repo: &str) -> u64 {
    generation(m, repo)
}

#[test]
fn a_saved_card_is_current_until_its_repository_changes() {
    let (_d, m) = open();
    push(&m, "a", 1, "v1");
    push(&m, "b", 2, "v1");
    save(&m, "a", b"card a");
    save(&m, "b", b"card b");
    assert_eq!(
        saved(&m),
        vec![
            ("a".into(), b"card a".to_vec()),
            ("b".into(), b"card b".to_vec())
        ]
    );

    push(&m, "a", 3, "v2");
    assert_eq!(saved(&m), vec![("b".into(), b"card b".to_vec())]);

    // A card built for an older generation is not saved.
    let old = generation(&m, "b");
    push(&m, "b", 4, "v2");
    m.save_search_cards(&[("b".into(), old, b"stale".to_vec())])
        .unwrap();
    assert!(saved(&m).is_empty());
    // Nor one of a repository the store does not know.
    m.save_search_cards(&[("nope".into(), 1, b"x".to_vec())])
        .unwrap();
    assert!(saved(&m).is_empty());
}

#[test]
fn changes_with_search_off_drop_the_card() {
    let (_d, m) = open();
    push(&m, "a", 1, "v1");
    push(&m, "b", 2, "v1");
    push(&m, "c", 3, "v1");
    for r in ["a", "b", "c"] {
        save(&m, r, r.as_bytes());
    }
    m.set_search(false);
    // Generations stand still with search off: the card must go instead.
    let before = generation(&m, "a");
    push(&m, "a", 4, "v2");
    assert_eq!(generation(&m, "a"), before);
    // A star changes the repository's star count.
    m.toggle_pref("alice", PrefList::Starred, "b", true)
        .unwrap();
    assert_eq!(saved(&m), vec![("c".into(), b"c".to_vec())]);
    m.set_search(true);
    m.forget_repo("c").unwrap();
    assert!(saved(&m).is_empty());
}

#[test]
fn stars_and_rebuilds_make_the_card_stale() {
    let (_d, m) = open();
    push(&m, "a", 1, "v1");
    push(&m, "b", 2, "v1");
    save(&m, "a", b"a");
    save(&m, "b", b"b");
    m.toggle_pref("alice", PrefList::Starred, "a", true)
        .unwrap();
    let b: RepoName = "b".parse().unwrap();
    m.replace_repos(&[(b, vec![Change::PutManifest(rec(2))])])
        .unwrap();
    assert!(saved(&m).is_empty());
}

#[test]
fn cards_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    {
        let m = MetaStore::open(&path).unwrap();
        m.set_search(true);
        push(&m, "a", 1, "v1");
        save(&m, "a", b"kept");
        m.flush().unwrap();
    }
    let m = MetaStore::open(&path).unwrap();
    m.set_search(true);
    assert_eq!(saved(&m), vec![("a".into(), b"kept".to_vec())]);
}

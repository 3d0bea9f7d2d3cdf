//! The store's own tables on both backends: repositories, tags, blobs,
//! referrers, API keys, scanner rows, sessions.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use zot_meta::{Change, ManifestRecord};
use zot_oci::{Descriptor, Digest, RepoName};

fn rec(n: u8) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::sha256_of(&[n]),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: n.into(),
    }
}

on_both! {
    fn tags_repos_and_blobs(kind) {
        let (_place, m) = common::open(kind);
        let a: RepoName = "a".parse().unwrap();
        let ab: RepoName = "a/b".parse().unwrap();
        for t in ["v3", "v1", "v2"] {
            m.apply(
                &a,
                &[
                    Change::PutManifest(rec(1)),
                    Change::SetTag(t.into(), rec(1)),
                ],
            )
            .unwrap();
        }
        m.apply(
            &ab,
            &[
                Change::SetTag("x".into(), rec(2)),
                Change::AddBlob(rec(2).digest),
            ],
        )
        .unwrap();
        assert_eq!(
            m.tags(&a, None, 10).unwrap(),
            (vec!["v1".into(), "v2".into(), "v3".into()], false)
        );
        assert_eq!(
            m.tags(&a, None, 2).unwrap(),
            (vec!["v1".into(), "v2".into()], true)
        );
        assert_eq!(
            m.tags(&a, Some("v1"), 5).unwrap(),
            (vec!["v2".into(), "v3".into()], false)
        );
        assert_eq!(m.tags(&ab, None, 5).unwrap().0, vec!["x".to_string()]);
        assert_eq!(
            m.repos(None, 10).unwrap().0,
            vec!["a".to_string(), "a/b".to_string()]
        );
        assert_eq!(m.repos(Some("a"), 10).unwrap().0, vec!["a/b".to_string()]);
        assert_eq!(m.tag(&a, "v2").unwrap(), Some(rec(1)));
        assert_eq!(m.tags_of(&a, &rec(1).digest).unwrap().len(), 3);
        assert_eq!(
            m.blob_repos(&rec(2).digest).unwrap(),
            vec!["a/b".to_string()]
        );
        m.forget_repo("a/b").unwrap();
        assert!(m.blob_repos(&rec(2).digest).unwrap().is_empty());
        assert_eq!(m.repos(None, 10).unwrap().0, vec!["a".to_string()]);
        assert_eq!(m.tags(&a, None, 10).unwrap().0.len(), 3);
    }

    fn referrers(kind) {
        let (_place, m) = common::open(kind);
        let a: RepoName = "a".parse().unwrap();
        let subject = rec(9).digest;
        let desc = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: rec(1).digest,
            size: 1,
            artifact_type: Some("x/y".into()),
            annotations: None,
            platform: None,
            urls: None,
        };
        m.apply(
            &a,
            &[Change::PutReferrer {
                subject: subject.clone(),
                descriptor: desc.clone(),
            }],
        )
        .unwrap();
        assert_eq!(m.referrers(&a, &subject).unwrap(), vec![desc.clone()]);
        assert!(m.referrers(&a, &rec(1).digest).unwrap().is_empty());
        m.apply(
            &a,
            &[Change::RemoveReferrer {
                subject: subject.clone(),
                referrer: desc.digest,
            }],
        )
        .unwrap();
        assert!(m.referrers(&a, &subject).unwrap().is_empty());
    }

    fn keys_are_found_by_hash_and_by_owner_and_id(kind) {
        let (_place, s) = common::open(kind);
        s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
        s.put_api_key(&[2; 32], "alice", "id-2", b"two").unwrap();
        s.put_api_key(&[3; 32], "alicex", "id-3", b"three").unwrap();
        let (owner, id, row) = s.api_key(&[1; 32]).unwrap().unwrap();
        assert_eq!((owner.as_str(), id.as_str()), ("alice", "id-1"));
        assert_eq!(row.record, b"one");
        assert_eq!(row.last_used, None);
        assert_eq!(s.api_key(&[9; 32]).unwrap(), None);
        assert_eq!(
            s.api_key_by_id("alice", "id-2").unwrap().unwrap().record,
            b"two"
        );
        assert_eq!(s.api_key_by_id("bob", "id-2").unwrap(), None);
        let mine: Vec<Vec<u8>> = s
            .api_keys_of("alice")
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        assert_eq!(mine, [b"one".to_vec(), b"two".to_vec()]);
    }

    fn removal_drops_every_row_and_survives_reopening(kind) {
        let place = common::Place::new(kind);
        {
            let s = place.open();
            s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
            s.put_api_key(&[2; 32], "alice", "id-2", b"two").unwrap();
            s.record_api_key_uses(&[("alice".into(), "id-1".into(), 50)])
                .unwrap();
            assert!(!s.remove_api_key("bob", "id-1").unwrap());
            assert!(s.remove_api_key("alice", "id-1").unwrap());
            assert!(!s.remove_api_key("alice", "id-1").unwrap());
        }
        let s = place.open();
        assert_eq!(s.api_key(&[1; 32]).unwrap(), None);
        assert_eq!(s.api_key_by_id("alice", "id-1").unwrap(), None);
        assert_eq!(s.api_keys_of("alice").unwrap().len(), 1);
        assert!(s.api_key(&[2; 32]).unwrap().is_some(), "made durably");
        // A use recorded for a removed key is dropped.
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 60)])
            .unwrap();
        s.put_api_key(&[1; 32], "alice", "id-1", b"again").unwrap();
        assert_eq!(s.api_key(&[1; 32]).unwrap().unwrap().2.last_used, None);
    }

    fn uses_never_go_back(kind) {
        let (_place, s) = common::open(kind);
        s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 100)])
            .unwrap();
        s.record_api_key_uses(&[("alice".into(), "id-1".into(), 90)])
            .unwrap();
        assert_eq!(
            s.api_key_by_id("alice", "id-1").unwrap().unwrap().last_used,
            Some(100)
        );
        assert_eq!(s.api_keys_of("alice").unwrap()[0].last_used, Some(100));
    }

    fn a_record_is_replaced_under_its_hash(kind) {
        let (_place, s) = common::open(kind);
        s.put_api_key(&[1; 32], "alice", "id-1", b"one").unwrap();
        assert!(s.replace_api_key_record("alice", "id-1", b"uno").unwrap());
        assert_eq!(s.api_key(&[1; 32]).unwrap().unwrap().2.record, b"uno");
        assert!(!s.replace_api_key_record("alice", "id-9", b"x").unwrap());
        assert!(!s.replace_api_key_record("bob", "id-1", b"x").unwrap());
    }

    fn findings_keep_one_version_per_digest(kind) {
        (|| -> zot_meta::Result<()> {
            let (_place, store) = common::open(kind);
            assert_eq!(store.findings("sha256:a")?, None);
            store.put_scan("sha256:a", b"inv")?;
            store.put_findings(&[("sha256:a".into(), 1, b"one".to_vec())])?;
            store.put_findings(&[("sha256:a".into(), 2, b"two".to_vec())])?;
            store.put_findings(&[("sha256:a".into(), 1, b"late".to_vec())])?;
            store.put_findings(&[("sha256:ab".into(), 1, b"other".to_vec())])?;
            assert_eq!(store.findings("sha256:a")?, Some((2, b"two".to_vec())));
            assert_eq!(store.scan("sha256:a")?, Some(b"inv".to_vec()));
            assert_eq!(store.forget_scans(|d| d != "sha256:a")?, 1);
            assert_eq!(store.findings("sha256:a")?, None);
            assert_eq!(store.scan("sha256:a")?, None);
            assert_eq!(store.findings("sha256:ab")?, Some((1, b"other".to_vec())));
            Ok(())
        })()
        .unwrap();
    }

    fn scanned_digests_come_a_page_at_a_time(kind) {
        (|| -> zot_meta::Result<()> {
            let (_place, store) = common::open(kind);
            assert_eq!(store.scanned_digests_after(None, 2)?, Vec::<String>::new());
            for d in ["sha256:c", "sha256:a", "sha256:ab", "sha256:b", "sha256:d"] {
                store.put_scan(d, d.as_bytes())?;
            }
            store.put_findings(&[("sha256:a".into(), 1, b"one".to_vec())])?;
            let (mut pages, mut after) = (Vec::new(), None::<String>);
            loop {
                let page = store.scanned_digests_after(after.as_deref(), 2)?;
                let Some(last) = page.last().cloned() else { break };
                pages.push(page);
                after = Some(last);
            }
            assert_eq!(
                pages,
                [
                    vec!["sha256:a", "sha256:ab"],
                    vec!["sha256:b", "sha256:c"],
                    vec!["sha256:d"],
                ]
            );
            assert_eq!(store.scanned_digests()?.len(), 5);
            assert_eq!(store.scanned_digests_after(Some("sha256:aa"), 9)?[0], "sha256:ab");
            assert_eq!(store.scanned_digests_after(Some("sha256:b"), 0)?, Vec::<String>::new());
            Ok(())
        })()
        .unwrap();
    }

    fn put_get_take_expire(kind) {
        (|| -> zot_meta::Result<()> {
            let (_place, store) = common::open(kind);
            store.session_put("a", b"one", 100)?;
            store.session_put("b", b"two", 50)?;
            assert_eq!(store.session_get("a", 10)?, Some(b"one".to_vec()));
            assert_eq!(store.session_get("b", 60)?, None, "expired");
            assert_eq!(store.session_take("a", 10)?, Some(b"one".to_vec()));
            assert_eq!(store.session_take("a", 10)?, None, "taken once");
            store.session_put("c", b"three", 100)?;
            assert_eq!(store.session_purge(60)?, 1);
            store.session_delete("c")?;
            assert_eq!(store.session_get("c", 10)?, None);
            Ok(())
        })()
        .unwrap();
    }
}

//! Events of background deletions: GC with a retention policy makes zot's
//! `image.deleted` once per tag it removes and once per manifest, with no
//! actor or request (no user asked), in the same step as the removal; a
//! round that removes nothing, and a dry run, make none.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod gc_common;

use gc_common::*;
use regex::Regex;
use zot_storage::retention::KeepTags;
use zot_storage::{Options, Registry, open_local};

/// (type, reference, digest) of every event after the first `skip`, and
/// whether any carries an actor or a request.
fn events(reg: &Registry, skip: usize) -> (Vec<(String, String, String)>, bool) {
    let mut origin = false;
    let list = reg
        .outbox()
        .outbox_after(0, 1000)
        .unwrap()
        .into_iter()
        .skip(skip)
        .map(|q| {
            let data: serde_json::Value = serde_json::from_str(&q.event.data).unwrap();
            origin |= data.get("actor").is_some() || data.get("request").is_some();
            assert_eq!(data["name"], "apps/web");
            assert_eq!(
                data["mediaType"],
                "application/vnd.oci.image.manifest.v1+json"
            );
            let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
            (q.event.event_type, s("reference"), s("digest"))
        })
        .collect();
    (list, origin)
}

fn keep_only(pattern: &str) -> KeepTags {
    KeepTags {
        patterns: vec![Regex::new(pattern).unwrap()],
        ..KeepTags::default()
    }
}

#[tokio::test]
async fn retention_removing_a_tag_makes_image_deleted_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        events: Some(1000),
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let r = repo("apps/web");
    push_image(&reg, &r, "keep", &[b"k"]).await;
    let gone = push_image(&reg, &r, "old", &[b"o"]).await;
    let before = reg.outbox().outbox_after(0, 1000).unwrap().len();

    // A dry run removes nothing and says nothing.
    reg.gc_all(&retention_options(keep_only("^keep$"), true))
        .await
        .unwrap();
    assert_eq!(events(&reg, before).0, vec![]);

    let report = reg
        .gc_all(&retention_options(keep_only("^keep$"), false))
        .await
        .unwrap();
    assert_eq!((report.tags_removed, report.manifests_removed), (1, 1));
    let deleted = "zotregistry.image.deleted".to_owned();
    let (got, origin) = events(&reg, before);
    assert_eq!(
        got,
        vec![
            (deleted.clone(), "old".into(), gone.to_string()),
            (deleted, gone.to_string(), gone.to_string()),
        ]
    );
    assert!(!origin, "background work has no actor or request");

    // Nothing left to remove: no event.
    reg.gc_all(&retention_options(keep_only("^keep$"), false))
        .await
        .unwrap();
    assert_eq!(events(&reg, before).0.len(), 2);
}

//! Summaries saved in the registry's metadata store and read back by the
//! next start-up: a change made while search was off (generations stand
//! still then) must not leave a saved summary that hides it.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod stores_common;
use stores_common as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use common::*;
use serde_json::{Value, json};
use zot_search::{Search, Source, Viewer};

async fn query(search: &Search, q: &str) -> Value {
    let body = json!({ "query": q }).to_string();
    let req = Request::post("/v2/_zot/ext/search")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let viewer = Viewer {
        user: None,
        may: Arc::new(|_, _| true),
    };
    let resp = search.graphql(req, viewer).await;
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v.get("errors").is_none(), "{v}");
    v["data"].clone()
}

fn tags(d: &Value) -> Vec<String> {
    let mut t: Vec<String> = d["ImageList"]["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Tag"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

const IMAGES: &str =
    r#"{ ImageList(repo: "apps/a", requestedPage: {sortBy: ALPHABETIC_ASC}) { Results { Tag } } }"#;

async fn push(reg: &zot_storage::Registry, tag: &str, layer: &[u8]) -> Value {
    let r = repo("apps/a");
    let doc = image_doc(reg, &r, &config("linux", "amd64", json!({})), &[layer]).await;
    put(reg, &r, tag, &doc, None).await;
    doc
}

#[tokio::test]
async fn a_change_with_search_off_is_not_hidden_by_a_saved_summary() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), true).await;
    let v1 = push(&reg, "v1", b"one").await;
    push(&reg, "v2", b"two").await;
    let src = Arc::new(source(&reg));
    let search = Search::new(Arc::clone(&src) as Arc<dyn Source>);
    assert_eq!(tags(&query(&search, IMAGES).await), ["v1", "v2"]);
    // The first build's summaries are saved on a thread of their own.
    let until = Instant::now() + Duration::from_secs(20);
    while src.saved_cards().unwrap().is_empty() {
        assert!(Instant::now() < until, "the summaries were never saved");
        std::thread::sleep(Duration::from_millis(10));
    }
    reg.flush_metadata().unwrap();
    drop((search, src, reg));

    // A restart with search on reads the saved summary back.
    let reg = open(dir.path(), true).await;
    let src = Arc::new(source(&reg));
    assert_eq!(src.saved_cards().unwrap().len(), 1);
    drop((src, reg));

    // With search off, a tag deleted and another set on a manifest that
    // has its record: nothing to derive at the next start-up, so nothing
    // there would give the repository a new generation.
    let reg = open(dir.path(), false).await;
    put(&reg, &repo("apps/a"), "v3", &v1, None).await;
    reg.delete_manifest(&repo("apps/a"), &reference("v2"))
        .await
        .unwrap();
    reg.flush_metadata().unwrap();
    drop(reg);

    let reg = open(dir.path(), true).await;
    let src = Arc::new(source(&reg));
    assert!(
        src.saved_cards().unwrap().is_empty(),
        "the summary saved before the push is gone"
    );
    let search = Search::new(Arc::clone(&src) as Arc<dyn Source>);
    assert_eq!(tags(&query(&search, IMAGES).await), ["v1", "v3"]);
}

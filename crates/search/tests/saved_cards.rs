//! Summaries saved through `Source::save_cards` and read back by the next
//! start-up: the answers are the same as with summaries built from the
//! repositories, and a summary of a repository changed since it was saved
//! (or one that does not decode) is built again.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zot_search::Source;

/// Queries that answer from the summaries (totals, platforms, vendors,
/// sort keys, filters, layer keys).
const QUERIES: &[&str] = &[
    r#"{ RepoListWithNewestImage(requestedPage: {sortBy: UPDATE_TIME}) { Page { TotalCount }
        Results { Name LastUpdated Size DownloadCount StarCount Platforms { Os Arch } Vendors
          NewestImage { Tag IsSigned } } } }"#,
    r#"{ GlobalSearch(query: "alpine", requestedPage: {sortBy: RELEVANCE}) { Repos { Name Size DownloadCount } } }"#,
    r#"{ GlobalSearch(query: "alpine", requestedPage: {sortBy: DOWNLOADS}) { Repos { Name } } }"#,
    r#"{ ImageList(repo: "alpine", requestedPage: {sortBy: UPDATE_TIME}) { Results { Tag LastUpdated } } }"#,
    r#"{ ImageList(repo: "", requestedPage: {sortBy: ALPHABETIC_ASC}) { Results { RepoName Tag } } }"#,
    r#"{ GlobalSearch(query: "", filter: {Os: ["linux"], Arch: ["arm64/v8"]}) { Repos { Name } } }"#,
    r#"{ GlobalSearch(query: "", filter: {HasToBeSigned: true}) { Repos { Name } } }"#,
    r#"{ DerivedImageList(image: "alpine:3.19") { Results { RepoName Tag } } }"#,
    r#"{ BaseImageList(image: "tools/alpine-utils:0.1") { Results { RepoName Tag } } }"#,
];

async fn answers(h: &Harness) -> Vec<Value> {
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(h.data(q).await);
    }
    out
}

fn repos(h: &Harness) -> usize {
    match h.source.repos() {
        Ok(list) => list.len(),
        Err(e) => panic!("listing: {e}"),
    }
}

/// Waits for the first build's summaries to be saved (on a thread of
/// their own).
fn wait_saved(h: &Harness, n: usize) {
    let until = Instant::now() + Duration::from_secs(20);
    while h
        .source
        .saved
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len()
        < n
    {
        assert!(Instant::now() < until, "summaries were never saved");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A second search over the same source (a restart), its summaries built.
fn restart(h: &Harness) -> Harness {
    let second = Harness::over(Arc::clone(&h.source));
    match second.search.warm() {
        Ok(_) => second,
        Err(e) => panic!("warm: {e}"),
    }
}

#[tokio::test]
async fn a_restart_answers_the_same_from_saved_summaries() {
    let first = Harness::world();
    let before = answers(&first).await;
    let n = repos(&first);
    wait_saved(&first, n);
    let reads = first.source.reads();
    let second = restart(&first);
    assert_eq!(
        first.source.reads(),
        reads,
        "no repository was read to build the summaries"
    );
    assert_eq!(answers(&second).await, before);
}

#[tokio::test]
async fn a_summary_of_a_changed_repository_is_built_again() {
    let first = Harness::world();
    answers(&first).await;
    let n = repos(&first);
    wait_saved(&first, n);
    // alpine gains a tag after its summary was saved.
    first.source.put(
        RepoBuilder::new("alpine")
            .tag("3.18", &alpine_318(), Some("2023-01-02T00:00:00Z"))
            .tag("3.19", &alpine_319(), None)
            .tag("3.20", &alpine_319(), Some("2025-01-01T00:00:00Z"))
            .build(),
    );
    let reads = first.source.reads();
    let second = restart(&first);
    assert_eq!(first.source.reads(), reads + 1, "only alpine was read");
    let d = second
        .data(r#"{ ImageList(repo: "alpine", requestedPage: {sortBy: ALPHABETIC_ASC}) { Results { Tag } } }"#)
        .await;
    assert_eq!(
        pluck(&d["ImageList"]["Results"], "Tag"),
        ["3.18", "3.19", "3.20"]
    );
    // Answers match a search that never saw a saved summary.
    let fresh = Harness::over(Arc::clone(&first.source));
    fresh
        .source
        .saved
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    assert_eq!(answers(&second).await, answers(&fresh).await);
}

#[tokio::test]
async fn a_damaged_or_foreign_summary_is_built_again() {
    let first = Harness::world();
    let before = answers(&first).await;
    let n = repos(&first);
    wait_saved(&first, n);
    {
        let mut saved = first.source.saved.lock().unwrap_or_else(|e| e.into_inner());
        for (i, (_, bytes)) in saved.values_mut().enumerate() {
            match i % 3 {
                0 => bytes.truncate(bytes.len() / 2),
                1 => bytes[0] = bytes[0].wrapping_add(1),
                _ => bytes.push(0),
            }
        }
    }
    let reads = first.source.reads();
    let second = restart(&first);
    assert_eq!(first.source.reads(), reads + n, "every summary was rebuilt");
    assert_eq!(answers(&second).await, before);
}

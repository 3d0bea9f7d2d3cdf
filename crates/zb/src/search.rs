//! The `search-*` workloads: GraphQL queries POSTed to zot's search
//! extension (`/v2/_zot/ext/search`) over a data set written by
//! `zb seed-layouts` (see [`crate::names`]).
//!
//! An answer counts only when it is a 2xx whose body has a `data` object,
//! no non-empty `errors` array, and the value the query must return (the
//! repository asked for, a non-empty result list): a benchmark that timed
//! error answers would be measuring the wrong thing. Set-up parses one
//! answer of each query in full and checks its counts against the data set
//! (so a missing or half-indexed data set stops the run); timed operations
//! check the same things by scanning the body, which costs the client far
//! less than parsing a megabyte of JSON per operation.

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Client, Parts};
use crate::names;

/// Where zot serves GraphQL.
pub const ENDPOINT: &str = "/v2/_zot/ext/search";
/// Largest answer read.
const MAX_ANSWER: usize = 64 << 20;
/// Page size of the paged queries (what a UI asks for).
pub const PAGE: usize = 10;

/// The seeded data set the queries read.
#[derive(Clone, Debug)]
pub struct DataSet {
    pub prefix: String,
    pub repos: usize,
    pub tags: usize,
    pub big: String,
    pub big_tags: usize,
}

/// One kind of query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// GlobalSearch by a repository fragment, first page of 10 by relevance.
    Global,
    /// The same, every match.
    GlobalAll,
    /// ImageList of the big repository, a page of 10 by UPDATE_TIME.
    ImageListPage,
    /// ImageList of the big repository, every tag.
    ImageListAll,
    /// ExpandedRepoInfo of a seeded repository (all its tags).
    Expanded,
}

/// The workloads, by name.
pub const WORKLOADS: [(&str, Query); 5] = [
    ("search-global", Query::Global),
    ("search-global-all", Query::GlobalAll),
    ("search-imagelist-page", Query::ImageListPage),
    ("search-imagelist-all", Query::ImageListAll),
    ("search-expanded", Query::Expanded),
];

const REPO_FIELDS: &str = "Name LastUpdated Size Platforms { Os Arch } Vendors \
    IsStarred IsBookmarked DownloadCount StarCount \
    NewestImage { RepoName Tag Digest LastUpdated Description IsSigned \
    SignatureInfo { Tool IsTrusted Author } Licenses Vendor Labels Title Size }";
const IMAGE_FIELDS: &str = "RepoName Tag Digest MediaType LastUpdated Size \
    DownloadCount IsSigned Vendor Description Licenses Title Source Authors \
    Manifests { Digest ConfigDigest LastUpdated Size Platform { Os Arch } \
    DownloadCount Layers { Size Digest } \
    History { Layer { Size Digest } HistoryDescription { Created CreatedBy EmptyLayer } } }";

impl Query {
    /// The query text of operation `i` and what its answer must hold
    /// (`key`, the start of its value).
    pub fn text(self, set: &DataSet, i: u64) -> (String, &'static str, String) {
        match self {
            Query::Global | Query::GlobalAll => {
                let f = names::fragment(&set.prefix, i, set.repos);
                let page = if self == Query::Global {
                    format!(", requestedPage: {{limit: {PAGE}, offset: 0, sortBy: RELEVANCE}}")
                } else {
                    String::new()
                };
                let q = format!(
                    "{{ GlobalSearch(query: \"{f}\"{page}) {{ Page {{ TotalCount ItemCount }} \
                     Repos {{ {REPO_FIELDS} }} }} }}"
                );
                (q, "Repos", "[{".to_owned())
            }
            Query::ImageListPage | Query::ImageListAll => {
                let page = if self == Query::ImageListPage {
                    let pages = set.big_tags.div_ceil(PAGE).max(1) as u64;
                    let offset = (i % pages) as usize * PAGE;
                    format!(
                        ", requestedPage: {{limit: {PAGE}, offset: {offset}, sortBy: UPDATE_TIME}}"
                    )
                } else {
                    String::new()
                };
                let q = format!(
                    "{{ ImageList(repo: \"{}\"{page}) {{ Page {{ TotalCount ItemCount }} \
                     Results {{ {IMAGE_FIELDS} }} }} }}",
                    set.big
                );
                (q, "RepoName", format!("\"{}\"", set.big))
            }
            Query::Expanded => {
                let repo = names::repo(&set.prefix, (i as usize) % set.repos.max(1));
                let q = format!(
                    "{{ ExpandedRepoInfo(repo: \"{repo}\") {{ Summary {{ {REPO_FIELDS} }} \
                     Images {{ {IMAGE_FIELDS} IsDeletable }} }} }}"
                );
                (q, "Name", format!("\"{repo}\""))
            }
        }
    }
}

/// POSTs one query; returns the answer body.
pub async fn post(c: &Client, query: &str) -> anyhow::Result<Bytes> {
    let body = Bytes::from(json!({ "query": query }).to_string());
    let headers = [("content-type", "application/json")];
    let answer = c
        .send(
            Method::POST,
            &c.url(ENDPOINT),
            &headers,
            Parts::new(vec![body]),
            MAX_ANSWER,
        )
        .await?;
    Ok(answer.body)
}

/// One timed operation: the query, its answer checked by scanning.
pub async fn op(c: &Client, set: &DataSet, q: Query, i: u64) -> anyhow::Result<u64> {
    let (text, key, want) = q.text(set, i);
    let body = post(c, &text).await?;
    check(&body, key, &want).with_context(|| format!("query {text}"))?;
    Ok((text.len() + body.len()) as u64)
}

/// Fails unless the answer has a `data` object, no non-empty `errors`, and
/// `"key": want...` somewhere.
pub fn check(body: &[u8], key: &str, want: &str) -> anyhow::Result<()> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    if values(body, "errors").any(|v| v.starts_with(b"[{")) {
        bail!("answer has errors: {}", shown());
    }
    if !values(body, "data").any(|v| v.starts_with(b"{")) {
        bail!("answer has no data: {}", shown());
    }
    if !values(body, key).any(|v| v.starts_with(want.as_bytes())) {
        bail!("answer lacks \"{key}\": {want}...: {}", shown());
    }
    Ok(())
}

/// The text after each `"key":` (whitespace skipped) in a JSON document.
fn values<'a>(body: &'a [u8], key: &str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let needle = format!("\"{key}\"").into_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + needle.len() <= body.len() {
            let found = body[at..]
                .windows(needle.len())
                .position(|w| w == needle.as_slice())?;
            let mut p = at + found + needle.len();
            at = p;
            let skip = |p: &mut usize| {
                while body.get(*p).is_some_and(u8::is_ascii_whitespace) {
                    *p += 1;
                }
            };
            skip(&mut p);
            if body.get(p) == Some(&b':') {
                p += 1;
                skip(&mut p);
                return Some(&body[p..]);
            }
        }
        None
    })
}

/// Parses one full answer of `q` (operation 0) and checks it against the
/// data set: run once before timing.
pub async fn verify(c: &Client, set: &DataSet, q: Query) -> anyhow::Result<()> {
    let (text, _, _) = q.text(set, 0);
    let body = post(c, &text)
        .await
        .context("is the search extension on? (extensions.search)")?;
    let doc: Value = serde_json::from_slice(&body).context("answer is not JSON")?;
    if let Some(errors) = doc
        .get("errors")
        .filter(|e| !e.as_array().is_some_and(Vec::is_empty))
    {
        bail!("query {text}: errors: {errors}");
    }
    let data = &doc["data"];
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    let missing = "is the data set seeded (zb seed-layouts) and indexed?";
    match q {
        Query::Global | Query::GlobalAll => {
            let f = names::fragment(&set.prefix, 0, set.repos);
            let r = &data["GlobalSearch"];
            let total = r["Page"]["TotalCount"].as_u64().unwrap_or(0);
            ensure!(total > 0, "GlobalSearch {f:?} found nothing; {missing}");
            let want = if q == Query::Global {
                (total as usize).min(PAGE)
            } else {
                total as usize
            };
            ensure!(
                count(&r["Repos"]) == want,
                "GlobalSearch {f:?}: {} repos of {total}",
                count(&r["Repos"])
            );
            for repo in r["Repos"].as_array().into_iter().flatten() {
                let name = repo["Name"].as_str().unwrap_or_default();
                ensure!(name.contains(&f), "GlobalSearch {f:?} answered {name:?}");
            }
        }
        Query::ImageListPage | Query::ImageListAll => {
            let r = &data["ImageList"];
            let total = r["Page"]["TotalCount"].as_u64().unwrap_or(0) as usize;
            ensure!(
                total == set.big_tags,
                "ImageList {}: {total} images, seeded {}; {missing}",
                set.big,
                set.big_tags
            );
            let want = if q == Query::ImageListPage {
                PAGE.min(total)
            } else {
                total
            };
            ensure!(
                count(&r["Results"]) == want,
                "ImageList {}: {} results, want {want}",
                set.big,
                count(&r["Results"])
            );
        }
        Query::Expanded => {
            let repo = names::repo(&set.prefix, 0);
            let r = &data["ExpandedRepoInfo"];
            ensure!(
                r["Summary"]["Name"] == repo.as_str(),
                "ExpandedRepoInfo {repo}: {}; {missing}",
                r["Summary"]
            );
            ensure!(
                count(&r["Images"]) == set.tags,
                "ExpandedRepoInfo {repo}: {} images, seeded {}",
                count(&r["Images"]),
                set.tags
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let ok = br#"{"data":{"ImageList":{"Results":[{"RepoName":"seed/big"}]}}}"#;
        assert!(check(ok, "RepoName", "\"seed/big\"").is_ok());
        let spaced = br#"{ "data" : { "X" : { "RepoName" :  "seed/big" } } }"#;
        assert!(check(spaced, "RepoName", "\"seed/big\"").is_ok());
        assert!(check(ok, "RepoName", "\"other\"").is_err());
        let errors = br#"{"errors":[{"message":"boom"}],"data":null}"#;
        assert!(check(errors, "RepoName", "\"seed/big\"").is_err());
        let both = br#"{"data":{"RepoName":"seed/big"},"errors":[{"message":"x"}]}"#;
        assert!(check(both, "RepoName", "\"seed/big\"").is_err());
        let empty_errors = br#"{"data":{"RepoName":"seed/big"},"errors":[]}"#;
        assert!(check(empty_errors, "RepoName", "\"seed/big\"").is_ok());
        assert!(check(br#"{"data":null}"#, "data", "").is_err());
        let no_repos = br#"{"data":{"GlobalSearch":{"Repos":[]}}}"#;
        assert!(check(no_repos, "Repos", "[{").is_err());
    }

    #[test]
    fn queries_name_what_was_seeded() {
        let set = DataSet {
            prefix: "seed".into(),
            repos: 10_000,
            tags: 5,
            big: "seed/big".into(),
            big_tags: 1000,
        };
        let (q, key, want) = Query::ImageListPage.text(&set, 3);
        assert!(q.contains("offset: 30, sortBy: UPDATE_TIME"), "{q}");
        assert_eq!((key, want.as_str()), ("RepoName", "\"seed/big\""));
        let (q, _, _) = Query::ImageListPage.text(&set, 100);
        assert!(q.contains("offset: 0,"), "wraps around: {q}");
        let (q, _, _) = Query::ImageListAll.text(&set, 0);
        assert!(!q.contains("requestedPage"), "{q}");
        let (q, _, want) = Query::Expanded.text(&set, 7);
        assert!(
            q.contains(&names::repo("seed", 7)) && want.contains("seed/team07/"),
            "{q}"
        );
        let (q, key, _) = Query::Global.text(&set, 0);
        assert!(
            q.contains("GlobalSearch(query: \"alpine\", requestedPage: {limit: 10"),
            "{q}"
        );
        assert_eq!(key, "Repos");
    }
}

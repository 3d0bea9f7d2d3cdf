//! An in-memory [`Source`] built from real [`ImageMeta`] values, a small
//! world of repositories, and a harness that drives `Search::graphql` with
//! real HTTP requests.

#![allow(dead_code, reason = "each test file uses part of the fixture")]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use serde_json::Value;
use zot_oci::Descriptor;
use zot_oci::Digest;
use zot_oci::image_meta::{
    Annotated, BlobRef, HistoryEntry, ImageMeta, IndexChild, ManifestMeta, MetaKind, Platform,
};
use zot_search::{
    Access, DigestStats, Pref, RepoData, Search, Source, SourceError, TagRow, UserPrefs, Viewer,
};

mod world;
pub use world::*;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const NOTATION: &str = "application/vnd.cncf.notary.signature";
pub const COSIGN: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Unix nanoseconds of an RFC 3339 time.
pub fn ns(s: &str) -> i128 {
    match zot_search::time::parse_rfc3339(s) {
        Some(v) => v,
        None => panic!("bad time {s}"),
    }
}

pub fn digest(seed: &str) -> Digest {
    Digest::sha256_of(seed.as_bytes())
}

/// Metadata of a stored manifest.
#[derive(Debug, Clone, Default)]
pub struct M {
    pub seed: &'static str,
    pub layers: Vec<(&'static str, u64)>,
    pub platform: Option<(&'static str, &'static str)>,
    pub created: Option<&'static str>,
    pub annotated: Annotated,
    pub artifact_type: &'static str,
    pub subject: Option<Digest>,
    pub history: Vec<HistoryEntry>,
}

impl M {
    pub fn new(seed: &'static str, layers: &[&'static str]) -> M {
        M {
            seed,
            layers: layers.iter().map(|l| (*l, 1000)).collect(),
            platform: Some(("linux", "amd64")),
            ..M::default()
        }
    }

    pub fn meta(&self) -> ImageMeta {
        ImageMeta {
            digest: digest(self.seed),
            media_type: OCI_MANIFEST.into(),
            size: 500,
            artifact_type: if self.artifact_type.is_empty() {
                OCI_CONFIG.into()
            } else {
                self.artifact_type.into()
            },
            subject: self.subject.clone(),
            annotated: self.annotated.clone(),
            kind: MetaKind::Manifest(ManifestMeta {
                config: Some(BlobRef {
                    digest: digest(&format!("config-{}", self.seed)),
                    size: 100,
                }),
                config_media_type: OCI_CONFIG.into(),
                layers: self
                    .layers
                    .iter()
                    .map(|(l, size)| BlobRef {
                        digest: digest(l),
                        size: *size,
                    })
                    .collect(),
                platform: self.platform.map(|(os, arch)| Platform {
                    os: os.into(),
                    arch: arch.into(),
                }),
                history: self.history.clone(),
                created_ns: self.created.map(ns),
            }),
        }
    }
}

/// An index over `children`, each with the descriptor platform given.
pub fn index(
    seed: &str,
    children: &[(&ImageMeta, Option<(&str, &str)>)],
    annotated: Annotated,
) -> ImageMeta {
    ImageMeta {
        digest: digest(seed),
        media_type: OCI_INDEX.into(),
        size: 300,
        artifact_type: String::new(),
        subject: None,
        annotated,
        kind: MetaKind::Index {
            children: children
                .iter()
                .map(|(m, p)| IndexChild {
                    digest: m.digest.clone(),
                    media_type: OCI_MANIFEST.into(),
                    size: m.size,
                    platform: p.map(|(os, arch)| Platform {
                        os: os.into(),
                        arch: arch.into(),
                    }),
                })
                .collect(),
            created_ns: None,
        },
    }
}

/// Builds one repository's [`RepoData`].
pub struct RepoBuilder(RepoData);

impl RepoBuilder {
    pub fn new(name: &str) -> RepoBuilder {
        RepoBuilder(RepoData {
            name: name.into(),
            ..RepoData::default()
        })
    }

    pub fn image(mut self, meta: &ImageMeta) -> RepoBuilder {
        self.0
            .images
            .insert(meta.digest.clone(), Arc::new(meta.clone()));
        self
    }

    pub fn tag(mut self, tag: &str, meta: &ImageMeta, tagged: Option<&str>) -> RepoBuilder {
        self.0.tags.push(TagRow {
            tag: tag.into(),
            digest: meta.digest.clone(),
            tagged_ns: tagged.map(ns),
        });
        self.image(meta)
    }

    pub fn stats(
        mut self,
        d: &Digest,
        downloads: u64,
        pushed: Option<&str>,
        by: &str,
    ) -> RepoBuilder {
        self.0.stats.insert(
            d.clone(),
            DigestStats {
                downloads,
                last_pull_ns: (downloads > 0).then(|| ns("2024-07-01T00:00:00Z")),
                pushed_ns: pushed.map(ns),
                pushed_by: by.into(),
            },
        );
        self
    }

    /// Records `meta` as a referrer of its subject.
    pub fn referrer(mut self, meta: &ImageMeta, annotations: &[(&str, &str)]) -> RepoBuilder {
        let subject = match &meta.subject {
            Some(s) => s.clone(),
            None => panic!("referrer without subject"),
        };
        let desc = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: meta.digest.clone(),
            size: meta.size,
            artifact_type: Some(meta.artifact_type.clone()),
            annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            platform: None,
            urls: None,
        };
        self.0.referrers.entry(subject).or_default().push(desc);
        self.image(meta)
    }

    pub fn stars(mut self, n: u64) -> RepoBuilder {
        self.0.star_count = n;
        self
    }

    pub fn build(self) -> RepoData {
        self.0
    }
}

/// The in-memory source: repositories with generations, and user prefs.
#[derive(Default)]
pub struct Memory {
    repos: Mutex<BTreeMap<String, (u64, Arc<RepoData>)>>,
    prefs: Mutex<HashMap<String, UserPrefs>>,
    pub repo_reads: Mutex<usize>,
    /// Bumped on every change; reported by `version()` unless `unversioned`.
    changes: AtomicU64,
    pub unversioned: bool,
    pub listings: AtomicU64,
    /// Cards saved by `save_cards`: name -> (generation, bytes).
    pub saved: Mutex<HashMap<String, (u64, Vec<u8>)>>,
    /// The most repositories held outside this source at once, as seen
    /// at each read.
    pub most_held: AtomicU64,
}

impl Memory {
    pub fn put(&self, data: RepoData) {
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let generation = repos.get(&data.name).map_or(1, |(g, _)| g + 1);
        repos.insert(data.name.clone(), (generation, Arc::new(data)));
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    pub fn remove(&self, name: &str) {
        self.repos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        // Generations restart for a name put again: its card goes with it.
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    pub fn reads(&self) -> usize {
        *self.repo_reads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Source for Memory {
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        Ok(repos.iter().map(|(k, (g, _))| (k.clone(), *g)).collect())
    }

    fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
        *self.repo_reads.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let held = repos
            .values()
            .filter(|(_, d)| Arc::strong_count(d) > 1)
            .count() as u64;
        self.most_held.fetch_max(held, Ordering::SeqCst);
        Ok(repos.get(name).map(|(_, d)| Arc::clone(d)))
    }

    fn user_prefs(&self, user: &str) -> Result<UserPrefs, SourceError> {
        let prefs = self.prefs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(prefs.get(user).cloned().unwrap_or_default())
    }

    fn toggle(&self, user: &str, pref: Pref, repo: &str) -> Result<bool, SourceError> {
        let now_in = {
            let mut prefs = self.prefs.lock().unwrap_or_else(|e| e.into_inner());
            let p = prefs.entry(user.to_owned()).or_default();
            let set = match pref {
                Pref::Star => &mut p.starred,
                Pref::Bookmark => &mut p.bookmarked,
            };
            if set.remove(repo) {
                false
            } else {
                set.insert(repo.to_owned());
                true
            }
        };
        if pref == Pref::Star {
            let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((g, d)) = repos.get_mut(repo) {
                let mut data = (**d).clone();
                if now_in {
                    data.star_count += 1;
                } else {
                    data.star_count = data.star_count.saturating_sub(1);
                }
                *d = Arc::new(data);
                *g += 1;
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(now_in)
    }

    fn version(&self) -> Option<u64> {
        (!self.unversioned).then(|| self.changes.load(Ordering::SeqCst))
    }

    fn saved_cards(&self) -> Result<Vec<(String, u64, Vec<u8>)>, SourceError> {
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        Ok(saved
            .iter()
            .filter(|(name, (g, _))| repos.get(*name).is_some_and(|(now, _)| now == g))
            .map(|(name, (g, bytes))| (name.clone(), *g, bytes.clone()))
            .collect())
    }

    fn save_cards(&self, cards: Vec<(String, u64, Vec<u8>)>) -> Result<(), SourceError> {
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        for (name, g, bytes) in cards {
            if repos.get(&name).is_some_and(|(now, _)| *now == g) {
                saved.insert(name, (g, bytes));
            }
        }
        Ok(())
    }
}

pub fn admin() -> Viewer {
    Viewer {
        user: Some("admin".into()),
        may: Arc::new(|_, _| true),
    }
}

/// A signed-in user who may read (not delete) the listed repositories.
pub fn reader(user: &str, readable: &'static [&'static str]) -> Viewer {
    Viewer {
        user: Some(user.into()),
        may: Arc::new(move |repo, access| access == Access::Read && readable.contains(&repo)),
    }
}

/// An anonymous caller who may read the listed repositories.
pub fn anonymous(readable: &'static [&'static str]) -> Viewer {
    Viewer {
        user: None,
        may: Arc::new(move |repo, access| access == Access::Read && readable.contains(&repo)),
    }
}

/// A search over a source, queried through HTTP requests.
pub struct Harness {
    pub source: Arc<Memory>,
    pub search: Search,
}

impl Harness {
    pub fn new(source: Memory) -> Harness {
        let source = Arc::new(source);
        let search = Search::new(Arc::clone(&source) as Arc<dyn Source>);
        Harness { source, search }
    }

    /// A harness over a source shared with another (a restart over the
    /// same metadata).
    pub fn over(source: Arc<Memory>) -> Harness {
        let search = Search::new(Arc::clone(&source) as Arc<dyn Source>);
        Harness { source, search }
    }

    pub fn world() -> Harness {
        Harness::new(world())
    }

    pub async fn send(&self, req: Request, viewer: Viewer) -> (StatusCode, Value) {
        let resp = self.search.graphql(req, viewer).await;
        let status = resp.status();
        let bytes = match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
            Ok(b) => b,
            Err(e) => panic!("body: {e}"),
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)),
            }
        };
        (status, body)
    }

    /// POSTs `query` as `viewer`.
    pub async fn post(&self, viewer: Viewer, query: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({ "query": query }).to_string();
        let req = Request::post("/v2/_zot/ext/search")
            .header("content-type", "application/json")
            .body(Body::from(body));
        match req {
            Ok(r) => self.send(r, viewer).await,
            Err(e) => panic!("request: {e}"),
        }
    }

    /// POSTs `query` as admin and returns `data`, failing on any error.
    pub async fn data(&self, query: &str) -> Value {
        self.data_as(admin(), query).await
    }

    pub async fn data_as(&self, viewer: Viewer, query: &str) -> Value {
        let (status, body) = self.post(viewer, query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// POSTs `query` as `viewer` and returns the first error's message,
    /// asserting zot's resolver-error shape (200, data null).
    pub async fn error_as(&self, viewer: Viewer, query: &str) -> String {
        let (status, body) = self.post(viewer, query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
        match body["errors"][0]["message"].as_str() {
            Some(m) => m.to_owned(),
            None => panic!("no error in {body}"),
        }
    }

    pub async fn error(&self, query: &str) -> String {
        self.error_as(admin(), query).await
    }
}

/// `field` of every element of `list`, as strings.
pub fn pluck(list: &Value, field: &str) -> Vec<String> {
    match list.as_array() {
        Some(items) => items
            .iter()
            .map(|v| match &v[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        None => panic!("not a list: {list}"),
    }
}

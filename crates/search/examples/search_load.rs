//! Rough local load check (not a benchmark of record): 10,000 in-memory
//! repositories × 5 tags (10% multi-arch indexes) plus one 1,000-tag
//! repository; 16 concurrent clients; prints p50/p99 per query.
//!
//! `cargo run --release -p zot-search --example search_load`

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use zot_oci::Digest;
use zot_oci::image_meta::{
    Annotated, BlobRef, ImageMeta, IndexChild, ManifestMeta, MetaKind, Platform,
};
use zot_search::{
    Access, DigestStats, Pref, RepoData, Search, Source, SourceError, TagRow, UserPrefs, Viewer,
};

struct Mem(std::collections::BTreeMap<String, Arc<RepoData>>);

impl Source for Mem {
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
        Ok(self.0.keys().map(|k| (k.clone(), 1)).collect())
    }
    fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
        Ok(self.0.get(name).cloned())
    }
    fn user_prefs(&self, _: &str) -> Result<UserPrefs, SourceError> {
        Ok(UserPrefs::default())
    }
    fn toggle(&self, _: &str, _: Pref, _: &str) -> Result<bool, SourceError> {
        Ok(false)
    }
    fn version(&self) -> Option<u64> {
        Some(1)
    }
}

fn d(s: &str) -> Digest {
    Digest::sha256_of(s.as_bytes())
}

fn manifest(seed: &str, arch: &str, t: i128) -> ImageMeta {
    ImageMeta {
        digest: d(seed),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 700,
        artifact_type: "application/vnd.oci.image.config.v1+json".into(),
        subject: None,
        annotated: Annotated::default(),
        kind: MetaKind::Manifest(ManifestMeta {
            config: Some(BlobRef {
                digest: d(&format!("c{seed}")),
                size: 1000,
            }),
            config_media_type: "application/vnd.oci.image.config.v1+json".into(),
            layers: (0..4)
                .map(|i| BlobRef {
                    digest: d(&format!("l{seed}{i}")),
                    size: 1 << 20,
                })
                .collect(),
            platform: Some(Platform {
                os: "linux".into(),
                arch: arch.into(),
            }),
            history: Vec::new(),
            created_ns: Some(t),
        }),
    }
}

fn repo(name: &str, tags: usize) -> RepoData {
    let mut data = RepoData {
        name: name.into(),
        ..RepoData::default()
    };
    for i in 0..tags {
        let seed = format!("{name}-{i}");
        let t = 1_700_000_000_000_000_000 + (i as i128) * 1_000_000_000;
        let top = if i % 10 == 0 {
            let a = manifest(&format!("{seed}a"), "amd64", t);
            let b = manifest(&format!("{seed}b"), "arm64", t);
            let idx = ImageMeta {
                digest: d(&seed),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                size: 400,
                artifact_type: String::new(),
                subject: None,
                annotated: Annotated::default(),
                kind: MetaKind::Index {
                    children: [&a, &b]
                        .iter()
                        .map(|m| IndexChild {
                            digest: m.digest.clone(),
                            media_type: m.media_type.clone(),
                            size: m.size,
                            platform: None,
                        })
                        .collect(),
                    created_ns: None,
                },
            };
            data.images.insert(a.digest.clone(), Arc::new(a));
            data.images.insert(b.digest.clone(), Arc::new(b));
            idx
        } else {
            manifest(&seed, "amd64", t)
        };
        data.stats.insert(
            top.digest.clone(),
            DigestStats {
                downloads: i as u64,
                pushed_ns: Some(t),
                ..DigestStats::default()
            },
        );
        data.tags.push(TagRow {
            tag: format!("v{i}"),
            digest: top.digest.clone(),
            tagged_ns: Some(t),
        });
        data.images.insert(top.digest.clone(), Arc::new(top));
    }
    data
}

async fn run(search: Arc<Search>, query: &'static str, n: usize, clients: usize) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let search = Arc::clone(&search);
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let viewer = Viewer {
                    user: Some("u".into()),
                    may: Arc::new(|_: &str, a| a == Access::Read),
                };
                let body = serde_json::json!({ "query": query }).to_string();
                let Ok(req) = Request::post("/").body(Body::from(body)) else {
                    continue;
                };
                let start = Instant::now();
                let resp = search.graphql(req, viewer).await;
                let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                times.push(start.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(v) = t.await {
            all.extend(v);
        }
    }
    all.sort();
    all
}

fn rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let start = Instant::now();
    let mut repos = std::collections::BTreeMap::new();
    for i in 0..10_000 {
        let name = format!("team{}/app{i}", i % 100);
        repos.insert(name.clone(), Arc::new(repo(&name, 5)));
    }
    repos.insert("big/repo".into(), Arc::new(repo("big/repo", 1000)));
    let search = Arc::new(Search::new(Arc::new(Mem(repos))));
    println!("built in {:?}, {}", start.elapsed(), rss_kib());
    for (label, q) in [
        (
            "GlobalSearch fragment",
            r#"{ GlobalSearch(query: "app12", requestedPage: {limit: 10}) { Page { TotalCount } Repos { Name LastUpdated Size DownloadCount NewestImage { Tag Digest LastUpdated Size } } } }"#,
        ),
        (
            "ImageList 1000 tags",
            r#"{ ImageList(repo: "big/repo") { Page { TotalCount } Results { RepoName Tag Digest Size LastUpdated IsSigned Manifests { Digest Platform { Os Arch } } } } }"#,
        ),
        (
            "ImageList page",
            r#"{ ImageList(repo: "big/repo", requestedPage: {limit: 10, offset: 500, sortBy: UPDATE_TIME}) { Page { TotalCount ItemCount } Results { RepoName Tag Digest MediaType LastUpdated Size DownloadCount IsSigned Vendor Description Manifests { Digest ConfigDigest LastUpdated Size Platform { Os Arch } DownloadCount Layers { Size Digest } History { Layer { Size Digest } HistoryDescription { Created CreatedBy EmptyLayer } } } } } }"#,
        ),
        (
            "Thin ImageList",
            r#"{ ImageList(repo: "big/repo") { Page { TotalCount } Results { Tag } } }"#,
        ),
        (
            "ExpandedRepoInfo",
            r#"{ ExpandedRepoInfo(repo: "team3/app1203") { Summary { Name Size } Images { Tag Digest Size Manifests { Digest Layers { Digest } } } } }"#,
        ),
    ] {
        if let Ok(only) = std::env::var("ONLY") {
            if !label.starts_with(&only) {
                continue;
            }
            let t = run(Arc::clone(&search), q, 300, 1).await;
            println!("{label}: 1 client p50={:?} {}", t[t.len() / 2], rss_kib());
            continue;
        }
        let _ = run(Arc::clone(&search), q, 2, 16).await;
        let one = run(Arc::clone(&search), q, 30, 1).await;
        println!("{label}: 1 client p50={:?}", one[one.len() / 2]);
        let t = run(Arc::clone(&search), q, 30, 16).await;
        let p = |q: f64| t[((t.len() as f64 - 1.0) * q) as usize];
        println!(
            "{label}: n={} p50={:?} p99={:?} {}",
            t.len(),
            p(0.5),
            p(0.99),
            rss_kib()
        );
    }
}

//! The workloads: what each one sets up (untimed) and what one timed
//! operation of it does.
//!
//! One operation is one listing of the whole catalog for `catalog-10k`
//! (following `Link` pages), one request for the manifest workloads, one
//! whole image (config, layer, manifest) for pushes and one whole image
//! (manifest, config, layer) for pulls. Set-up images are named by fixed
//! labels, so their bytes and digests are the same on every target and in
//! [`crate::static_tree`]; pushed images carry the run's nonce. A workload
//! whose name states its shape (`push-concurrent-64x100MiB`,
//! `dedupe-100x100MiB`) runs with that concurrency or operation count
//! whatever `-c` and `-n` say.
//!
//! `manifest-put` (one operation: the PUT of a set-up image's manifest by
//! its tag again, the same bytes each time, so `index.json` keeps its size)
//! times what a manifest push costs beyond its blobs; it is chosen only
//! when the `-t` pattern names it (`scripts/bench-s3` compares it with and
//! without shared state).
//!
//! The `search-*` workloads ([`crate::search`]) query a data set written by
//! `zb seed-layouts` and need zot's search extension; they are chosen only
//! when the `-t` pattern itself contains `search`, so that `-t '.*'` (every
//! registry workload) stays valid for registries without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::Method;
use regex::Regex;

use crate::client::Client;
use crate::cve::{self, CveOp, CveSet};
use crate::data::BlobSource;
use crate::ops::{self, Image, Upload};
use crate::search::{self, DataSet, Query};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The layer of the image that catalog and manifest workloads read.
pub const TINY: u64 = 4096;
/// The sizes `pull-mixed` draws from, with their weights out of 10.
const MIX: [(u64, u64); 3] = [(MIB, 7), (10 * MIB, 2), (100 * MIB, 1)];
/// Repositories `catalog-10k` creates and lists.
pub const CATALOG_REPOS: usize = 10_000;
/// The page size a catalog listing asks for (`?n=`); distribution needs
/// `catalog.maxentries` at least this large to answer it.
pub const CATALOG_PAGE: usize = 10_000;
/// Requests in flight while setting up the catalog's repositories.
pub const SETUP_CONCURRENCY: usize = 32;
/// Sizes of the push and pull workloads.
const SIZES: [u64; 4] = [MIB, 10 * MIB, 100 * MIB, GIB];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Catalog,
    ManifestHead,
    ManifestGet,
    /// The set-up image's manifest put again by its tag.
    ManifestPut,
    PushMonolithic(u64),
    /// The layer by PATCH: one streamed by default, or chunks of
    /// `--chunk-size`.
    PushChunked(u64),
    Pull(u64),
    PullMixed,
    /// Three pulls (mixed sizes) for every monolithic push (mixed sizes).
    Pull75Push25,
    /// Monolithic pushes of one layer (same digest every time) to a new
    /// repository each: what storage dedupe should make nearly free on disk.
    Dedupe(u64),
    /// A GraphQL query of the search extension.
    Search(Query),
    /// Vulnerability scanning (ours only; see [`crate::cve`]).
    Cve(CveOp),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub kind: Kind,
    /// Operations in flight, when the workload fixes it.
    pub concurrency: Option<usize>,
    /// Timed operations, when the workload fixes it.
    pub operations: Option<u64>,
}

/// `1MiB`, `100MiB`, `1GiB`.
fn size_label(size: u64) -> String {
    if size >= GIB && size.is_multiple_of(GIB) {
        format!("{}GiB", size / GIB)
    } else if size >= MIB {
        format!("{}MiB", size / MIB)
    } else {
        format!("{size}B")
    }
}

/// Every workload, in the order they run.
pub fn all() -> Vec<Workload> {
    let plain = |name: String, kind| Workload {
        name,
        kind,
        concurrency: None,
        operations: None,
    };
    let mut list = vec![
        plain("catalog-10k".into(), Kind::Catalog),
        plain("manifest-head".into(), Kind::ManifestHead),
        plain("manifest-get".into(), Kind::ManifestGet),
    ];
    for s in SIZES {
        let name = format!("push-monolithic-{}", size_label(s));
        list.push(plain(name, Kind::PushMonolithic(s)));
    }
    for s in SIZES {
        let name = format!("push-chunked-{}", size_label(s));
        list.push(plain(name, Kind::PushChunked(s)));
    }
    for s in SIZES {
        list.push(plain(format!("pull-{}", size_label(s)), Kind::Pull(s)));
    }
    list.push(plain("pull-mixed".into(), Kind::PullMixed));
    list.push(plain("pull75-push25".into(), Kind::Pull75Push25));
    list.push(Workload {
        name: "push-concurrent-64x100MiB".into(),
        kind: Kind::PushMonolithic(100 * MIB),
        concurrency: Some(64),
        operations: Some(64),
    });
    list.push(Workload {
        name: "dedupe-100x100MiB".into(),
        kind: Kind::Dedupe(100 * MIB),
        concurrency: None,
        operations: Some(100),
    });
    list
}

/// `manifest-put`, chosen only by name (see the module doc).
pub fn manifest_put() -> Workload {
    Workload {
        name: "manifest-put".into(),
        kind: Kind::ManifestPut,
        concurrency: None,
        operations: None,
    }
}

/// The search workloads, in the order they run.
pub fn search_all() -> Vec<Workload> {
    search::WORKLOADS
        .iter()
        .map(|&(name, q)| Workload {
            name: name.into(),
            kind: Kind::Search(q),
            concurrency: None,
            operations: None,
        })
        .collect()
}

/// The CVE workloads, in the order they run.
pub fn cve_all() -> Vec<Workload> {
    cve::WORKLOADS
        .iter()
        .map(|&(name, op, concurrency, operations)| Workload {
            name: name.into(),
            kind: Kind::Cve(op),
            concurrency,
            operations,
        })
        .collect()
}

/// The workloads whose name matches `pattern` (anywhere in the name); the
/// search workloads only when `pattern` contains `search`, the CVE ones
/// only when it contains `cve`.
pub fn select(pattern: &str) -> anyhow::Result<Vec<Workload>> {
    let re = Regex::new(pattern).map_err(|e| anyhow::anyhow!("-t {pattern:?}: {e}"))?;
    let mut candidates = all();
    if pattern.contains("manifest-put") {
        candidates.push(manifest_put());
    }
    if pattern.contains("search") {
        candidates.extend(search_all());
    }
    if pattern.contains("cve") {
        candidates.extend(cve_all());
    }
    let chosen: Vec<_> = candidates
        .into_iter()
        .filter(|w| re.is_match(&w.name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<_> = all()
            .into_iter()
            .chain([manifest_put()])
            .chain(search_all())
            .chain(cve_all())
            .map(|w| w.name)
            .collect();
        anyhow::bail!(
            "-t {pattern:?} matches no workload; there are: {}",
            names.join(", ")
        );
    }
    Ok(chosen)
}

/// The size of a mixed operation number `i`: 70% 1 MiB, 20% 10 MiB, 10% 100 MiB.
pub fn mixed_size(i: u64) -> u64 {
    let mut slot = i % 10;
    for (size, weight) in MIX {
        if slot < weight {
            return size;
        }
        slot -= weight;
    }
    MIX[0].0
}

/// What every operation needs.
pub struct Ctx {
    pub client: Client,
    pub source: BlobSource,
    pub prefix: String,
    /// Makes this run's pushed tags and blobs differ from any earlier run's.
    pub nonce: String,
    /// PATCH size of chunked pushes; `None` streams the layer in one PATCH.
    pub chunk: Option<u64>,
    /// The seeded data set the search workloads query.
    pub search: DataSet,
    /// What the CVE workloads share.
    pub cve: CveSet,
}

/// A set-up image: repository, tag, the layer's size and its label.
pub struct Fixture {
    pub repo: String,
    pub tag: &'static str,
    pub size: u64,
}

impl Fixture {
    pub fn image(&self, source: &BlobSource) -> anyhow::Result<Image> {
        let label = format!("fixture/{}", self.repo);
        Ok(Image::new(source.blob(self.size, &label)?, &label))
    }
}

/// The image `manifest-put` puts again (a repository of its own, so
/// that its pushes do not touch what the manifest reads are served).
fn put_fixture(prefix: &str) -> Fixture {
    Fixture {
        repo: format!("{prefix}/manifest-put"),
        tag: "latest",
        size: TINY,
    }
}

fn pull_repo(prefix: &str, size: u64) -> String {
    format!("{prefix}/pull-{}", size_label(size).to_ascii_lowercase())
}

/// The `i`th repository of the catalog workload.
pub fn catalog_repo(prefix: &str, i: usize) -> String {
    format!("{prefix}/catalog/r{i:05}")
}

impl Workload {
    /// Only reads: the workloads a static file server can take.
    pub fn read_only(&self) -> bool {
        !matches!(
            self.kind,
            Kind::ManifestPut
                | Kind::PushMonolithic(_)
                | Kind::PushChunked(_)
                | Kind::Pull75Push25
                | Kind::Dedupe(_)
                | Kind::Cve(_)
        )
    }

    /// Concurrency and operation count: the workload's own, else `c` and `n`.
    pub fn shape(&self, c: usize, n: u64) -> (usize, u64) {
        (self.concurrency.unwrap_or(c), self.operations.unwrap_or(n))
    }

    /// Every blob size this workload generates (set-up included).
    pub fn sizes(&self) -> Vec<u64> {
        match self.kind {
            Kind::Catalog
            | Kind::ManifestHead
            | Kind::ManifestGet
            | Kind::ManifestPut
            | Kind::Cve(CveOp::StormHead | CveOp::StormGet) => vec![TINY],
            Kind::PushMonolithic(s) | Kind::PushChunked(s) | Kind::Pull(s) | Kind::Dedupe(s) => {
                vec![s]
            }
            Kind::PullMixed | Kind::Pull75Push25 => MIX.iter().map(|m| m.0).collect(),
            Kind::Search(_) | Kind::Cve(_) => Vec::new(),
        }
    }

    /// The images this workload reads, pushed before it is timed (the
    /// catalog's repositories, which are only listed, are [`Self::listed`]).
    pub fn fixtures(&self, prefix: &str) -> Vec<Fixture> {
        let tiny = || Fixture {
            repo: format!("{prefix}/manifest"),
            tag: "latest",
            size: TINY,
        };
        match self.kind {
            Kind::ManifestHead
            | Kind::ManifestGet
            | Kind::Cve(CveOp::StormHead | CveOp::StormGet) => vec![tiny()],
            Kind::ManifestPut => vec![put_fixture(prefix)],
            Kind::Catalog
            | Kind::PushMonolithic(_)
            | Kind::PushChunked(_)
            | Kind::Dedupe(_)
            | Kind::Search(_)
            | Kind::Cve(_) => Vec::new(),
            Kind::Pull(s) => vec![Fixture {
                repo: pull_repo(prefix, s),
                tag: "latest",
                size: s,
            }],
            Kind::PullMixed | Kind::Pull75Push25 => MIX
                .iter()
                .map(|&(s, _)| Fixture {
                    repo: pull_repo(prefix, s),
                    tag: "latest",
                    size: s,
                })
                .collect(),
        }
    }

    /// The repositories this workload needs to exist only to list them.
    pub fn listed(&self, prefix: &str) -> Vec<String> {
        match self.kind {
            Kind::Catalog => (0..CATALOG_REPOS)
                .map(|i| catalog_repo(prefix, i))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Pushes the fixtures (not timed); those already there are kept.
    pub async fn setup(&self, ctx: &Arc<Ctx>) -> anyhow::Result<()> {
        for f in self.fixtures(&ctx.prefix) {
            if ops::manifest_exists(&ctx.client, &f.repo, f.tag).await? {
                continue;
            }
            let image = f.image(&ctx.source)?;
            ops::push_image(&ctx.client, &f.repo, f.tag, &image, Upload::Monolithic).await?;
        }
        match self.kind {
            Kind::Catalog => setup_catalog(ctx).await?,
            Kind::Search(q) => search::verify(&ctx.client, &ctx.search, q).await?,
            Kind::Cve(op) => cve::setup(ctx, op, &self.name).await?,
            _ => {}
        }
        Ok(())
    }

    fn push_repo(&self, prefix: &str) -> String {
        format!("{prefix}/{}", self.name.to_ascii_lowercase())
    }

    async fn push(&self, ctx: &Ctx, i: u64, size: u64, how: Upload) -> anyhow::Result<u64> {
        let label = format!("{}/{}/{i}", ctx.nonce, self.name);
        let image = Image::new(ctx.source.blob(size, &label)?, &label);
        let tag = format!("{}-{i}", ctx.nonce);
        ops::push_image(&ctx.client, &self.push_repo(&ctx.prefix), &tag, &image, how).await
    }

    /// Operation number `i`; returns the body bytes moved.
    pub async fn op(&self, ctx: &Ctx, i: u64) -> anyhow::Result<u64> {
        let c = &ctx.client;
        let tiny = format!("{}/manifest", ctx.prefix);
        match self.kind {
            Kind::Catalog => ops::catalog(c, CATALOG_PAGE, CATALOG_REPOS).await,
            Kind::ManifestHead => ops::manifest(c, Method::HEAD, &tiny, "latest").await,
            Kind::ManifestGet => ops::manifest(c, Method::GET, &tiny, "latest").await,
            Kind::ManifestPut => {
                let f = put_fixture(&ctx.prefix);
                let image = f.image(&ctx.source)?;
                ops::put_manifest(c, &f.repo, f.tag, &image).await?;
                Ok(image.manifest.len() as u64)
            }
            Kind::PushMonolithic(s) => self.push(ctx, i, s, Upload::Monolithic).await,
            Kind::PushChunked(s) => {
                let how = ctx.chunk.map_or(Upload::Streamed, Upload::Chunked);
                self.push(ctx, i, s, how).await
            }
            Kind::Pull(s) => ops::pull_image(c, &pull_repo(&ctx.prefix, s), "latest").await,
            Kind::PullMixed => {
                let repo = pull_repo(&ctx.prefix, mixed_size(i));
                ops::pull_image(c, &repo, "latest").await
            }
            Kind::Pull75Push25 if i % 4 == 3 => {
                self.push(ctx, i, mixed_size(i / 4), Upload::Monolithic)
                    .await
            }
            Kind::Pull75Push25 => {
                let repo = pull_repo(&ctx.prefix, mixed_size(i - i / 4));
                ops::pull_image(c, &repo, "latest").await
            }
            Kind::Dedupe(s) => {
                // One layer for the whole run; a config (so a manifest) per repository.
                let layer = ctx
                    .source
                    .blob(s, &format!("{}/{}", ctx.nonce, self.name))?;
                let image = Image::new(layer, &format!("{}/{}/{i}", ctx.nonce, self.name));
                let repo = format!("{}/r{i:03}", self.push_repo(&ctx.prefix));
                ops::push_image(c, &repo, &ctx.nonce, &image, Upload::Monolithic).await
            }
            Kind::Search(q) => search::op(c, &ctx.search, q, i).await,
            Kind::Cve(op) => cve::op(ctx, op, i, &self.name).await,
        }
    }
}

/// Creates the catalog's repositories: the first by a push, every other one
/// by mounting its two blobs from the first and putting the same manifest,
/// [`SETUP_CONCURRENCY`] at a time. Skipped when the last one exists.
async fn setup_catalog(ctx: &Arc<Ctx>) -> anyhow::Result<()> {
    let c = &ctx.client;
    let last = catalog_repo(&ctx.prefix, CATALOG_REPOS - 1);
    if ops::manifest_exists(c, &last, "latest").await? {
        return Ok(());
    }
    let seed = catalog_repo(&ctx.prefix, 0);
    let label = format!("fixture/{}/catalog", ctx.prefix);
    let image = Arc::new(Image::new(ctx.source.blob(TINY, &label)?, &label));
    ops::push_image(c, &seed, "latest", &image, Upload::Monolithic).await?;
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONCURRENCY {
        let (ctx, image, next, seed) = (ctx.clone(), image.clone(), next.clone(), seed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= CATALOG_REPOS {
                    return anyhow::Ok(());
                }
                let repo = catalog_repo(&ctx.prefix, i);
                ops::mount_blob(&ctx.client, &repo, &seed, &image.config).await?;
                ops::mount_blob(&ctx.client, &repo, &seed, &image.layer).await?;
                ops::put_manifest(&ctx.client, &repo, "latest", &image).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pattern: &str) -> Vec<String> {
        select(pattern)
            .map(|v| v.into_iter().map(|w| w.name).collect())
            .unwrap_or_default()
    }

    #[test]
    fn selection_by_regex() {
        assert_eq!(all().len(), 19);
        assert_eq!(names(".*").len(), 19);
        assert_eq!(names("^catalog"), vec!["catalog-10k"]);
        assert_eq!(names("manifest"), vec!["manifest-head", "manifest-get"]);
        assert_eq!(
            names("^pull-"),
            vec![
                "pull-1MiB",
                "pull-10MiB",
                "pull-100MiB",
                "pull-1GiB",
                "pull-mixed"
            ]
        );
        assert_eq!(names("push-chunked-1MiB$"), vec!["push-chunked-1MiB"]);
        assert_eq!(
            names("1GiB"),
            vec!["push-monolithic-1GiB", "push-chunked-1GiB", "pull-1GiB"]
        );
        assert_eq!(names("100MiB").len(), 5);
        assert!(select("nothing-like-this").is_err());
        assert_eq!(names("^manifest-put$"), vec!["manifest-put"]);
        assert!(!names(".*").iter().any(|n| n.starts_with("search")));
        assert_eq!(names("^search-").len(), 5);
        assert_eq!(names("search-expanded"), vec!["search-expanded"]);
        assert!(!names(".*").iter().any(|n| n.starts_with("cve")));
        assert_eq!(names("^cve-").len(), 5);
        assert_eq!(names("cve-storm").len(), 2);
        assert_eq!(
            names("^search-imagelist"),
            vec!["search-imagelist-page", "search-imagelist-all"]
        );
        assert!(select("(").is_err());
    }

    #[test]
    fn read_only_workloads() {
        let ro: Vec<_> = all()
            .into_iter()
            .filter(Workload::read_only)
            .map(|w| w.name)
            .collect();
        assert_eq!(
            ro,
            vec![
                "catalog-10k",
                "manifest-head",
                "manifest-get",
                "pull-1MiB",
                "pull-10MiB",
                "pull-100MiB",
                "pull-1GiB",
                "pull-mixed"
            ]
        );
    }

    #[test]
    fn shapes_named_by_the_workload_win() {
        let by_name = |n: &str| all().into_iter().find(|w| w.name == n);
        let conc = by_name("push-concurrent-64x100MiB").map(|w| (w.shape(4, 7), w.sizes()));
        assert_eq!(conc, Some(((64, 64), vec![100 * MIB])));
        let dedupe = by_name("dedupe-100x100MiB").map(|w| (w.shape(4, 7), w.read_only()));
        assert_eq!(dedupe, Some(((4, 100), false)));
        assert_eq!(
            by_name("manifest-get").map(|w| w.shape(32, 9)),
            Some((32, 9))
        );
        assert_eq!(size_label(GIB), "1GiB");
        assert_eq!(size_label(100 * MIB), "100MiB");
        assert_eq!(size_label(TINY), "4096B");
    }

    #[test]
    fn the_catalog_lists_ten_thousand_repositories() {
        let names = all()
            .into_iter()
            .find(|w| w.kind == Kind::Catalog)
            .map(|w| w.listed("zb"))
            .unwrap_or_default();
        assert_eq!(names.len(), CATALOG_REPOS);
        assert_eq!(names.first().map(String::as_str), Some("zb/catalog/r00000"));
        assert_eq!(names.last().map(String::as_str), Some("zb/catalog/r09999"));
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "sorted as a catalog is"
        );
    }

    #[test]
    fn mix_has_its_weights() {
        let count = |size| (0..1000).filter(|&i| mixed_size(i) == size).count();
        assert_eq!(
            (count(MIB), count(10 * MIB), count(100 * MIB)),
            (700, 200, 100)
        );
    }

    #[test]
    fn fixtures_are_named_in_lower_case() {
        for w in all() {
            for f in w.fixtures("zb") {
                assert_eq!(f.repo, f.repo.to_ascii_lowercase());
                assert!(w.sizes().contains(&f.size), "{}", w.name);
            }
            assert_eq!(w.push_repo("zb"), w.push_repo("zb").to_ascii_lowercase());
        }
        let pulls = all()
            .into_iter()
            .find(|w| w.name == "pull-mixed")
            .map(|w| w.fixtures("p"));
        let repos: Vec<_> = pulls
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.repo)
            .collect();
        assert_eq!(repos, vec!["p/pull-1mib", "p/pull-10mib", "p/pull-100mib"]);
    }
}

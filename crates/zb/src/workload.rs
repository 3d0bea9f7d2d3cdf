//! The workloads: what each one sets up (untimed) and what one timed
//! operation of it does.
//!
//! One operation is one request for `catalog` and the manifest workloads,
//! one whole image (config, layer, manifest) for pushes and one whole image
//! (manifest, config, layer) for pulls. Set-up images are named by fixed
//! labels, so their bytes and digests are the same on every target and in
//! [`crate::static_tree`]; pushed images carry the run's nonce.

use hyper::Method;
use regex::Regex;

use crate::client::Client;
use crate::data::BlobSource;
use crate::ops::{self, Image, Upload};

const MIB: u64 = 1 << 20;
/// The layer of the image that catalog and manifest workloads read.
pub const TINY: u64 = 4096;
/// The sizes `pull-mixed` draws from, with their weights out of 10.
const MIX: [(u64, u64); 3] = [(MIB, 7), (10 * MIB, 2), (100 * MIB, 1)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Catalog,
    ManifestHead,
    ManifestGet,
    PushMonolithic(u64),
    PushChunked(u64),
    Pull(u64),
    PullMixed,
    /// Three pulls (mixed sizes) for every monolithic push (mixed sizes).
    Pull75Push25,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub kind: Kind,
}

/// Every workload, in the order they run.
pub fn all() -> Vec<Workload> {
    let mut list = vec![
        (String::from("catalog"), Kind::Catalog),
        ("manifest-head".into(), Kind::ManifestHead),
        ("manifest-get".into(), Kind::ManifestGet),
    ];
    let sizes = [1, 10, 100];
    for s in sizes {
        list.push((
            format!("push-monolithic-{s}MiB"),
            Kind::PushMonolithic(s * MIB),
        ));
    }
    for s in sizes {
        list.push((format!("push-chunked-{s}MiB"), Kind::PushChunked(s * MIB)));
    }
    for s in sizes {
        list.push((format!("pull-{s}MiB"), Kind::Pull(s * MIB)));
    }
    list.push(("pull-mixed".into(), Kind::PullMixed));
    list.push(("pull75-push25".into(), Kind::Pull75Push25));
    list.into_iter()
        .map(|(name, kind)| Workload { name, kind })
        .collect()
}

/// The workloads whose name matches `pattern` (anywhere in the name).
pub fn select(pattern: &str) -> anyhow::Result<Vec<Workload>> {
    let re = Regex::new(pattern).map_err(|e| anyhow::anyhow!("-t {pattern:?}: {e}"))?;
    let chosen: Vec<_> = all().into_iter().filter(|w| re.is_match(&w.name)).collect();
    if chosen.is_empty() {
        let names: Vec<_> = all().into_iter().map(|w| w.name).collect();
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
    pub chunk: u64,
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

fn size_name(size: u64) -> String {
    if size >= MIB {
        format!("{}mib", size / MIB)
    } else {
        format!("{size}b")
    }
}

fn pull_repo(prefix: &str, size: u64) -> String {
    format!("{prefix}/pull-{}", size_name(size))
}

impl Workload {
    /// Only reads: the workloads a static file server can take.
    pub fn read_only(&self) -> bool {
        !matches!(
            self.kind,
            Kind::PushMonolithic(_) | Kind::PushChunked(_) | Kind::Pull75Push25
        )
    }

    /// Every blob size this workload generates (set-up included).
    pub fn sizes(&self) -> Vec<u64> {
        match self.kind {
            Kind::Catalog | Kind::ManifestHead | Kind::ManifestGet => vec![TINY],
            Kind::PushMonolithic(s) | Kind::PushChunked(s) | Kind::Pull(s) => vec![s],
            Kind::PullMixed | Kind::Pull75Push25 => MIX.iter().map(|m| m.0).collect(),
        }
    }

    /// The images this workload reads, pushed before it is timed.
    pub fn fixtures(&self, prefix: &str) -> Vec<Fixture> {
        let tiny = || Fixture {
            repo: format!("{prefix}/manifest"),
            tag: "latest",
            size: TINY,
        };
        match self.kind {
            Kind::Catalog | Kind::ManifestHead | Kind::ManifestGet => vec![tiny()],
            Kind::PushMonolithic(_) | Kind::PushChunked(_) => Vec::new(),
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

    /// Pushes the fixtures (not timed).
    pub async fn setup(&self, ctx: &Ctx) -> anyhow::Result<()> {
        for f in self.fixtures(&ctx.prefix) {
            let image = f.image(&ctx.source)?;
            ops::push_image(&ctx.client, &f.repo, f.tag, &image, Upload::Monolithic).await?;
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
            Kind::Catalog => ops::catalog(c).await,
            Kind::ManifestHead => ops::manifest(c, Method::HEAD, &tiny, "latest").await,
            Kind::ManifestGet => ops::manifest(c, Method::GET, &tiny, "latest").await,
            Kind::PushMonolithic(s) => self.push(ctx, i, s, Upload::Monolithic).await,
            Kind::PushChunked(s) => self.push(ctx, i, s, Upload::Chunked(ctx.chunk)).await,
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
        }
    }
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
        assert_eq!(all().len(), 14);
        assert_eq!(names(".*").len(), 14);
        assert_eq!(names("^catalog$"), vec!["catalog"]);
        assert_eq!(names("manifest"), vec!["manifest-head", "manifest-get"]);
        assert_eq!(
            names("^pull-"),
            vec!["pull-1MiB", "pull-10MiB", "pull-100MiB", "pull-mixed"]
        );
        assert_eq!(names("push-chunked-1MiB$"), vec!["push-chunked-1MiB"]);
        assert_eq!(names("100MiB").len(), 3);
        assert!(select("nothing-like-this").is_err());
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
                "catalog",
                "manifest-head",
                "manifest-get",
                "pull-1MiB",
                "pull-10MiB",
                "pull-100MiB",
                "pull-mixed"
            ]
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

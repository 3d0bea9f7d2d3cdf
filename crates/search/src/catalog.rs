//! The compact per-repository summaries queries rank, filter, sort and
//! page over, cached by (name, generation) as [`Source::repos`] reports
//! them, so a query over 10,000 repositories touches only small cards and
//! loads full [`RepoData`](crate::RepoData) for the page it returns.
//!
//! Invariants: a cached card is reused only while its repository's
//! generation is unchanged; cards of repositories that disappeared are
//! dropped on the next listing. Layer and manifest digests are kept as
//! 64-bit hashes (base/derived matching compares hashes; a collision is
//! 2^-64 per pair).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use zot_oci::Digest;
use zot_oci::image_meta::Platform;

use crate::facts::{RepoCtx, manifest_of};
use crate::source::{Source, SourceError};

/// A stable 64-bit key for a digest (SipHash with fixed keys).
pub fn digest_key(d: &Digest) -> u64 {
    let mut h = DefaultHasher::new();
    d.algorithm().as_str().hash(&mut h);
    d.hex().hash(&mut h);
    h.finish()
}

/// One platform manifest of a tagged image.
#[derive(Debug)]
pub struct ManifestCard {
    pub key: u64,
    pub layers: Box<[u64]>,
}

/// One tag of a repository, as lists sort and filter it.
#[derive(Debug)]
pub struct TagCard {
    pub tag: Box<str>,
    pub last_updated: Option<i128>,
    pub downloads: u64,
    pub signed: bool,
    pub platforms: Box<[Platform]>,
    pub manifests: Box<[ManifestCard]>,
}

/// One repository, as repository lists sort and filter it.
#[derive(Debug)]
pub struct RepoCard {
    pub name: Box<str>,
    pub generation: u64,
    pub last_updated: Option<i128>,
    pub downloads: u64,
    pub stars: u64,
    pub size: u64,
    pub platforms: Box<[Platform]>,
    pub vendors: Box<[String]>,
    pub newest_signed: bool,
    /// Visible tags, in name order.
    pub tags: Box<[TagCard]>,
}

impl RepoCard {
    pub fn build(ctx: &RepoCtx, generation: u64) -> RepoCard {
        let mut tags: Vec<TagCard> = ctx
            .visible_tags()
            .filter_map(|t| {
                let meta = ctx.image(&t.digest)?;
                let manifests = ctx
                    .manifests(meta)
                    .iter()
                    .map(|m| ManifestCard {
                        key: digest_key(&m.meta.digest),
                        layers: manifest_of(&m.meta)
                            .map(|mm| mm.layers.iter().map(|l| digest_key(&l.digest)).collect())
                            .unwrap_or_default(),
                    })
                    .collect();
                Some(TagCard {
                    tag: t.tag.as_str().into(),
                    last_updated: ctx.last_updated(meta),
                    downloads: ctx.downloads_of(&t.digest),
                    signed: ctx.is_signed(&t.digest),
                    platforms: ctx.platforms(meta).into(),
                    manifests,
                })
            })
            .collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        let newest_signed = ctx.newest().is_some_and(|t| ctx.is_signed(&t.digest));
        RepoCard {
            name: ctx.name().into(),
            generation,
            last_updated: ctx.repo_last_updated(),
            downloads: ctx.downloads(),
            stars: ctx.data.star_count,
            size: ctx.repo_size(),
            platforms: ctx.repo_platforms().into(),
            vendors: ctx.vendors().into(),
            newest_signed,
            tags: tags.into(),
        }
    }

    pub fn tag(&self, name: &str) -> Option<&TagCard> {
        self.tags
            .binary_search_by(|t| (*t.tag).cmp(name))
            .ok()
            .and_then(|i| self.tags.get(i))
    }
}

/// The source plus the card cache.
pub struct Catalog {
    source: Arc<dyn Source>,
    cards: RwLock<HashMap<Box<str>, Arc<RepoCard>>>,
}

impl Catalog {
    pub fn new(source: Arc<dyn Source>) -> Catalog {
        Catalog {
            source,
            cards: RwLock::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// One repository's full data, or `None` when there is none.
    pub fn repo(&self, name: &str) -> Result<Option<Arc<RepoCtx>>, SourceError> {
        Ok(self.source.repo(name)?.map(|d| Arc::new(RepoCtx::new(d))))
    }

    /// Cards of the repositories `keep` accepts (by name), current as of
    /// this call. Blocking: call from a blocking task.
    pub fn cards(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<Arc<RepoCard>>, SourceError> {
        let live = self.source.repos()?;
        let mut out = Vec::with_capacity(live.len());
        let mut stale = Vec::new();
        {
            let map = self.cards.read().unwrap_or_else(PoisonError::into_inner);
            for (name, generation) in &live {
                if !keep(name) {
                    continue;
                }
                match map.get(name.as_str()) {
                    Some(c) if c.generation == *generation => out.push(Arc::clone(c)),
                    _ => stale.push((name.as_str(), *generation)),
                }
            }
        }
        let mut fresh = Vec::with_capacity(stale.len());
        for (name, generation) in stale {
            if let Some(ctx) = self.repo(name)? {
                let card = Arc::new(RepoCard::build(&ctx, generation));
                out.push(Arc::clone(&card));
                fresh.push(card);
            }
        }
        let mut map = self.cards.write().unwrap_or_else(PoisonError::into_inner);
        for card in fresh {
            map.insert(card.name.clone(), card);
        }
        if map.len() > live.len() {
            let names: HashSet<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
            map.retain(|k, _| names.contains(&**k));
        }
        Ok(out)
    }

    /// How many cards are cached (for tests of the cache's bounds).
    pub fn cached(&self) -> usize {
        self.cards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

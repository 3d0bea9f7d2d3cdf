//! The compact per-repository summaries queries rank, filter, sort and
//! page over, cached by (name, generation) as [`Source::repos`] reports
//! them, so a query over 10,000 repositories touches only small cards and
//! loads full [`RepoData`](crate::RepoData) for the page it returns.
//!
//! The cards of one listing form a snapshot, reused as a whole while
//! [`Source::version`] is unchanged (or, for a source without versions,
//! while the listing is identical), so an unchanged catalog costs a query
//! no per-repository work before ranking.
//!
//! The first build takes the cards the source saved (`saved.rs`, by this
//! run or an earlier one) for the generation each repository has now, and
//! builds only the others; built cards are handed back to the source to
//! save, off the query's thread.
//!
//! Invariants: a cached card is reused only while its repository's
//! generation is unchanged (a saved one too); cards of repositories that
//! disappeared are dropped on the next listing; one query at a time rebuilds stale cards
//! (on several threads when there are many, as at start-up).
//! Layer, manifest and config digests are kept as 64-bit keys (base/derived
//! matching compares keys, a collision being 2^-64 per pair; a whole-digest
//! search only uses them to pick the repositories it then reads).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use zot_oci::Digest;
use zot_oci::image_meta::Platform;

use crate::facts::{RepoCtx, manifest_of};
use crate::names::NameIndex;
use crate::source::{Source, SourceError};

mod saved;

/// A stable 64-bit key for a digest (SipHash with fixed keys).
pub fn digest_key(d: &Digest) -> u64 {
    let mut h = DefaultHasher::new();
    d.algorithm().as_str().hash(&mut h);
    d.hex().hash(&mut h);
    h.finish()
}

/// Unix nanoseconds narrowed to 64 bits (years 1677-2262; clamped).
pub fn narrow(ns: Option<i128>) -> Option<i64> {
    ns.map(|v| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }))
}

/// Platform lists shared between cards (most images name the same one
/// or two platforms).
#[derive(Default)]
pub struct Platforms(Mutex<HashSet<Arc<[Platform]>>>);

impl Platforms {
    pub fn intern(&self, list: Vec<Platform>) -> Arc<[Platform]> {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = set.get(list.as_slice()) {
            return Arc::clone(found);
        }
        let arc: Arc<[Platform]> = list.into();
        set.insert(Arc::clone(&arc));
        arc
    }
}

/// One tag of a repository, as lists sort and filter it.
#[derive(Debug)]
pub struct TagCard {
    pub tag: Box<str>,
    pub last_updated: Option<i64>,
    pub downloads: u64,
    pub signed: bool,
    pub platforms: Arc<[Platform]>,
    /// Key of the tagged image's digest (manifest or index).
    pub top: u64,
    /// The image's manifests, flattened: `[key, config key, n, layer keys
    /// × n]*` (config key 0 when there is no config).
    manifests: Box<[u64]>,
}

impl TagCard {
    /// (manifest key, config key, layer keys) for each manifest of the
    /// image.
    pub fn manifests(&self) -> impl Iterator<Item = (u64, u64, &[u64])> {
        let mut rest: &[u64] = &self.manifests;
        std::iter::from_fn(move || {
            let (&key, tail) = rest.split_first()?;
            let (&config, tail) = tail.split_first()?;
            let (&n, tail) = tail.split_first()?;
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(tail.len());
            let (layers, tail) = tail.split_at(n);
            rest = tail;
            Some((key, config, layers))
        })
    }

    /// Whether the image names the digest with this key (its own, or a
    /// manifest, config or layer digest).
    pub fn names(&self, key: u64) -> bool {
        self.top == key
            || self
                .manifests()
                .any(|(m, c, layers)| m == key || c == key || layers.contains(&key))
    }
}

/// One repository, as repository lists sort and filter it.
#[derive(Debug)]
pub struct RepoCard {
    pub name: Box<str>,
    pub generation: u64,
    pub last_updated: Option<i64>,
    pub downloads: u64,
    pub stars: u64,
    pub size: u64,
    pub platforms: Arc<[Platform]>,
    pub vendors: Box<[String]>,
    pub newest_signed: bool,
    /// Visible tags, in name order.
    pub tags: Box<[TagCard]>,
}

impl RepoCard {
    pub fn build(ctx: &RepoCtx, generation: u64, platforms: &Platforms) -> RepoCard {
        let mut tags: Vec<TagCard> = ctx
            .visible_tags()
            .filter_map(|t| {
                let meta = ctx.image(&t.digest)?;
                let mut manifests = Vec::new();
                for m in ctx.manifests(meta) {
                    let mm = manifest_of(&m.meta);
                    let layers = mm.map_or(&[][..], |mm| &mm.layers[..]);
                    let config = mm.and_then(|mm| mm.config.as_ref());
                    manifests.push(digest_key(&m.meta.digest));
                    manifests.push(config.map_or(0, |c| digest_key(&c.digest)));
                    manifests.push(layers.len() as u64);
                    manifests.extend(layers.iter().map(|l| digest_key(&l.digest)));
                }
                Some(TagCard {
                    tag: t.tag.as_str().into(),
                    last_updated: narrow(ctx.last_updated(meta)),
                    downloads: ctx.downloads_of(&t.digest),
                    signed: ctx.is_signed(&t.digest),
                    platforms: platforms.intern(ctx.platforms(meta)),
                    top: digest_key(&t.digest),
                    manifests: manifests.into(),
                })
            })
            .collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        let newest_signed = ctx.newest().is_some_and(|t| ctx.is_signed(&t.digest));
        RepoCard {
            name: ctx.name().into(),
            generation,
            last_updated: narrow(ctx.repo_last_updated()),
            downloads: ctx.downloads(),
            stars: ctx.data.star_count,
            size: ctx.repo_size(),
            platforms: platforms.intern(ctx.repo_platforms()),
            vendors: ctx.vendors().into(),
            newest_signed,
            tags: tags.into(),
        }
    }

    /// A card with only what sorting one repository's images needs (tag,
    /// last updated, downloads): no filters, aggregates or layers.
    pub fn sort_only(ctx: &RepoCtx, platforms: &Platforms) -> RepoCard {
        let none = platforms.intern(Vec::new());
        let mut tags: Vec<TagCard> = ctx
            .visible_tags()
            .filter_map(|t| {
                let meta = ctx.image(&t.digest)?;
                Some(TagCard {
                    tag: t.tag.as_str().into(),
                    last_updated: narrow(ctx.last_updated(meta)),
                    downloads: ctx.downloads_of(&t.digest),
                    signed: false,
                    platforms: Arc::clone(&none),
                    top: digest_key(&t.digest),
                    manifests: Box::default(),
                })
            })
            .collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        RepoCard {
            name: ctx.name().into(),
            generation: 0,
            last_updated: None,
            downloads: 0,
            stars: 0,
            size: 0,
            platforms: none,
            vendors: Box::default(),
            newest_signed: false,
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

/// Stale cards per thread below which they are built on one thread.
const PARALLEL_MIN: usize = 256;

/// Repositories kept read (see [`Catalog::repo`]).
pub const HOT: usize = 4;

/// The cards of one snapshot, in name order.
type Cards = Arc<[Arc<RepoCard>]>;

/// A listing of the source and the cards built for it.
struct Snapshot {
    live: Vec<(String, u64)>,
    /// The source's version when `live` was listed.
    version: Option<u64>,
    cards: Arc<[Arc<RepoCard>]>,
}

/// The source plus the card cache.
pub struct Catalog {
    source: Arc<dyn Source>,
    /// The cards as of the last listing that changed anything.
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    cards: RwLock<HashMap<Box<str>, Arc<RepoCard>>>,
    platforms: Platforms,
    /// The last repositories read for queries, with their generations.
    hot: Mutex<VecDeque<(u64, Arc<RepoCtx>)>>,
    /// Held while stale cards are rebuilt, so concurrent queries after a
    /// change (or at start-up) build each card once, not once each.
    rebuilding: Mutex<()>,
    /// Whether the source's saved cards were read (once, at the first build).
    loaded: AtomicBool,
    /// Cards built and not saved yet (see `saved::SAVE_BATCH`).
    unsaved: Mutex<Vec<Arc<RepoCard>>>,
    /// The names of the last list of cards asked for by name search.
    names: Mutex<Option<(Cards, Arc<NameIndex>)>>,
}

impl Catalog {
    pub fn new(source: Arc<dyn Source>) -> Catalog {
        Catalog {
            source,
            cards: RwLock::new(HashMap::new()),
            snapshot: RwLock::new(None),
            rebuilding: Mutex::new(()),
            platforms: Platforms::default(),
            hot: Mutex::new(VecDeque::new()),
            loaded: AtomicBool::new(false),
            unsaved: Mutex::new(Vec::new()),
            names: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// One repository's full data, read from the source now.
    pub fn read(&self, name: &str) -> Result<Option<Arc<RepoCtx>>, SourceError> {
        Ok(self.source.repo(name)?.map(|d| Arc::new(RepoCtx::new(d))))
    }

    /// One repository's full data, or `None` when there is none. With a
    /// versioned source, the last few repositories read are kept by
    /// (name, generation), so a repository queried again and again (the
    /// one with 1,000 tags) is not read and indexed again while unchanged.
    pub fn repo(&self, name: &str) -> Result<Option<Arc<RepoCtx>>, SourceError> {
        let Some(card) = self.card(name)? else {
            return self.read(name);
        };
        {
            let hot = self.hot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, ctx)) = hot
                .iter()
                .find(|(g, c)| *g == card.generation && c.name() == name)
            {
                return Ok(Some(Arc::clone(ctx)));
            }
        }
        let read = self.read(name)?;
        if let Some(ctx) = &read {
            let mut hot = self.hot.lock().unwrap_or_else(PoisonError::into_inner);
            hot.retain(|(_, c)| c.name() != name);
            if hot.len() >= HOT {
                hot.pop_front();
            }
            hot.push_back((card.generation, Arc::clone(ctx)));
        }
        Ok(read)
    }

    /// The current card of `name`, when the source is versioned (the
    /// snapshot is then current without a listing); `None` otherwise or
    /// when there is no such repository.
    pub fn card(&self, name: &str) -> Result<Option<Arc<RepoCard>>, SourceError> {
        if self.source.version().is_none() {
            return Ok(None);
        }
        self.cards()?;
        let map = self.cards.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(name).cloned())
    }

    /// Whether the cards are current without a listing or a rebuild: the
    /// source is versioned and its version is the snapshot's. A query
    /// that reads one repository may then run on an async worker (a read
    /// transaction, no blocking-pool hand-off); a change racing this call
    /// costs that query at most the rebuild of the cards that changed,
    /// never the start-up build of all of them (no snapshot yet: false).
    /// A source read over the network is never taken as current here
    /// (asking its version is itself a network read).
    pub fn is_current(&self) -> bool {
        if !self.source.local() {
            return false;
        }
        let Some(v) = self.source.version() else {
            return false;
        };
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| s.version == Some(v))
    }

    /// Cards of every repository, current as of this call. When the
    /// source lists the same repositories and generations as last time,
    /// the previous snapshot is returned as is (no per-repository work
    /// beyond comparing the listing). Blocking: call from a blocking task.
    pub fn cards(&self) -> Result<Arc<[Arc<RepoCard>]>, SourceError> {
        // Read the version before listing: a change racing the listing
        // leaves the snapshot tagged with the older version, so the next
        // query lists again.
        let version = self.source.version();
        if let Some(v) = version {
            let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = snapshot.as_ref().filter(|s| s.version == Some(v)) {
                return Ok(Arc::clone(&s.cards));
            }
        }
        let live = self.source.repos()?;
        if let Some(cards) = self.current(&live, version) {
            return Ok(cards);
        }
        let _rebuilding = self
            .rebuilding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Another query may have rebuilt them while this one waited.
        if let Some(cards) = self.current(&live, version) {
            return Ok(cards);
        }
        let first = !self.loaded.swap(true, Ordering::AcqRel);
        if first {
            self.load_saved(&live);
        }
        let mut out = Vec::with_capacity(live.len());
        let stale = self.collect(&live, &|_| true, &mut out);
        let fresh = self.build(&stale)?;
        out.extend(fresh.iter().cloned());
        self.save(&fresh, first);
        {
            let mut map = self.cards.write().unwrap_or_else(PoisonError::into_inner);
            for card in fresh {
                map.insert(card.name.clone(), card);
            }
            let names: HashSet<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
            map.retain(|k, _| names.contains(&**k));
        }
        let cards: Arc<[Arc<RepoCard>]> = out.into();
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Snapshot {
            live,
            version,
            cards: Arc::clone(&cards),
        }));
        Ok(cards)
    }

    /// Reads and builds the cards of `stale` (repositories that vanished
    /// meanwhile are left out). Many cards (at start-up, all of them) are
    /// built on several threads, one slice of the list each.
    fn build(&self, stale: &[(String, u64)]) -> Result<Vec<Arc<RepoCard>>, SourceError> {
        let one = |(name, generation): &(String, u64)| -> Result<_, SourceError> {
            Ok(self
                .read(name)?
                .map(|ctx| Arc::new(RepoCard::build(&ctx, *generation, &self.platforms))))
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(stale.len() / PARALLEL_MIN)
            .max(1);
        if threads == 1 {
            let mut fresh = Vec::with_capacity(stale.len());
            for item in stale {
                fresh.extend(one(item)?);
            }
            return Ok(fresh);
        }
        let chunk = stale.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = stale
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut fresh = Vec::with_capacity(part.len());
                        for item in part {
                            fresh.extend(one(item)?);
                        }
                        Ok::<_, SourceError>(fresh)
                    })
                })
                .collect();
            let mut fresh = Vec::with_capacity(stale.len());
            for worker in workers {
                let part = worker
                    .join()
                    .map_err(|_| SourceError("search: building summaries panicked".into()))??;
                fresh.extend(part);
            }
            Ok(fresh)
        })
    }

    /// The snapshot's cards if it was taken from exactly this listing
    /// (re-tagged with `version` if that changed).
    fn current(
        &self,
        live: &[(String, u64)],
        version: Option<u64>,
    ) -> Option<Arc<[Arc<RepoCard>]>> {
        let found = {
            let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
            let s = snapshot.as_ref().filter(|s| s.live == live)?;
            if s.version == version {
                return Some(Arc::clone(&s.cards));
            }
            Arc::clone(s)
        };
        let mut snapshot = self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *snapshot = Some(Arc::new(Snapshot {
            live: live.to_vec(),
            version,
            cards: Arc::clone(&found.cards),
        }));
        Some(Arc::clone(&found.cards))
    }

    /// Pushes the current cards of `wanted` (those `keep` accepts) to
    /// `out`; returns the ones missing or stale.
    fn collect(
        &self,
        wanted: &[(String, u64)],
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<Arc<RepoCard>>,
    ) -> Vec<(String, u64)> {
        let map = self.cards.read().unwrap_or_else(PoisonError::into_inner);
        let mut stale = Vec::new();
        for (name, generation) in wanted {
            if !keep(name) {
                continue;
            }
            match map.get(name.as_str()) {
                Some(c) if c.generation == *generation => out.push(Arc::clone(c)),
                _ => stale.push((name.clone(), *generation)),
            }
        }
        stale
    }

    /// The names of `cards` (a list [`Catalog::cards`] returned), built
    /// once per list.
    pub fn name_index(&self, cards: &Arc<[Arc<RepoCard>]>) -> Arc<NameIndex> {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((of, index)) = names.as_ref()
            && Arc::ptr_eq(of, cards)
        {
            return Arc::clone(index);
        }
        let index = Arc::new(NameIndex::new(cards.iter().map(|c| &*c.name)));
        *names = Some((Arc::clone(cards), Arc::clone(&index)));
        index
    }

    /// A card for one repository read just now (not cached: the caller
    /// does not know its generation).
    pub fn card_of(&self, ctx: &RepoCtx) -> RepoCard {
        RepoCard::build(ctx, 0, &self.platforms)
    }

    /// [`RepoCard::sort_only`] for one repository read just now.
    pub fn sort_card_of(&self, ctx: &RepoCtx) -> RepoCard {
        RepoCard::sort_only(ctx, &self.platforms)
    }

    /// How many cards are cached (for tests of the cache's bounds).
    pub fn cached(&self) -> usize {
        self.cards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

//! The resolvers' work, run on a blocking thread: select rows from the
//! cached cards (filtered by what the viewer may read), sort and page
//! them; the page's images and newest images read their repositories
//! only as the response is written (`lazy.rs`).
//!
//! Invariant: every repository that reaches a result passed
//! `viewer.may(name, Access::Read)`.

use std::collections::HashSet;
use std::sync::Arc;

use zot_oci::Digest;
use zot_oci::image_meta::Platform;

use crate::catalog::{Catalog, RepoCard, digest_key};
use crate::facts::{RepoCtx, manifest_of};
use crate::lazy::{LazyImage, Loader, RECENT};
use crate::paging::{ImageRow, Paging, RepoRow, slice, sort_images, sort_repos};
use crate::source::{SourceError, UserPrefs};
use crate::types::{Filter, PageInfo};
use crate::views::RepoSummary;
use crate::{Access, Viewer};

/// A resolver failure; its text is what the client reads.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Source(#[from] SourceError),
}

impl From<&str> for LookupError {
    fn from(s: &str) -> LookupError {
        LookupError::Refused(s.to_owned())
    }
}

impl From<String> for LookupError {
    fn from(s: String) -> LookupError {
        LookupError::Refused(s)
    }
}

pub type Result<T> = std::result::Result<T, LookupError>;

/// The cleaned `Filter` (zot's `cleanFilter`): Os/Arch lower-cased and
/// trimmed, empties dropped.
#[derive(Debug, Clone, Default)]
pub struct Sieve {
    os: Vec<String>,
    arch: Vec<String>,
    signed: bool,
    starred: Option<bool>,
    bookmarked: Option<bool>,
}

fn clean(list: Option<&Vec<Option<String>>>) -> Vec<String> {
    list.into_iter()
        .flatten()
        .flatten()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Sieve {
    pub fn new(filter: Option<&Filter>) -> Sieve {
        let Some(f) = filter else {
            return Sieve::default();
        };
        Sieve {
            os: clean(f.os.as_ref()),
            arch: clean(f.arch.as_ref()),
            signed: f.has_to_be_signed == Some(true),
            starred: f.is_starred,
            bookmarked: f.is_bookmarked,
        }
    }

    fn platforms_ok(&self, ps: &[Platform]) -> bool {
        let os_ok = self.os.is_empty() || ps.iter().any(|p| self.os.contains(&p.os.to_lowercase()));
        let arch_ok = self.arch.is_empty()
            || ps
                .iter()
                .any(|p| self.arch.contains(&p.arch.to_lowercase()));
        os_ok && arch_ok
    }

    /// Image filter: IsStarred/IsBookmarked are ignored for images.
    pub fn image_ok(&self, row: &ImageRow) -> bool {
        row.tag_card()
            .is_some_and(|t| (!self.signed || t.signed) && self.platforms_ok(&t.platforms))
    }

    fn repo_ok(&self, card: &RepoCard, prefs: &UserPrefs) -> bool {
        (!self.signed || card.newest_signed)
            && self.platforms_ok(&card.platforms)
            && self
                .starred
                .is_none_or(|s| prefs.starred.contains(&*card.name) == s)
            && self
                .bookmarked
                .is_none_or(|b| prefs.bookmarked.contains(&*card.name) == b)
    }
}

/// One request's view of the catalog.
pub struct Lookup {
    pub catalog: Arc<Catalog>,
    pub viewer: Viewer,
}

/// A page of images.
pub struct ImagePage {
    pub info: PageInfo,
    pub results: Vec<LazyImage>,
}

/// A page of repositories.
pub struct RepoPage {
    pub info: PageInfo,
    pub results: Vec<RepoSummary>,
}

/// `repo:tag` → (repo, tag); no tag is zot's "no reference provided".
pub fn split_reference(image: &str) -> Result<(&str, &str)> {
    match image.split_once(':') {
        Some((repo, tag)) if !tag.is_empty() => Ok((repo, tag)),
        _ => Err("no reference provided".into()),
    }
}

impl Lookup {
    pub fn readable(&self, name: &str) -> bool {
        (self.viewer.may)(name, Access::Read)
    }

    /// Cards of the repositories the viewer may read.
    pub fn cards(&self) -> Result<Vec<Arc<RepoCard>>> {
        Ok(self
            .catalog
            .cards()?
            .iter()
            .filter(|c| self.readable(&c.name))
            .cloned()
            .collect())
    }

    pub fn prefs(&self) -> Result<UserPrefs> {
        match &self.viewer.user {
            Some(u) => Ok(self.catalog.source().user_prefs(u)?),
            None => Ok(UserPrefs::default()),
        }
    }

    /// Every tag of `cards` as a row, filtered.
    pub fn all_rows(cards: &[Arc<RepoCard>], sieve: &Sieve) -> Vec<ImageRow> {
        cards
            .iter()
            .flat_map(|c| {
                (0..c.tags.len()).map(|tag| ImageRow {
                    card: Arc::clone(c),
                    tag,
                    only: None,
                })
            })
            .filter(|r| sieve.image_ok(r))
            .collect()
    }

    /// Sorts and pages image rows; the summaries read their repositories
    /// when written (`lazy.rs`), starting from `seeds` (repositories
    /// already read).
    pub fn image_page(
        &self,
        mut rows: Vec<ImageRow>,
        p: &Paging,
        seeds: Vec<Arc<RepoCtx>>,
        deletable: bool,
    ) -> ImagePage {
        sort_images(&mut rows, p.sort);
        let (mut info, rows) = slice(rows, p);
        let loader = Loader::new(Arc::clone(&self.catalog), seeds);
        let results: Vec<LazyImage> = rows
            .into_iter()
            .filter_map(|row| {
                let tag = row.tag_card()?.tag.clone();
                Some(LazyImage {
                    loader: Arc::clone(&loader),
                    deletable: deletable.then(|| (self.viewer.may)(&row.card.name, Access::Delete)),
                    repo: row.card.name.clone(),
                    tag,
                    only: row.only,
                })
            })
            .collect();
        info.item_count = i32::try_from(results.len()).unwrap_or(i32::MAX);
        ImagePage { info, results }
    }

    /// Sorts, pages and builds repository summaries. With `newest` (the
    /// query asks for their `NewestImage`), the first [`RECENT`]
    /// repositories of the page are read here, on the resolver's blocking
    /// thread, rather than one blocking task each while the answer is
    /// written.
    pub fn repo_page(
        &self,
        mut rows: Vec<RepoRow>,
        p: &Paging,
        prefs: &UserPrefs,
        newest: bool,
    ) -> RepoPage {
        sort_repos(&mut rows, p.sort);
        let (info, rows) = slice(rows, p);
        let seeds: Vec<Arc<RepoCtx>> = if newest {
            rows.iter()
                .take(RECENT)
                // A failed read is tried again, and reported, when the
                // summary is written.
                .filter_map(|r| self.catalog.repo(&r.card.name).ok().flatten())
                .collect()
        } else {
            Vec::new()
        };
        let loader = Loader::new(Arc::clone(&self.catalog), seeds);
        let results = rows
            .into_iter()
            .map(|row| RepoSummary {
                starred: prefs.starred.contains(&*row.card.name),
                bookmarked: prefs.bookmarked.contains(&*row.card.name),
                card: row.card,
                data: None,
                loader: Some(Arc::clone(&loader)),
                rank: row.rank,
            })
            .collect();
        RepoPage { info, results }
    }

    /// Rows of the readable repositories with a tag that `keep` ranks
    /// (cards are cloned only for the rows kept).
    pub fn repo_rows(&self, keep: impl Fn(&RepoCard) -> Option<i32>) -> Result<Vec<RepoRow>> {
        Ok(self
            .catalog
            .cards()?
            .iter()
            .filter(|c| !c.tags.is_empty())
            .filter_map(|card| {
                let rank = keep(card)?;
                self.readable(&card.name).then(|| RepoRow {
                    card: Arc::clone(card),
                    rank,
                })
            })
            .collect())
    }

    /// ImageListForDigest: an index whose digest equals `id`, or images
    /// with a manifest, config or layer digest containing `id` (an index
    /// then shows only its matching manifests).
    pub fn digest_rows(
        &self,
        id: &str,
        sieve: &Sieve,
    ) -> Result<(Vec<ImageRow>, Vec<Arc<RepoCtx>>)> {
        let mut rows = Vec::new();
        // The first few matching repositories seed the page's loader.
        let mut seeds = Vec::new();
        // A whole digest is contained only in itself: the cards' keys say
        // which repositories can match, and only those are read.
        let exact = id.parse::<Digest>().ok().map(|d| digest_key(&d));
        for card in self.cards()? {
            if let Some(key) = exact
                && !card.tags.iter().any(|t| t.names(key))
            {
                continue;
            }
            let Some(ctx) = self.catalog.read(&card.name)? else {
                continue;
            };
            let matched = rows.len();
            for (i, t) in card.tags.iter().enumerate() {
                let Some(tag) = ctx.tag(&t.tag) else { continue };
                let Some(meta) = ctx.image(&tag.digest) else {
                    continue;
                };
                let only = if manifest_of(meta).is_none() {
                    if meta.digest.to_string() == id {
                        None
                    } else {
                        let keys: Vec<u64> = ctx
                            .manifests(meta)
                            .iter()
                            .filter(|m| manifest_contains(&m.meta, id))
                            .map(|m| digest_key(&m.meta.digest))
                            .collect();
                        if keys.is_empty() {
                            continue;
                        }
                        Some(keys)
                    }
                } else if manifest_contains(meta, id) {
                    None
                } else {
                    continue;
                };
                let row = ImageRow {
                    card: Arc::clone(&card),
                    tag: i,
                    only,
                };
                if sieve.image_ok(&row) {
                    rows.push(row);
                }
            }
            if rows.len() > matched && seeds.len() < RECENT {
                seeds.push(ctx);
            }
        }
        Ok((rows, seeds))
    }

    /// Repository search rows, ranked and filtered.
    pub fn search_repos(&self, q: &str, sieve: &Sieve, prefs: &UserPrefs) -> Result<Vec<RepoRow>> {
        // Every name that ranks contains the query's last segment: the
        // names holding it are found in one pass (`names.rs`), and only
        // those are ranked.
        let last = q.rsplit_once('/').map_or(q, |(_, last)| last);
        let cards = self.catalog.cards()?;
        let names = self.catalog.name_index(&cards);
        Ok(names
            .containing(last)
            .into_iter()
            .filter_map(|i| cards.get(i))
            .filter(|card| !card.tags.is_empty())
            .filter_map(|card| {
                let rank = crate::global::rank_repo_name(q, &card.name)?;
                (sieve.repo_ok(card, prefs) && self.readable(&card.name)).then(|| RepoRow {
                    card: Arc::clone(card),
                    rank,
                })
            })
            .collect())
    }

    /// Base or derived images of `image` (`repo:tag`), or of one of its
    /// manifests when `digest` is given.
    pub fn lineage(
        &self,
        image: &str,
        digest: Option<&str>,
        base: bool,
    ) -> Result<Option<Vec<ImageRow>>> {
        let (repo, tag) = split_reference(image)?;
        if !self.readable(repo) {
            return Ok(None);
        }
        let ctx = self.catalog.repo(repo)?.ok_or("repository not found")?;
        let not_found = || LookupError::Refused(format!("can't find image: {repo}:{tag}"));
        let reference: Vec<(u64, Vec<u64>)> = {
            let meta = match digest {
                Some(d) => {
                    let d: Digest = d.parse().map_err(|_| not_found())?;
                    ctx.image(&d).ok_or_else(not_found)?
                }
                None => {
                    let row = ctx.tag(tag).ok_or_else(not_found)?;
                    ctx.image(&row.digest).ok_or_else(not_found)?
                }
            };
            ctx.manifests(meta)
                .iter()
                .filter_map(|m| {
                    let mm = manifest_of(&m.meta)?;
                    Some((
                        digest_key(&m.meta.digest),
                        mm.layers.iter().map(|l| digest_key(&l.digest)).collect(),
                    ))
                })
                .collect()
        };
        let related = |key: u64, layers: &[u64]| {
            reference.iter().any(|(rk, rl)| {
                let (lower, upper) = if base {
                    (layers, rl.as_slice())
                } else {
                    (rl.as_slice(), layers)
                };
                *rk != key
                    && !lower.is_empty()
                    && lower.len() <= upper.len()
                    && upper.starts_with(lower)
            })
        };
        let mut rows = Vec::new();
        for card in self.cards()? {
            for (i, t) in card.tags.iter().enumerate() {
                let keys: Vec<u64> = t
                    .manifests()
                    .filter(|(key, _, layers)| related(*key, layers))
                    .map(|(key, _, _)| key)
                    .collect();
                if !keys.is_empty() {
                    rows.push(ImageRow {
                        card: Arc::clone(&card),
                        tag: i,
                        only: Some(keys),
                    });
                }
            }
        }
        Ok(Some(rows))
    }

    /// Readable repositories named in `names`.
    pub fn named_repos(&self, names: &std::collections::BTreeSet<String>) -> Result<Vec<RepoRow>> {
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        Ok(self
            .cards()?
            .into_iter()
            .filter(|c| wanted.contains(&*c.name))
            .map(|card| RepoRow { card, rank: 0 })
            .collect())
    }
}

fn manifest_contains(meta: &zot_oci::image_meta::ImageMeta, id: &str) -> bool {
    let Some(m) = manifest_of(meta) else {
        return false;
    };
    meta.digest.to_string().contains(id)
        || m.config
            .iter()
            .chain(m.layers.iter())
            .any(|b| b.digest.to_string().contains(id))
}

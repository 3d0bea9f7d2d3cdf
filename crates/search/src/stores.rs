//! [`Source`] over the registry's stores: each repository's metadata is
//! read from the metadata store of the store it routes to, in one read
//! transaction, with no layout read; stars and bookmarks live in the
//! default store's metadata (a repository's star count in its own store,
//! beside its other rows).
//!
//! Invariants:
//! - A repository is listed by the store it routes to only (as the
//!   catalog: a layout left in a root it no longer routes to is not shown).
//! - A name always routes to one store, so its generation, drawn from that
//!   store's sequence, changes whenever its metadata does.

use std::collections::HashMap;
use std::sync::Arc;

use zot_meta::{MetaError, PrefList, SearchRepo};
use zot_storage::{Registry, Stores};

use crate::source::{DigestStats, Pref, RepoData, Source, SourceError, TagRow, UserPrefs};

/// The registry's stores as the search extension's [`Source`].
#[derive(Clone)]
pub struct StoresSource {
    stores: Stores,
}

impl StoresSource {
    pub fn new(stores: Stores) -> StoresSource {
        StoresSource { stores }
    }

    fn default_store(&self) -> &Arc<Registry> {
        self.stores.default_store()
    }
}

fn err(e: MetaError) -> SourceError {
    SourceError(e.to_string())
}

fn secs_to_ns(s: u64) -> i128 {
    i128::from(s) * 1_000_000_000
}

/// The source's view of one repository's rows.
fn repo_data(name: &str, r: SearchRepo) -> RepoData {
    let mut referrers: HashMap<_, Vec<_>> = HashMap::new();
    for (subject, desc) in r.referrers {
        referrers.entry(subject).or_default().push(desc);
    }
    RepoData {
        name: name.to_owned(),
        tags: r
            .tags
            .into_iter()
            .map(|t| TagRow {
                tag: t.tag,
                digest: t.digest,
                tagged_ns: t.tagged_ns.map(i128::from),
            })
            .collect(),
        images: r
            .images
            .into_iter()
            .map(|m| (m.digest.clone(), Arc::new(m)))
            .collect(),
        stats: r
            .stats
            .into_iter()
            .map(|s| {
                let stats = DigestStats {
                    downloads: s.downloads,
                    last_pull_ns: s.pulled.map(secs_to_ns),
                    pushed_ns: s.pushed.map(secs_to_ns),
                    pushed_by: s.pushed_by,
                };
                (s.digest, stats)
            })
            .collect(),
        referrers,
        star_count: r.stars,
    }
}

impl Source for StoresSource {
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
        let mut out = Vec::new();
        for store in self.stores.distinct() {
            let mine = store.metadata().search_repos().map_err(err)?;
            out.extend(
                mine.into_iter()
                    .filter(|(name, _)| Arc::ptr_eq(self.stores.route(name), store)),
            );
        }
        out.sort_unstable();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// Every store's metadata is embedded (none shared in Redis).
    fn local(&self) -> bool {
        self.stores
            .distinct()
            .iter()
            .all(|store| !store.metadata().shared())
    }

    /// The sum of the stores' search versions: each only grows, so the sum
    /// moves whenever any store's listing does.
    fn version(&self) -> Option<u64> {
        let mut sum = 0u64;
        for store in self.stores.distinct() {
            match store.metadata().search_version() {
                Ok(v) => sum = sum.wrapping_add(v),
                Err(e) => {
                    tracing::warn!(error = %e, "search: reading a store's version");
                    return None;
                }
            }
        }
        Some(sum)
    }

    fn saved_cards(&self) -> Result<Vec<(String, u64, Vec<u8>)>, SourceError> {
        let mut out = Vec::new();
        for store in self.stores.distinct() {
            let mine = store.metadata().search_cards().map_err(err)?;
            out.extend(
                mine.into_iter()
                    .filter(|(name, ..)| Arc::ptr_eq(self.stores.route(name), store)),
            );
        }
        Ok(out)
    }

    /// Each summary goes to the store its repository routes to.
    fn save_cards(&self, cards: Vec<(String, u64, Vec<u8>)>) -> Result<(), SourceError> {
        let stores = self.stores.distinct();
        let mut parts: Vec<Vec<_>> = stores.iter().map(|_| Vec::new()).collect();
        for card in cards {
            let home = self.stores.route(&card.0);
            if let Some(i) = stores.iter().position(|s| Arc::ptr_eq(s, home)) {
                parts[i].push(card);
            }
        }
        for (store, part) in stores.iter().zip(parts) {
            store.metadata().save_search_cards(&part).map_err(err)?;
        }
        Ok(())
    }

    fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
        let store = self.stores.route(name);
        let found = store.metadata().search_repo(name).map_err(err)?;
        Ok(found.map(|r| Arc::new(repo_data(name, r))))
    }

    fn user_prefs(&self, user: &str) -> Result<UserPrefs, SourceError> {
        let mut prefs = UserPrefs::default();
        for (list, repo) in self
            .default_store()
            .metadata()
            .user_prefs(user)
            .map_err(err)?
        {
            match list {
                PrefList::Starred => prefs.starred.insert(repo),
                PrefList::Bookmarked => prefs.bookmarked.insert(repo),
            };
        }
        Ok(prefs)
    }

    fn toggle(&self, user: &str, pref: Pref, repo: &str) -> Result<bool, SourceError> {
        let list = match pref {
            Pref::Star => PrefList::Starred,
            Pref::Bookmark => PrefList::Bookmarked,
        };
        let home = self.stores.route(repo);
        let here = Arc::ptr_eq(home, self.default_store());
        let now = self
            .default_store()
            .metadata()
            .toggle_pref(user, list, repo, here)
            .map_err(err)?;
        if list == PrefList::Starred && !here {
            let name = repo
                .parse()
                .map_err(|e: zot_oci::NameError| SourceError(e.to_string()))?;
            let delta = if now { 1 } else { -1 };
            home.metadata().add_stars(&name, delta).map_err(err)?;
        }
        Ok(now)
    }
}

//! Several stores behind one registry (`storage.subPaths`): the default
//! store, plus one per route prefix, each a whole [`Registry`] with its own
//! root directory, metadata store, locks, upload sessions and settings.
//!
//! Invariants:
//! - Routing is a function of the repository name alone: a name lies in the
//!   sub-store of the longest prefix it is strictly under (`a/x` and `a/b/x`
//!   under `a`; `a` itself and `ab/x` are not), every other name in the
//!   default store. As in zot, a one-segment name is always the default
//!   store's. Every request for one repository therefore reaches one store.
//! - Stores share nothing: dedupe links and cross-repository mounts stay
//!   inside one root (a mount from a repository of another store finds no
//!   blob and becomes an ordinary upload), and GC, scrub and upload expiry
//!   run per store with that store's settings.
//! - The catalog is the merge of the stores' repositories that route to
//!   them, in lexical order, paged with `n` and `last` as one list; a
//!   repository left in a root that no longer routes there (e.g. in the
//!   default root, from before a sub-path was configured) is neither listed
//!   nor served.
//! - Several prefixes may share one store (the same root, as zot allows);
//!   [`Stores::distinct`] lists each store once.

use crate::error::Result;
use crate::registry::Registry;
use std::sync::Arc;
use zot_oci::RepoName;

/// The stores of a registry and the routing of repository names to them.
#[derive(Clone)]
pub struct Stores {
    default: Arc<Registry>,
    /// (prefix without slashes, store), longest prefix first.
    subs: Vec<(String, Arc<Registry>)>,
}

impl From<Arc<Registry>> for Stores {
    fn from(registry: Arc<Registry>) -> Stores {
        Stores::single(registry)
    }
}

impl Stores {
    /// One store for every repository.
    pub fn single(registry: Arc<Registry>) -> Stores {
        Stores {
            default: registry,
            subs: Vec::new(),
        }
    }

    /// The default store and one store per route prefix (`/a`, `a/b`:
    /// surrounding slashes are ignored).
    pub fn new(
        default: Arc<Registry>,
        subs: impl IntoIterator<Item = (String, Arc<Registry>)>,
    ) -> Stores {
        let mut subs: Vec<(String, Arc<Registry>)> = subs
            .into_iter()
            .map(|(p, r)| (p.trim_matches('/').to_owned(), r))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        subs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Stores { default, subs }
    }

    /// The store of repository `name` (see the module documentation).
    pub fn route(&self, name: &str) -> &Arc<Registry> {
        self.subs
            .iter()
            .find(|(prefix, _)| {
                name.len() > prefix.len()
                    && name.starts_with(prefix.as_str())
                    && name.as_bytes()[prefix.len()] == b'/'
            })
            .map_or(&self.default, |(_, store)| store)
    }

    /// The store of `repo`.
    pub fn for_repo(&self, repo: &RepoName) -> &Arc<Registry> {
        self.route(repo.as_str())
    }

    /// The default store (`storage.rootDirectory`).
    pub fn default_store(&self) -> &Arc<Registry> {
        &self.default
    }

    /// Every store once, the default first.
    pub fn distinct(&self) -> Vec<&Arc<Registry>> {
        let mut out = vec![&self.default];
        for (_, store) in &self.subs {
            if !out.iter().any(|s| Arc::ptr_eq(s, store)) {
                out.push(store);
            }
        }
        out
    }

    /// Repositories of every store in lexical order after `last`, at most
    /// `n`, and whether more follow.
    pub fn catalog(&self, last: Option<&str>, n: usize) -> Result<(Vec<String>, bool)> {
        if self.subs.is_empty() {
            return self.default.catalog(last, n);
        }
        // Up to n + 1 names from each store tell exactly whether the
        // merged list goes on past n.
        let limit = n.saturating_add(1);
        let mut merged = Vec::new();
        for store in self.distinct() {
            let mut mine = Vec::new();
            let mut cursor = last.map(str::to_owned);
            while mine.len() < limit {
                let (page, more) = store.catalog(cursor.as_deref(), limit - mine.len())?;
                cursor = page.last().cloned();
                mine.extend(
                    page.into_iter()
                        .filter(|r| Arc::ptr_eq(self.route(r), store)),
                );
                if !more || cursor.is_none() {
                    break;
                }
            }
            merged.extend(mine);
        }
        merged.sort_unstable();
        merged.dedup();
        let more = merged.len() > n;
        merged.truncate(n);
        Ok((merged, more))
    }
}

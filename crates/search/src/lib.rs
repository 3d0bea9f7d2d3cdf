//! The search extension: zot's GraphQL API (`/v2/_zot/ext/search`) over the
//! image metadata model.
//!
//! The model is content-derived ([`zot_oci::image_meta::ImageMeta`], one per
//! manifest digest, computed when the manifest is stored) plus what the
//! registry records as it runs (push and tag times, pushers, download
//! counts, stars and bookmarks). This crate reads it through [`Source`], so
//! the resolvers know nothing of storage; the binary hands it the stores.
//!
//! The API layer authenticates the caller, builds a [`Viewer`] and hands the
//! request to [`Search::graphql`]; every answer is filtered to the
//! repositories the viewer may read.

mod catalog;
pub mod cve;
mod cve_queries;
mod facts;
mod global;
pub mod http;
mod lazy;
mod lenient;
mod lookup;
mod names;
mod paging;
mod plans;
mod query;
mod results;
pub mod schema;
mod serial;
pub mod source;
pub mod stores;
pub mod time;
pub mod types;
mod userprefs;
mod views;

pub use source::{DigestStats, Pref, RepoData, Source, SourceError, TagRow, UserPrefs};

use std::sync::Arc;

use catalog::Catalog;
use schema::SearchSchema;

/// What a caller may do with a repository, as the registry's access control
/// decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Delete,
}

/// Whether the caller may do `Access` on the named repository.
pub type MayFn = dyn Fn(&str, Access) -> bool + Send + Sync;

/// The caller of a search request, authenticated by the API layer before
/// the request reaches this crate.
#[derive(Clone)]
pub struct Viewer {
    /// The signed-in user; `None` for anonymous callers.
    pub user: Option<String>,
    /// Whether the caller may do `Access` on the named repository.
    pub may: Arc<MayFn>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer").field("user", &self.user).finish()
    }
}

/// The search extension: GraphQL and userprefs over one [`Source`].
pub struct Search {
    source: Arc<dyn Source>,
    catalog: Arc<Catalog>,
    schema: SearchSchema,
    /// The same schema validating only complexity and depth: for queries
    /// whose shape passed every rule already (`plans.rs`).
    fast: SearchSchema,
    plans: plans::Plans,
}

impl Search {
    pub fn new(source: Arc<dyn Source>) -> Search {
        Search::build(source, None)
    }

    /// Search with CVE queries and summaries answered from `cve` (the
    /// vulnerability scanner's results).
    pub fn with_cve(source: Arc<dyn Source>, cve: Arc<dyn cve::CveSource>) -> Search {
        Search::build(source, Some(cve::CveData(cve)))
    }

    fn build(source: Arc<dyn Source>, cve: Option<cve::CveData>) -> Search {
        let catalog = Arc::new(Catalog::new(Arc::clone(&source)));
        let schema = schema::build(Arc::clone(&catalog), cve.clone(), false);
        let fast = schema::build(Arc::clone(&catalog), cve, true);
        Search {
            source,
            catalog,
            schema,
            fast,
            plans: plans::Plans::default(),
        }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The GraphQL schema (with its depth and complexity limits).
    pub fn schema(&self) -> &SearchSchema {
        &self.schema
    }

    /// Builds the summaries of every repository now (blocking: call it
    /// from a blocking task, e.g. at start-up, so the first query does not
    /// pay for it). Returns how many repositories there are.
    pub fn warm(&self) -> Result<usize, SourceError> {
        Ok(self.catalog.cards()?.len())
    }

    /// Queries answered from a kept parse of their shape, and shapes kept
    /// (`plans.rs`).
    pub fn plan_stats(&self) -> (u64, usize) {
        self.plans.stats()
    }

    /// How many repository summaries are cached.
    pub fn cached_repos(&self) -> usize {
        self.catalog.cached()
    }
}

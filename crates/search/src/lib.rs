//! The search extension: zot's GraphQL API (`/v2/_zot/ext/search`) over the
//! image metadata model.
//!
//! The model is content-derived ([`zot_oci::image_meta::ImageMeta`], one per
//! manifest digest, computed when the manifest is stored) plus what the
//! registry records as it runs (push and tag times, pushers, download
//! counts, stars and bookmarks). This crate reads it through [`Source`], so
//! the resolvers know nothing of storage; the binary hands it the stores.

pub mod source;
mod userprefs;

pub use source::{DigestStats, Pref, RepoData, Source, SourceError, TagRow, UserPrefs};

use std::sync::Arc;

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
}

impl Search {
    pub fn new(source: Arc<dyn Source>) -> Search {
        Search { source }
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }
}

//! Long lists hold names, not data: each image of a page (and each
//! repository's `NewestImage`) reads its repository while the response is
//! written, one item after another (see `serial.rs`), and lets go of it
//! when the item is done. A request so holds a few repositories at a time
//! however many it lists, and `ImageList(repo: "")` over 10,000
//! repositories costs time, not memory.
//!
//! Invariant: a repository's data is read on tokio's blocking pool, and a
//! request keeps at most [`RECENT`] repositories besides the item being
//! written.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::Field;
use async_graphql::{
    ContextSelectionSet, OutputType, Positioned, ServerError, ServerResult, Value, registry,
};

use crate::catalog::{Catalog, digest_key};
use crate::facts::RepoCtx;
use crate::views::{ImageSummary, ImageView};

/// Repositories a request keeps after reading them (consecutive images of
/// one repository read it once): a UI's page of repositories, so that the
/// `NewestImage`s of a page of 10 are all read on the resolver's thread,
/// none by a blocking task of its own.
pub const RECENT: usize = 10;

/// Reads repositories for one request.
pub struct Loader {
    catalog: Arc<Catalog>,
    recent: Mutex<VecDeque<Arc<RepoCtx>>>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").finish_non_exhaustive()
    }
}

impl Loader {
    /// A loader that already holds `seeds` (repositories the resolver has
    /// read).
    pub fn new(
        catalog: Arc<Catalog>,
        seeds: impl IntoIterator<Item = Arc<RepoCtx>>,
    ) -> Arc<Loader> {
        let recent = seeds.into_iter().take(RECENT).collect();
        Arc::new(Loader {
            catalog,
            recent: Mutex::new(recent),
        })
    }

    fn cached(&self, name: &str) -> Option<Arc<RepoCtx>> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().find(|c| c.name() == name).cloned()
    }

    /// The repository's data, `None` when it is gone.
    pub async fn repo(&self, name: &str) -> Result<Option<Arc<RepoCtx>>, ServerError> {
        if let Some(c) = self.cached(name) {
            return Ok(Some(c));
        }
        let catalog = Arc::clone(&self.catalog);
        let owned = name.to_owned();
        let loaded = match tokio::task::spawn_blocking(move || catalog.repo(&owned)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "search: metadata read failed");
                return Err(ServerError::new("internal error", None));
            }
            Err(e) => {
                tracing::error!(error = %e, "search: metadata read task failed");
                return Err(ServerError::new("internal error", None));
            }
        };
        if let Some(c) = &loaded {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() >= RECENT {
                recent.pop_front();
            }
            recent.push_back(Arc::clone(c));
        }
        Ok(loaded)
    }
}

/// An `ImageSummary` of a page, read when it is written.
pub struct LazyImage {
    pub loader: Arc<Loader>,
    pub repo: Box<str>,
    pub tag: Box<str>,
    /// `IsDeletable` (ExpandedRepoInfo only).
    pub deletable: Option<bool>,
    /// For an index: show only the manifests with these digest keys.
    pub only: Option<Vec<u64>>,
}

impl LazyImage {
    async fn view(&self) -> Result<Option<ImageView>, ServerError> {
        let Some(repo) = self.loader.repo(&self.repo).await? else {
            return Ok(None);
        };
        let Some(tag) = repo.tag(&self.tag) else {
            return Ok(None);
        };
        let Some(meta) = repo.image(&tag.digest).cloned() else {
            return Ok(None);
        };
        let only = self.only.as_ref().map(|keys| {
            repo.manifests(&meta)
                .into_iter()
                .map(|m| m.meta.digest.clone())
                .filter(|d| keys.contains(&digest_key(d)))
                .collect()
        });
        Ok(Some(ImageView {
            tag: tag.tag.clone(),
            repo,
            meta,
            deletable: self.deletable,
            only,
        }))
    }
}

impl OutputType for LazyImage {
    fn type_name() -> Cow<'static, str> {
        ImageSummary::type_name()
    }

    fn qualified_type_name() -> String {
        ImageSummary::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        ImageSummary::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let view = self.view().await.map_err(|mut e| {
            e.locations = vec![field.pos];
            e
        })?;
        // An image that vanished since the page was cut shows as empty.
        let summary = view.map_or_else(ImageSummary::default, ImageSummary::new);
        summary.resolve(ctx, field).await
    }
}

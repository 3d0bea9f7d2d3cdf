//! The executable schema: zot's `schema.graphql` with introspection on,
//! and limits that turn hostile queries into validation errors.

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Schema, ValidationMode};

use crate::catalog::Catalog;
use crate::cve::CveData;
use crate::query::Query;
use crate::source::{Pref, RepoData, Source, SourceError, UserPrefs};

/// Deepest selection accepted (GraphiQL's introspection query needs 13).
pub const MAX_DEPTH: usize = 16;
/// Largest accepted complexity (roughly: objects a query may build).
pub const MAX_COMPLEXITY: usize = 10_000;
/// Deepest nesting the parser accepts before refusing (stack bound).
pub const MAX_RECURSION: usize = 32;

pub type SearchSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema; with `fast`, validating only complexity and depth (for
/// queries whose shape passed every rule, see `plans.rs`).
pub(crate) fn build(catalog: Arc<Catalog>, cve: Option<CveData>, fast: bool) -> SearchSchema {
    let mut builder = Schema::build(Query { catalog }, EmptyMutation, EmptySubscription);
    if let Some(cve) = cve {
        builder = builder.data(cve);
    }
    if fast {
        builder = builder.validation_mode(ValidationMode::Fast);
    }
    builder
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(MAX_RECURSION)
        .finish()
}

/// The schema in SDL, as clients introspecting it see it.
pub fn sdl() -> String {
    build(Arc::new(Catalog::new(Arc::new(NoRepos))), None, false).sdl()
}

/// A source with nothing in it, for rendering the schema alone.
struct NoRepos;

impl Source for NoRepos {
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
        Ok(Vec::new())
    }
    fn repo(&self, _: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
        Ok(None)
    }
    fn user_prefs(&self, _: &str) -> Result<UserPrefs, SourceError> {
        Ok(UserPrefs::default())
    }
    fn toggle(&self, _: &str, _: Pref, _: &str) -> Result<bool, SourceError> {
        Ok(false)
    }
}

//! The query results that wrap pages, and how a query's complexity is
//! costed: a paginated list costs `(limit or 1000) × its children`,
//! `RepoInfo.Images` 100 × its children; with scalars at 0 (see
//! `types.rs`) a query's complexity estimates the objects it builds.

use async_graphql::SimpleObject;

use crate::lazy::LazyImage;
use crate::serial::SerialList;
use crate::types::{LayerSummary, PageInfo, PageInput};
use crate::views::RepoSummary;

/// What an unpaged list is assumed to hold when costing a query.
pub const UNBOUNDED_LIST: usize = 1000;
/// What `RepoInfo.Images` (every tag of one repository) is assumed to hold.
pub const REPO_IMAGES: usize = 100;

pub const CVE_DISABLED: &str = "cve search is disabled";

/// Complexity of a paginated field: a page costs what it may hold, but
/// never more than an unpaged list (which returns everything, as zot does):
/// a client asking for a page larger than the data (`limit: 20000` to get
/// all) is answered, not refused; the limits bound what queries nest and
/// repeat, and list items are produced one at a time.
pub fn page_cost(page: &Option<PageInput>, child: usize) -> usize {
    let n = match page.as_ref().and_then(|p| p.limit) {
        Some(l) if l > 0 => usize::try_from(l).map_or(UNBOUNDED_LIST, |l| l.min(UNBOUNDED_LIST)),
        _ => UNBOUNDED_LIST,
    };
    n.saturating_mul(child.max(1))
}

#[derive(SimpleObject, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct PaginatedImagesResult {
    pub page: Option<PageInfo>,
    pub results: SerialList<LazyImage>,
}

#[derive(SimpleObject, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct PaginatedReposResult {
    pub page: Option<PageInfo>,
    pub results: SerialList<RepoSummary>,
}

#[derive(SimpleObject, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct RepoInfo {
    #[graphql(complexity = "REPO_IMAGES.saturating_mul(child_complexity.max(1))")]
    pub images: Option<SerialList<Option<LazyImage>>>,
    pub summary: Option<RepoSummary>,
}

#[derive(SimpleObject, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct GlobalSearchResult {
    pub page: Option<PageInfo>,
    pub images: Option<SerialList<Option<LazyImage>>>,
    pub repos: Option<SerialList<Option<RepoSummary>>>,
    pub layers: Option<Vec<Option<LayerSummary>>>,
}

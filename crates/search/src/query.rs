//! The `Query` root: zot's queries, each validating its arguments, then
//! doing its work on tokio's blocking pool (the [`Source`](crate::Source)
//! may block) through [`Lookup`]. `ExpandedRepoInfo`, which reads one
//! repository, runs on the async worker when the catalog's cards are
//! current ([`Catalog::is_current`]): one read transaction costs less than
//! the hand-off to a blocking thread and back.
//!
//! Complexity: a paginated list costs `(limit or 1000) × its children`,
//! `RepoInfo.Images` 100 × its children; with scalars at 0 (see
//! `types.rs`) a query's complexity estimates the objects it builds.

use std::sync::Arc;

use async_graphql::{Context, Object};

use crate::Viewer;
use crate::catalog::Catalog;
use crate::cve::{CveData, CveSource};
use crate::cve_queries::CveFilters;
use crate::global::{self, MAX_QUERY, Target};
use crate::lookup::{Lookup, LookupError, Sieve, split_reference};
use crate::paging::{ImageRow, paging};
use crate::results::{
    CVE_DISABLED, GlobalSearchResult, PaginatedImagesResult, PaginatedReposResult, RepoInfo,
    page_cost,
};
use crate::serial::SerialList;
use crate::types::{CveDiffResult, CveResultForImage, Filter, ImageInput, PageInput, SortCriteria};
use crate::views::{ImageSummary, ImageView, RepoSummary, referrers};

/// The root query object.
pub struct Query {
    pub catalog: Arc<Catalog>,
}

fn viewer(ctx: &Context<'_>) -> Viewer {
    ctx.data_opt::<Viewer>().cloned().unwrap_or_else(|| Viewer {
        user: None,
        may: Arc::new(|_, _| false),
    })
}

/// A refusal's text goes to the client; a metadata failure is logged and
/// shown only as "internal error".
/// Whether the query selects `NewestImage` of the repositories listed
/// under `list` (`Repos`, `Results`).
fn asks_newest(ctx: &Context<'_>, list: &str) -> bool {
    ctx.look_ahead().field(list).field("NewestImage").exists()
}

/// The scanner's results, or zot's error when CVE search is off.
fn cve_source(ctx: &Context<'_>) -> async_graphql::Result<Arc<dyn CveSource>> {
    ctx.data_opt::<CveData>()
        .map(|c| Arc::clone(&c.0))
        .ok_or_else(|| async_graphql::Error::new(CVE_DISABLED))
}

fn gql(e: LookupError) -> async_graphql::Error {
    match e {
        LookupError::Refused(text) => async_graphql::Error::new(text),
        LookupError::Source(s) => {
            tracing::warn!(error = %s, "search: metadata read failed");
            async_graphql::Error::new("internal error")
        }
    }
}

impl Query {
    fn lookup(&self, ctx: &Context<'_>) -> Lookup {
        Lookup {
            catalog: Arc::clone(&self.catalog),
            viewer: viewer(ctx),
        }
    }

    /// `f` on the async worker when the cards are current (so `f` reads
    /// no more than a repository or two), on the blocking pool otherwise.
    async fn run_small<T: Send + 'static>(
        lookup: Lookup,
        f: impl FnOnce(&Lookup) -> Result<T, LookupError> + Send + 'static,
    ) -> async_graphql::Result<T> {
        if lookup.catalog.is_current() {
            return f(&lookup).map_err(gql);
        }
        Query::run(lookup, f).await
    }

    async fn run<T: Send + 'static>(
        lookup: Lookup,
        f: impl FnOnce(&Lookup) -> Result<T, LookupError> + Send + 'static,
    ) -> async_graphql::Result<T> {
        match tokio::task::spawn_blocking(move || f(&lookup)).await {
            Ok(r) => r.map_err(gql),
            Err(e) => {
                tracing::error!(error = %e, "search: resolver task failed");
                Err(async_graphql::Error::new("internal error"))
            }
        }
    }
}

fn images(page: crate::lookup::ImagePage) -> PaginatedImagesResult {
    PaginatedImagesResult {
        page: Some(page.info),
        results: page.results.into(),
    }
}

#[Object(rename_fields = "PascalCase")]
impl Query {
    #[graphql(name = "CVEListForImage")]
    async fn cve_list_for_image(
        &self,
        ctx: &Context<'_>,
        image: String,
        requested_page: Option<PageInput>,
        #[graphql(name = "searchedCVE")] searched_cve: Option<String>,
        #[graphql(name = "excludedCVE")] excluded_cve: Option<String>,
        severity: Option<String>,
    ) -> async_graphql::Result<CveResultForImage> {
        let cve = cve_source(ctx)?;
        let filters = CveFilters {
            searched: searched_cve,
            excluded: excluded_cve,
            severity,
        };
        Query::run(self.lookup(ctx), move |l| {
            l.cve_list_for_image(cve.as_ref(), &image, requested_page.as_ref(), &filters)
        })
        .await
    }

    #[graphql(name = "CVEDiffListForImages")]
    async fn cve_diff_list_for_images(
        &self,
        ctx: &Context<'_>,
        minuend: ImageInput,
        subtrahend: ImageInput,
        requested_page: Option<PageInput>,
        #[graphql(name = "searchedCVE")] searched_cve: Option<String>,
        #[graphql(name = "excludedCVE")] excluded_cve: Option<String>,
    ) -> async_graphql::Result<CveDiffResult> {
        let cve = cve_source(ctx)?;
        crate::cve::page(Vec::new(), requested_page.as_ref())?;
        let filters = CveFilters {
            searched: searched_cve,
            excluded: excluded_cve,
            severity: None,
        };
        Query::run(self.lookup(ctx), move |l| {
            l.cve_diff(cve.as_ref(), &minuend, &subtrahend, &filters)
        })
        .await
    }

    #[graphql(
        name = "ImageListForCVE",
        complexity = "page_cost(&requested_page, child_complexity)"
    )]
    async fn image_list_for_cve(
        &self,
        ctx: &Context<'_>,
        id: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        let cve = cve_source(ctx)?;
        let p = paging(requested_page.as_ref(), SortCriteria::UpdateTime)?;
        let sieve = Sieve::new(filter.as_ref());
        Query::run(self.lookup(ctx), move |l| {
            Ok(images(l.images_for_cve(cve.as_ref(), &id, &sieve, &p)?))
        })
        .await
    }

    #[graphql(
        name = "ImageListWithCVEFixed",
        complexity = "page_cost(&requested_page, child_complexity)"
    )]
    async fn image_list_with_cve_fixed(
        &self,
        ctx: &Context<'_>,
        id: String,
        image: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        let cve = cve_source(ctx)?;
        let p = paging(requested_page.as_ref(), SortCriteria::UpdateTime)?;
        let sieve = Sieve::new(filter.as_ref());
        Query::run(self.lookup(ctx), move |l| {
            Ok(images(l.images_with_cve_fixed(
                cve.as_ref(),
                &id,
                &image,
                &sieve,
                &p,
            )?))
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn image_list_for_digest(
        &self,
        ctx: &Context<'_>,
        id: String,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        let p = paging(requested_page.as_ref(), SortCriteria::Relevance)?;
        Query::run(self.lookup(ctx), move |l| {
            let (rows, seeds) = l.digest_rows(&id, &Sieve::default())?;
            Ok(images(l.image_page(rows, &p, seeds, false)))
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn repo_list_with_newest_image(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedReposResult> {
        let p = paging(requested_page.as_ref(), SortCriteria::UpdateTime)?;
        let newest = asks_newest(ctx, "Results");
        Query::run(self.lookup(ctx), move |l| {
            let rows = l.repo_rows(|_| Some(0))?;
            let page = l.repo_page(rows, &p, &l.prefs()?, newest);
            Ok(PaginatedReposResult {
                page: Some(page.info),
                results: page.results.into(),
            })
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn image_list(
        &self,
        ctx: &Context<'_>,
        repo: String,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        let p = paging(requested_page.as_ref(), SortCriteria::Relevance)?;
        Query::run(self.lookup(ctx), move |l| {
            if repo.is_empty() {
                let rows = Lookup::all_rows(&l.cards()?, &Sieve::default());
                return Ok(images(l.image_page(rows, &p, Vec::new(), false)));
            }
            if !l.readable(&repo) {
                return Ok(images(l.image_page(Vec::new(), &p, Vec::new(), false)));
            }
            // A versioned source: the cached card sorts, and only the
            // page's images read the repository (kept while unchanged).
            if let Some(card) = l.catalog.card(&repo)? {
                let rows = Lookup::all_rows(&[card], &Sieve::default());
                return Ok(images(l.image_page(rows, &p, Vec::new(), false)));
            }
            let Some(data) = l.catalog.repo(&repo)? else {
                return Ok(images(l.image_page(Vec::new(), &p, Vec::new(), false)));
            };
            let card = Arc::new(l.catalog.sort_card_of(&data));
            let rows = Lookup::all_rows(&[card], &Sieve::default());
            Ok(images(l.image_page(rows, &p, vec![data], false)))
        })
        .await
    }

    async fn expanded_repo_info(
        &self,
        ctx: &Context<'_>,
        repo: String,
    ) -> async_graphql::Result<RepoInfo> {
        Query::run_small(self.lookup(ctx), move |l| {
            if !l.readable(&repo) {
                return Ok(RepoInfo::default());
            }
            let data = l
                .catalog
                .repo(&repo)?
                .ok_or("repo metadata not found for given repo name")?;
            let card = match l.catalog.card(&repo)? {
                Some(card) => card,
                None => Arc::new(l.catalog.card_of(&data)),
            };
            let rows = Lookup::all_rows(&[Arc::clone(&card)], &Sieve::default());
            let all = crate::paging::Paging {
                limit: 0,
                offset: 0,
                sort: SortCriteria::UpdateTime,
            };
            let page = l.image_page(rows, &all, vec![Arc::clone(&data)], true);
            let prefs = l.prefs()?;
            Ok(RepoInfo {
                images: Some(SerialList(page.results.into_iter().map(Some).collect())),
                summary: Some(RepoSummary {
                    starred: prefs.starred.contains(&repo),
                    bookmarked: prefs.bookmarked.contains(&repo),
                    card,
                    data: Some(data),
                    loader: None,
                    rank: 0,
                }),
            })
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn global_search(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<Filter>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<GlobalSearchResult> {
        if query.len() > MAX_QUERY {
            return Err(async_graphql::Error::new(format!(
                "max string size limit exceeded for query parameter. max={MAX_QUERY} current={} request parameter has invalid value",
                query.len()
            )));
        }
        if let Some(f) = &filter {
            for (name, list) in [("Os", &f.os), ("Arch", &f.arch)] {
                for v in list.iter().flatten().flatten() {
                    if v.len() > MAX_QUERY {
                        return Err(async_graphql::Error::new(format!(
                            "max string size limit exceeded for filter parameter '{name}'. max={MAX_QUERY} current={} request parameter has invalid value",
                            v.len()
                        )));
                    }
                }
            }
        }
        if let Some(rp) = &requested_page {
            if rp.limit.is_some_and(|l| l < 0) {
                return Err(async_graphql::Error::new(
                    "requested page limit parameter can't be negative request parameter has invalid value",
                ));
            }
            if rp.offset.is_some_and(|o| o < 0) {
                return Err(async_graphql::Error::new(
                    "requested page offset parameter can't be negative request parameter has invalid value",
                ));
            }
        }
        let target = global::target(&query).map_err(async_graphql::Error::new)?;
        let sieve = Sieve::new(filter.as_ref());
        if let Target::Repos(q) = target {
            let p = paging(requested_page.as_ref(), SortCriteria::Relevance)?;
            let newest = asks_newest(ctx, "Repos");
            return Query::run(self.lookup(ctx), move |l| {
                let prefs = l.prefs()?;
                let rows = l.search_repos(&q, &sieve, &prefs)?;
                let page = l.repo_page(rows, &p, &prefs, newest);
                Ok(GlobalSearchResult {
                    page: Some(page.info),
                    images: Some(SerialList::default()),
                    repos: Some(SerialList(page.results.into_iter().map(Some).collect())),
                    layers: Some(Vec::new()),
                })
            })
            .await;
        }
        let p = paging(requested_page.as_ref(), SortCriteria::Relevance)?;
        Query::run(self.lookup(ctx), move |l| {
            let mut seeds = Vec::new();
            let rows = match target {
                Target::Digest(id) => {
                    let (rows, found) = l.digest_rows(&id, &sieve)?;
                    seeds = found;
                    rows
                }
                Target::Tags { repo, prefix } => {
                    let cards: Vec<_> = l
                        .cards()?
                        .into_iter()
                        .filter(|c| *c.name == *repo)
                        .collect();
                    Lookup::all_rows(&cards, &sieve)
                        .into_iter()
                        .filter(|r| r.tag_card().is_some_and(|t| t.tag.starts_with(&prefix)))
                        .collect()
                }
                Target::AnyTag(text) => Lookup::all_rows(&l.cards()?, &sieve)
                    .into_iter()
                    .filter(|r| {
                        r.tag_card()
                            .is_some_and(|t| t.tag.to_lowercase().contains(&text))
                    })
                    .collect(),
                Target::Repos(_) => Vec::<ImageRow>::new(),
            };
            let page = l.image_page(rows, &p, seeds, false);
            Ok(GlobalSearchResult {
                page: Some(page.info),
                images: Some(SerialList(page.results.into_iter().map(Some).collect())),
                repos: Some(SerialList::default()),
                layers: Some(Vec::new()),
            })
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn derived_image_list(
        &self,
        ctx: &Context<'_>,
        image: String,
        digest: Option<String>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        self.lineage(ctx, image, digest, requested_page, false)
            .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn base_image_list(
        &self,
        ctx: &Context<'_>,
        image: String,
        digest: Option<String>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        self.lineage(ctx, image, digest, requested_page, true).await
    }

    async fn image(&self, ctx: &Context<'_>, image: String) -> async_graphql::Result<ImageSummary> {
        Query::run(self.lookup(ctx), move |l| {
            let (repo, tag) = split_reference(&image)?;
            if !l.readable(repo) {
                return Ok(ImageSummary::default());
            }
            let missing = || LookupError::Refused(format!("can't find image: {repo}:{tag}"));
            let data = l.catalog.repo(repo)?.ok_or_else(missing)?;
            let row = data.tag(tag).ok_or_else(missing)?;
            let meta = Arc::clone(data.image(&row.digest).ok_or_else(missing)?);
            Ok(ImageSummary::new(ImageView {
                tag: row.tag.clone(),
                repo: Arc::clone(&data),
                meta,
                deletable: None,
                only: None,
            }))
        })
        .await
    }

    async fn referrers(
        &self,
        ctx: &Context<'_>,
        repo: String,
        digest: String,
        #[graphql(name = "type")] types: Option<Vec<String>>,
    ) -> async_graphql::Result<Vec<Option<crate::types::Referrer>>> {
        Query::run(self.lookup(ctx), move |l| {
            if !l.readable(&repo) {
                return Ok(Vec::new());
            }
            let d: zot_oci::Digest = digest.parse().map_err(|_| {
                LookupError::Refused(format!("bad digest string from request '{digest}'"))
            })?;
            let Some(data) = l.catalog.repo(&repo)? else {
                return Ok(Vec::new());
            };
            Ok(referrers(&data, &d, types.as_deref().unwrap_or(&[])))
        })
        .await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn starred_repos(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedReposResult> {
        self.pref_list(ctx, requested_page, true).await
    }

    #[graphql(complexity = "page_cost(&requested_page, child_complexity)")]
    async fn bookmarked_repos(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
    ) -> async_graphql::Result<PaginatedReposResult> {
        self.pref_list(ctx, requested_page, false).await
    }
}

impl Query {
    async fn lineage(
        &self,
        ctx: &Context<'_>,
        image: String,
        digest: Option<String>,
        requested_page: Option<PageInput>,
        base: bool,
    ) -> async_graphql::Result<PaginatedImagesResult> {
        let p = paging(requested_page.as_ref(), SortCriteria::UpdateTime)?;
        Query::run(self.lookup(ctx), move |l| {
            let rows = l
                .lineage(&image, digest.as_deref(), base)?
                .unwrap_or_default();
            Ok(images(l.image_page(rows, &p, Vec::new(), false)))
        })
        .await
    }

    async fn pref_list(
        &self,
        ctx: &Context<'_>,
        requested_page: Option<PageInput>,
        starred: bool,
    ) -> async_graphql::Result<PaginatedReposResult> {
        let p = paging(requested_page.as_ref(), SortCriteria::UpdateTime)?;
        let newest = asks_newest(ctx, "Results");
        Query::run(self.lookup(ctx), move |l| {
            if l.viewer.user.is_none() {
                let page = l.repo_page(Vec::new(), &p, &Default::default(), false);
                return Ok(PaginatedReposResult {
                    page: Some(page.info),
                    results: page.results.into(),
                });
            }
            let prefs = l.prefs()?;
            let names = if starred {
                &prefs.starred
            } else {
                &prefs.bookmarked
            };
            let rows = l.named_repos(names)?;
            let page = l.repo_page(rows, &p, &prefs, newest);
            Ok(PaginatedReposResult {
                page: Some(page.info),
                results: page.results.into(),
            })
        })
        .await
    }
}

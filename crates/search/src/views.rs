//! `ImageSummary`, `ManifestSummary` and `RepoSummary`: views over one
//! repository's data that compute each field only when the query selects
//! it. An empty view (every field null) is what zot answers for a
//! repository the caller may not read.

use std::sync::Arc;

use async_graphql::{Context, Object, ServerError};
use zot_oci::Digest;
use zot_oci::image_meta::{Annotated, ImageMeta, Platform as MetaPlatform};

use crate::catalog::RepoCard;
use crate::cve::{CveData, ScanState, image_state, state_summary};
use crate::facts::{ManifestRef, RepoCtx, manifest_of};
use crate::lazy::Loader;
use crate::time::{Time, parse_rfc3339, time};
use crate::types::{
    Annotation, HistoryDescription, ImageVulnerabilitySummary, LayerHistory, LayerSummary,
    Platform, Referrer, SignatureSummary,
};

fn int(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The referrers of `digest` in `repo`, optionally only those whose
/// artifact type is in `types` (empty: all).
pub fn referrers(repo: &RepoCtx, digest: &Digest, types: &[String]) -> Vec<Option<Referrer>> {
    repo.data
        .referrers
        .get(digest)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let artifact_type = d
                .artifact_type
                .clone()
                .or_else(|| repo.image(&d.digest).map(|m| m.artifact_type.clone()))
                .unwrap_or_default();
            // zot's MatchesArtifactTypes: an empty type in the list matches
            // every referrer (zot's UI sends `type: ""`).
            if !types.is_empty() && !types.iter().any(|t| t.is_empty() || *t == artifact_type) {
                return None;
            }
            Some(Some(Referrer {
                media_type: Some(d.media_type.clone()),
                artifact_type: Some(artifact_type),
                size: Some(int(d.size)),
                digest: Some(d.digest.to_string()),
                annotations: d
                    .annotations
                    .iter()
                    .flatten()
                    .map(|(k, v)| {
                        Some(Annotation {
                            key: Some(k.clone()),
                            value: Some(v.clone()),
                        })
                    })
                    .collect(),
            }))
        })
        .collect()
}

/// zot's `Vulnerabilities` of an image (never scanning): disabled,
/// not scanned, unscannable (with an error entry, data still returned)
/// or the scanned summary.
fn vulnerabilities(
    ctx: &Context<'_>,
    repo: &RepoCtx,
    meta: &Arc<ImageMeta>,
    tag: &str,
) -> ImageVulnerabilitySummary {
    let Some(cve) = ctx.data_opt::<CveData>() else {
        return ImageVulnerabilitySummary::disabled();
    };
    let state = image_state(cve.0.as_ref(), repo, meta);
    if let ScanState::Unscannable(e) = &state {
        ctx.add_error(ServerError::new(
            format!(
                "unable to run vulnerability scan on tag {tag} in repo {}: error: {e}",
                repo.name()
            ),
            None,
        ));
    }
    state_summary(&state)
}

/// One tagged image (a manifest or an index).
#[derive(Debug, Clone)]
pub struct ImageView {
    pub repo: Arc<RepoCtx>,
    pub tag: String,
    pub meta: Arc<ImageMeta>,
    /// `IsDeletable`, set only by `ExpandedRepoInfo`.
    pub deletable: Option<bool>,
    /// For an index: show only these children (base/derived matches).
    pub only: Option<Vec<Digest>>,
}

/// `ImageSummary`; `None` inside is the empty object.
#[derive(Debug, Clone, Default)]
pub struct ImageSummary(pub Option<Box<ImageView>>);

impl ImageSummary {
    pub fn new(view: ImageView) -> ImageSummary {
        ImageSummary(Some(Box::new(view)))
    }

    fn map<T>(&self, f: impl FnOnce(&ImageView) -> T) -> Option<T> {
        self.0.as_deref().map(f)
    }

    fn ann(&self, pick: fn(&Annotated) -> &str) -> Option<String> {
        self.map(|v| v.repo.annotated(&v.meta, pick))
    }

    fn stat<T>(&self, f: impl FnOnce(&crate::DigestStats) -> T) -> Option<T> {
        self.0
            .as_deref()
            .and_then(|v| v.repo.stats(&v.meta.digest))
            .map(f)
    }
}

#[Object(rename_fields = "PascalCase", serial)]
impl ImageSummary {
    #[graphql(complexity = 0)]
    async fn repo_name(&self) -> Option<String> {
        self.map(|v| v.repo.name().to_owned())
    }
    #[graphql(complexity = 0)]
    async fn tag(&self) -> Option<String> {
        self.map(|v| v.tag.clone())
    }
    #[graphql(complexity = 0)]
    async fn digest(&self) -> Option<String> {
        self.map(|v| v.meta.digest.to_string())
    }
    #[graphql(complexity = 0)]
    async fn media_type(&self) -> Option<String> {
        self.map(|v| v.meta.media_type.clone())
    }
    async fn manifests(&self) -> Option<Vec<Option<ManifestSummary>>> {
        self.map(|v| {
            v.repo
                .manifests(&v.meta)
                .into_iter()
                .filter(|m| v.only.as_ref().is_none_or(|o| o.contains(&m.meta.digest)))
                .map(|m| Some(ManifestSummary::new(Arc::clone(&v.repo), m)))
                .collect()
        })
    }
    #[graphql(complexity = 0)]
    async fn size(&self) -> Option<String> {
        self.map(|v| v.repo.image_size(&v.meta).to_string())
    }
    #[graphql(complexity = 0)]
    async fn download_count(&self) -> Option<i32> {
        self.map(|v| int(v.repo.downloads_of(&v.meta.digest)))
    }
    #[graphql(complexity = 0)]
    async fn last_pull_timestamp(&self) -> Option<Time> {
        self.stat(|s| time(s.last_pull_ns)).flatten()
    }
    #[graphql(complexity = 0)]
    async fn push_timestamp(&self) -> Option<Time> {
        self.stat(|s| time(s.pushed_ns)).flatten()
    }
    #[graphql(complexity = 0)]
    async fn pushed_by(&self) -> Option<String> {
        self.0.as_deref().map(|v| {
            v.repo
                .stats(&v.meta.digest)
                .map(|s| s.pushed_by.clone())
                .unwrap_or_default()
        })
    }
    #[graphql(complexity = 0)]
    async fn tagged_timestamp(&self) -> Option<Time> {
        let v = self.0.as_deref()?;
        let tag = v.repo.tag(&v.tag)?;
        time(v.repo.tagged_ns(tag))
    }
    #[graphql(complexity = 0)]
    async fn last_updated(&self) -> Option<Time> {
        self.0
            .as_deref()
            .and_then(|v| time(v.repo.last_updated(&v.meta)))
    }
    #[graphql(complexity = 0)]
    async fn description(&self) -> Option<String> {
        self.ann(|a| &a.description)
    }
    #[graphql(complexity = 0)]
    async fn is_signed(&self) -> Option<bool> {
        self.map(|v| v.repo.is_signed(&v.meta.digest))
    }
    async fn signature_info(&self) -> Option<Vec<Option<SignatureSummary>>> {
        self.map(|v| {
            v.repo
                .signatures(&v.meta.digest)
                .into_iter()
                .map(Some)
                .collect()
        })
    }
    #[graphql(complexity = 0)]
    async fn licenses(&self) -> Option<String> {
        self.ann(|a| &a.licenses)
    }
    #[graphql(complexity = 0)]
    async fn labels(&self) -> Option<String> {
        self.ann(|a| &a.labels)
    }
    #[graphql(complexity = 0)]
    async fn title(&self) -> Option<String> {
        self.ann(|a| &a.title)
    }
    #[graphql(complexity = 0)]
    async fn source(&self) -> Option<String> {
        self.ann(|a| &a.source)
    }
    #[graphql(complexity = 0)]
    async fn documentation(&self) -> Option<String> {
        self.ann(|a| &a.documentation)
    }
    #[graphql(complexity = 0)]
    async fn vendor(&self) -> Option<String> {
        self.ann(|a| &a.vendor)
    }
    #[graphql(complexity = 0)]
    async fn authors(&self) -> Option<String> {
        self.ann(|a| &a.authors)
    }
    async fn vulnerabilities(&self, ctx: &Context<'_>) -> Option<ImageVulnerabilitySummary> {
        self.map(|v| vulnerabilities(ctx, &v.repo, &v.meta, &v.tag))
    }
    async fn referrers(&self) -> Option<Vec<Option<Referrer>>> {
        self.map(|v| referrers(&v.repo, &v.meta.digest, &[]))
    }
    #[graphql(complexity = 0)]
    async fn is_deletable(&self) -> Option<bool> {
        self.0.as_deref().and_then(|v| v.deletable)
    }
    #[graphql(complexity = 0)]
    async fn artifact_type(&self) -> Option<String> {
        self.map(|v| v.meta.artifact_type.clone())
    }
}

/// `ManifestSummary`: one platform manifest.
#[derive(Debug, Clone)]
pub struct ManifestSummary {
    repo: Arc<RepoCtx>,
    meta: Arc<ImageMeta>,
    platform: Option<MetaPlatform>,
}

impl ManifestSummary {
    pub fn new(repo: Arc<RepoCtx>, m: ManifestRef) -> ManifestSummary {
        ManifestSummary {
            repo,
            meta: m.meta,
            platform: m.platform,
        }
    }

    fn layer_list(&self) -> Vec<LayerSummary> {
        manifest_of(&self.meta)
            .map(|m| {
                m.layers
                    .iter()
                    .map(|l| LayerSummary {
                        size: Some(l.size.to_string()),
                        digest: Some(l.digest.to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[Object(rename_fields = "PascalCase", serial)]
impl ManifestSummary {
    #[graphql(complexity = 0)]
    async fn digest(&self) -> Option<String> {
        Some(self.meta.digest.to_string())
    }
    #[graphql(complexity = 0)]
    async fn config_digest(&self) -> Option<String> {
        manifest_of(&self.meta)
            .and_then(|m| m.config.as_ref())
            .map(|c| c.digest.to_string())
    }
    #[graphql(complexity = 0)]
    async fn last_updated(&self) -> Option<Time> {
        time(self.repo.last_updated(&self.meta))
    }
    #[graphql(complexity = 0)]
    async fn size(&self) -> Option<String> {
        Some(self.repo.image_size(&self.meta).to_string())
    }
    #[graphql(complexity = 0)]
    async fn is_signed(&self) -> Option<bool> {
        Some(self.repo.is_signed(&self.meta.digest))
    }
    async fn signature_info(&self) -> Option<Vec<Option<SignatureSummary>>> {
        Some(
            self.repo
                .signatures(&self.meta.digest)
                .into_iter()
                .map(Some)
                .collect(),
        )
    }
    async fn platform(&self) -> Option<Platform> {
        // zot shows empty strings, not nulls, for a config without one.
        Some(self.platform.as_ref().map_or_else(
            || Platform {
                os: Some(String::new()),
                arch: Some(String::new()),
            },
            Platform::from,
        ))
    }
    #[graphql(complexity = 0)]
    async fn download_count(&self) -> Option<i32> {
        Some(int(self.repo.downloads_of(&self.meta.digest)))
    }
    async fn layers(&self) -> Option<Vec<Option<LayerSummary>>> {
        Some(self.layer_list().into_iter().map(Some).collect())
    }
    /// Each non-empty history entry takes the next layer in order; without
    /// history, one entry per layer with an empty description.
    async fn history(&self, ctx: &Context<'_>) -> Option<Vec<Option<LayerHistory>>> {
        let layers = self.layer_list();
        let history = manifest_of(&self.meta)
            .map(|m| m.history.as_slice())
            .unwrap_or(&[]);
        if history.is_empty() {
            return Some(
                layers
                    .into_iter()
                    .map(|l| {
                        Some(LayerHistory {
                            layer: Some(l),
                            history_description: Some(HistoryDescription::default()),
                        })
                    })
                    .collect(),
            );
        }
        let mut out = Vec::with_capacity(history.len());
        let mut next = layers.into_iter();
        for h in history {
            let description = HistoryDescription {
                created: h.created.as_deref().and_then(parse_rfc3339).map(Time),
                created_by: Some(h.created_by.clone()),
                author: Some(h.author.clone()),
                comment: Some(h.comment.clone()),
                empty_layer: Some(h.empty_layer),
            };
            let layer = if h.empty_layer {
                None
            } else if let Some(l) = next.next() {
                Some(l)
            } else {
                ctx.add_error(ServerError::new(
                    "history has more non-empty entries than the manifest has layers",
                    None,
                ));
                break;
            };
            out.push(Some(LayerHistory {
                layer,
                history_description: Some(description),
            }));
        }
        Some(out)
    }
    async fn vulnerabilities(&self, ctx: &Context<'_>) -> Option<ImageVulnerabilitySummary> {
        Some(vulnerabilities(
            ctx,
            &self.repo,
            &self.meta,
            &self.meta.digest.to_string(),
        ))
    }
    async fn referrers(&self) -> Option<Vec<Option<Referrer>>> {
        Some(referrers(&self.repo, &self.meta.digest, &[]))
    }
    #[graphql(complexity = 0)]
    async fn artifact_type(&self) -> Option<String> {
        Some(self.meta.artifact_type.clone())
    }
}

/// `RepoSummary`: the card's totals, plus the repository's data when the
/// query selects `NewestImage`.
#[derive(Debug, Clone)]
pub struct RepoSummary {
    pub card: Arc<RepoCard>,
    /// The repository's data when the resolver has read it already.
    pub data: Option<Arc<RepoCtx>>,
    /// Otherwise, where `NewestImage` reads it from.
    pub loader: Option<Arc<Loader>>,
    pub starred: bool,
    pub bookmarked: bool,
    pub rank: i32,
}

#[Object(rename_fields = "PascalCase", serial)]
impl RepoSummary {
    #[graphql(complexity = 0)]
    async fn name(&self) -> Option<String> {
        Some(self.card.name.to_string())
    }
    #[graphql(complexity = 0)]
    async fn last_updated(&self) -> Option<Time> {
        time(self.card.last_updated.map(i128::from))
    }
    #[graphql(complexity = 0)]
    async fn size(&self) -> Option<String> {
        Some(self.card.size.to_string())
    }
    async fn platforms(&self) -> Option<Vec<Option<Platform>>> {
        Some(
            self.card
                .platforms
                .iter()
                .map(|p| Some(Platform::from(p)))
                .collect(),
        )
    }
    async fn vendors(&self) -> Option<Vec<Option<String>>> {
        Some(self.card.vendors.iter().cloned().map(Some).collect())
    }
    async fn newest_image(&self) -> async_graphql::Result<Option<ImageSummary>> {
        let repo = match (&self.data, &self.loader) {
            (Some(data), _) => Arc::clone(data),
            (None, Some(loader)) => match loader.repo(&self.card.name).await {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(e) => return Err(async_graphql::Error::new(e.message)),
            },
            (None, None) => return Ok(None),
        };
        let Some(tag) = repo.newest() else {
            return Ok(None);
        };
        let Some(meta) = repo.image(&tag.digest).cloned() else {
            return Ok(None);
        };
        Ok(Some(ImageSummary::new(ImageView {
            tag: tag.tag.clone(),
            repo,
            meta,
            deletable: None,
            only: None,
        })))
    }
    #[graphql(complexity = 0)]
    async fn download_count(&self) -> Option<i32> {
        Some(int(self.card.downloads))
    }
    #[graphql(complexity = 0)]
    async fn star_count(&self) -> Option<i32> {
        Some(int(self.card.stars))
    }
    #[graphql(complexity = 0)]
    async fn is_bookmarked(&self) -> Option<bool> {
        Some(self.bookmarked)
    }
    #[graphql(complexity = 0)]
    async fn is_starred(&self) -> Option<bool> {
        Some(self.starred)
    }
    #[graphql(complexity = 0)]
    async fn rank(&self) -> Option<i32> {
        Some(self.rank)
    }
}

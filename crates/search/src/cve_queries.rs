//! The four CVE queries over the scanner's stored results (zot-interfaces
//! §2.4), run on a blocking thread like the other resolvers' work. None
//! scans: an image not scanned yet has no CVEs here.
//!
//! Invariant: as everywhere in search, only repositories the viewer may
//! read reach a result; a single-repository query on another answers an
//! empty object without error, as zot does.

use std::collections::HashSet;
use std::sync::Arc;

use zot_oci::Digest;
use zot_oci::image_meta::{ImageMeta, MetaKind};

use crate::catalog::{RepoCard, digest_key};
use crate::cve::{self, CveRecord, CveSource, ScanState, image_state};
use crate::facts::{RepoCtx, manifest_of};
use crate::lookup::{ImagePage, Lookup, Result, Sieve, split_reference};
use crate::paging::{ImageRow, Paging};
use crate::types::{
    CveDiffResult, CveResultForImage, ImageIdentifier, ImageInput, PageInfo, PageInput, Platform,
};

pub const NO_REPO: &str = "repo metadata not found for given repo name";
pub const NO_TAG: &str = "tag metadata not found for given repo and tag names";
pub const NO_MANIFEST: &str = "manifest not found";
pub const NOT_SPECIFIC: &str =
    "input is not specific enough: platform or specific manifest digest needed";

/// The filters of a CVE list query.
#[derive(Debug, Clone, Default)]
pub struct CveFilters {
    pub searched: Option<String>,
    pub excluded: Option<String>,
    pub severity: Option<String>,
}

impl CveFilters {
    fn apply(&self, list: &[CveRecord]) -> Vec<CveRecord> {
        cve::filter(
            list,
            self.searched.as_deref(),
            self.excluded.as_deref(),
            self.severity.as_deref(),
        )
    }
}

/// One side of a diff: its repository, identifier and manifest.
type Side = (Arc<RepoCtx>, ImageIdentifier, Arc<ImageMeta>);

fn ids(list: &[CveRecord]) -> HashSet<&str> {
    list.iter().map(|c| c.id.as_str()).collect()
}

fn has(state: &ScanState, id: &str) -> bool {
    matches!(state, ScanState::Scanned(l) if l.iter().any(|c| c.id == id))
}

impl Lookup {
    /// `repo:tag` or `repo@digest` → the repository and its image.
    fn resolve_image(&self, image: &str) -> Result<Option<(Arc<RepoCtx>, Arc<ImageMeta>)>> {
        let (repo, reference) = match image.split_once('@') {
            Some((repo, digest)) => (repo, Err(digest)),
            None => {
                let (repo, tag) = split_reference(image)?;
                (repo, Ok(tag))
            }
        };
        if !self.readable(repo) {
            return Ok(None);
        }
        let Some(ctx) = self.catalog.repo(repo)? else {
            return Err(NO_REPO.into());
        };
        let meta = match reference {
            Ok(tag) => {
                let row = ctx.tag(tag).ok_or(NO_TAG)?;
                ctx.image(&row.digest).cloned().ok_or(NO_TAG)?
            }
            Err(digest) => digest
                .parse::<Digest>()
                .ok()
                .and_then(|d| ctx.image(&d).cloned())
                .ok_or(NO_MANIFEST)?,
        };
        Ok(Some((ctx, meta)))
    }

    /// `CVEListForImage`.
    pub fn cve_list_for_image(
        &self,
        cve: &dyn CveSource,
        image: &str,
        page: Option<&PageInput>,
        filters: &CveFilters,
    ) -> Result<CveResultForImage> {
        // Validated first, whatever the image.
        cve::page(Vec::new(), page)?;
        let Some((ctx, meta)) = self.resolve_image(image)? else {
            return Ok(CveResultForImage::default());
        };
        let list = match image_state(cve, &ctx, &meta) {
            ScanState::Unscannable(e) => return Err(e.into()),
            ScanState::NotScanned => {
                return Ok(CveResultForImage {
                    tag: Some(image_reference(image)),
                    cve_list: Some(Vec::new()),
                    summary: Some(cve::state_summary(&ScanState::NotScanned)),
                    page: Some(PageInfo::default()),
                });
            }
            ScanState::Scanned(list) => list,
        };
        let summary = cve::summary(&list);
        let (info, items) = cve::page(filters.apply(&list), page)?;
        Ok(CveResultForImage {
            tag: Some(image_reference(image)),
            cve_list: Some(items.iter().map(|c| Some(cve::to_gql(c, true))).collect()),
            summary: Some(summary),
            page: Some(info),
        })
    }

    /// The rows of `card`'s tags that `keep` accepts, with the index
    /// manifests it narrows them to (`Some(keys)`), and the repository
    /// read when any was kept.
    fn tag_rows(
        &self,
        card: &Arc<RepoCard>,
        sieve: &Sieve,
        rows: &mut Vec<ImageRow>,
        mut keep: impl FnMut(&RepoCtx, &Arc<ImageMeta>) -> Option<Option<Vec<u64>>>,
    ) -> Result<Option<Arc<RepoCtx>>> {
        let Some(ctx) = self.catalog.read(&card.name)? else {
            return Ok(None);
        };
        let before = rows.len();
        for (i, t) in card.tags.iter().enumerate() {
            let Some(tag) = ctx.tag(&t.tag) else { continue };
            let Some(meta) = ctx.image(&tag.digest) else {
                continue;
            };
            let Some(only) = keep(&ctx, meta) else {
                continue;
            };
            let row = ImageRow {
                card: Arc::clone(card),
                tag: i,
                only,
            };
            if sieve.image_ok(&row) {
                rows.push(row);
            }
        }
        Ok((rows.len() > before).then_some(ctx))
    }

    /// `ImageListForCVE`: every readable tagged image whose stored result
    /// names `id`, multi-arch images included (showing the manifests that
    /// have it).
    pub fn images_for_cve(
        &self,
        cve: &dyn CveSource,
        id: &str,
        sieve: &Sieve,
        p: &Paging,
    ) -> Result<ImagePage> {
        let mut rows = Vec::new();
        let mut seeds = Vec::new();
        let index = cve.digests_with(id);
        let named = |repo: &str, digest: &Digest| match &index {
            Some(set) => set.contains(digest),
            None => has(&cve.state(repo, digest), id),
        };
        for card in self.cards()? {
            let seed = self.tag_rows(&card, sieve, &mut rows, |ctx, meta| {
                if manifest_of(meta).is_some() {
                    return named(ctx.name(), &meta.digest).then_some(None);
                }
                let children = ctx.manifests(meta);
                let with: Vec<u64> = children
                    .iter()
                    .filter(|m| named(ctx.name(), &m.meta.digest))
                    .map(|m| digest_key(&m.meta.digest))
                    .collect();
                match with.len() {
                    0 => None,
                    n if n == children.len() => Some(None),
                    _ => Some(Some(with)),
                }
            })?;
            if let Some(ctx) = seed
                && seeds.len() < crate::lazy::RECENT
            {
                seeds.push(ctx);
            }
        }
        Ok(self.image_page(rows, p, seeds, false))
    }

    /// `ImageListWithCVEFixed`: the images of `repo` not affected by `id`
    /// that are at least as new as its oldest affected manifest (all when
    /// none is affected); an index shows only its unaffected manifests
    /// (zot's rule, per manifest). A manifest not scanned yet, or not
    /// scannable, counts as affected (zot counts a failed scan so).
    pub fn images_with_cve_fixed(
        &self,
        cve: &dyn CveSource,
        id: &str,
        repo: &str,
        sieve: &Sieve,
        p: &Paging,
    ) -> Result<ImagePage> {
        if !self.readable(repo) {
            return Ok(self.image_page(Vec::new(), p, Vec::new(), false));
        }
        let Some(card) = self.cards()?.into_iter().find(|c| *c.name == *repo) else {
            return Err(NO_REPO.into());
        };
        let Some(ctx) = self.catalog.read(repo)? else {
            return Err(NO_REPO.into());
        };
        // Per tag: its manifests (a manifest tag: itself) as (key, time, affected).
        let mut tags = Vec::new();
        for (i, t) in card.tags.iter().enumerate() {
            let Some(tag) = ctx.tag(&t.tag) else { continue };
            let Some(meta) = ctx.image(&tag.digest) else {
                continue;
            };
            let index = manifest_of(meta).is_none();
            let parts: Vec<(u64, Option<i128>, bool)> = ctx
                .manifests(meta)
                .iter()
                .map(|m| {
                    let affected = match cve.state(ctx.name(), &m.meta.digest) {
                        ScanState::Scanned(list) => list.iter().any(|c| c.id == id),
                        _ => true,
                    };
                    (
                        digest_key(&m.meta.digest),
                        ctx.last_updated(&m.meta),
                        affected,
                    )
                })
                .collect();
            tags.push((i, index, parts));
        }
        let affected: Vec<Option<i128>> = tags
            .iter()
            .flat_map(|t| t.2.iter().filter(|p| p.2).map(|p| p.1))
            .collect();
        let oldest = affected.iter().flatten().min().copied();
        let mut rows = Vec::new();
        for (i, index, parts) in tags {
            let keep: Vec<u64> = parts
                .iter()
                .filter(|(_, time, hit)| {
                    affected.is_empty()
                        || (!hit && oldest.is_none_or(|o| time.is_some_and(|t| t >= o)))
                })
                .map(|p| p.0)
                .collect();
            if keep.is_empty() && !(affected.is_empty() && parts.is_empty()) {
                continue;
            }
            let only = (index && keep.len() < parts.len()).then_some(keep);
            let row = ImageRow {
                card: Arc::clone(&card),
                tag: i,
                only,
            };
            if sieve.image_ok(&row) {
                rows.push(row);
            }
        }
        Ok(self.image_page(rows, p, vec![ctx], false))
    }

    /// One side of a CVE diff: the repository, tag and the manifest it
    /// names (an index needs a digest or a platform).
    fn diff_side(&self, input: &ImageInput) -> Result<Option<Side>> {
        if !self.readable(&input.repo) {
            return Ok(None);
        }
        let Some(ctx) = self.catalog.repo(&input.repo)? else {
            return Err(NO_REPO.into());
        };
        let tag = ctx.tag(&input.tag).ok_or(NO_TAG)?;
        let top = ctx.image(&tag.digest).cloned().ok_or(NO_TAG)?;
        let meta = match &top.kind {
            MetaKind::Manifest(_) => top,
            MetaKind::Index { .. } => {
                let digest = input.digest.as_deref().filter(|d| !d.is_empty());
                let platform = input
                    .platform
                    .as_ref()
                    .filter(|p| p.os.is_some() || p.arch.is_some());
                if digest.is_none() && platform.is_none() {
                    return Err(NOT_SPECIFIC.into());
                }
                ctx.manifests(&top)
                    .into_iter()
                    .find(|m| {
                        digest.is_none_or(|d| m.meta.digest.to_string() == d)
                            && platform.is_none_or(|want| {
                                let have = m.platform.clone().unwrap_or_default();
                                want.os.as_deref().is_none_or(|o| o == have.os)
                                    && want.arch.as_deref().is_none_or(|a| a == have.arch)
                            })
                    })
                    .map(|m| m.meta)
                    .ok_or(NO_MANIFEST)?
            }
        };
        let platform = manifest_of(&meta)
            .and_then(|m| m.platform.as_ref())
            .map(Platform::from);
        let id = ImageIdentifier {
            repo: input.repo.clone(),
            tag: input.tag.clone(),
            digest: Some(meta.digest.to_string()),
            platform,
        };
        Ok(Some((ctx, id, meta)))
    }

    /// The image of the minuend's repository whose layers are all in the
    /// minuend and that shares the most layers with it (zot's automatic
    /// subtrahend).
    fn base_of(
        &self,
        ctx: &RepoCtx,
        minuend: &ImageMeta,
    ) -> Option<(ImageIdentifier, Arc<ImageMeta>)> {
        let layers: HashSet<&Digest> = manifest_of(minuend)?
            .layers
            .iter()
            .map(|l| &l.digest)
            .collect();
        let mut best: Option<(usize, ImageIdentifier, Arc<ImageMeta>)> = None;
        for tag in ctx.visible_tags() {
            let Some(top) = ctx.image(&tag.digest) else {
                continue;
            };
            for m in ctx.manifests(top) {
                let Some(mm) = manifest_of(&m.meta) else {
                    continue;
                };
                if m.meta.digest == minuend.digest
                    || mm.layers.is_empty()
                    || !mm.layers.iter().all(|l| layers.contains(&l.digest))
                {
                    continue;
                }
                let n = mm.layers.len();
                if best.as_ref().is_none_or(|b| n > b.0) {
                    let id = ImageIdentifier {
                        repo: ctx.name().to_owned(),
                        tag: tag.tag.clone(),
                        digest: Some(m.meta.digest.to_string()),
                        platform: m.platform.as_ref().map(Platform::from),
                    };
                    best = Some((n, id, Arc::clone(&m.meta)));
                }
            }
        }
        best.map(|b| (b.1, b.2))
    }

    /// `CVEDiffListForImages`: the minuend's CVEs (filtered) whose id the
    /// subtrahend does not have.
    pub fn cve_diff(
        &self,
        cve: &dyn CveSource,
        minuend: &ImageInput,
        subtrahend: &ImageInput,
        filters: &CveFilters,
    ) -> Result<CveDiffResult> {
        let Some((ctx, min_id, min_meta)) = self.diff_side(minuend)? else {
            return Ok(CveDiffResult::default());
        };
        let sub = if subtrahend.repo.is_empty() {
            self.base_of(&ctx, &min_meta)
                .map(|(id, meta)| (Arc::clone(&ctx), id, meta))
        } else {
            self.diff_side(subtrahend)?
        };
        let min_list = match image_state(cve, &ctx, &min_meta) {
            ScanState::Scanned(l) => l,
            ScanState::Unscannable(e) => return Err(e.into()),
            ScanState::NotScanned => Arc::from(Vec::new()),
        };
        let sub_list = match &sub {
            Some((sctx, _, smeta)) => match image_state(cve, sctx, smeta) {
                ScanState::Scanned(l) => l,
                ScanState::Unscannable(e) => return Err(e.into()),
                ScanState::NotScanned => Arc::from(Vec::new()),
            },
            None => Arc::from(Vec::new()),
        };
        let gone = ids(&sub_list);
        let diff: Vec<CveRecord> = filters
            .apply(&min_list)
            .into_iter()
            .filter(|c| !gone.contains(c.id.as_str()))
            .collect();
        let (_, sorted) = cve::page(diff, None)?;
        Ok(CveDiffResult {
            minuend: min_id,
            subtrahend: sub.map(|s| s.1).unwrap_or_else(|| ImageIdentifier {
                repo: subtrahend.repo.clone(),
                tag: subtrahend.tag.clone(),
                digest: subtrahend.digest.clone(),
                platform: None,
            }),
            summary: Some(cve::summary(&sorted)),
            cve_list: Some(sorted.iter().map(|c| Some(cve::to_gql(c, false))).collect()),
            page: Some(PageInfo::default()),
        })
    }
}

/// The reference part of `repo:tag` or `repo@digest` (zot's `Tag` field).
fn image_reference(image: &str) -> String {
    match image.split_once('@') {
        Some((_, d)) => d.to_owned(),
        None => image.split_once(':').map_or("", |(_, t)| t).to_owned(),
    }
}

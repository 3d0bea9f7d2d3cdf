//! zot's derivation rules (zot-interfaces §1.6) over one repository's
//! [`RepoData`]: sizes, platforms, last-updated times, signatures, the
//! newest image and the repository totals. Pure functions of the data;
//! nothing here does I/O.
//!
//! Invariant: cosign signature tags (`sha256-<hex>.sig`) are never shown
//! as images; they only make their subject signed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use zot_oci::Digest;
use zot_oci::image_meta::{Annotated, ImageMeta, ManifestMeta, MetaKind, Platform};

use crate::source::{DigestStats, RepoData, TagRow};
use crate::types::SignatureSummary;

/// Artifact type of a cosign signature pushed as a referrer.
pub const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Artifact type of a notation signature.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

/// Whether `tag` is a cosign signature tag (`<alg>-<hex>.sig`).
pub fn is_signature_tag(tag: &str) -> bool {
    signature_tag_subject(tag).is_some()
}

/// The `<alg>-<hex>` part of a cosign signature tag.
fn signature_tag_subject(tag: &str) -> Option<&str> {
    let stem = tag.strip_suffix(".sig")?;
    let (alg, hex) = stem.split_once('-')?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    (hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(stem)
}

/// A repository's data with the lookups the rules need.
#[derive(Debug)]
pub struct RepoCtx {
    pub data: Arc<RepoData>,
    /// Subject of each cosign signature tag → the signature manifest.
    cosign: HashMap<Digest, Digest>,
    /// Positions in `data.tags` of the visible tags, in name order.
    by_tag: Vec<u32>,
}

/// One manifest of an image, with its platform resolved (config first,
/// then the index descriptor).
#[derive(Debug, Clone)]
pub struct ManifestRef {
    pub meta: Arc<ImageMeta>,
    pub platform: Option<Platform>,
}

impl RepoCtx {
    pub fn new(data: Arc<RepoData>) -> RepoCtx {
        let cosign = data
            .tags
            .iter()
            .filter_map(|t| {
                let subject = signature_tag_subject(&t.tag)?.replacen('-', ":", 1);
                Some((subject.parse().ok()?, t.digest.clone()))
            })
            .collect();
        let mut by_tag: Vec<u32> = (0..data.tags.len())
            .filter(|&i| !is_signature_tag(&data.tags[i].tag))
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        by_tag.sort_by(|&a, &b| data.tags[a as usize].tag.cmp(&data.tags[b as usize].tag));
        RepoCtx {
            data,
            cosign,
            by_tag,
        }
    }

    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The tags shown as images (signature tags left out).
    pub fn visible_tags(&self) -> impl Iterator<Item = &TagRow> {
        self.data.tags.iter().filter(|t| !is_signature_tag(&t.tag))
    }

    pub fn tag(&self, name: &str) -> Option<&TagRow> {
        let tags = &self.data.tags;
        let found = self
            .by_tag
            .binary_search_by(|&i| tags[i as usize].tag.as_str().cmp(name))
            .ok()?;
        tags.get(self.by_tag[found] as usize)
    }

    pub fn image(&self, digest: &Digest) -> Option<&Arc<ImageMeta>> {
        self.data.images.get(digest)
    }

    pub fn stats(&self, digest: &Digest) -> Option<&DigestStats> {
        self.data.stats.get(digest)
    }

    pub fn downloads_of(&self, digest: &Digest) -> u64 {
        self.stats(digest).map_or(0, |s| s.downloads)
    }

    /// `TaggedTimestamp`: when the tag was set, else the push time.
    pub fn tagged_ns(&self, tag: &TagRow) -> Option<i128> {
        tag.tagged_ns
            .or_else(|| self.stats(&tag.digest).and_then(|s| s.pushed_ns))
    }

    /// The manifests of an image: itself, or an index's children that the
    /// repository holds, in the index's order.
    pub fn manifests(&self, meta: &Arc<ImageMeta>) -> Vec<ManifestRef> {
        match &meta.kind {
            MetaKind::Manifest(m) => vec![ManifestRef {
                meta: Arc::clone(meta),
                platform: m.platform.clone(),
            }],
            MetaKind::Index { children, .. } => children
                .iter()
                .filter_map(|c| {
                    let child = self.image(&c.digest)?;
                    let MetaKind::Manifest(m) = &child.kind else {
                        return None;
                    };
                    Some(ManifestRef {
                        meta: Arc::clone(child),
                        platform: m.platform.clone().or_else(|| c.platform.clone()),
                    })
                })
                .collect(),
        }
    }

    /// Unique non-empty platforms of an image's manifests.
    pub fn platforms(&self, meta: &Arc<ImageMeta>) -> Vec<Platform> {
        let mut seen = BTreeSet::new();
        for m in self.manifests(meta) {
            if let Some(p) = m.platform
                && !(p.os.is_empty() && p.arch.is_empty())
            {
                seen.insert(p);
            }
        }
        seen.into_iter().collect()
    }

    /// `LastUpdated`: a manifest's resolved creation time; an index's own
    /// created annotation, else the latest of its manifests.
    pub fn last_updated(&self, meta: &Arc<ImageMeta>) -> Option<i128> {
        match &meta.kind {
            MetaKind::Manifest(m) => m.created_ns,
            MetaKind::Index { created_ns, .. } => created_ns.or_else(|| {
                self.manifests(meta)
                    .iter()
                    .filter_map(|m| manifest_of(&m.meta).and_then(|mm| mm.created_ns))
                    .max()
            }),
        }
    }

    /// One annotation-derived field; for an index, blanks are filled from
    /// its first manifest.
    pub fn annotated(&self, meta: &Arc<ImageMeta>, pick: fn(&Annotated) -> &str) -> String {
        let own = pick(&meta.annotated);
        if !own.is_empty() {
            return own.to_owned();
        }
        if matches!(meta.kind, MetaKind::Index { .. })
            && let Some(first) = self.manifests(meta).first()
        {
            return pick(&first.meta.annotated).to_owned();
        }
        String::new()
    }

    /// `Size` of an image: a manifest's blob plus config plus layers; an
    /// index's sum over its manifests of each manifest's unique blobs.
    pub fn image_size(&self, meta: &Arc<ImageMeta>) -> u64 {
        match &meta.kind {
            MetaKind::Manifest(m) => manifest_size(meta.size, m),
            MetaKind::Index { .. } => self
                .manifests(meta)
                .iter()
                .map(|m| unique_manifest_size(&m.meta))
                .sum(),
        }
    }

    /// The signatures recorded for `digest`: its cosign tag in this
    /// repository, and cosign or notation referrers; one entry per
    /// signature layer.
    pub fn signatures(&self, digest: &Digest) -> Vec<SignatureSummary> {
        let mut out = Vec::new();
        if let Some(sig) = self.cosign.get(digest) {
            push_layers(&mut out, "cosign", self.image(sig));
        }
        for (tool, sig) in self.signature_referrers(digest) {
            push_layers(&mut out, tool, self.image(sig));
        }
        out
    }

    /// Cosign and notation signatures among the referrers of `digest`.
    fn signature_referrers<'a>(
        &'a self,
        digest: &Digest,
    ) -> impl Iterator<Item = (&'static str, &'a Digest)> + 'a {
        self.data
            .referrers
            .get(digest)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let artifact_type = match &r.artifact_type {
                    Some(a) => a.as_str(),
                    None => self
                        .image(&r.digest)
                        .map_or("", |m| m.artifact_type.as_str()),
                };
                let tool = match artifact_type {
                    COSIGN_SIGNATURE => "cosign",
                    NOTATION_SIGNATURE => "notation",
                    _ => return None,
                };
                Some((tool, &r.digest))
            })
    }

    pub fn is_signed(&self, digest: &Digest) -> bool {
        self.cosign.contains_key(digest) || self.signature_referrers(digest).next().is_some()
    }

    /// The tagged image with the latest `LastUpdated` (ties: the first tag
    /// in name order).
    pub fn newest(&self) -> Option<&TagRow> {
        let mut best: Option<(&TagRow, Option<i128>)> = None;
        for t in self.visible_tags() {
            let Some(meta) = self.image(&t.digest) else {
                continue;
            };
            let lu = self.last_updated(meta);
            best = match best {
                Some((b, blu)) if blu > lu || (blu == lu && b.tag <= t.tag) => Some((b, blu)),
                _ => Some((t, lu)),
            };
        }
        best.map(|(t, _)| t)
    }

    /// `RepoSummary.LastUpdated`: the newest image's time or any later tag
    /// time.
    pub fn repo_last_updated(&self) -> Option<i128> {
        let newest = self
            .newest()
            .and_then(|t| self.image(&t.digest))
            .and_then(|m| self.last_updated(m));
        self.visible_tags()
            .filter_map(|t| self.tagged_ns(t))
            .fold(newest, |acc, v| Some(acc.map_or(v, |a| a.max(v))))
    }

    /// `RepoSummary.DownloadCount`: every digest's downloads.
    pub fn downloads(&self) -> u64 {
        self.data.stats.values().map(|s| s.downloads).sum()
    }

    /// `RepoSummary.Platforms`: unique platforms of all tagged manifests.
    pub fn repo_platforms(&self) -> Vec<Platform> {
        let mut seen = BTreeSet::new();
        for t in self.visible_tags() {
            if let Some(meta) = self.image(&t.digest) {
                seen.extend(self.platforms(meta));
            }
        }
        seen.into_iter().collect()
    }

    /// `RepoSummary.Vendors`: unique vendors from manifest annotations.
    pub fn vendors(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        for t in self.visible_tags() {
            let Some(meta) = self.image(&t.digest) else {
                continue;
            };
            let mut metas = vec![Arc::clone(meta)];
            if matches!(meta.kind, MetaKind::Index { .. }) {
                metas.extend(self.manifests(meta).into_iter().map(|m| m.meta));
            }
            for m in metas {
                if m.annotated.vendor_in_manifest && !m.annotated.vendor.is_empty() {
                    seen.insert(m.annotated.vendor.clone());
                }
            }
        }
        seen.into_iter().collect()
    }

    /// `RepoSummary.Size`: unique blobs (indexes, manifests, configs,
    /// layers) reachable from the tags.
    pub fn repo_size(&self) -> u64 {
        let mut blobs: HashMap<&Digest, u64> = HashMap::new();
        let mut seen_meta: HashSet<&Digest> = HashSet::new();
        for t in self.visible_tags() {
            let Some(meta) = self.image(&t.digest) else {
                continue;
            };
            let mut stack = vec![meta];
            while let Some(m) = stack.pop() {
                if !seen_meta.insert(&m.digest) {
                    continue;
                }
                blobs.insert(&m.digest, m.size);
                match &m.kind {
                    MetaKind::Manifest(mm) => {
                        for b in mm.config.iter().chain(mm.layers.iter()) {
                            blobs.insert(&b.digest, b.size);
                        }
                    }
                    MetaKind::Index { children, .. } => {
                        stack.extend(children.iter().filter_map(|c| self.image(&c.digest)));
                    }
                }
            }
        }
        blobs.values().sum()
    }
}

fn push_layers(out: &mut Vec<SignatureSummary>, tool: &str, sig: Option<&Arc<ImageMeta>>) {
    let layers = sig
        .and_then(|m| manifest_of(m))
        .map_or(1, |m| m.layers.len().max(1));
    for _ in 0..layers {
        out.push(SignatureSummary {
            tool: Some(tool.to_owned()),
            is_trusted: Some(false),
            author: Some(String::new()),
        });
    }
}

pub fn manifest_of(meta: &ImageMeta) -> Option<&ManifestMeta> {
    match &meta.kind {
        MetaKind::Manifest(m) => Some(m),
        MetaKind::Index { .. } => None,
    }
}

/// Manifest blob + config + Σ layers.
pub fn manifest_size(own: u64, m: &ManifestMeta) -> u64 {
    own + m.config.as_ref().map_or(0, |c| c.size) + m.layers.iter().map(|l| l.size).sum::<u64>()
}

/// A manifest's unique blobs (manifest, config, layers), each once.
fn unique_manifest_size(meta: &ImageMeta) -> u64 {
    let Some(m) = manifest_of(meta) else {
        return meta.size;
    };
    let mut seen: HashSet<&Digest> = HashSet::new();
    let mut total = meta.size;
    seen.insert(&meta.digest);
    for b in m.config.iter().chain(m.layers.iter()) {
        if seen.insert(&b.digest) {
            total += b.size;
        }
    }
    total
}

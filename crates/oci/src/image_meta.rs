//! What search knows about one manifest or index, derived once from its
//! content (the manifest bytes and, for an image, its config blob). A
//! manifest digest names immutable content, so an [`ImageMeta`] never goes
//! stale: it is computed when the manifest is stored (or when a layout is
//! rebuilt) and kept beside the manifest's metadata row.
//!
//! Derivation rules are zot's (`convert/metadb.go`, `convert/annotations.go`):
//! annotation fallbacks (manifest OCI key, manifest label-schema key, config
//! label OCI key, config label label-schema key), `LastUpdated` from the
//! created annotation, else `config.created`, else the last history entry.
//! Nothing here does I/O; the caller reads the config blob (bounded).

use serde::{Deserialize, Serialize};

use crate::Digest;

mod derive;
#[cfg(test)]
mod tests;

pub use derive::{COSIGN_SIGNATURE, NOTATION_SIGNATURE, is_cosign_tag, parse_rfc3339};

/// A platform as zot shows it: `arch` carries `/variant` when there is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

/// One entry of a config's `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryEntry {
    /// RFC 3339 as written in the config (None when absent or unparsable).
    pub created: Option<String>,
    pub created_by: String,
    pub author: String,
    pub comment: String,
    pub empty_layer: bool,
}

/// A blob an image references, with its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// The annotation-derived descriptive fields (`""` when missing), resolved
/// with zot's fallback order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Annotated {
    pub title: String,
    pub description: String,
    pub vendor: String,
    pub licenses: String,
    pub source: String,
    pub documentation: String,
    pub authors: String,
    pub labels: String,
    /// Whether `vendor` came from the manifest's own annotations (a
    /// repository's `Vendors` counts only those).
    pub vendor_in_manifest: bool,
}

/// An image manifest (or artifact manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ManifestMeta {
    pub config: Option<BlobRef>,
    /// The config's `mediaType` descriptor field.
    pub config_media_type: String,
    pub layers: Vec<BlobRef>,
    /// From the config (`os`, `architecture`, `variant`); None when the
    /// config names none (an index's descriptor may then supply it).
    pub platform: Option<Platform>,
    pub history: Vec<HistoryEntry>,
    /// Unix nanoseconds of the resolved creation time (None: zero time).
    pub created_ns: Option<i128>,
}

/// One child of an index, as its descriptor lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexChild {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The descriptor's `platform` (None when absent).
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaKind {
    Manifest(ManifestMeta),
    Index {
        children: Vec<IndexChild>,
        /// The index's own created annotation, Unix nanoseconds.
        created_ns: Option<i128>,
    },
}

/// Everything search derives from one manifest or index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub digest: Digest,
    /// The manifest's own `mediaType` JSON field (may be empty); for an
    /// index, the index media type.
    pub media_type: String,
    /// Size of the manifest (or index) blob itself.
    pub size: u64,
    /// `artifactType`, else (manifests) the config media type; "" if none.
    pub artifact_type: String,
    /// The subject this manifest refers to, if any.
    pub subject: Option<Digest>,
    /// Descriptive fields; for an index only its own annotations (the
    /// first child's values are filled in at query time).
    pub annotated: Annotated,
    pub kind: MetaKind,
}

//! The search extension: zot's GraphQL API (`/v2/_zot/ext/search`) over the
//! image metadata model.
//!
//! The model is content-derived ([`zot_oci::image_meta::ImageMeta`], one per
//! manifest digest, computed when the manifest is stored) plus what the
//! registry records as it runs (push and tag times, pushers, download
//! counts, stars and bookmarks). This crate reads it through [`Source`], so
//! the resolvers know nothing of storage; the binary hands it the stores.

pub mod source;

pub use source::{DigestStats, Pref, RepoData, Source, SourceError, TagRow, UserPrefs};

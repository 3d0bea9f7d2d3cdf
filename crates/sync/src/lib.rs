//! The sync extension: mirroring upstream registries into this registry's
//! storage, periodically (`pollInterval`) by zot's content rules.
//!
//! Invariants:
//! - Everything is written through the storage `Registry` API (uploads
//!   completed with their digest, manifests put after what they
//!   reference), so the metadata store, search records and dedupe stay in
//!   step exactly as for a client's push; nothing whose digest does not
//!   match is ever stored ([`copy`]).
//! - Present content is skipped by digest: a tag already naming the
//!   upstream digest is not copied again, nor a blob or manifest already in
//!   the local repository.
//! - One run of an upstream ([`Upstream::sync_once`]) takes its catalog,
//!   then each repository matched by `content` on its own: a failing
//!   repository is logged and counted, and the others go on. Each
//!   repository holds one of the scheduler's permits while it syncs.
//! - On demand ([`OnDemandSync`]), a manifest or referrers request for a
//!   name an `onDemand` upstream maps is fetched from there first; a blob
//!   not here is pulled through: served while it arrives, verified and
//!   stored by the same transfer ([`pull`]).
//! - Each upstream counts its runs, failures and on-demand fetches
//!   ([`UpstreamCounters`], read by the metrics), and a run reports each
//!   repository to the scheduler's metrics through [`TaskHooks`].
//! - Docker schema2 images are converted to OCI on the way in unless
//!   `preserveDigest` ([`convert`]); the skip rule compares the converted
//!   digest.
//! - Signatures and other referrers follow their subjects (the referrers
//!   API, or the tag schema, and legacy cosign `sha256-<hex>.sig/.sbom/.att`
//!   tags); with `onlySigned`, an unsigned image is skipped.

pub mod content;
pub mod convert;
pub mod copy;
mod counters;
mod on_demand;
mod pending;
pub mod platforms;
pub mod pull;
pub mod self_urls;
mod status;
mod upstream;

pub use counters::{NoHooks, TaskHooks, UpstreamCounters, UpstreamCounts};
pub use on_demand::{MAX_TRACKED, OnDemandSync};
pub use status::SyncStatus;

pub use upstream::{RepoFilter, RunReport, Upstream, client_options};
pub use zot_client::{ClientError, CredentialsFile};

/// What stopped a repository or an image.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Client(#[from] zot_client::ClientError),
    #[error(transparent)]
    Storage(#[from] zot_storage::StorageError),
    #[error("{0}")]
    Invalid(String),
    #[error("the image is not signed (onlySigned)")]
    NotSigned,
    /// A blob's pull-through failed (transport, mismatch, storage).
    #[error("blob {0} was not stored")]
    NotStored(String),
}

impl SyncError {
    /// Errors that skip one image and let its repository go on (zot's
    /// list: not signed, unauthorized, unsupported media type, manifest or
    /// repository not found).
    pub fn skips_image(&self) -> bool {
        match self {
            SyncError::NotSigned | SyncError::Invalid(_) => true,
            SyncError::NotStored(_) => false,
            SyncError::Client(e) => matches!(
                e,
                zot_client::ClientError::NotFound { .. }
                    | zot_client::ClientError::Unauthorized { .. }
            ),
            SyncError::Storage(e) => matches!(e, zot_storage::StorageError::ManifestInvalid(_)),
        }
    }
}

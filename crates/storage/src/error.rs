//! Errors of the registry semantics. Each variant that a client may cause
//! maps to one OCI error code in the API layer; `Io` and `Meta` are internal
//! and are logged, not shown.

use zot_oci::{Digest, ManifestError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob unknown to registry")]
    BlobUnknown,
    #[error("this digest is a manifest: delete it with DELETE /v2/<name>/manifests/<digest>")]
    BlobIsManifest,
    #[error(
        "too many open upload sessions in this repository (at most {0}); finish or cancel some"
    )]
    TooManyUploads(usize),
    #[error("too many open upload sessions (at most {0} in all); retry later")]
    TooManyOpenUploads(usize),
    /// Too many upload bodies being received at once, by this client
    /// (`per_client`) or by all clients.
    #[error("too many uploads in progress{} (at most {limit}); retry later", if *per_client { " from this client" } else { "" })]
    TooManyUploadBodies { limit: usize, per_client: bool },
    #[error("the tag exists; moving it needs the update permission")]
    TagExists,
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk that does not start where the upload ends; `size` is the
    /// current size of the upload.
    #[error("chunk out of order: the upload has {size} bytes")]
    RangeInvalid { size: u64 },
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("manifest unknown to registry")]
    ManifestUnknown,
    #[error("{0}")]
    ManifestInvalid(#[from] ManifestError),
    #[error("manifest references {0}, which is unknown to this repository")]
    ManifestBlobUnknown(Digest),
    /// A delete of a manifest that an index names (`index`, when known).
    #[error("manifest {digest} is part of an image index{}; delete the index first", index.as_ref().map(|i| format!(" ({i})")).unwrap_or_default())]
    ManifestReferenced {
        digest: Digest,
        index: Option<Digest>,
    },
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("upload body: {0}")]
    Body(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Meta(#[from] zot_meta::MetaError),
    /// The state shared between instances (Redis) could not be used.
    #[error("shared state: {0}")]
    Shared(#[from] crate::shared::SharedError),
}

impl StorageError {
    /// Whether the storage could not be reached (or answered a server
    /// error): a passing condition, answered `503` (see
    /// [`crate::backend::Unavailable`]).
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, StorageError::Io(e) if crate::backend::is_unavailable(e))
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

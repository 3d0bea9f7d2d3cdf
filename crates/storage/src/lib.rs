//! Registry storage: the semantics of blobs, uploads, manifests, tags and
//! referrers, over a narrow [`Backend`] (local disk, or an S3 bucket) in which every
//! repository is an OCI image layout (see [`paths`] for the layout), with
//! the metadata store kept in step.

mod backend;
mod blobs;
mod cache;
mod dedupe;
mod digest_guard;
mod documents;
mod error;
pub mod events;
pub mod foreground;
mod gc;
mod gc_retention;
mod index;
mod lint;
mod local;
mod locks;
mod manifest_claims;
mod manifest_delete;
mod manifests;
mod parked;
pub mod paths;
mod rebuild_batch;
mod registry;
pub mod retention;
mod s3;
mod scrub;
mod search;
pub mod shared;
mod shared_meta;
mod shared_uploads;
mod stats;
mod stores;
mod upload_follow;
mod upload_limits;
mod upload_writer;
mod uploads;
mod walk;

pub use backend::{
    Backend, BoxSink, ByteStream, Entry, SharedSink, Unavailable, UploadState, Versioned,
    is_unavailable,
};
pub use documents::MAX_MANIFEST_BYTES;
pub use error::{Result, StorageError};
pub use gc::{GcOptions, GcReport};
pub use index::{LayoutIndex, REF_NAME};
pub use local::LocalBackend;
pub use manifests::{PushedManifest, TagPolicy};
pub use parked::{MoveStep, PARK_MAX_BYTES, PARK_MIN_BYTES, RESUME_AGE};
pub use registry::{ManifestListener, Options, Registry, SyncReport};
pub use s3::{S3Backend, S3Options};
pub use scrub::{ScrubFault, ScrubItem, ScrubProblem, ScrubReport};
pub use shared_meta::{Layouts, open_with_meta};
pub use stats::{LOCK_WAIT_BUCKETS, LockKind, LockWaits, StorageStats};
pub use stores::Stores;
pub use upload_follow::WrittenHook;
pub use upload_limits::BodyPermit;
pub use zot_meta::{
    Change, ClusterNodes, FaultSwitch, ManifestRecord, MetaError, MetaStore, PrefList, Pull,
    RedisAddress, SearchRepo, Sentinels, Times,
};

use std::sync::Arc;

/// Opens the registry on a local root folder: the metadata store under
/// `<root>/_zot/`, synchronised with the layouts found on disk.
///
/// The metadata store is opened (and so locked) first: while another
/// process holds it, this fails with [`zot_meta::MetaError::InUse`] having
/// touched nothing under the root (the driver empties `_zot/tmp` only
/// once the lock is ours, so a running server's writes in flight survive).
pub async fn open_local(
    root: &std::path::Path,
    commit: bool,
    options: Options,
) -> Result<(Registry, SyncReport)> {
    std::fs::create_dir_all(root.join(paths::META_DIR))?;
    let meta = MetaStore::open(&root.join(paths::META_DB))?;
    let backend = LocalBackend::new(root.to_path_buf(), commit)?;
    let registry = Registry::new(Arc::new(backend), meta, options);
    let report = registry.sync_from_disk().await?;
    Ok((registry, report))
}

/// Opens the registry on an S3 bucket (`storage.storageDriver`): the
/// layouts in the bucket, the metadata store under the local `root`
/// (`<root>/_zot/meta.redb`), synchronised with the layouts in the bucket.
///
/// The metadata store is local and locked by this process, so one
/// instance serves one bucket prefix: two instances on one prefix would
/// each keep a metadata store the other's writes never reach.
pub async fn open_s3(
    root: &std::path::Path,
    driver: &zot_config::S3Config,
    s3: &S3Options,
    options: Options,
) -> Result<(Registry, SyncReport)> {
    std::fs::create_dir_all(root.join(paths::META_DIR))?;
    let meta = MetaStore::open(&root.join(paths::META_DB))?;
    let backend = S3Backend::open(driver, s3)?;
    let registry = Registry::new(Arc::new(backend), meta, options);
    let report = registry.sync_from_disk().await?;
    Ok((registry, report))
}

//! A registry over a shared metadata store (Redis, `storage.remoteCache`):
//! several instances serve one bucket (or root) with one store.
//!
//! Invariants:
//! - At start-up the embedded store is always compared with the layouts;
//!   a shared one only when it is not marked in step
//!   (`MetaStore::synced_mark`): the instances keep it in step with every
//!   change they make, and a comparison racing another instance's push
//!   could put an older state of a repository back. The first instance of
//!   a new store (or of a build with other row formats) compares and sets
//!   the mark; with search on and the `indexed` mark missing, the
//!   comparison runs too (it fills the image records).
//! - A shared store that cannot be reached at start-up does not stop the
//!   registry: it starts with the store reported failed (requests needing
//!   metadata answer `503`, `/readyz` too), and the metadata-flush task's
//!   `Registry::recover_metadata` synchronises it once it is back.

use std::sync::Arc;

use zot_meta::MetaStore;

use crate::{Backend, LocalBackend, Options, Registry, Result, S3Backend, S3Options, SyncReport};

/// Where the layouts of a store with a shared metadata store are.
pub enum Layouts<'a> {
    /// A local folder (`commit`: fsync written files).
    Local {
        root: &'a std::path::Path,
        commit: bool,
    },
    /// An S3 bucket.
    S3 {
        driver: &'a zot_config::S3Config,
        options: &'a S3Options,
    },
}

/// Opens the registry over the layouts with `meta` (opened by the caller,
/// e.g. `MetaStore::open_redis`), synchronised as the module says.
pub async fn open_with_meta(
    layouts: Layouts<'_>,
    meta: MetaStore,
    options: Options,
) -> Result<(Registry, SyncReport)> {
    let backend: Arc<dyn Backend> = match layouts {
        Layouts::Local { root, commit } => {
            std::fs::create_dir_all(root.join(crate::paths::META_DIR))?;
            Arc::new(LocalBackend::new(root.to_path_buf(), commit)?)
        }
        Layouts::S3 { driver, options } => Arc::new(S3Backend::open(driver, options)?),
    };
    let registry = Registry::new(backend, meta, options);
    let report = registry.start_up_sync().await?;
    Ok((registry, report))
}

impl Registry {
    /// The start-up synchronisation with the layouts (see the module
    /// documentation).
    pub async fn start_up_sync(&self) -> Result<SyncReport> {
        if !self.meta.shared() {
            return self.sync_from_disk().await;
        }
        let in_step = match self.meta.synced_mark() {
            Ok(marked) => marked && (!self.options.search || self.meta.search_indexed()?),
            Err(e) if e.is_unavailable() => {
                tracing::error!(
                    error = %e,
                    "the shared metadata store cannot be reached: starting without it (503) until it is back"
                );
                return Ok(SyncReport::default());
            }
            Err(e) => return Err(e.into()),
        };
        if in_step {
            let (repos, _) = self.meta.repos(None, usize::MAX)?;
            tracing::info!(
                repositories = repos.len(),
                "the shared metadata store is marked in step with the layouts: not compared again"
            );
            return Ok(SyncReport {
                repositories: repos.len(),
                ..SyncReport::default()
            });
        }
        let report = self.sync_from_disk().await?;
        self.meta.set_synced_mark()?;
        Ok(report)
    }
}

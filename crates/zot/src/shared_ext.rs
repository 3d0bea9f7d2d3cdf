//! Wiring of the state instances share (`storage.remoteCache: true` with a
//! redis `storage.cacheDriver`): each such store keeps its upload sessions
//! in Redis and takes its background work's leases there
//! (`zot_storage::shared`). Without it nothing changes: sessions stay in
//! memory and leases are granted locally.

use anyhow::Context;
use zot_config::{CacheDriver, StorageConfig};
use zot_storage::Registry;
use zot_storage::shared::lease::LeaseGuard;

use crate::metrics_ext::{Recorder, TaskKind};

/// Connects `registry` to the Redis of `settings`, if it has one.
pub async fn share(
    name: &str,
    settings: &StorageConfig,
    registry: &Registry,
) -> anyhow::Result<()> {
    let Some(CacheDriver::Redis(target)) = &settings.cache_driver else {
        return Ok(());
    };
    // The same server, credentials and refusals as the shared metadata
    // store (`redis_meta::address`).
    let address = crate::redis_meta::address(target)?;
    let shared = zot_storage::shared::SharedState::connect_to(&address, &target.key_prefix)
        .await
        .with_context(|| format!("store {name}: connecting to Redis at {}", target.describe()))?;
    registry.share_state(shared);
    tracing::info!(
        store = name,
        redis = %target.describe(),
        "upload sessions and background-work leases are shared through Redis"
    );
    Ok(())
}

/// Takes the lease `name` of `registry`'s store for a round of `what`;
/// `None` (logged, and counted when another instance holds it) when the
/// round must be skipped: another instance holds the lease, or Redis
/// cannot be asked (two instances must never run the round at once).
pub async fn take(
    registry: &Registry,
    name: &str,
    what: &str,
    recorder: &Recorder,
    kind: TaskKind,
) -> Option<LeaseGuard> {
    let leases = registry.leases();
    match leases.try_acquire(name).await {
        Ok(Some(guard)) => Some(guard),
        Ok(None) => {
            let holder = leases.holder(name).await.ok().flatten().unwrap_or_default();
            tracing::info!(lease = name, %holder, "{what}: round skipped: another instance holds the lease");
            recorder.lease_skipped(kind);
            None
        }
        Err(e) => {
            tracing::warn!(lease = name, error = %e, "{what}: round skipped: the lease could not be taken");
            None
        }
    }
}

/// Gives a round's lease back (it expires by itself should that fail).
pub async fn release(lease: LeaseGuard) {
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "releasing a lease (it expires by itself)");
    }
}

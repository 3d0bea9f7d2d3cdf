//! Wiring of the sync extension (Cargo feature `sync`): with the feature
//! off nothing of it is compiled, and an enabled `extensions.sync` is
//! refused by `zot verify` as not available.
//!
//! Each upstream with a `pollInterval` and `content` gets one task: a run
//! right after start-up, then one every `pollInterval` after the previous
//! run ended. A run whose catalog cannot be read is tried again after 2 s,
//! 4 s, ... up to `pollInterval` (zot's generator back-off). Each
//! repository of a run holds one of the `scheduler.numWorkers` permits that
//! GC and scrub share, so background work stays bounded.

use std::sync::Arc;

use tokio::sync::Semaphore;
use zot_config::Config;

/// Starts the periodic sync of every configured upstream.
#[cfg(feature = "sync")]
pub fn start(
    cfg: &Config,
    stores: &zot_storage::Stores,
    permits: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(sync) = cfg.extension("sync").and_then(|e| e.sync()) else {
        return Ok(());
    };
    let credentials = match &sync.credentials_file {
        Some(path) => zot_sync::CredentialsFile::read(path)
            .with_context(|| "extensions.sync.credentialsFile".to_owned())?,
        None => zot_sync::CredentialsFile::default(),
    };
    for (i, registry) in sync.registries.iter().enumerate() {
        if let Some(helper) = &registry.credential_helper {
            tracing::warn!(upstream = ?registry.urls, helper, "sync: credential helpers are not built in; using credentialsFile or anonymous access");
        }
        if registry.on_demand {
            tracing::warn!(upstream = ?registry.urls, "sync: onDemand is not built yet; only the periodic sync runs");
        }
        let upstream = zot_sync::Upstream::new(registry, &credentials)
            .with_context(|| format!("extensions.sync.registries[{i}]"))?;
        let Some(period) = upstream.poll_interval() else {
            continue;
        };
        tracing::info!(upstream = %upstream.name, period_s = period.as_secs(), "sync: periodic sync scheduled");
        tokio::spawn(run(upstream, stores.clone(), permits.clone(), period));
    }
    Ok(())
}

#[cfg(feature = "sync")]
async fn run(
    upstream: zot_sync::Upstream,
    stores: zot_storage::Stores,
    permits: Arc<Semaphore>,
    period: std::time::Duration,
) {
    const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let wait = match upstream.sync_once(&stores, &permits).await {
            Ok(_) => {
                backoff = FIRST_BACKOFF;
                period
            }
            Err(e) => {
                let wait = backoff.min(period);
                tracing::warn!(upstream = %upstream.name, error = %e, retry_in_s = wait.as_secs_f64(), "sync: run failed");
                backoff = backoff.saturating_mul(2);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Without the feature: nothing to start (the configuration was refused).
#[cfg(not(feature = "sync"))]
pub fn start(
    _cfg: &Config,
    _stores: &zot_storage::Stores,
    _permits: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    Ok(())
}

//! Wiring of the sync extension (Cargo feature `sync`): with the feature
//! off nothing of it is compiled, and an enabled `extensions.sync` is
//! refused by `zot verify` as not available.
//!
//! [`prepare`] builds a client per upstream (a broken `certDir` or
//! `credentialsFile` stops start-up) and the on-demand hook handed to the
//! API; [`start`] gives each upstream with a `pollInterval` and `content`
//! one task: a run right after start-up, then one every `pollInterval`
//! after the previous run ended. A run whose catalog cannot be read is
//! tried again after 2 s, 4 s, ... up to `pollInterval` (zot's generator
//! back-off). Each repository of a run holds one of the
//! `scheduler.numWorkers` permits that GC and scrub share.

use std::sync::Arc;

use tokio::sync::Semaphore;
use zot_config::Config;

/// The upstreams of `extensions.sync`, ready to run.
#[derive(Default)]
pub struct SyncSetup {
    #[cfg(feature = "sync")]
    upstreams: Vec<Arc<zot_sync::Upstream>>,
    /// The on-demand hook, when an upstream has `onDemand`.
    #[cfg(feature = "sync")]
    pub on_demand: Option<Arc<dyn zot_api::on_demand::OnDemand>>,
}

#[cfg(feature = "sync")]
struct Hook(Arc<zot_sync::OnDemandSync>);

#[cfg(feature = "sync")]
impl zot_api::on_demand::OnDemand for Hook {
    fn manifest<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        reference: &'a zot_oci::Reference,
        ns: Option<&'a str>,
    ) -> zot_api::on_demand::Fetch<'a> {
        Box::pin(self.0.manifest(repo, reference, ns))
    }

    fn referrers<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        subject: &'a zot_oci::Digest,
    ) -> zot_api::on_demand::Fetch<'a> {
        Box::pin(self.0.referrers(repo, subject))
    }
}

/// Builds every upstream's client and the on-demand hook.
#[cfg(feature = "sync")]
pub fn prepare(cfg: &Config, stores: &zot_storage::Stores) -> anyhow::Result<SyncSetup> {
    use anyhow::Context;
    let Some(sync) = cfg.extension("sync").and_then(|e| e.sync()) else {
        return Ok(SyncSetup::default());
    };
    let credentials = match &sync.credentials_file {
        Some(path) => zot_sync::CredentialsFile::read(path)
            .with_context(|| "extensions.sync.credentialsFile".to_owned())?,
        None => zot_sync::CredentialsFile::default(),
    };
    let mut upstreams = Vec::new();
    for (i, registry) in sync.registries.iter().enumerate() {
        if let Some(helper) = &registry.credential_helper {
            tracing::warn!(upstream = ?registry.urls, helper, "sync: credential helpers are not built in; using credentialsFile or anonymous access");
        }
        let mut registry = registry.clone();
        registry.urls =
            zot_sync::self_urls::without_self(&registry.urls, &cfg.http.address, cfg.http.port);
        if registry.urls.is_empty() {
            anyhow::bail!("extensions.sync.registries[{i}]: every URL points at this registry");
        }
        let upstream = zot_sync::Upstream::new(&registry, &credentials)
            .with_context(|| format!("extensions.sync.registries[{i}]"))?;
        upstreams.push(Arc::new(upstream));
    }
    let on_demand = zot_sync::OnDemandSync::new(&upstreams, stores.clone()).map(|o| {
        tracing::info!("sync: on-demand fetches on");
        Arc::new(Hook(o)) as Arc<dyn zot_api::on_demand::OnDemand>
    });
    Ok(SyncSetup {
        upstreams,
        on_demand,
    })
}

/// Without the feature: nothing (the configuration was refused).
#[cfg(not(feature = "sync"))]
pub fn prepare(_cfg: &Config, _stores: &zot_storage::Stores) -> anyhow::Result<SyncSetup> {
    Ok(SyncSetup::default())
}

/// Starts the periodic sync of every upstream that has one.
#[cfg(feature = "sync")]
pub fn start(setup: &SyncSetup, stores: &zot_storage::Stores, permits: &Arc<Semaphore>) {
    for upstream in &setup.upstreams {
        let Some(period) = upstream.poll_interval() else {
            continue;
        };
        tracing::info!(upstream = %upstream.name, period_s = period.as_secs(), "sync: periodic sync scheduled");
        tokio::spawn(run(
            upstream.clone(),
            stores.clone(),
            permits.clone(),
            period,
        ));
    }
}

#[cfg(feature = "sync")]
async fn run(
    upstream: Arc<zot_sync::Upstream>,
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

/// Without the feature: nothing to start.
#[cfg(not(feature = "sync"))]
pub fn start(_setup: &SyncSetup, _stores: &zot_storage::Stores, _permits: &Arc<Semaphore>) {}

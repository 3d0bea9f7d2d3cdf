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
//! `scheduler.numWorkers` permits that GC and scrub share. In cluster mode
//! a run writes only the repositories this member owns.

use std::sync::Arc;

use tokio::sync::Semaphore;
use zot_config::Config;

/// The upstreams of `extensions.sync`, ready to run.
#[derive(Default)]
pub struct SyncSetup {
    #[cfg(feature = "sync")]
    pub(crate) upstreams: Vec<Arc<zot_sync::Upstream>>,
    #[cfg(feature = "sync")]
    status: Arc<zot_sync::SyncStatus>,
    /// The API's hook (status, on-demand fetches), when sync is on.
    #[cfg(feature = "sync")]
    pub hook: Option<Arc<dyn zot_api::sync_hook::SyncHook>>,
}

#[cfg(feature = "sync")]
struct Hook {
    on_demand: Option<Arc<zot_sync::OnDemandSync>>,
    status: Arc<zot_sync::SyncStatus>,
}

#[cfg(feature = "sync")]
impl zot_api::sync_hook::SyncHook for Hook {
    fn on_demand(&self) -> bool {
        self.on_demand.is_some()
    }

    fn status(&self) -> String {
        self.status.to_json()
    }

    fn manifest<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        reference: &'a zot_oci::Reference,
        ns: Option<&'a str>,
    ) -> zot_api::sync_hook::Fetch<'a> {
        Box::pin(async move {
            if let Some(o) = &self.on_demand {
                o.manifest(repo, reference, ns).await;
            }
        })
    }

    fn referrers<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        subject: &'a zot_oci::Digest,
    ) -> zot_api::sync_hook::Fetch<'a> {
        Box::pin(async move {
            if let Some(o) = &self.on_demand {
                o.referrers(repo, subject).await;
            }
        })
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
        let mut upstream = zot_sync::Upstream::new(&registry, &credentials)
            .with_context(|| format!("extensions.sync.registries[{i}]"))?;
        if let Some(keep) = cluster_filter(cfg)? {
            upstream.keep_only(keep);
        }
        upstreams.push(Arc::new(upstream));
    }
    let on_demand = zot_sync::OnDemandSync::new(&upstreams, stores.clone());
    if on_demand.is_some() {
        tracing::info!("sync: on-demand fetches on");
    }
    let status = Arc::new(zot_sync::SyncStatus::new(&upstreams));
    let hook = Arc::new(Hook {
        on_demand,
        status: status.clone(),
    });
    Ok(SyncSetup {
        upstreams,
        status,
        hook: Some(hook),
    })
}

/// In cluster mode, the periodic sync writes only the repositories this
/// member owns (by their local name, which is what requests are routed by;
/// zot hashes the upstream name): each member syncs its share.
#[cfg(feature = "sync")]
fn cluster_filter(cfg: &Config) -> anyhow::Result<Option<zot_sync::RepoFilter>> {
    let Some(cluster) = cfg.cluster.clone().filter(|c| c.members.len() > 1) else {
        return Ok(None);
    };
    let local = zot_api::cluster::local_member(&cluster.members, cfg.http.port)?;
    let members = cluster.members.len();
    Ok(Some(Arc::new(move |repo: &str| {
        zot_api::cluster::ring::owner_index(&cluster.hash_key, repo, members) == local
    })))
}

/// Without the feature: nothing (the configuration was refused).
#[cfg(not(feature = "sync"))]
pub fn prepare(_cfg: &Config, _stores: &zot_storage::Stores) -> anyhow::Result<SyncSetup> {
    Ok(SyncSetup::default())
}

/// A periodic run's repositories as scheduler tasks (`name="sync"`).
#[cfg(feature = "sync")]
struct SyncTasks(crate::metrics_ext::Recorder);

#[cfg(feature = "sync")]
impl zot_sync::TaskHooks for SyncTasks {
    fn queued(&self) {
        self.0.queued();
    }
    fn started(&self) {
        self.0.started();
    }
    fn finished(&self, elapsed: std::time::Duration) {
        self.0.finished(crate::metrics_ext::TaskKind::Sync, elapsed);
    }
}

/// Starts the periodic sync of every upstream that has one; each
/// repository of a run is reported to `recorder` as a scheduler task.
#[cfg(feature = "sync")]
pub fn start(
    setup: &SyncSetup,
    stores: &zot_storage::Stores,
    permits: &Arc<Semaphore>,
    recorder: &crate::metrics_ext::Recorder,
) {
    for (i, upstream) in setup.upstreams.iter().enumerate() {
        let Some(period) = upstream.poll_interval() else {
            continue;
        };
        tracing::info!(upstream = %upstream.name, period_s = period.as_secs(), "sync: periodic sync scheduled");
        let status = (setup.status.clone(), i);
        tokio::spawn(run(
            upstream.clone(),
            stores.clone(),
            (permits.clone(), SyncTasks(recorder.clone())),
            period,
            status,
        ));
    }
}

#[cfg(feature = "sync")]
async fn run(
    upstream: Arc<zot_sync::Upstream>,
    stores: zot_storage::Stores,
    (permits, tasks): (Arc<Semaphore>, SyncTasks),
    period: std::time::Duration,
    (status, i): (Arc<zot_sync::SyncStatus>, usize),
) {
    const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    let mut backoff = FIRST_BACKOFF;
    loop {
        status.started(i);
        let wait = match upstream.sync_once(&stores, &permits, &tasks).await {
            Ok(report) => {
                backoff = FIRST_BACKOFF;
                status.finished(i, Ok(&report), period);
                period
            }
            Err(e) => {
                let wait = backoff.min(period);
                status.finished(i, Err(e.to_string()), wait);
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
pub fn start(
    _setup: &SyncSetup,
    _stores: &zot_storage::Stores,
    _permits: &Arc<Semaphore>,
    _recorder: &crate::metrics_ext::Recorder,
) {
}

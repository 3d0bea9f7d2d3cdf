//! Wiring of the sync extension (Cargo feature `sync`): with the feature
//! off nothing of it is compiled, and an enabled `extensions.sync` is
//! refused by `zot verify` as not available.
//!
//! [`prepare`] builds a client per upstream (a broken `certDir` or
//! `credentialsFile` stops start-up, or refuses a reload) and the on-demand
//! fetcher; [`start`] installs the API's hook (whenever the feature is
//! built, so that a reload can turn sync on) and gives each upstream with a
//! `pollInterval` and `content` one task: a run right after start-up, then
//! one every `pollInterval` after the previous run ended. A reload
//! replaces all of it ([`SyncSwitch::replace`]): requests starting
//! afterwards fetch from the new upstreams, runs in progress finish. A run whose catalog cannot be read is
//! tried again after 2 s, 4 s, ... up to `pollInterval` (zot's generator
//! back-off). Each repository of a run holds one of the
//! `scheduler.numWorkers` permits that GC and scrub share. In cluster mode
//! a run writes only the repositories this member owns.

use std::sync::Arc;

use tokio::sync::Semaphore;
use zot_config::Config;

/// The upstreams of `extensions.sync`, ready to run (none when it is off).
#[derive(Default)]
pub struct SyncSetup {
    #[cfg(feature = "sync")]
    pub(crate) upstreams: Vec<Arc<zot_sync::Upstream>>,
    #[cfg(feature = "sync")]
    status: Arc<zot_sync::SyncStatus>,
    #[cfg(feature = "sync")]
    on_demand: Option<Arc<zot_sync::OnDemandSync>>,
    #[cfg(feature = "sync")]
    enabled: bool,
}

/// What the API's hook serves now: replaced whole by a reload, so a
/// request uses one setup from start to end.
#[cfg(feature = "sync")]
struct Current {
    enabled: bool,
    on_demand: Option<Arc<zot_sync::OnDemandSync>>,
    status: Arc<zot_sync::SyncStatus>,
}

/// The API's hook: installed whenever the feature is built, so that a
/// reload can turn sync on (with sync off it answers as absent).
#[cfg(feature = "sync")]
struct Hook {
    current: arc_swap::ArcSwap<Current>,
}

#[cfg(feature = "sync")]
impl zot_api::sync_hook::SyncHook for Hook {
    fn enabled(&self) -> bool {
        self.current.load().enabled
    }

    fn on_demand(&self) -> bool {
        self.current.load().on_demand.is_some()
    }

    fn status(&self) -> String {
        self.current.load().status.to_json()
    }

    fn manifest<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        reference: &'a zot_oci::Reference,
        ns: Option<&'a str>,
    ) -> zot_api::sync_hook::Fetch<'a, Option<zot_api::sync_hook::PendingManifest>> {
        let on_demand = self.current.load().on_demand.clone();
        Box::pin(async move {
            let m = on_demand?.manifest(repo, reference, ns).await?;
            Some(zot_api::sync_hook::PendingManifest {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                bytes: m.bytes.clone(),
            })
        })
    }

    fn blob<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        digest: &'a zot_oci::Digest,
    ) -> zot_api::sync_hook::Fetch<'a, Option<Box<dyn zot_api::sync_hook::PulledBlob>>> {
        let on_demand = self.current.load().on_demand.clone();
        Box::pin(async move {
            let (pull, size) = on_demand?.blob(repo, digest).await?;
            Some(Box::new(Pulled { pull, size }) as Box<dyn zot_api::sync_hook::PulledBlob>)
        })
    }

    fn blob_size<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        digest: &'a zot_oci::Digest,
    ) -> zot_api::sync_hook::Fetch<'a, Option<u64>> {
        let on_demand = self.current.load().on_demand.clone();
        Box::pin(async move { on_demand?.blob_size(repo, digest).await })
    }

    fn referrers<'a>(
        &'a self,
        repo: &'a zot_oci::RepoName,
        subject: &'a zot_oci::Digest,
    ) -> zot_api::sync_hook::Fetch<'a> {
        let on_demand = self.current.load().on_demand.clone();
        Box::pin(async move {
            if let Some(o) = on_demand {
                o.referrers(repo, subject).await;
            }
        })
    }
}

/// A blob being pulled through, as the API reads it.
#[cfg(feature = "sync")]
struct Pulled {
    pull: Arc<zot_sync::pull::Pull>,
    size: Option<u64>,
}

#[cfg(feature = "sync")]
impl zot_api::sync_hook::PulledBlob for Pulled {
    fn size(&self) -> Option<u64> {
        self.size
    }

    fn read(self: Box<Self>, start: u64, end: Option<u64>) -> zot_api::sync_hook::PulledBody {
        Box::pin(self.pull.reader(start, end))
    }
}

/// The running sync extension: the API's hook and the periodic runs,
/// replaced by [`SyncSwitch::replace`] on a reload.
pub struct SyncSwitch {
    #[cfg(feature = "sync")]
    hook: Arc<Hook>,
    #[cfg(feature = "sync")]
    stores: zot_storage::Stores,
    #[cfg(feature = "sync")]
    permits: Arc<Semaphore>,
    #[cfg(feature = "sync")]
    tasks: SyncTasks,
    #[cfg(feature = "sync")]
    live: LiveUpstreams,
    /// The loops of the periodic runs; aborting one stops its waiting (a
    /// run in progress is a task of its own and finishes).
    #[cfg(feature = "sync")]
    periodic: Vec<tokio::task::AbortHandle>,
}

#[cfg(feature = "sync")]
impl SyncSwitch {
    /// Serves `setup` from now on: on-demand fetches and status at once,
    /// periodic runs restarted (each upstream's first run now).
    pub fn replace(&mut self, setup: SyncSetup) {
        for task in self.periodic.drain(..) {
            task.abort();
        }
        self.hook.current.store(Arc::new(Current {
            enabled: setup.enabled,
            on_demand: setup.on_demand.clone(),
            status: setup.status.clone(),
        }));
        self.live.store(Arc::new(setup.upstreams.clone()));
        self.periodic = start_periodic(&setup, &self.stores, &self.permits, &self.tasks);
    }
}

/// Without the feature: nothing runs.
#[cfg(not(feature = "sync"))]
impl SyncSwitch {
    pub fn replace(&mut self, _setup: SyncSetup) {}
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
    // Blobs pulled through spool into anonymous files on the root's disk
    // (the metadata store is there, whatever the storage driver).
    let spool = cfg.storage.root_directory.join("_zot/tmp");
    let on_demand = zot_sync::OnDemandSync::new(&upstreams, stores.clone(), spool);
    if on_demand.is_some() {
        tracing::info!("sync: on-demand fetches on");
    }
    let status = Arc::new(zot_sync::SyncStatus::new(&upstreams));
    Ok(SyncSetup {
        upstreams,
        status,
        on_demand,
        enabled: true,
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

/// A periodic run's repositories as scheduler tasks (`name="sync"`).
#[cfg(feature = "sync")]
#[derive(Clone)]
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

/// Without the feature: nothing (the configuration was refused).
#[cfg(not(feature = "sync"))]
pub fn prepare(_cfg: &Config, _stores: &zot_storage::Stores) -> anyhow::Result<SyncSetup> {
    Ok(SyncSetup::default())
}

/// The upstreams running now, replaced by a reload (the metrics read
/// their counters when scraped).
#[cfg(feature = "sync")]
pub type LiveUpstreams = Arc<arc_swap::ArcSwap<Vec<Arc<zot_sync::Upstream>>>>;
/// Without the feature: none.
#[cfg(not(feature = "sync"))]
#[derive(Clone)]
pub struct LiveUpstreams;

/// The upstreams of `setup`, to be kept current by [`start`].
pub fn live_upstreams(setup: &SyncSetup) -> LiveUpstreams {
    #[cfg(feature = "sync")]
    return Arc::new(arc_swap::ArcSwap::from_pointee(setup.upstreams.clone()));
    #[cfg(not(feature = "sync"))]
    {
        let _ = setup;
        LiveUpstreams
    }
}

/// The API's hook, made before the API state is shared; [`start`] takes it.
pub struct SyncHandle {
    #[cfg(feature = "sync")]
    hook: Arc<Hook>,
}

#[cfg(feature = "sync")]
impl SyncHandle {
    /// The hook to give the API.
    pub fn api(&self) -> Arc<dyn zot_api::sync_hook::SyncHook> {
        self.hook.clone()
    }
}

/// The API's hook serving `setup` (sync on or off).
#[cfg(feature = "sync")]
pub fn hook(setup: &SyncSetup) -> SyncHandle {
    SyncHandle {
        hook: Arc::new(Hook {
            current: arc_swap::ArcSwap::from_pointee(Current {
                enabled: setup.enabled,
                on_demand: setup.on_demand.clone(),
                status: setup.status.clone(),
            }),
        }),
    }
}

/// Without the feature: no hook.
#[cfg(not(feature = "sync"))]
pub fn hook(_setup: &SyncSetup) -> SyncHandle {
    SyncHandle {}
}

/// Starts the periodic sync of every upstream of `setup` that has one;
/// each repository of a run is reported to `recorder` as a scheduler task.
#[cfg(feature = "sync")]
pub fn start(
    handle: SyncHandle,
    setup: SyncSetup,
    (stores, live): (&zot_storage::Stores, &LiveUpstreams),
    permits: &Arc<Semaphore>,
    recorder: &crate::metrics_ext::Recorder,
) -> SyncSwitch {
    let tasks = SyncTasks(recorder.clone());
    SyncSwitch {
        hook: handle.hook,
        live: live.clone(),
        stores: stores.clone(),
        permits: permits.clone(),
        periodic: start_periodic(&setup, stores, permits, &tasks),
        tasks,
    }
}

#[cfg(feature = "sync")]
fn start_periodic(
    setup: &SyncSetup,
    stores: &zot_storage::Stores,
    permits: &Arc<Semaphore>,
    tasks: &SyncTasks,
) -> Vec<tokio::task::AbortHandle> {
    let mut periodic = Vec::new();
    for (i, upstream) in setup.upstreams.iter().enumerate() {
        let Some(period) = upstream.poll_interval() else {
            continue;
        };
        tracing::info!(upstream = %upstream.name, period_s = period.as_secs(), "sync: periodic sync scheduled");
        let status = (setup.status.clone(), i);
        let task = tokio::spawn(run(
            upstream.clone(),
            stores.clone(),
            (permits.clone(), tasks.clone()),
            period,
            status,
        ));
        periodic.push(task.abort_handle());
    }
    periodic
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
        // Once across the instances sharing the default store: another
        // instance's run mirrors into the same bucket.
        let lease_name = format!("sync:{}", upstream.name);
        let registry = stores.default_store().clone();
        let Some(lease) = crate::shared_ext::take(
            &registry,
            &lease_name,
            "sync",
            &tasks.0,
            crate::metrics_ext::TaskKind::Sync,
        )
        .await
        else {
            tokio::time::sleep(period).await;
            continue;
        };
        status.started(i);
        // Its own task: a reload stopping this loop lets the run finish.
        let (up, st, p, t) = (
            upstream.clone(),
            stores.clone(),
            permits.clone(),
            tasks.clone(),
        );
        let once = tokio::spawn(async move { up.sync_once(&st, &p, &t).await });
        let Ok(outcome) = once.await else {
            return;
        };
        crate::shared_ext::release(lease).await;
        let wait = match outcome {
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
    _handle: SyncHandle,
    _setup: SyncSetup,
    _stores: (&zot_storage::Stores, &LiveUpstreams),
    _permits: &Arc<Semaphore>,
    _recorder: &crate::metrics_ext::Recorder,
) -> SyncSwitch {
    SyncSwitch {}
}

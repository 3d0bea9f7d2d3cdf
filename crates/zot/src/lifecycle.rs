//! The storage lifecycle: the extensions this binary was built with, the
//! stores and the settings given to each (the default root and one per
//! `storage.subPaths` root), and the background tasks (garbage collection,
//! scrub, upload expiry, pull-time flushes), which run per store with that
//! store's settings.
//!
//! Background work is bounded by `scheduler.numWorkers` permits (default:
//! half the cores, at least one), so requests always keep most of the
//! runtime: each repository's GC or scrub is one task that needs a permit,
//! tasks yield between repositories, blob reads and metadata writes run on
//! the blocking pool, and hashing runs there chunk by chunk.

mod schedule;

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use zot_config::glob::Glob;
use zot_config::{Config, StorageConfig};
use zot_storage::retention::{KeepTags, Retention, RetentionPolicy};
use zot_storage::{GcOptions, Registry};

use crate::metrics_ext::{Recorder, TaskKind};

/// The extensions compiled into this binary.
pub const AVAILABLE: &[&str] = &[
    #[cfg(feature = "scrub")]
    "scrub",
    #[cfg(feature = "lint")]
    "lint",
    // With search come the API zot's UI uses (no UI is served) and mgmt.
    #[cfg(feature = "search")]
    "search",
    #[cfg(feature = "search")]
    "ui",
    #[cfg(feature = "search")]
    "mgmt",
    #[cfg(feature = "metrics")]
    "metrics",
    #[cfg(feature = "sync")]
    "sync",
    #[cfg(feature = "events")]
    "events",
];

/// How often pull times are written to the metadata store.
const PULL_FLUSH: Duration = Duration::from_secs(5);
/// How often abandoned upload sessions are looked for.
const UPLOAD_SWEEP: Duration = Duration::from_secs(60);

/// Mandatory annotations of an enabled lint extension.
pub fn mandatory_annotations(cfg: &Config) -> Vec<String> {
    cfg.extension("lint")
        .and_then(|e| e.lint())
        .filter(|_| AVAILABLE.contains(&"lint"))
        .map(|l| l.mandatory_annotations)
        .unwrap_or_default()
}

/// What `/v2/_oci/ext/discover` lists: zot's `_zot` extension with the
/// endpoints that are on (in zot's order; absent when none is), then this
/// registry's own entries for scrub and lint.
pub fn discover(cfg: &Config) -> Vec<zot_api::ExtensionInfo> {
    let mut out = Vec::new();
    let endpoints: Vec<String> = crate::search_ext::endpoints(cfg)
        .iter()
        .map(|e| (*e).to_owned())
        .collect();
    if !endpoints.is_empty() {
        out.push(zot_api::ExtensionInfo {
            name: "_zot".to_owned(),
            // zot links its own release; ours is no zot release, so the
            // document on zot's main branch.
            url: "https://github.com/project-zot/zot/blob/main/pkg/extensions/_zot.md".to_owned(),
            description: "zot registry extensions".to_owned(),
            endpoints,
        });
    }
    for (name, description) in [
        (
            "scrub",
            "verifies every blob's digest and every manifest's references in the background",
        ),
        (
            "lint",
            "refuses manifests without the mandatory annotations",
        ),
    ] {
        if AVAILABLE.contains(&name) && cfg.extension(name).is_some_and(|e| e.enabled) {
            out.push(zot_api::ExtensionInfo {
                name: format!("_zot_{name}"),
                url: format!("https://zotregistry.dev/latest/articles/{name}/"),
                description: description.to_owned(),
                endpoints: Vec::new(),
            });
        }
    }
    out
}

/// One store of the registry: a root directory with its own settings.
#[derive(Clone)]
pub struct Store {
    /// `default`, or the `subPaths` keys it serves (joined by `, ` when
    /// several share its root).
    pub name: String,
    pub settings: StorageConfig,
    pub registry: Arc<Registry>,
}

/// Opens every store (the default root, then each distinct `subPaths`
/// root) and synchronises it with its layouts; returns them with the
/// routing of repository names to them.
pub async fn open_stores(cfg: &Config) -> anyhow::Result<(Vec<Store>, zot_storage::Stores)> {
    let open = |settings: &StorageConfig| {
        let options = zot_storage::Options {
            dedupe: settings.dedupe,
            docker2s2: cfg.docker2s2(),
            mandatory_annotations: mandatory_annotations(cfg),
            search: crate::search_ext::enabled(cfg),
            events: crate::events_ext::outbox_limit(cfg),
            ..zot_storage::Options::default()
        };
        let (root, commit) = (settings.root_directory.clone(), settings.commit);
        let driver = settings.storage_driver.clone();
        let shared = settings.cache_driver.clone();
        async move {
            if let Some(zot_config::CacheDriver::Redis(target)) = shared {
                return open_shared(&root, commit, driver.as_ref(), &target, options).await;
            }
            match driver {
                // The layouts in the bucket; the metadata store under `root`.
                Some(s3) => {
                    tracing::warn!(
                        bucket = %s3.bucket,
                        prefix = %s3.root_directory,
                        metadata = %root.display(),
                        "S3 storage with a local metadata store: run one instance per bucket prefix"
                    );
                    zot_storage::open_s3(&root, &s3, &zot_storage::S3Options::default(), options)
                        .await
                        .with_context(|| {
                            format!(
                                "opening storage in bucket {} (prefix {:?}, metadata at {})",
                                s3.bucket,
                                s3.root_directory,
                                root.display()
                            )
                        })
                }
                None => zot_storage::open_local(&root, commit, options)
                    .await
                    .with_context(|| format!("opening storage at {}", root.display())),
            }
        }
    };
    let mut stores: Vec<Store> = Vec::new();
    let mut routes = Vec::new();
    let settings = std::iter::once(("default".to_owned(), &cfg.storage))
        .chain(cfg.storage.sub_paths.iter().map(|(k, s)| (k.clone(), s)));
    for (name, settings) in settings {
        if let Some(shared) = stores
            .iter_mut()
            .find(|s| s.settings.root_directory == settings.root_directory)
        {
            // The same root as an earlier sub-path (validated: same settings).
            shared.name = format!("{}, {name}", shared.name);
            routes.push((name, shared.registry.clone()));
            continue;
        }
        if settings.cache_driver_ignored {
            tracing::warn!(
                store = name,
                "storage.cacheDriver is ignored: remoteCache is false (the metadata stays under rootDirectory)"
            );
        }
        let (registry, report) = open(settings).await?;
        tracing::info!(
            store = name,
            root = %settings.root_directory.display(),
            bucket = settings.storage_driver.as_ref().map(|d| d.bucket.as_str()),
            dedupe = settings.dedupe,
            gc = settings.gc,
            repositories = report.repositories,
            rebuilt = report.rebuilt,
            removed = report.removed,
            broken = report.broken,
            "storage synchronised with the layouts on disk"
        );
        let registry = Arc::new(registry);
        crate::shared_ext::share(&name, settings, &registry).await?;
        if name != "default" {
            routes.push((name.clone(), registry.clone()));
        }
        stores.push(Store {
            name,
            settings: settings.clone(),
            registry,
        });
    }
    let routing = zot_storage::Stores::new(stores[0].registry.clone(), routes);
    for store in &stores {
        // Repositories left in a root that no longer serves them (e.g. in
        // the default root, from before a sub-path was configured).
        let names = match store.registry.catalog(None, usize::MAX) {
            Ok((names, _)) => names,
            // A shared store away at start-up: checked no further (its
            // instance answers 503 until the store is back).
            Err(e) if !store.registry.metadata_healthy() => {
                tracing::warn!(store = store.name, error = %e, "not checking for repositories of other stores' prefixes");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let hidden: Vec<&String> = names
            .iter()
            .filter(|n| !Arc::ptr_eq(routing.route(n), &store.registry))
            .collect();
        if let Some(first) = hidden.first() {
            tracing::warn!(
                store = store.name,
                root = %store.settings.root_directory.display(),
                count = hidden.len(),
                example = %first,
                "repositories in this root belong to another store's prefix: they are not served"
            );
        }
    }
    Ok((stores, routing))
}

/// A store whose metadata lives in Redis (see `redis_meta.rs`).
async fn open_shared(
    root: &std::path::Path,
    commit: bool,
    driver: Option<&zot_config::S3Config>,
    target: &zot_config::RedisTarget,
    options: zot_storage::Options,
) -> anyhow::Result<(zot_storage::Registry, zot_storage::SyncReport)> {
    let address = crate::redis_meta::address(target)?;
    tracing::info!(redis = %target.describe(), "metadata in the shared store");
    let meta = zot_storage::MetaStore::open_redis(&address, &target.key_prefix)
        .with_context(|| format!("opening the shared metadata store {}", target.describe()))?;
    let s3_options = zot_storage::S3Options::default();
    let layouts = match driver {
        Some(s3) => zot_storage::Layouts::S3 {
            driver: s3,
            options: &s3_options,
        },
        None => zot_storage::Layouts::Local { root, commit },
    };
    zot_storage::open_with_meta(layouts, meta, options)
        .await
        .with_context(|| {
            format!(
                "opening storage with the shared metadata store {}",
                target.describe()
            )
        })
}

/// The GC settings of one store.
pub fn gc_options(storage: &StorageConfig) -> GcOptions {
    let r = &storage.retention;
    let policies = r
        .policies
        .iter()
        .map(|p| RetentionPolicy {
            // Validated when the configuration was read.
            repositories: p
                .repositories
                .iter()
                .filter_map(|g| Glob::new(g).ok())
                .collect(),
            delete_referrers: p.delete_referrers,
            delete_untagged: p.delete_untagged,
            keep_tags: p
                .keep_tags
                .iter()
                .map(|k| KeepTags {
                    // Validated when the configuration was read.
                    patterns: k
                        .patterns
                        .iter()
                        .filter_map(|p| regex::Regex::new(p).ok())
                        .collect(),
                    pulled_within: k.pulled_within,
                    pushed_within: k.pushed_within,
                    most_recently_pushed_count: k.most_recently_pushed_count,
                    most_recently_pulled_count: k.most_recently_pulled_count,
                })
                .collect(),
        })
        .collect();
    GcOptions {
        delay: storage.gc_delay,
        retention: Retention {
            dry_run: r.dry_run,
            delay: r.delay,
            policies,
        },
    }
}

fn workers(cfg: &Config) -> usize {
    cfg.scheduler
        .num_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

/// The background tasks of every store, as far as a reload may change
/// them: GC and scrub are scheduled from the settings, and rescheduled
/// with new ones by [`Lifecycle::reconfigure`]; upload expiry and pull-time
/// flushes need no settings and run on.
pub struct Lifecycle {
    /// The `scheduler.numWorkers` permits every background task shares.
    pub permits: Arc<Semaphore>,
    recorder: Recorder,
    /// Each store's name (as in [`Store::name`]) and registry.
    stores: Vec<(Arc<str>, Arc<Registry>)>,
    /// The loops scheduling GC and scrub rounds. Aborting one stops only
    /// its waiting: a round in progress is a task of its own and finishes.
    scheduled: Vec<tokio::task::AbortHandle>,
}

impl Lifecycle {
    /// Reschedules GC and scrub of every store with `cfg`'s settings (the
    /// next rounds come one period from now).
    pub fn reconfigure(&mut self, cfg: &Config) {
        for task in self.scheduled.drain(..) {
            task.abort();
        }
        for (name, registry) in &self.stores {
            let Some(settings) = store_settings(cfg, name) else {
                continue;
            };
            self.scheduled.extend(schedule_store(
                cfg,
                name,
                settings,
                registry,
                &self.permits,
                &self.recorder,
            ));
        }
    }
}

/// The settings of the store named `name` in `cfg` (`default`, or its
/// `subPaths` keys joined by `, `, which share its settings).
pub fn store_settings<'a>(cfg: &'a Config, name: &str) -> Option<&'a StorageConfig> {
    match name.split(", ").next() {
        Some("default") => Some(&cfg.storage),
        Some(prefix) => cfg.storage.sub_paths.get(prefix),
        None => None,
    }
}

/// Starts the background tasks of every store; they share the
/// `scheduler.numWorkers` permits, which are returned (in the
/// [`Lifecycle`]) for the extensions' background tasks (sync); they report
/// to `recorder`.
pub fn start(cfg: &Config, stores: &[Store], recorder: &Recorder) -> Lifecycle {
    let workers = workers(cfg);
    recorder.set_workers(workers);
    let permits = Arc::new(Semaphore::new(workers));
    let mut lifecycle = Lifecycle {
        permits,
        recorder: recorder.clone(),
        stores: Vec::new(),
        scheduled: Vec::new(),
    };
    for store in stores {
        start_store(store, &lifecycle.permits, recorder);
        let name: Arc<str> = Arc::from(store.name.as_str());
        lifecycle.scheduled.extend(schedule_store(
            cfg,
            &name,
            &store.settings,
            &store.registry,
            &lifecycle.permits,
            recorder,
        ));
        lifecycle.stores.push((name, store.registry.clone()));
    }
    lifecycle
}

/// Starts the background tasks of one store that need no settings.
fn start_store(store: &Store, permits: &Arc<Semaphore>, recorder: &Recorder) {
    let registry = store.registry.clone();
    // Parked blobs (object stores): moved in the background; every minute
    // the markers left by any instance are looked at (see
    // `zot_storage::parked`).
    registry.start_parked_mover();
    let reg = registry.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPLOAD_SWEEP);
        loop {
            tick.tick().await;
            match reg.resume_parked(zot_storage::RESUME_AGE).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "resuming the moves of parked blobs"),
                Err(e) => tracing::warn!(error = %e, "listing parked blobs"),
            }
        }
    });

    let reg = registry.clone();
    let p = permits.clone();
    let rec = recorder.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPLOAD_SWEEP);
        for round in 0u64.. {
            tick.tick().await;
            rec.queued();
            let Ok(_permit) = p.acquire().await else {
                return;
            };
            rec.started();
            let started = std::time::Instant::now();
            // Sessions in memory every minute; stray files on disk hourly.
            match reg.expire_uploads(round % 60 == 0).await {
                Ok(0) => {}
                Ok(n) => {
                    rec.uploads_expired(n);
                    tracing::info!(removed = n, "expired abandoned upload sessions")
                }
                Err(e) => tracing::warn!(error = %e, "expiring upload sessions"),
            }
            rec.finished(TaskKind::UploadExpiry, started.elapsed());
        }
    });

    let reg = registry.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PULL_FLUSH);
        loop {
            tick.tick().await;
            if let Err(e) = reg.flush_pulls().await {
                tracing::warn!(error = %e, "recording pull times");
            }
        }
    });
}

/// Schedules GC and scrub of one store with `settings` (and `cfg`'s
/// scrub); returns the scheduling loops.
fn schedule_store(
    cfg: &Config,
    name: &Arc<str>,
    settings: &StorageConfig,
    registry: &Arc<Registry>,
    permits: &Arc<Semaphore>,
    recorder: &Recorder,
) -> Vec<tokio::task::AbortHandle> {
    let mut scheduled = Vec::new();
    // Placements are remembered even with GC off, so that GC turned on by
    // a reload knows which blobs are fresh (see `zot_storage::gc`).
    registry.track_placements(settings.gc_delay.max(settings.retention.delay));
    if settings.gc && !settings.gc_interval.is_zero() {
        let options = Arc::new(gc_options(settings));
        let window = settings.gc_time_window;
        let period = settings.gc_interval;
        let reg = registry.clone();
        let p = permits.clone();
        let store = name.clone();
        let rec = recorder.clone();
        // A run due outside gcTimeWindow waits for it to open (schedule.rs).
        let task = tokio::spawn(schedule::run(
            &schedule::SystemClock,
            period,
            window,
            move || {
                let (reg, p, options, store, rec) = (
                    reg.clone(),
                    p.clone(),
                    options.clone(),
                    store.clone(),
                    rec.clone(),
                );
                // Its own task: a reload aborting the schedule lets it finish.
                let round = tokio::spawn(async move {
                    // Once across the instances sharing the store.
                    let lease_name = format!("gc:{store}");
                    let Some(lease) =
                        crate::shared_ext::take(&reg, &lease_name, "gc", &rec, TaskKind::Gc).await
                    else {
                        return;
                    };
                    let lost = lease.lost_flag();
                    tracing::info!(%store, "gc: round started");
                    let started = std::time::Instant::now();
                    let reports = for_each_repo(&reg, &p, &rec, TaskKind::Gc, move |reg, repo| {
                        let options = options.clone();
                        let lost = lost.clone();
                        async move {
                            if lost.load(std::sync::atomic::Ordering::SeqCst) {
                                tracing::warn!(%repo, "gc: repository skipped: the round's lease was lost");
                                return None;
                            }
                            match reg.gc_repo(&repo, &options).await {
                                Ok(r) if r == zot_storage::GcReport::default() => Some(r),
                                Ok(r) => {
                                    tracing::info!(%repo, report = ?r, "gc: done");
                                    Some(r)
                                }
                                Err(e) => {
                                    tracing::warn!(%repo, error = %e, "gc: repository skipped");
                                    None
                                }
                            }
                        }
                    })
                    .await;
                    let mut total = zot_storage::GcReport::default();
                    reports.iter().flatten().for_each(|r| total.add(r));
                    let error = reports.iter().any(Option::is_none);
                    rec.gc_round(&total, error, started.elapsed());
                    let repos = reports.len();
                    tracing::info!(%store, repositories = repos, elapsed_ms = started.elapsed().as_millis() as u64, "gc: round finished");
                    crate::shared_ext::release(lease).await;
                });
                async move {
                    let _ = round.await;
                    std::ops::ControlFlow::Continue(())
                }
            },
        ));
        scheduled.push(task.abort_handle());
    }

    if let Some(scrub) = cfg
        .extension("scrub")
        .and_then(|e| e.scrub())
        .filter(|_| AVAILABLE.contains(&"scrub"))
    {
        let reg = registry.clone();
        let p = permits.clone();
        let store = name.clone();
        let rec = recorder.clone();
        let task = periodic(scrub.interval, move || {
            let (reg, p, store, rec) = (reg.clone(), p.clone(), store.clone(), rec.clone());
            // Its own task: a reload aborting the schedule lets it finish.
            let round = tokio::spawn(async move {
                let lease_name = format!("scrub:{store}");
                let Some(lease) =
                    crate::shared_ext::take(&reg, &lease_name, "scrub", &rec, TaskKind::Scrub)
                        .await
                else {
                    return;
                };
                tracing::info!(%store, "scrub: round started");
                let started = std::time::Instant::now();
                let reports = for_each_repo(&reg, &p, &rec, TaskKind::Scrub, |reg, repo| async move {
                    let r = reg.scrub_repo(&repo).await;
                    if r.problems.is_empty() {
                        tracing::info!(%repo, blobs = r.blobs_checked, "scrub: no problem")
                    } else {
                        // Each problem was logged with its reference and blob.
                        tracing::error!(%repo, problems = r.problems.len(), "scrub: problems found")
                    }
                    (r.blobs_checked, r.manifests_checked, r.problems.len())
                })
                .await;
                let sum = |f: fn(&(usize, usize, usize)) -> usize| reports.iter().map(f).sum();
                rec.scrub_round(sum(|r| r.0), sum(|r| r.1), sum(|r| r.2));
                let repos = reports.len();
                tracing::info!(%store, repositories = repos, elapsed_ms = started.elapsed().as_millis() as u64, "scrub: round finished");
                crate::shared_ext::release(lease).await;
            });
            async move {
                let _ = round.await;
            }
        });
        scheduled.push(task);
    }
    scheduled
}

/// Runs `round` every `period`, the first time one period from now.
fn periodic<F, Fut>(period: Duration, round: F) -> tokio::task::AbortHandle
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round().await;
        }
    });
    task.abort_handle()
}

/// Runs `task` on every repository, at most as many at once as there are
/// permits, and waits for all; returns each repository's result (in no
/// particular order). Each task is timed as one of `kind`, and counted in
/// the scheduler's queue while it waits for a permit.
async fn for_each_repo<F, Fut, T>(
    reg: &Arc<Registry>,
    permits: &Arc<Semaphore>,
    recorder: &Recorder,
    kind: TaskKind,
    task: F,
) -> Vec<T>
where
    F: Fn(Arc<Registry>, zot_oci::RepoName) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let repos = match reg.repositories().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, ?kind, "listing repositories");
            return Vec::new();
        }
    };
    let mut running = tokio::task::JoinSet::new();
    for repo in repos {
        recorder.queued();
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        recorder.started();
        let fut = task(reg.clone(), repo);
        let rec = recorder.clone();
        running.spawn(async move {
            let started = std::time::Instant::now();
            let out = fut.await;
            rec.finished(kind, started.elapsed());
            drop(permit);
            out
        });
        tokio::task::yield_now().await;
    }
    let mut out = Vec::new();
    while let Some(r) = running.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out
}

//! The storage lifecycle: the extensions this binary was built with, the
//! settings given to the registry, and the background tasks (garbage
//! collection, scrub, upload expiry, pull-time flushes).
//!
//! Background work is bounded by `scheduler.numWorkers` permits (default:
//! half the cores, at least one), so requests always keep most of the
//! runtime: each repository's GC or scrub is one task that needs a permit,
//! tasks yield between repositories, blob reads and metadata writes run on
//! the blocking pool, and hashing runs there chunk by chunk.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use zot_config::Config;
use zot_storage::retention::{KeepTags, Retention, RetentionPolicy};
use zot_storage::{GcOptions, Registry};

/// The extensions compiled into this binary.
pub const AVAILABLE: &[&str] = &[
    #[cfg(feature = "scrub")]
    "scrub",
    #[cfg(feature = "lint")]
    "lint",
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

/// What `/v2/_oci/ext/discover` lists.
pub fn discover(cfg: &Config) -> Vec<zot_api::ExtensionInfo> {
    let mut out = Vec::new();
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

/// The GC settings of a configuration.
pub fn gc_options(cfg: &Config) -> GcOptions {
    let r = &cfg.storage.retention;
    let policies = r
        .policies
        .iter()
        .map(|p| RetentionPolicy {
            repositories: p.repositories.clone(),
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
        delay: cfg.storage.gc_delay,
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

/// Starts the background tasks.
pub fn start(cfg: &Config, registry: Arc<Registry>) {
    let permits = Arc::new(Semaphore::new(workers(cfg)));

    let reg = registry.clone();
    let p = permits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPLOAD_SWEEP);
        for round in 0u64.. {
            tick.tick().await;
            let Ok(_permit) = p.acquire().await else {
                return;
            };
            // Sessions in memory every minute; stray files on disk hourly.
            match reg.expire_uploads(round % 60 == 0).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired abandoned upload sessions"),
                Err(e) => tracing::warn!(error = %e, "expiring upload sessions"),
            }
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

    if cfg.storage.gc && !cfg.storage.gc_interval.is_zero() {
        registry.track_placements(cfg.storage.gc_delay.max(cfg.storage.retention.delay));
        let options = Arc::new(gc_options(cfg));
        let window = cfg.storage.gc_time_window;
        let reg = registry.clone();
        let p = permits.clone();
        periodic(cfg.storage.gc_interval, move || {
            let (reg, p, options) = (reg.clone(), p.clone(), options.clone());
            async move {
                if window.is_some_and(|w| !w.contains_now()) {
                    tracing::debug!("gc: outside gcTimeWindow");
                    return;
                }
                for_each_repo(&reg, &p, "gc", move |reg, repo| {
                    let options = options.clone();
                    async move {
                        match reg.gc_repo(&repo, &options).await {
                            Ok(r) if r == zot_storage::GcReport::default() => {}
                            Ok(r) => tracing::info!(%repo, report = ?r, "gc: done"),
                            Err(e) => tracing::warn!(%repo, error = %e, "gc: repository skipped"),
                        }
                    }
                })
                .await;
            }
        });
    }

    if let Some(scrub) = cfg
        .extension("scrub")
        .and_then(|e| e.scrub())
        .filter(|_| AVAILABLE.contains(&"scrub"))
    {
        let reg = registry.clone();
        let p = permits.clone();
        periodic(scrub.interval, move || {
            let (reg, p) = (reg.clone(), p.clone());
            async move {
                for_each_repo(&reg, &p, "scrub", |reg, repo| async move {
                    match reg.scrub_repo(&repo).await {
                        Ok(r) if r.problems.is_empty() => {
                            tracing::info!(%repo, blobs = r.blobs_checked, "scrub: no problem")
                        }
                        // Each problem was logged with its reference and blob.
                        Ok(r) => tracing::error!(%repo, problems = r.problems.len(), "scrub: problems found"),
                        Err(e) => tracing::warn!(%repo, error = %e, "scrub: repository skipped"),
                    }
                })
                .await;
            }
        });
    }
}

/// Runs `round` every `period`, the first time one period from now.
fn periodic<F, Fut>(period: Duration, round: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round().await;
        }
    });
}

/// Runs `task` on every repository, at most as many at once as there are
/// permits, and waits for all.
async fn for_each_repo<F, Fut>(reg: &Arc<Registry>, permits: &Arc<Semaphore>, what: &str, task: F)
where
    F: Fn(Arc<Registry>, zot_oci::RepoName) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let repos = match reg.repositories().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "{what}: listing repositories");
            return;
        }
    };
    let mut running = tokio::task::JoinSet::new();
    for repo in repos {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let fut = task(reg.clone(), repo);
        running.spawn(async move {
            fut.await;
            drop(permit);
        });
        tokio::task::yield_now().await;
    }
    while running.join_next().await.is_some() {}
}

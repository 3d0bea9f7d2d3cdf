//! The database refresh: every `updateInterval` (and when a scan meets an
//! ecosystem the database lacks), bring the database up to date from its
//! source, retrying failures with doubling waits; after a new version,
//! re-match stored inventories.
//!
//! Invariants:
//! - A failed update leaves the previous database in use (`zot_vulndb`
//!   swaps indexes atomically) and is retried after 2 s, 4 s, 8 s, ... (at
//!   most [`MAX_BACKOFF`], and never past the next interval).
//! - The update and the re-match each hold one scheduler permit.
//! - Every outcome logs the version in use and its age.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use zot_vulndb::{DbInfo, Outcome, Source};

use crate::scanner::CveScanner;

/// The longest wait between two attempts of a failing update.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a wake-up by a scan waits for more scans before updating.
const WANTED_SETTLE: Duration = Duration::from_secs(2);

/// What the refresh does.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub source: Source,
    /// An OCI artifact (`<host>/<repo>:<tag>`) fetched into the `source`
    /// folder before each update (`artifact.rs`).
    pub artifact: Option<String>,
    /// OSV families to fetch; empty: those the stored inventories need
    /// (a URL source) or every folder (a path).
    pub ecosystems: Vec<String>,
    pub interval: Duration,
}

/// Told of the database in use after every successful refresh.
pub type DbObserver = Arc<dyn Fn(&DbInfo) + Send + Sync>;

fn age_secs(info: &DbInfo) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(info.built_at)
}

/// One refresh: `Ok(true)` when a new version is in use.
async fn refresh_once(
    scanner: &Arc<CveScanner>,
    settings: &RefreshSettings,
) -> Result<bool, String> {
    if let (Some(reference), Source::Path(dir)) = (&settings.artifact, &settings.source) {
        crate::artifact::fetch(reference, dir).await?;
    }
    let ecosystems = if !settings.ecosystems.is_empty() {
        settings.ecosystems.clone()
    } else if matches!(settings.source, Source::Url(_)) {
        let needed = scanner.needed_ecosystems().await;
        if needed.is_empty() {
            tracing::info!("cve: no stored image needs an OSV ecosystem yet; nothing fetched");
            return Ok(false);
        }
        needed
    } else {
        Vec::new()
    };
    match scanner.db().update(&settings.source, &ecosystems).await {
        Ok(Outcome::Updated(info)) => {
            tracing::info!(version = info.version, age_secs = age_secs(&info), records = info.records, ecosystems = ?info.ecosystems, source = %info.source, "cve: database updated");
            Ok(true)
        }
        Ok(Outcome::Unchanged(info)) => {
            tracing::debug!(version = info.version, age_secs = age_secs(&info), source = %info.source, "cve: database unchanged");
            Ok(false)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the refresh for ever: now, then every interval.
pub async fn run(
    scanner: Arc<CveScanner>,
    settings: RefreshSettings,
    permits: Arc<Semaphore>,
    observer: Option<DbObserver>,
) {
    let mut first = true;
    loop {
        let mut wait = Duration::from_secs(2);
        let deadline = tokio::time::Instant::now() + settings.interval;
        loop {
            let outcome = {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                refresh_once(&scanner, &settings).await
            };
            match outcome {
                Ok(updated) => {
                    if let (Some(info), Some(observe)) = (scanner.db().info(), &observer) {
                        observe(&info);
                    }
                    let pending = scanner.take_unmatched();
                    if updated || first || pending {
                        let Ok(_permit) = permits.acquire().await else {
                            return;
                        };
                        let started = std::time::Instant::now();
                        let n = scanner.rematch().await;
                        if n > 0 {
                            tracing::info!(
                                manifests = n,
                                ms = started.elapsed().as_millis() as u64,
                                "cve: stored inventories re-matched"
                            );
                        }
                    }
                    first = false;
                    break;
                }
                Err(e) => {
                    let in_use = scanner.db().info();
                    tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), version_in_use = in_use.as_ref().map(|i| i.version), age_secs = in_use.as_ref().map(age_secs), "cve: database update failed; the previous database stays in use");
                    if tokio::time::Instant::now() + wait >= deadline {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = scanner.wanted.notified() => tokio::time::sleep(WANTED_SETTLE).await,
        }
    }
}

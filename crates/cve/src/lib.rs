//! Vulnerability scanning in the registry (`extensions.search.cve`): a
//! low-priority scan queue fed by every manifest stored (push and sync)
//! and by a start-up sweep, package inventories (`zot_scan`) and
//! findings (`zot_vulndb`) kept in each store's metadata store, the
//! database refresh, and the results search reads ([`CveScanner`] is a
//! `zot_search::cve::CveSource`).
//!
//! - `scanner.rs`: the queue, scans, stored results, re-matching.
//! - `refresh.rs`: the periodic database update with back-off.
//! - `record.rs`: the stored formats.
//! - `artifact.rs`: the OCI-artifact database source.
//! - `idle.rs`: the niced thread the CPU work of scans runs on.
//! - `index.rs`: the CVE-id index `ImageListForCVE` reads.
//! - `sbom.rs`: SBOM referrers of scanned manifests (`trivy.sbom`).

pub mod artifact;
mod idle;
mod index;
mod record;
mod refresh;
pub mod sbom;
mod scanner;

pub use record::{ScanRecord, StoredCve, StoredPackage, group};
pub use refresh::{DbObserver, MAX_BACKOFF, RefreshSettings};
pub use sbom::SbomFormat;
pub use scanner::{Counters, CveScanner};

use std::sync::Arc;

use tokio::sync::Semaphore;
use zot_oci::ManifestKind;

/// Starts scanning: every store tells the queue of each manifest stored
/// from now on, manifests without a current inventory are queued, the
/// queue runs on one of `permits` at a time, and the database is
/// refreshed now and every interval (never without `settings`).
pub fn start(
    scanner: &Arc<CveScanner>,
    stores: &zot_storage::Stores,
    settings: Option<RefreshSettings>,
    permits: &Arc<Semaphore>,
    observer: Option<DbObserver>,
) {
    for reg in stores.distinct() {
        let s = Arc::clone(scanner);
        reg.on_manifest_stored(Arc::new(move |repo, digest, media_type| {
            if !ManifestKind::from_media_type(media_type).is_some_and(ManifestKind::is_index) {
                s.enqueue(repo.as_str(), digest);
            }
        }));
    }
    tokio::spawn(Arc::clone(scanner).run_queue(Arc::clone(permits)));
    let s = Arc::clone(scanner);
    let p = Arc::clone(permits);
    tokio::spawn(async move {
        let queued = s.enqueue_unscanned().await;
        if queued > 0 {
            tracing::info!(
                manifests = queued,
                "cve: manifests without an inventory queued for scanning"
            );
        }
        if let Some(settings) = settings {
            refresh::run(s, settings, p, observer).await;
        }
    });
}

/// Starts the database refresh alone (the scan queue is [`start`]'s): a
/// configuration reload aborts it with the returned handle and starts
/// another with the new settings. Aborted mid-update, the database in use
/// stays (an update is built beside it and swapped whole).
pub fn start_refresh(
    scanner: &Arc<CveScanner>,
    settings: RefreshSettings,
    permits: &Arc<Semaphore>,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(refresh::run(
        Arc::clone(scanner),
        settings,
        Arc::clone(permits),
        None,
    ));
    task.abort_handle()
}

//! The scan queue and the stored results.
//!
//! Invariants:
//! - One scan runs at a time, and only with one of the scheduler's
//!   `numWorkers` permits: scanning never takes more than one background
//!   worker, and requests never wait for it (low priority). Its CPU work
//!   (reading layers, matching, re-matching) runs on the `SCHED_IDLE`
//!   thread (`idle.rs`); the metadata store is read and written around it,
//!   on the blocking pool, never from that thread.
//! - A manifest's layers are read once (through the storage's blob
//!   streams, so on any backend); its inventory is kept in the metadata
//!   store of the store its repository routes to, keyed by digest. A later
//!   push of the same digest, a restart or a database update reuses it.
//! - Findings are recomputed from inventories whenever the database
//!   version changes ([`CveScanner::rematch`], `scanner/rematch.rs`: a
//!   page of stored inventories at a time); until then the previous
//!   findings are shown, never none.
//! - An index is never scanned itself: search aggregates its manifests.
//! - A digest is queued at most once at a time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, Semaphore, mpsc};
use zot_oci::{Digest, ManifestKind, ParsedManifest, Reference, RepoName};
use zot_scan::{Inventory, Limits, ScanError, Scanner, is_scannable_layer};
use zot_search::cve::{CveRecord, CveSource, ScanState};
use zot_storage::{Registry, Stores};
use zot_vulndb::{VulnDb, match_inventory};

use crate::index::CveIndex;
use crate::record::{ScanRecord, StoredCve, group, to_record};
use crate::sbom::SbomFormat;

mod rematch;

/// Bytes of cached states (roughly: their strings) kept before the cache
/// is emptied.
const CACHE_BYTES: usize = 32 << 20;

/// Counters of the scanner's work since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Layers read (each is one blob stream).
    pub layers_read: AtomicU64,
    /// Manifests whose inventory was made.
    pub manifests_scanned: AtomicU64,
    /// Manifests matched against a database (after a scan or an update).
    pub manifests_matched: AtomicU64,
}

struct Job {
    repo: String,
    digest: Digest,
    /// Earlier tries that failed on a passing condition ([`Skip::is_passing`]).
    attempt: u32,
}

/// A scan that failed because the storage or the metadata store could not
/// be reached (S3 or Redis away, `503`) is tried again after
/// `RETRY_AFTER × 2^attempt`, at most [`RETRIES`] times (15 s to 8 min,
/// about 16 min in all), instead of waiting for the next start-up's sweep.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(15);
const RETRIES: u32 = 6;

/// When to try a scan again after `attempt` earlier failures; `None`:
/// given up (the next start-up's sweep queues it again).
fn retry_delay(attempt: u32) -> Option<std::time::Duration> {
    (attempt < RETRIES).then(|| RETRY_AFTER * 2u32.saturating_pow(attempt))
}

/// The scanner of one registry (all its stores).
pub struct CveScanner {
    stores: Stores,
    db: Arc<VulnDb>,
    tx: mpsc::UnboundedSender<Job>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    queued: Mutex<HashSet<Digest>>,
    /// Decoded states, and roughly how many bytes they hold.
    cache: Mutex<(HashMap<Digest, ScanState>, usize)>,
    counters: Counters,
    /// Woken when a scan found an ecosystem the database lacks.
    pub(crate) wanted: Notify,
    /// An inventory was stored while there was no database: the next
    /// refresh re-matches even when the database did not change.
    unmatched: AtomicBool,
    /// Attach an SBOM of this format to every manifest scanned (`sbom.rs`).
    sbom: Option<SbomFormat>,
    /// CVE id → digests, for `ImageListForCVE` (`index.rs`).
    index: CveIndex,
}

/// What reading one layer came to.
enum LayerRead {
    Done,
    /// A foreign layer the registry does not hold: skipped.
    Absent,
    /// The layer could not be read: the manifest is not scannable.
    Failed(ScanError),
}

impl From<Result<(), ScanError>> for LayerRead {
    fn from(r: Result<(), ScanError>) -> LayerRead {
        match r {
            Ok(()) => LayerRead::Done,
            Err(e) => LayerRead::Failed(e),
        }
    }
}

/// Why a manifest was not scanned this time.
#[derive(Debug, thiserror::Error)]
enum Skip {
    #[error("{0}")]
    Storage(#[from] zot_storage::StorageError),
    #[error("{0}")]
    Meta(#[from] zot_meta::MetaError),
    #[error("{0}")]
    Db(#[from] zot_vulndb::DbError),
    #[error("background task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Name(String),
    #[error("{0}")]
    Idle(#[from] crate::idle::Gone),
}

impl Skip {
    /// A condition that passes (the storage or the metadata store could
    /// not be reached): the scan is worth trying again later.
    fn is_passing(&self) -> bool {
        match self {
            Skip::Storage(e) => {
                e.is_storage_unavailable()
                    || matches!(
                        e,
                        zot_storage::StorageError::Io(_) | zot_storage::StorageError::Shared(_)
                    )
                    || matches!(e, zot_storage::StorageError::Meta(m) if m.is_unavailable())
            }
            Skip::Meta(m) => m.is_unavailable(),
            _ => false,
        }
    }
}

impl CveScanner {
    pub fn new(stores: Stores, db: Arc<VulnDb>) -> Arc<CveScanner> {
        Self::with_sbom(stores, db, None)
    }

    /// A scanner that also attaches an SBOM to each manifest it scans.
    pub fn with_sbom(stores: Stores, db: Arc<VulnDb>, sbom: Option<SbomFormat>) -> Arc<CveScanner> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(CveScanner {
            stores,
            db,
            tx,
            rx: tokio::sync::Mutex::new(rx),
            queued: Mutex::default(),
            cache: Mutex::new((HashMap::new(), 0)),
            counters: Counters::default(),
            wanted: Notify::new(),
            unmatched: AtomicBool::new(false),
            sbom,
            index: CveIndex::default(),
        })
    }

    pub fn db(&self) -> &Arc<VulnDb> {
        &self.db
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Manifests waiting to be scanned.
    pub fn queue_len(&self) -> usize {
        self.queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Queues a scan of `digest` of `repo` (a no-op when it is queued
    /// already). Cheap: for the push path.
    pub fn enqueue(&self, repo: &str, digest: &Digest) {
        let fresh = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.clone());
        if fresh {
            let _ = self.tx.send(Job {
                repo: repo.to_owned(),
                digest: digest.clone(),
                attempt: 0,
            });
        }
    }

    /// Queues a job again (a retry), unless the digest is queued already.
    fn requeue(&self, job: Job) {
        let fresh = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.digest.clone());
        if fresh {
            let _ = self.tx.send(job);
        }
    }

    /// Queues every manifest of every store that has no current scan
    /// record (at start-up); returns how many.
    pub async fn enqueue_unscanned(self: &Arc<Self>) -> usize {
        let mut n = 0;
        for reg in self.stores.distinct() {
            let r = Arc::clone(reg);
            let sbom = self.sbom;
            let found = tokio::task::spawn_blocking(move || -> Result<Vec<_>, Skip> {
                let meta = r.metadata();
                let mut out = Vec::new();
                for (repo, record) in meta.all_manifests()? {
                    if is_index(&record.media_type) {
                        continue;
                    }
                    let stored = meta
                        .scan(&record.digest.to_string())?
                        .and_then(|b| ScanRecord::from_bytes(&b))
                        .filter(ScanRecord::is_current);
                    let wanted = match &stored {
                        None => true,
                        // Scanned before SBOMs were asked for, or in
                        // another repository only: the SBOM is missing.
                        Some(ScanRecord::Inventory(_)) => {
                            sbom.is_some_and(|f| !has_sbom(&r, &repo, &record.digest, f))
                        }
                        Some(ScanRecord::Unscannable(_)) => false,
                    };
                    if wanted {
                        out.push((repo, record.digest));
                    }
                }
                Ok(out)
            })
            .await;
            match found {
                Ok(Ok(list)) => {
                    for (repo, digest) in list {
                        self.enqueue(&repo, &digest);
                        n += 1;
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cve: listing manifests to scan"),
                Err(e) => tracing::warn!(error = %e, "cve: listing manifests to scan"),
            }
        }
        n
    }

    /// Runs the queue: one scan at a time, each with one of `permits`.
    pub async fn run_queue(self: Arc<Self>, permits: Arc<Semaphore>) {
        let mut rx = self.rx.lock().await;
        while let Some(job) = rx.recv().await {
            let Ok(permit) = permits.acquire().await else {
                return;
            };
            let started = std::time::Instant::now();
            match self.process(&job).await {
                Ok(()) => {
                    tracing::debug!(repo = %job.repo, digest = %job.digest, ms = started.elapsed().as_millis() as u64, "cve: manifest scanned")
                }
                Err(e) => match retry_delay(job.attempt).filter(|_| e.is_passing()) {
                    Some(delay) => {
                        tracing::warn!(repo = %job.repo, digest = %job.digest, error = %e, retry_in_s = delay.as_secs(), "cve: scan failed; tried again later");
                        let me = Arc::clone(&self);
                        let again = Job {
                            repo: job.repo.clone(),
                            digest: job.digest.clone(),
                            attempt: job.attempt + 1,
                        };
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            me.requeue(again);
                        });
                    }
                    None => {
                        tracing::warn!(repo = %job.repo, digest = %job.digest, error = %e, "cve: scan skipped")
                    }
                },
            }
            drop(permit);
            self.queued
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&job.digest);
            tokio::task::yield_now().await;
        }
    }

    async fn process(&self, job: &Job) -> Result<(), Skip> {
        let reg = Arc::clone(self.stores.route(&job.repo));
        let key = job.digest.to_string();
        let r = Arc::clone(&reg);
        let k = key.clone();
        let stored = tokio::task::spawn_blocking(move || r.metadata().scan(&k)).await??;
        let record = match stored.and_then(|b| ScanRecord::from_bytes(&b)) {
            Some(r) if r.is_current() => r,
            _ => {
                let Some(record) = self.scan(&reg, job).await? else {
                    return Ok(());
                };
                let (r, k, bytes) = (Arc::clone(&reg), key.clone(), record.to_bytes());
                tokio::task::spawn_blocking(move || r.metadata().put_scan(&k, &bytes)).await??;
                self.counters
                    .manifests_scanned
                    .fetch_add(1, Ordering::Relaxed);
                record
            }
        };
        // Whether the inventory is fresh or stored (the same manifest
        // scanned in another repository, or before SBOMs were asked for):
        // `attach` reads the repository's referrers first, so each
        // repository gets one SBOM per manifest.
        if let (ScanRecord::Inventory(inventory), Some(format)) = (&record, self.sbom) {
            crate::sbom::attach_logged(&reg, &job.repo, &job.digest, inventory, format).await;
        }
        match &record {
            ScanRecord::Unscannable(e) => {
                self.remember(&job.digest, ScanState::Unscannable(e.clone()));
            }
            ScanRecord::Inventory(inventory) => {
                self.want_ecosystems(inventory);
                if let Some(list) = self.match_one(&reg, &job.digest, inventory).await? {
                    self.report(&reg, job, &list).await;
                }
            }
        }
        Ok(())
    }

    /// Reads the manifest's layers into an inventory; `None` for an index
    /// (aggregated by search) or a manifest gone meanwhile.
    async fn scan(&self, reg: &Arc<Registry>, job: &Job) -> Result<Option<ScanRecord>, Skip> {
        let repo: RepoName = job
            .repo
            .parse()
            .map_err(|e: zot_oci::NameError| Skip::Name(e.to_string()))?;
        let record = match reg.manifest_record(&repo, &Reference::Digest(job.digest.clone())) {
            Ok(r) => r,
            Err(zot_storage::StorageError::ManifestUnknown) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let body = reg.manifest_bytes(&repo, &record).await?;
        let parsed = match ParsedManifest::parse(&body, Some(&record.media_type), true) {
            Ok(p) => p,
            Err(e) => return Ok(Some(ScanRecord::Unscannable(e.to_string()))),
        };
        if parsed.kind.is_index() {
            return Ok(None);
        }
        if let Some(l) = parsed
            .layers
            .iter()
            .find(|l| !is_scannable_layer(&l.media_type))
        {
            return Ok(Some(ScanRecord::Unscannable(
                ScanError::UnsupportedMediaType(l.media_type.clone()).to_string(),
            )));
        }
        let mut scanner = Scanner::new(Limits::default());
        for layer in &parsed.layers {
            let (back, read) = self.read_layer(reg, &repo, layer, scanner).await?;
            scanner = back;
            match read {
                LayerRead::Done => {}
                LayerRead::Absent => continue,
                LayerRead::Failed(e) => {
                    tracing::warn!(repo = %job.repo, digest = %job.digest, layer = %layer.digest, error = %e, "cve: layer could not be read");
                    return Ok(Some(ScanRecord::Unscannable(e.to_string())));
                }
            }
        }
        Ok(Some(ScanRecord::Inventory(scanner.finish())))
    }

    /// Adds one layer to `scanner`, read on the low-priority thread
    /// (`idle.rs`): a local blob's file is opened and read there, so the
    /// reads are that thread's work too; other backends' streams are
    /// bridged to it.
    async fn read_layer(
        &self,
        reg: &Arc<Registry>,
        repo: &RepoName,
        layer: &zot_oci::Descriptor,
        mut scanner: Scanner,
    ) -> Result<(Scanner, LayerRead), Skip> {
        // A foreign layer the registry need not hold.
        let foreign =
            zot_oci::media_types::NON_DISTRIBUTABLE_LAYERS.contains(&layer.media_type.as_str());
        let (r, name, digest) = (Arc::clone(reg), repo.clone(), layer.digest.clone());
        let (media_type, size) = (layer.media_type.clone(), layer.size);
        let (back, read) = crate::idle::run(move || {
            let file = match r.blob_file(&name, &digest) {
                Ok(Some(file)) => file,
                Ok(None) => return (scanner, None),
                Err(e) => return (scanner, Some(Err(e))),
            };
            // Reads of 32 KiB and more (the decoders') bypass the buffer.
            let reader = crate::idle::Turns(std::io::BufReader::with_capacity(
                32 << 10,
                std::io::Read::take(file, size),
            ));
            let result = scanner.add_layer_sync(&media_type, reader);
            (scanner, Some(Ok(result)))
        })
        .await?;
        scanner = back;
        match read {
            // No local file: the backend's stream, below.
            None => {}
            Some(Err(zot_storage::StorageError::BlobUnknown)) if foreign => {
                return Ok((scanner, LayerRead::Absent));
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(result)) => {
                self.counters.layers_read.fetch_add(1, Ordering::Relaxed);
                return Ok((scanner, LayerRead::from(result)));
            }
        }
        let stream = match reg.blob_stream(repo, &layer.digest, 0, layer.size).await {
            Ok(s) => s,
            Err(zot_storage::StorageError::BlobUnknown) if foreign => {
                return Ok((scanner, LayerRead::Absent));
            }
            Err(e) => return Err(e.into()),
        };
        self.counters.layers_read.fetch_add(1, Ordering::Relaxed);
        let reader = crate::idle::Turns(tokio_util::io::SyncIoBridge::new(
            tokio_util::io::StreamReader::new(stream),
        ));
        let media_type = layer.media_type.clone();
        let (back, result) = crate::idle::run(move || {
            let result = scanner.add_layer_sync(&media_type, reader);
            (scanner, result)
        })
        .await?;
        Ok((back, LayerRead::from(result)))
    }

    /// Matches one inventory against the current database, unless its
    /// stored findings are of that version already; stores and returns
    /// them (`None`: no database yet, or nothing to do).
    async fn match_one(
        &self,
        reg: &Arc<Registry>,
        digest: &Digest,
        inventory: &Inventory,
    ) -> Result<Option<Vec<StoredCve>>, Skip> {
        let Some(snapshot) = self.db.current() else {
            self.unmatched.store(true, Ordering::Release);
            self.wanted.notify_one();
            return Ok(None);
        };
        let version = snapshot.info().version;
        let (r, key) = (Arc::clone(reg), digest.to_string());
        let current = tokio::task::spawn_blocking(move || r.metadata().findings(&key)).await??;
        if current.is_some_and(|(v, _)| v == version) {
            return Ok(None);
        }
        // Only the matching on the low-priority thread: it takes no lock
        // a request could wait for (the metadata write below runs at
        // normal priority, on the blocking pool).
        let inv = inventory.clone();
        let (list, bytes) = crate::idle::run(move || -> Result<_, Skip> {
            let list = group(match_inventory(&inv, snapshot.as_ref())?);
            let bytes = serde_json::to_vec(&list).unwrap_or_default();
            Ok((list, bytes))
        })
        .await??;
        let (r, key) = (Arc::clone(reg), digest.to_string());
        tokio::task::spawn_blocking(move || r.metadata().put_findings(&[(key, version, bytes)]))
            .await??;
        self.index.update(digest, &list);
        self.counters
            .manifests_matched
            .fetch_add(1, Ordering::Relaxed);
        self.remember(digest, scanned(list.clone()));
        Ok(Some(list))
    }

    /// zot's `image.scanned` event of a fresh result.
    async fn report(&self, reg: &Arc<Registry>, job: &Job, list: &[StoredCve]) {
        let records: Vec<CveRecord> = list.iter().cloned().map(to_record).collect();
        let s = zot_search::cve::summary(&records);
        let n = |v: Option<i32>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
        let summary = zot_storage::events::ScanSummary {
            count: n(s.count),
            fixable_count: list
                .iter()
                .filter(|c| c.packages.iter().any(|p| p.fixed.is_some()))
                .count() as u64,
            unknown_count: n(s.unknown_count),
            low_count: n(s.low_count),
            medium_count: n(s.medium_count),
            high_count: n(s.high_count),
            critical_count: n(s.critical_count),
            max_severity: s.max_severity.unwrap_or_default(),
        };
        let Ok(repo) = job.repo.parse::<RepoName>() else {
            return;
        };
        let media_type = reg
            .manifest_record(&repo, &Reference::Digest(job.digest.clone()))
            .map(|r| r.media_type)
            .unwrap_or_default();
        let reference = job.digest.to_string();
        let image = zot_storage::events::Image {
            reference: &reference,
            digest: &job.digest,
            media_type: &media_type,
        };
        if let Err(e) = reg.record_scanned(&repo, &image, &summary).await {
            tracing::warn!(repo = %job.repo, error = %e, "cve: recording image.scanned");
        }
    }

    /// Whether inventories were stored without a database since the last
    /// call (they need a re-match once there is one).
    pub fn take_unmatched(&self) -> bool {
        self.unmatched.swap(false, Ordering::AcqRel)
    }

    /// The ecosystem families stored inventories need (for a URL source
    /// without configured ecosystems: only those are fetched).
    pub async fn needed_ecosystems(&self) -> Vec<String> {
        let regs: Vec<Arc<Registry>> = self.stores.distinct().into_iter().cloned().collect();
        let found = tokio::task::spawn_blocking(move || {
            let mut out = std::collections::BTreeSet::new();
            for reg in regs {
                let meta = reg.metadata();
                for digest in meta.scanned_digests().unwrap_or_default() {
                    if let Some(ScanRecord::Inventory(inv)) = meta
                        .scan(&digest)
                        .ok()
                        .flatten()
                        .and_then(|b| ScanRecord::from_bytes(&b))
                    {
                        out.extend(
                            zot_vulndb::ecosystems_for(&inv)
                                .into_iter()
                                .map(str::to_owned),
                        );
                    }
                }
            }
            out.into_iter().collect()
        })
        .await;
        found.unwrap_or_default()
    }

    /// Wakes the database refresh when `inventory` needs an ecosystem the
    /// database was not built with (a URL source fetches only those).
    fn want_ecosystems(&self, inventory: &Inventory) {
        let have = self.db.info().map(|i| i.ecosystems).unwrap_or_default();
        if zot_vulndb::ecosystems_for(inventory)
            .iter()
            .any(|e| !have.iter().any(|h| h == e))
        {
            self.wanted.notify_one();
        }
    }

    fn remember(&self, digest: &Digest, state: ScanState) {
        let bytes = 128 + weight(&state);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.1 + bytes > CACHE_BYTES {
            cache.0.clear();
            cache.1 = 0;
        }
        if let Some(old) = cache.0.insert(digest.clone(), state) {
            cache.1 = cache.1.saturating_sub(128 + weight(&old));
        }
        cache.1 += bytes;
    }

    fn lookup(&self, repo: &str, digest: &Digest) -> Result<ScanState, zot_meta::MetaError> {
        let meta = self.stores.route(repo).metadata();
        let key = digest.to_string();
        if let Some((_, bytes)) = meta.findings(&key)? {
            let list: Vec<StoredCve> = serde_json::from_slice(&bytes)?;
            return Ok(scanned(list));
        }
        Ok(
            match meta.scan(&key)?.and_then(|b| ScanRecord::from_bytes(&b)) {
                Some(ScanRecord::Unscannable(e)) => ScanState::Unscannable(e),
                _ => ScanState::NotScanned,
            },
        )
    }
}

/// Roughly the bytes a state holds.
fn weight(state: &ScanState) -> usize {
    match state {
        ScanState::Scanned(list) => list
            .iter()
            .map(|c| {
                64 + c.id.len()
                    + c.title.len()
                    + c.description.len()
                    + c.reference.len()
                    + c.packages
                        .iter()
                        .map(|p| 48 + p.name.len() + p.path.len() + p.installed.len())
                        .sum::<usize>()
            })
            .sum(),
        ScanState::Unscannable(e) => e.len(),
        ScanState::NotScanned => 0,
    }
}

fn scanned(list: Vec<StoredCve>) -> ScanState {
    ScanState::Scanned(list.into_iter().map(to_record).collect())
}

fn is_index(media_type: &str) -> bool {
    ManifestKind::from_media_type(media_type).is_some_and(ManifestKind::is_index)
}

impl CveSource for CveScanner {
    fn digests_with(&self, id: &str) -> Option<Arc<HashSet<Digest>>> {
        self.index.digests_with(&self.stores, id)
    }

    fn state(&self, repo: &str, digest: &Digest) -> ScanState {
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(digest)
        {
            return hit.clone();
        }
        match self.lookup(repo, digest) {
            Ok(state) => {
                if !matches!(state, ScanState::NotScanned) {
                    self.remember(digest, state.clone());
                }
                state
            }
            Err(e) => {
                tracing::warn!(repo, %digest, error = %e, "cve: reading stored results");
                ScanState::NotScanned
            }
        }
    }
}

/// Whether `repo` holds an SBOM of `format` for `digest` (a name that does
/// not parse, or a read that fails, counts as holding one: nothing is
/// queued for it).
fn has_sbom(reg: &Registry, repo: &str, digest: &Digest, format: SbomFormat) -> bool {
    let Ok(name) = repo.parse::<RepoName>() else {
        return true;
    };
    reg.referrers(&name, digest, Some(format.media_type()))
        .map_or(true, |r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_failures_are_tried_again_with_back_off_then_given_up() {
        assert_eq!(retry_delay(0), Some(RETRY_AFTER));
        assert_eq!(retry_delay(1), Some(RETRY_AFTER * 2));
        assert_eq!(retry_delay(RETRIES - 1), Some(RETRY_AFTER * 32));
        assert_eq!(retry_delay(RETRIES), None);
        let away = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "S3 away");
        assert!(Skip::Storage(zot_storage::StorageError::Io(away)).is_passing());
        assert!(!Skip::Name("not a repository name".into()).is_passing());
        assert!(!Skip::Storage(zot_storage::StorageError::NameUnknown).is_passing());
    }
}

//! The registry's storage semantics over a [`Backend`] and the metadata
//! store: repositories as OCI image layouts, and the start-up
//! synchronisation of the metadata store with the layouts on disk.
//!
//! Invariants:
//! - Content is written before anything points at it: a blob file before
//!   the manifest that needs it, a manifest file before `index.json` lists
//!   it, `index.json` before the metadata store.
//! - Before a write changes `index.json`, a file whose fingerprint is not
//!   the recorded one (edited behind the registry's back) is re-read and
//!   the metadata rebuilt from it: a hand edit is never overwritten in the
//!   store.
//! - `index.json` of a repository is only rewritten under that repository's
//!   exclusive lock, so concurrent tag updates are serialized and none is
//!   lost; a blob is placed into a layout under the shared lock, with the
//!   layout present (see [`crate::locks`]).

use crate::backend::Backend;
use crate::documents::ListedManifest;
use crate::error::Result;
use crate::index::LayoutIndex;
use crate::paths;
use crate::uploads::UploadSessions;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zot_meta::{Change, ManifestRecord, MetaStore};
use zot_oci::{Descriptor, Digest, RepoName};

/// Stripes of the per-digest placement lock.
const DIGEST_LOCK_STRIPES: usize = 64;

/// Memory given to cached manifest bodies.
const MANIFEST_CACHE_BYTES: usize = 8 << 20;

/// Behaviour switches of the storage layer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Share identical blobs across repositories (hard links).
    pub dedupe: bool,
    /// Accept Docker schema2 manifests and manifest lists.
    pub docker2s2: bool,
    /// Idle time after which an upload session and its data are removed.
    pub upload_ttl: Duration,
    /// Open upload sessions allowed per repository: a client cannot make
    /// the registry hold unbounded state.
    pub max_uploads_per_repo: usize,
    /// Open upload sessions allowed in all repositories together.
    pub max_uploads: usize,
    /// Upload bodies one client (an address; an IPv6 client by its /64)
    /// may send at once; more are answered 429.
    pub max_upload_bodies_per_client: usize,
    /// Upload bodies all clients together may send at once. (With several
    /// stores, the API layer applies the default store's two bounds to
    /// every upload, so they hold for the whole server.)
    pub max_upload_bodies: usize,
    /// Annotations every pushed manifest must carry (`extensions.lint`).
    pub mandatory_annotations: Vec<String>,
    /// Keep the search extension's metadata (image records, pushers, tag
    /// times, download counts; see `search.rs`). Off: nothing beyond what
    /// the registry itself needs is derived or recorded.
    pub search: bool,
    /// Events (`extensions.events`): `Some(n)` keeps the events of changes
    /// in the metadata store's outbox, at most `n` (see `events.rs`).
    pub events: Option<u64>,
    /// On an object store, a verified upload of at least this many bytes
    /// whose move to its blob key would be a copy is acknowledged before
    /// the copy ("parked", `parked.rs`); `None`: never (the copy is made
    /// before the answer).
    pub park_min_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dedupe: true,
            docker2s2: true,
            upload_ttl: Duration::from_secs(3600),
            max_uploads_per_repo: 1024,
            max_uploads: 4096,
            max_upload_bodies_per_client: 64,
            max_upload_bodies: 256,
            mandatory_annotations: Vec::new(),
            search: false,
            events: None,
            park_min_bytes: Some(crate::parked::PARK_MIN_BYTES),
        }
    }
}

pub struct Registry {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) meta: Arc<MetaStore>,
    pub(crate) uploads: UploadSessions,
    pub(crate) options: Options,
    /// Bounds on upload bodies received at once.
    pub(crate) upload_bodies: crate::upload_limits::BodyGate,
    pub(crate) manifests: crate::cache::ManifestCache,
    repo_locks: crate::locks::RepoLocks,
    /// Waits for the repository and digest locks (see `stats.rs`).
    pub(crate) lock_stats: Arc<crate::stats::LockStats>,
    /// Striped locks serializing the placement of one digest.
    digest_locks: Vec<tokio::sync::Mutex<()>>,
    /// Repositories whose layout files (`oci-layout`, `index.json`) exist.
    initialised: Mutex<HashSet<RepoName>>,
    /// Recent blob placements and pending pull times (see `gc.rs`).
    pub(crate) lifecycle: crate::gc::Lifecycle,
    /// Told of every manifest stored (see [`Registry::on_manifest_stored`]).
    pub(crate) stored_listener: std::sync::OnceLock<ManifestListener>,
    /// The mandatory annotations lint checks now: `options`' at first,
    /// replaced by a configuration reload (`lint.rs`).
    pub(crate) lint: std::sync::RwLock<Arc<Vec<String>>>,
    /// Upload sessions kept in Redis for every instance (`shared_uploads.rs`);
    /// unset: in this process's memory (`uploads`).
    pub(crate) shared_uploads: std::sync::OnceLock<crate::shared_uploads::SharedUploads>,
    /// The queue of parked blobs' moves (`parked.rs`).
    pub(crate) parked: crate::parked::Mover,
}

/// Called with (repository, digest, media type) after a manifest was
/// stored (pushed or synced) and its metadata recorded. It runs on the
/// request's task: it must only hand the work on (a channel send).
pub type ManifestListener = Arc<dyn Fn(&RepoName, &Digest, &str) + Send + Sync>;

/// Rebuilds from the layout tried by [`Registry::reconcile`] while other
/// writers keep recording changes.
const RECONCILE_ATTEMPTS: usize = 8;

/// Repositories checked (and rebuilt) at once by start-up synchronisation.
pub(crate) const SYNC_CONCURRENCY: usize = 16;

/// What start-up synchronisation did with one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepoSync {
    Unchanged,
    Rebuilt,
    Broken,
}

/// One repository checked by start-up synchronisation, with the changes
/// of its rebuild (and its lock) when it was rebuilt.
type SyncedRepo<'r> = (
    &'r RepoName,
    RepoSync,
    Option<(crate::locks::ExclusiveGuard, Vec<Change>)>,
);

/// What start-up synchronisation found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub repositories: usize,
    pub rebuilt: usize,
    pub removed: usize,
    /// Layouts that could not be read (e.g. a corrupt `index.json`): logged, not served.
    pub broken: usize,
}

/// Conditional writes of one `index.json` update before giving up.
const INDEX_WRITE_ATTEMPTS: usize = 16;

fn parse_index(repo: &RepoName, bytes: &[u8]) -> Result<LayoutIndex> {
    LayoutIndex::parse(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{repo}/index.json: {e}"),
        )
        .into()
    })
}

impl Registry {
    /// A registry over `backend` and the metadata store `meta` (an
    /// `Arc` when several registries share one store, as instances on one
    /// bucket do).
    pub fn new(
        backend: Arc<dyn Backend>,
        meta: impl Into<Arc<MetaStore>>,
        options: Options,
    ) -> Registry {
        let meta = meta.into();
        let lock_stats = Arc::new(crate::stats::LockStats::default());
        meta.set_search(options.search);
        meta.set_outbox_limit(options.events.unwrap_or(0));
        Registry {
            backend,
            meta,
            uploads: UploadSessions::default(),
            upload_bodies: crate::upload_limits::BodyGate::new(
                options.max_upload_bodies_per_client,
                options.max_upload_bodies,
            ),
            lint: std::sync::RwLock::new(Arc::new(options.mandatory_annotations.clone())),
            options,
            manifests: crate::cache::ManifestCache::new(MANIFEST_CACHE_BYTES),
            repo_locks: crate::locks::RepoLocks::new(lock_stats.clone()),
            lock_stats,
            digest_locks: (0..DIGEST_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            initialised: Mutex::default(),
            lifecycle: crate::gc::Lifecycle::new(),
            stored_listener: std::sync::OnceLock::new(),
            shared_uploads: std::sync::OnceLock::new(),
            parked: crate::parked::Mover::default(),
        }
    }

    /// Sets the listener told of every manifest stored from now on (the
    /// vulnerability scanner's queue); only the first call has effect.
    pub fn on_manifest_stored(&self, listener: ManifestListener) {
        let _ = self.stored_listener.set(listener);
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The metadata store, for the delivery of its events outbox (which
    /// reads and acknowledges events; see `zot_meta::OutboxEvent`).
    pub fn outbox(&self) -> Arc<MetaStore> {
        self.meta.clone()
    }

    /// Sole use of `repo`: for writes of its `index.json` and its removal.
    pub(crate) async fn lock_repo(&self, repo: &RepoName) -> crate::locks::ExclusiveGuard {
        self.repo_locks.exclusive(repo).await
    }

    /// Shared use of `repo` with its layout present: for placing a blob into
    /// it. While the guard is held, GC cannot remove the layout.
    pub(crate) async fn placement_guard(
        &self,
        repo: &RepoName,
    ) -> Result<crate::locks::SharedGuard> {
        loop {
            self.ensure_layout(repo).await?;
            let guard = self.repo_locks.shared(repo).await;
            // GC may have removed the layout between the two (it forgets
            // it under the exclusive lock): then make it again.
            if self.layout_known(repo) {
                return Ok(guard);
            }
        }
    }

    fn layout_known(&self, repo: &RepoName) -> bool {
        self.initialised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(repo)
    }

    /// Upload sessions open now (for metrics; takes the sessions' table
    /// lock briefly).
    pub fn open_uploads(&self) -> usize {
        self.uploads.open_total()
    }

    /// Repositories whose lock is in use (idle ones are pruned).
    pub fn locked_repositories(&self) -> usize {
        self.repo_locks.len()
    }

    /// This process's lock of `digest` (see [`Registry::lock_digest`],
    /// which adds the lease across instances).
    pub(crate) async fn lock_digest_local(
        &self,
        digest: &Digest,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = digest
            .hex()
            .bytes()
            .take(8)
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let lock = &self.digest_locks[stripe % self.digest_locks.len()];
        let waits = self.lock_stats.of(crate::stats::LockKind::Digest);
        if let Ok(guard) = lock.try_lock() {
            waits.immediate();
            return guard;
        }
        let since = std::time::Instant::now();
        let guard = lock.lock().await;
        waits.waited(since);
        guard
    }

    /// Applies metadata changes on the blocking pool: a redb write may wait
    /// for another writer (or a durable flush) and must not stall a worker
    /// of the async runtime.
    pub(crate) async fn apply_meta(&self, repo: &RepoName, changes: Vec<Change>) -> Result<()> {
        self.lifecycle.note_changes(repo, &changes);
        let meta = self.meta.clone();
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || meta.apply(&repo, &changes))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Makes sure `repo` is an OCI image layout on disk.
    pub(crate) async fn ensure_layout(&self, repo: &RepoName) -> Result<()> {
        if self.layout_known(repo) {
            return Ok(());
        }
        let _guard = self.lock_repo(repo).await;
        if self.backend.size(&paths::oci_layout(repo)).await?.is_none() {
            self.backend
                .write_atomic(&paths::oci_layout(repo), paths::OCI_LAYOUT_CONTENT)
                .await?;
        }
        if self.backend.size(&paths::index(repo)).await?.is_none() {
            let mut changes = vec![self.write_index(repo, &LayoutIndex::default()).await?];
            if self.meta.events_enabled() {
                let event = crate::events::repository_created(repo);
                changes.push(Change::Event(Box::new(event)));
            }
            self.apply_meta(repo, changes).await?;
        }
        self.initialised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(repo.clone());
        Ok(())
    }

    /// Forgets that `repo`'s layout files exist (GC removed them).
    pub(crate) fn forget_layout(&self, repo: &RepoName) {
        self.initialised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(repo);
    }

    pub(crate) async fn read_index(&self, repo: &RepoName) -> Result<LayoutIndex> {
        if self.backend.conditional_writes() {
            return self.read_index_versioned(repo).await;
        }
        match self.backend.read(&paths::index(repo)).await {
            Ok(bytes) => parse_index(repo, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LayoutIndex::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// `index.json` with the version it was read at, for a conditional write.
    async fn read_index_versioned(&self, repo: &RepoName) -> Result<LayoutIndex> {
        match self.backend.read_versioned(&paths::index(repo)).await {
            Ok(v) => Ok(parse_index(repo, &v.data)?.read_at(Some(v.version), v.fingerprint)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(LayoutIndex::default().read_at(None, Default::default()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `index.json` and returns the change that records its new
    /// fingerprint. Call with the repository lock held.
    ///
    /// On a store with conditional writes (S3), the write succeeds only if
    /// `index.json` is still the version `index` was read at; when another
    /// writer (another instance) changed it meanwhile, this index's changes
    /// are applied to the newer one ([`LayoutIndex::rebase`]) and the write
    /// retried, so neither loses the other's update. The fingerprint then
    /// recorded (also when what was read is not what the metadata store
    /// reflects) matches nothing, so the next write re-reads the layout
    /// and the metadata store learns the other writer's changes.
    pub(crate) async fn write_index(&self, repo: &RepoName, index: &LayoutIndex) -> Result<Change> {
        let key = paths::index(repo);
        if !self.backend.conditional_writes() {
            self.backend.write_atomic(&key, &index.to_bytes()).await?;
            let fp = self.backend.fingerprint(&key).await?.unwrap_or_default();
            return Ok(Change::SetFingerprint(fp));
        }
        let mut candidate = None::<LayoutIndex>;
        for _ in 0..INDEX_WRITE_ATTEMPTS {
            let next = candidate.as_ref().unwrap_or(index);
            let written = self
                .backend
                .write_atomic_if(&key, &next.to_bytes(), next.base_version())
                .await?;
            if let Some(fp) = written {
                // What was read may already hold another writer's changes
                // that the metadata store has not seen (written after the
                // caller's reconcile): then the next write re-reads too.
                let seen = index.base_fingerprint().is_none_or(|read| {
                    self.meta
                        .fingerprint(repo.as_str())
                        .is_ok_and(|stored| stored.as_ref() == Some(read))
                });
                let fp = match candidate {
                    None if seen => fp,
                    _ => zot_meta::Fingerprint::default(),
                };
                return Ok(Change::SetFingerprint(fp));
            }
            tracing::info!(%repo, "index.json changed by another writer: merging and retrying");
            candidate = Some(index.rebase(self.read_index_versioned(repo).await?));
        }
        Err(std::io::Error::other(format!(
            "{repo}/index.json: still changing after {INDEX_WRITE_ATTEMPTS} conditional writes"
        ))
        .into())
    }

    /// Finds every layout under the root and brings the metadata store in
    /// step with it: repositories whose `index.json` changed (or that the
    /// store does not know) are rebuilt from their layout without rehashing
    /// blobs; repositories that are gone are forgotten.
    pub async fn sync_from_disk(&self) -> Result<SyncReport> {
        use futures_util::StreamExt as _;
        let mut report = SyncReport::default();
        let found: HashSet<RepoName> = self.walk().await?.layouts.into_iter().collect();
        let found_names: HashSet<&str> = found.iter().map(RepoName::as_str).collect();
        let (known, _) = self.meta.repos(None, usize::MAX)?;
        for repo in known {
            if !found_names.contains(repo.as_str()) {
                self.meta.forget_repo(&repo)?;
                report.removed += 1;
            }
        }
        // Repositories are independent: checked and rebuilt several at a
        // time, so file latency overlaps (metadata commits still queue).
        // (Futures pushed by hand, not a stream combinator over a closure:
        // that would make this future not `Send` for every lifetime.)
        // In name order, so that a batch of rebuilds holds neighbours.
        let mut order: Vec<&RepoName> = found.iter().collect();
        order.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        // Every fingerprint compared at once (one stat sweep, one read
        // transaction): only the repositories that differ are visited.
        let stored = self.meta.fingerprints()?;
        let keys = order.iter().map(|r| paths::index(r)).collect();
        let on_disk = self.backend.fingerprints(keys).await;
        let mut changed = Vec::new();
        for (repo, fp) in order.into_iter().zip(on_disk) {
            match fp? {
                Some(fp) if stored.get(repo.as_str()) == Some(&fp) => {
                    self.initialised
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(repo.clone());
                }
                _ => changed.push(repo),
            }
        }
        let mut pending = changed.into_iter();
        let mut outcomes = futures_util::stream::FuturesUnordered::new();
        let mut fresh = HashSet::new();
        let mut batch = crate::rebuild_batch::RebuildBatch::default();
        loop {
            while outcomes.len() < SYNC_CONCURRENCY
                && let Some(repo) = pending.next()
            {
                outcomes.push(self.sync_repo(repo));
            }
            let Some(outcome) = outcomes.next().await else {
                break;
            };
            let (repo, outcome, rebuilt) = outcome?;
            match outcome {
                RepoSync::Unchanged => {}
                RepoSync::Rebuilt => report.rebuilt += 1,
                RepoSync::Broken => report.broken += 1,
            }
            if let Some((guard, changes)) = rebuilt {
                batch.push(repo.clone(), guard, changes);
                if batch.is_full() {
                    self.commit_batch(&mut batch).await?;
                }
            }
            if outcome != RepoSync::Unchanged {
                fresh.insert(repo);
            }
        }
        drop(outcomes);
        if batch.len() > 0 {
            self.commit_batch(&mut batch).await?;
        }
        report.repositories = found.len();
        let stale: Vec<&RepoName> = found.iter().filter(|r| !fresh.contains(r)).collect();
        self.sync_search_index(&stale).await?;
        Ok(report)
    }

    /// Checks one repository found on disk (see [`Registry::sync_from_disk`]):
    /// when its `index.json` is not the one the store was built from, reads
    /// its layout and returns the changes to commit (in a batch, see
    /// `rebuild_batch.rs`) with the repository's lock, held until then.
    async fn sync_repo<'r>(&self, repo: &'r RepoName) -> Result<SyncedRepo<'r>> {
        let on_disk = self.backend.fingerprint(&paths::index(repo)).await?;
        let stored = self.meta.fingerprint(repo.as_str())?;
        let mut outcome = RepoSync::Unchanged;
        let mut rebuilt = None;
        if on_disk.is_none() || on_disk != stored {
            let guard = self.lock_repo(repo).await;
            match self.layout_changes(repo).await {
                Ok(changes) => rebuilt = Some((guard, changes)),
                Err(e) => {
                    // One broken layout must not take the others down.
                    tracing::error!(%repo, error = %e, "cannot read this layout; it is not served");
                    self.meta.forget_repo(repo.as_str())?;
                    return Ok((repo, RepoSync::Broken, None));
                }
            }
            outcome = RepoSync::Rebuilt;
        }
        self.initialised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(repo.clone());
        Ok((repo, outcome, rebuilt))
    }

    /// Re-reads the layout of `repo` if its `index.json` is not the one the
    /// metadata store was built from (edited by hand or by another tool
    /// while the registry runs), so that a write does not build on stale
    /// metadata and record the new fingerprint over the edit. Call with the
    /// repository's exclusive lock held, before reading `index.json` to
    /// change it.
    pub(crate) async fn reconcile(&self, repo: &RepoName) -> Result<()> {
        for _ in 0..RECONCILE_ATTEMPTS {
            let stored = self.meta.fingerprint(repo.as_str())?;
            let on_disk = self.backend.fingerprint(&paths::index(repo)).await?;
            if on_disk.is_none() || on_disk == stored {
                return Ok(());
            }
            tracing::warn!(%repo, "index.json changed behind the registry's back: re-reading the layout");
            // Replaced only if no other writer (another instance sharing
            // the metadata store) recorded a change since `stored` was
            // read: a layout read before its index.json write would undo
            // it (a tag it just pushed gone from every listing).
            let changes = self.layout_changes(repo).await?;
            let meta = self.meta.clone();
            let name = repo.clone();
            let replaced = tokio::task::spawn_blocking(move || {
                meta.replace_repo_if(&name, &changes, stored.as_ref())
            })
            .await
            .map_err(std::io::Error::other)??;
            if replaced {
                tracing::info!(%repo, "rebuilt metadata from the layout");
                return Ok(());
            }
        }
        Err(std::io::Error::other(format!(
            "{repo}: its metadata kept changing while it was rebuilt from the layout"
        ))
        .into())
    }

    /// Reads the layout of `repo` and returns the changes that make its
    /// metadata (replacing every row, see [`MetaStore::replace_repo`]);
    /// every blob of the layout is noted as just placed for GC. Call with
    /// the repository's exclusive lock held, and keep it until the changes
    /// are applied.
    pub(crate) async fn layout_changes(&self, repo: &RepoName) -> Result<Vec<Change>> {
        let fingerprint = match self.backend.fingerprint(&paths::index(repo)).await? {
            Some(fp) => Change::SetFingerprint(fp),
            None => self.write_index(repo, &LayoutIndex::default()).await?,
        };
        let index = self.read_index(repo).await?;
        let mut changes = vec![fingerprint];
        changes.extend(self.layout_blob_changes(repo).await?);
        let mut seen = HashSet::new();
        // Image records are content-addressed: those kept are not derived again.
        let known_images = if self.options.search {
            self.meta.image_digests(repo.as_str())?
        } else {
            HashSet::new()
        };
        let mut to_derive = Vec::new();
        let mut queue: Vec<(Descriptor, Option<String>)> = index.descriptors();
        // The manifests index.json lists, read in one batch (an index's
        // children it does not list are read one by one below).
        let mut listed: Vec<Digest> = queue.iter().map(|(d, _)| d.digest.clone()).collect();
        listed.sort_unstable();
        listed.dedup();
        let mut prefetched = self.read_documents(repo, listed).await;
        while let Some((desc, tag)) = queue.pop() {
            let rec = ManifestRecord {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: desc.size,
            };
            match tag {
                Some(tag) if tag.parse::<zot_oci::Tag>().is_ok() => {
                    changes.push(Change::SetTag(tag, rec.clone()))
                }
                Some(tag) => tracing::warn!(
                    %repo,
                    tag,
                    "index.json names a tag that is not a valid OCI tag; it is not listed"
                ),
                None => {}
            }
            if !seen.insert(desc.digest.clone()) {
                continue;
            }
            let digest = &desc.digest;
            let (listed, bytes) = match prefetched.remove(digest) {
                Some(read) => self.listed_from(repo, &desc, read).await,
                None => self.read_listed(repo, &desc).await,
            };
            let parsed = match listed {
                ListedManifest::Parsed(parsed) => *parsed,
                ListedManifest::NotManifest { why, .. } => {
                    // Not a manifest we understand: served as is, not walked.
                    tracing::warn!(%repo, %digest, error = %why, "manifest listed in index.json cannot be parsed");
                    changes.push(Change::PutManifest(rec));
                    continue;
                }
                ListedManifest::Missing => {
                    tracing::warn!(%repo, %digest, "manifest listed in index.json is missing");
                    continue;
                }
                ListedManifest::TooLarge(size) => {
                    tracing::warn!(%repo, %digest, size, "manifest listed in index.json is larger than a manifest may be; not served");
                    continue;
                }
                ListedManifest::Unreadable(e) => {
                    tracing::warn!(%repo, %digest, error = %e, "manifest listed in index.json cannot be read");
                    continue;
                }
            };
            changes.push(Change::PutManifest(rec));
            if let Some(subject) = &parsed.subject {
                changes.push(Change::PutReferrer {
                    subject: subject.digest.clone(),
                    descriptor: crate::manifests::referrer_descriptor(&desc, &parsed),
                });
            }
            queue.extend(parsed.manifests.iter().map(|m| (m.clone(), None)));
            if self.options.search && !known_images.contains(digest) {
                to_derive.push(crate::search::ToDerive {
                    digest: digest.clone(),
                    parsed,
                    bytes,
                });
            }
        }
        let images = self.derive_images(repo, to_derive).await;
        changes.extend(images.into_iter().map(|m| Change::PutImage(Box::new(m))));
        // Every blob of the rebuilt layout counts as just placed for GC (so a
        // GC run that rebuilds a layout removes none of its blobs); push and
        // pull times survive the rebuild in `replace_repo` (retention needs them).
        self.lifecycle.note_changes(repo, &changes);
        Ok(changes)
    }

    /// Repositories in lexical order after `last`, at most `n`, and whether more follow.
    pub fn catalog(&self, last: Option<&str>, n: usize) -> Result<(Vec<String>, bool)> {
        Ok(self.meta.repos(last, n)?)
    }

    /// Makes the metadata store's recent commits durable.
    pub fn flush_metadata(&self) -> Result<()> {
        Ok(self.meta.flush()?)
    }

    /// Whether the metadata store is usable: false from an I/O error (a
    /// full disk, say) until [`Registry::recover_metadata`] has recovered it.
    pub fn metadata_healthy(&self) -> bool {
        self.meta.healthy()
    }

    /// Whether the storage answered its latest request (an object store
    /// that failed one within the last seconds does not; no I/O here).
    pub fn storage_reachable(&self) -> bool {
        self.backend.reachable()
    }

    /// Checks the metadata store and, after an I/O error, reopens it and
    /// brings it back in step with the layouts (commits that were not
    /// durable are lost in the reopen; the repositories they touched are
    /// found stale and rebuilt). Returns whether it recovered the store;
    /// an error means it is still unusable (retry later).
    pub async fn recover_metadata(&self) -> Result<bool> {
        // An I/O error found by a read is noted too.
        let _ = self.meta.probe();
        if self.meta.healthy() {
            return Ok(false);
        }
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.reopen())
            .await
            .map_err(std::io::Error::other)??;
        self.sync_from_disk().await?;
        if self.meta.shared() {
            self.meta.set_synced_mark()?;
        }
        self.meta.flush()?;
        self.meta.mark_healthy();
        tracing::warn!(
            "metadata store reopened after an I/O error and back in step with the layouts"
        );
        Ok(true)
    }

    pub fn repo_exists(&self, repo: &RepoName) -> Result<bool> {
        Ok(self.meta.repo_exists(repo)?)
    }
}

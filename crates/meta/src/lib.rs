//! The embedded metadata store (redb): what must be answered fast without
//! reading the OCI layouts — tags, the repository list, the manifests of each
//! repository, referrers, and which repositories hold each blob.
//!
//! Invariants:
//! - The layouts on disk are the truth; this store is a cache of them. It is
//!   written *after* the layout it describes, so a crash can only leave it
//!   behind the disk, never ahead of it.
//! - Each repository row carries the fingerprint (size, mtime, inode) of the
//!   `index.json` it was built from; at start-up a repository whose
//!   fingerprint differs from the file on disk is rebuilt from the layout.
//! - Commits are not fsynced (`Durability::None`): redb keeps the file
//!   consistent, and anything lost is found stale and rebuilt. [`MetaStore::flush`],
//!   called every few seconds and at shutdown, makes them durable, so that a
//!   crash costs a rebuild of only the repositories changed since.
//! - An I/O error (a full disk during a flush, say) leaves redb refusing
//!   every later operation until it is opened again. The store then reports
//!   itself failed ([`MetaStore::healthy`] is false) until
//!   [`MetaStore::reopen`] has opened the file again (redb repairs it to the
//!   last durable commit) and the owner has brought it back in step with the
//!   layouts and called [`MetaStore::mark_healthy`].

mod apikeys;
mod dedupe;
mod fault;
mod outbox;
mod search;

pub use apikeys::ApiKeyRow;
pub use fault::FaultSwitch;
pub use outbox::{OutboxEvent, Queued};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
pub use search::cards::SavedCard;
pub use search::codec::{Reader as RecordReader, Writer as RecordWriter};
pub use search::{DigestRow, PrefList, Pull, SearchRepo, TagRow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest, RepoName};

/// repo -> fingerprint of its index.json (JSON of [`Fingerprint`]).
const REPOS: TableDefinition<&str, &[u8]> = TableDefinition::new("repos");
/// (repo, tag) -> manifest record.
const TAGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("tags");
/// (repo, digest) -> manifest record.
const MANIFESTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("manifests");
/// (repo, subject digest, referrer digest) -> descriptor of the referrer.
const REFERRERS: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("referrers");
/// (blob digest, repo) -> ().
const BLOBS: TableDefinition<(&str, &str), ()> = TableDefinition::new("blobs");
/// (repo, blob digest) -> (): the same rows keyed by repository.
const REPO_BLOBS: TableDefinition<(&str, &str), ()> = TableDefinition::new("repo_blobs");
/// (repo, manifest digest) -> (pushed, last pulled), seconds since the Unix
/// epoch (0: never), for retention policies. Pull times are written in
/// batches ([`MetaStore::record_pulls`]), never one write per request.
const TIMES: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("times");

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Another process (a running server) holds the store: nothing under
    /// the root may be touched.
    #[error(
        "the metadata store {0} is in use by another zot process (a running server?); stop it first"
    )]
    InUse(String),
    #[error("metadata store: {0}")]
    Db(#[from] redb::Error),
    #[error("metadata store record: {0}")]
    Record(#[from] serde_json::Error),
    #[error("metadata store record: {0}")]
    Encoding(String),
    #[error("metadata store: not open since an I/O error; it is being reopened")]
    Unavailable,
}

impl MetaError {
    /// An I/O error of the store's file, after which redb must be reopened.
    fn is_io(&self) -> bool {
        matches!(
            self,
            MetaError::Db(redb::Error::Io(_) | redb::Error::PreviousIo) | MetaError::Unavailable
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(impl From<$t> for MetaError { fn from(e: $t) -> Self { MetaError::Db(e.into()) } })*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T> = std::result::Result<T, MetaError>;

/// What the registry needs to serve a manifest without opening it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// Identity of an `index.json` as last synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

/// One change to a repository's metadata, applied atomically with others.
#[derive(Debug, Clone)]
pub enum Change {
    SetFingerprint(Fingerprint),
    PutManifest(ManifestRecord),
    RemoveManifest(Digest),
    SetTag(String, ManifestRecord),
    RemoveTag(String),
    PutReferrer {
        subject: Digest,
        descriptor: Descriptor,
    },
    RemoveReferrer {
        subject: Digest,
        referrer: Digest,
    },
    AddBlob(Digest),
    /// The repository's object of this blob holds its content (it is no
    /// placeholder): the blob's entry in the dedupe map (`dedupe.rs`).
    HoldsContent(Digest),
    RemoveBlob(Digest),
    /// The manifest was pushed at these seconds since the Unix epoch.
    Pushed(Digest, u64),
    /// Search: the manifest's derived record.
    PutImage(Box<ImageMeta>),
    /// Search: the manifest was pushed by this user (kept from its first push).
    PushedBy(Digest, String),
    /// Search: the tag was set at these Unix nanoseconds.
    Tagged(String, u64),
    /// Events: appended to the outbox (see `outbox`).
    Event(Box<OutboxEvent>),
}

/// When a manifest was pushed and last pulled (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Times {
    pub pushed: Option<u64>,
    pub pulled: Option<u64>,
}

/// Page cache of the store.
const CACHE_BYTES: usize = 8 << 20;

/// Makes one attempt at opening the database file.
type Opener = Box<dyn Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync>;

pub struct MetaStore {
    /// `None` only between a failed reopen and the next attempt.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    opener: Opener,
    /// Whether commits were made since the last durable one.
    dirty: AtomicBool,
    /// An I/O error happened and the store is not back in step yet.
    failed: AtomicBool,
    /// The search tables are kept (see `search`).
    search: AtomicBool,
    /// The events outbox's limit and wake-up (see `outbox`).
    outbox: outbox::OutboxState,
}

/// The open database, borrowed for the start of a transaction.
struct Db<'a>(RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for Db<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        match &*self.0 {
            Some(db) => db,
            None => unreachable!("Db is only made from an open database"),
        }
    }
}

/// Sorts after every name, tag and digest: the greatest char, which none contains.
const MAX: &str = "\u{10FFFF}";

fn prefix_end(s: &str) -> String {
    format!("{s}{MAX}")
}

impl MetaStore {
    /// Opens (or creates) the store at `path`. A file that cannot be opened
    /// (corrupt, or of another version) is removed and created anew: it is
    /// rebuilt from the layouts. An I/O error is returned as is.
    pub fn open(path: &Path) -> Result<MetaStore> {
        let file = path.to_path_buf();
        // redb's default page cache is 1 GiB; the hot lookups are few and
        // small, so a modest cache keeps the registry's memory flat.
        Self::open_with(
            path,
            Box::new(move || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create(&file)
            }),
        )
    }

    /// [`MetaStore::open`], on a file whose writes fail while `switch` says
    /// so: for tests of the recovery from I/O errors.
    pub fn open_with_faults(path: &Path, switch: FaultSwitch) -> Result<MetaStore> {
        let file = path.to_path_buf();
        Self::open_with(
            path,
            Box::new(move || {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&file)?;
                let backend = fault::FaultyFile {
                    inner: redb::backends::FileBackend::new(f)?,
                    switch: switch.clone(),
                };
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create_with_backend(backend)
            }),
        )
    }

    fn open_with(path: &Path, opener: Opener) -> Result<MetaStore> {
        let db = Self::open_db(path, &opener)?;
        Ok(MetaStore {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            opener,
            dirty: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            search: AtomicBool::new(false),
            outbox: outbox::OutboxState::default(),
        })
    }

    fn open_db(path: &Path, opener: &Opener) -> Result<Database> {
        let db = match opener() {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(MetaError::InUse(path.display().to_string()));
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => {
                return Err(redb::Error::Io(e).into());
            }
            Err(_) => {
                let _ = std::fs::remove_file(path);
                opener()?
            }
        };
        let txn = db.begin_write()?;
        {
            txn.open_table(REPOS)?;
            txn.open_table(TAGS)?;
            txn.open_table(MANIFESTS)?;
            txn.open_table(REFERRERS)?;
            txn.open_table(BLOBS)?;
            txn.open_table(REPO_BLOBS)?;
            txn.open_table(TIMES)?;
            search::create(&txn)?;
            dedupe::create(&txn)?;
            apikeys::create(&txn)?;
            outbox::create(&txn)?;
        }
        txn.commit()?;
        Ok(db)
    }

    /// The open database, or `Unavailable` after a failed reopen.
    fn db(&self) -> Result<Db<'_>> {
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(MetaError::Unavailable);
        }
        Ok(Db(guard))
    }

    /// Notes an I/O error in `r`: the store is failed until reopened and
    /// brought back in step.
    fn watch<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && e.is_io()
        {
            self.failed.store(true, Ordering::Release);
        }
        r
    }

    /// False from an I/O error until [`MetaStore::mark_healthy`].
    pub fn healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    /// Checks that the store can be read, noting an I/O error.
    pub fn probe(&self) -> Result<()> {
        self.watch(self.db().and_then(|db| {
            let txn = db.begin_read()?;
            txn.open_table(REPOS)?;
            Ok(())
        }))
    }

    /// Opens the file again (redb repairs it to its last durable commit;
    /// commits made since are lost and must be found stale and rebuilt by
    /// the owner, who then calls [`MetaStore::mark_healthy`]).
    pub fn reopen(&self) -> Result<()> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The old database must be closed first: it holds the file's lock,
        // and so does a transaction of it still running on another thread
        // (transactions outlive the guard they were begun under): give those
        // a moment to end before calling the file in use. Runs on the
        // blocking pool.
        drop(db.take());
        let mut tries = 0;
        let reopened = loop {
            match Self::open_db(&self.path, &self.opener) {
                Err(MetaError::InUse(_)) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        *db = Some(reopened);
        self.dirty.store(false, Ordering::Release);
        Ok(())
    }

    /// The store is back in step with the layouts after a [`MetaStore::reopen`].
    pub fn mark_healthy(&self) {
        self.failed.store(false, Ordering::Release);
    }

    /// Makes every commit so far durable, if there were any since the last flush.
    pub fn flush(&self) -> Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = self.watch((|| {
            let mut txn = self.db()?.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.commit()?;
            Ok(())
        })());
        if flushed.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        flushed
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(Durability::None)?;
        self.dirty.store(true, Ordering::Release);
        Ok(txn)
    }

    /// Applies `changes` to `repo` in one transaction, registering the
    /// repository if it is new.
    /// A change that carries an event is committed durably (see `outbox`).
    pub fn apply(&self, repo: &RepoName, changes: &[Change]) -> Result<()> {
        let event = self.events_enabled() && outbox::carries_event(changes);
        self.watch((|| {
            let mut txn = self.begin_write()?;
            if event {
                txn.set_durability(Durability::Immediate)?;
            }
            self.apply_in(&txn, repo.as_str(), changes)?;
            txn.commit()?;
            Ok(())
        })())?;
        if event {
            self.outbox.appended();
        }
        Ok(())
    }

    /// Replaces every row of `repo` by `changes` (a rebuild from its
    /// layout), in one transaction. Push and pull times are history the
    /// layout does not hold: they are kept for the manifests still there.
    pub fn replace_repo(&self, repo: &RepoName, changes: &[Change]) -> Result<()> {
        self.watch(self.replace_repo_once(repo.as_str(), changes))
    }

    fn replace_repo_once(&self, r: &str, changes: &[Change]) -> Result<()> {
        let txn = self.begin_write()?;
        self.replace_in(&txn, r, changes)?;
        txn.commit()?;
        Ok(())
    }

    /// [`MetaStore::replace_repo`] of several repositories in one
    /// transaction (a start-up rebuild of many layouts): one commit, and
    /// the B-tree pages that neighbouring repositories share are copied
    /// once rather than once per repository. All or nothing.
    pub fn replace_repos(&self, batch: &[(RepoName, Vec<Change>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.watch((|| {
            let txn = self.begin_write()?;
            for (repo, changes) in batch {
                self.replace_in(&txn, repo.as_str(), changes)?;
            }
            txn.commit()?;
            Ok(())
        })())
    }

    fn replace_in(&self, txn: &redb::WriteTransaction, r: &str, changes: &[Change]) -> Result<()> {
        Self::forget_in(txn, r, false)?;
        self.apply_in(txn, r, changes)?;
        {
            let manifests = txn.open_table(MANIFESTS)?;
            let mut times = txn.open_table(TIMES)?;
            let mut gone = Vec::new();
            for item in times.range((r, "")..(r, MAX))? {
                let d = item?.0.value().1.to_owned();
                if manifests.get((r, d.as_str()))?.is_none() {
                    gone.push(d);
                }
            }
            for d in gone {
                times.remove((r, d.as_str()))?;
            }
        }
        search::prune(txn, r)?;
        Ok(())
    }

    fn apply_in(&self, txn: &redb::WriteTransaction, r: &str, changes: &[Change]) -> Result<()> {
        let mut search_rows = search::Rows::new(txn);
        let mut events = Vec::new();
        {
            let mut repos = txn.open_table(REPOS)?;
            let mut tags = txn.open_table(TAGS)?;
            let mut manifests = txn.open_table(MANIFESTS)?;
            let mut referrers = txn.open_table(REFERRERS)?;
            let mut blobs = txn.open_table(BLOBS)?;
            let mut repo_blobs = txn.open_table(REPO_BLOBS)?;
            let mut times = txn.open_table(TIMES)?;
            if repos.get(r)?.is_none() {
                let fp = serde_json::to_vec(&Fingerprint::default())?;
                repos.insert(r, fp.as_slice())?;
            }
            for change in changes {
                search_rows.apply(r, change)?;
                match change {
                    Change::SetFingerprint(fp) => {
                        repos.insert(r, serde_json::to_vec(fp)?.as_slice())?;
                    }
                    Change::PutManifest(rec) => {
                        let d = rec.digest.to_string();
                        manifests.insert((r, d.as_str()), serde_json::to_vec(rec)?.as_slice())?;
                    }
                    Change::RemoveManifest(d) => {
                        manifests.remove((r, d.to_string().as_str()))?;
                        times.remove((r, d.to_string().as_str()))?;
                    }
                    Change::Pushed(d, secs) => {
                        let d = d.to_string();
                        let pulled = times.get((r, d.as_str()))?.map_or(0, |v| v.value().1);
                        times.insert((r, d.as_str()), (*secs, pulled))?;
                    }
                    Change::SetTag(tag, rec) => {
                        tags.insert((r, tag.as_str()), serde_json::to_vec(rec)?.as_slice())?;
                    }
                    Change::RemoveTag(tag) => {
                        tags.remove((r, tag.as_str()))?;
                    }
                    Change::PutReferrer {
                        subject,
                        descriptor,
                    } => {
                        let s = subject.to_string();
                        let d = descriptor.digest.to_string();
                        let v = serde_json::to_vec(descriptor)?;
                        referrers.insert((r, s.as_str(), d.as_str()), v.as_slice())?;
                    }
                    Change::RemoveReferrer { subject, referrer } => {
                        let s = subject.to_string();
                        referrers.remove((r, s.as_str(), referrer.to_string().as_str()))?;
                    }
                    Change::AddBlob(d) => {
                        let d = d.to_string();
                        blobs.insert((d.as_str(), r), ())?;
                        repo_blobs.insert((r, d.as_str()), ())?;
                    }
                    Change::RemoveBlob(d) => {
                        let d = d.to_string();
                        blobs.remove((d.as_str(), r))?;
                        repo_blobs.remove((r, d.as_str()))?;
                        dedupe::drop_if(txn, &d, r)?;
                    }
                    Change::HoldsContent(d) => dedupe::set(txn, &d.to_string(), r)?,
                    Change::PutImage(_) | Change::PushedBy(..) | Change::Tagged(..) => {}
                    Change::Event(e) => events.push(&**e),
                }
            }
        }
        drop(search_rows);
        outbox::append(txn, &events, self.outbox.limit())?;
        search::touched(txn, r, self.search_enabled())?;
        Ok(())
    }

    /// Removes every row of `repo` (when it is gone).
    pub fn forget_repo(&self, repo: &str) -> Result<()> {
        self.watch((|| {
            let txn = self.begin_write()?;
            Self::forget_in(&txn, repo, true)?;
            txn.commit()?;
            Ok(())
        })())
    }

    fn forget_in(txn: &redb::WriteTransaction, repo: &str, times_too: bool) -> Result<()> {
        {
            let mut repos = txn.open_table(REPOS)?;
            repos.remove(repo)?;
            let mut tags = txn.open_table(TAGS)?;
            tags.retain_in((repo, "")..(repo, MAX), |_, _| false)?;
            let mut manifests = txn.open_table(MANIFESTS)?;
            manifests.retain_in((repo, "")..(repo, MAX), |_, _| false)?;
            let mut referrers = txn.open_table(REFERRERS)?;
            referrers.retain_in((repo, "", "")..(repo, MAX, ""), |_, _| false)?;
            let mut repo_blobs = txn.open_table(REPO_BLOBS)?;
            let mut digests = Vec::new();
            for item in repo_blobs.range((repo, "")..(repo, MAX))? {
                digests.push(item?.0.value().1.to_owned());
            }
            repo_blobs.retain_in((repo, "")..(repo, MAX), |_, _| false)?;
            let mut blobs = txn.open_table(BLOBS)?;
            for d in digests {
                blobs.remove((d.as_str(), repo))?;
                dedupe::drop_if(txn, &d, repo)?;
            }
            if times_too {
                let mut times = txn.open_table(TIMES)?;
                times.retain_in((repo, "")..(repo, MAX), |_, _| false)?;
                search::forget(txn, repo)?;
            }
        }
        Ok(())
    }

    /// Records pull times in one transaction: `(repo, digest, seconds)`.
    /// Manifests the store does not know are skipped.
    pub fn record_pulls(&self, pulls: &[(RepoName, Digest, u64)]) -> Result<()> {
        let pulls: Vec<Pull> = pulls
            .iter()
            .map(|(repo, digest, secs)| Pull {
                repo: repo.clone(),
                digest: digest.clone(),
                secs: *secs,
                count: 0,
            })
            .collect();
        self.record_downloads(&pulls)
    }

    /// When the manifest was pushed and last pulled, as far as recorded.
    pub fn times(&self, repo: &RepoName, digest: &Digest) -> Result<Times> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(TIMES)?;
        let known = |s: u64| (s > 0).then_some(s);
        Ok(match t.get((repo.as_str(), digest.to_string().as_str()))? {
            Some(v) => {
                let (pushed, pulled) = v.value();
                Times {
                    pushed: known(pushed),
                    pulled: known(pulled),
                }
            }
            None => Times::default(),
        })
    }

    pub fn fingerprint(&self, repo: &str) -> Result<Option<Fingerprint>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPOS)?;
        Ok(match t.get(repo)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// The fingerprint of every repository, from one read transaction
    /// (start-up compares them all with the layouts).
    pub fn fingerprints(&self) -> Result<std::collections::HashMap<String, Fingerprint>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPOS)?;
        let mut out = std::collections::HashMap::new();
        for item in t.range::<&str>(..)? {
            let (k, v) = item?;
            out.insert(k.value().to_owned(), serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    pub fn repo_exists(&self, repo: &RepoName) -> Result<bool> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(REPOS)?.get(repo.as_str())?.is_some())
    }

    /// Repositories in lexical order after `last`, at most `n` (and whether more follow).
    pub fn repos(&self, last: Option<&str>, n: usize) -> Result<(Vec<String>, bool)> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPOS)?;
        let iter = match last {
            Some(l) => {
                t.range::<&str>((std::ops::Bound::Excluded(l), std::ops::Bound::Unbounded))?
            }
            None => t.range::<&str>(..)?,
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, _) = item?;
            if out.len() == n {
                return Ok((out, true));
            }
            out.push(k.value().to_owned());
        }
        Ok((out, false))
    }

    pub fn tag(&self, repo: &RepoName, tag: &str) -> Result<Option<ManifestRecord>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(TAGS)?;
        Ok(match t.get((repo.as_str(), tag))? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    pub fn manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(MANIFESTS)?;
        Ok(match t.get((repo.as_str(), digest.to_string().as_str()))? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Tags of `repo` pointing at `digest`.
    pub fn tags_of(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<String>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(TAGS)?;
        let r = repo.as_str();
        let mut out = Vec::new();
        for item in t.range((r, "")..(r, MAX))? {
            let (k, v) = item?;
            let rec: ManifestRecord = serde_json::from_slice(v.value())?;
            if rec.digest == *digest {
                out.push(k.value().1.to_owned());
            }
        }
        Ok(out)
    }

    /// Tags of `repo` in lexical order after `last`, at most `n` (and whether more follow).
    pub fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<(Vec<String>, bool)> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(TAGS)?;
        let r = repo.as_str();
        let start = match last {
            Some(l) => std::ops::Bound::Excluded((r, l)),
            None => std::ops::Bound::Included((r, "")),
        };
        let mut out = Vec::new();
        for item in t.range::<(&str, &str)>((start, std::ops::Bound::Excluded((r, MAX))))? {
            let (k, _) = item?;
            if out.len() == n {
                return Ok((out, true));
            }
            out.push(k.value().1.to_owned());
        }
        Ok((out, false))
    }

    pub fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Descriptor>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REFERRERS)?;
        let r = repo.as_str();
        let s = subject.to_string();
        let end = prefix_end(&s);
        let mut out = Vec::new();
        for item in t.range((r, s.as_str(), "")..(r, end.as_str(), ""))? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Repositories known to hold blob `digest`.
    pub fn blob_repos(&self, digest: &Digest) -> Result<Vec<String>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(BLOBS)?;
        let d = digest.to_string();
        let end = prefix_end(&d);
        let mut out = Vec::new();
        for item in t.range((d.as_str(), "")..(end.as_str(), ""))? {
            let (k, _) = item?;
            out.push(k.value().1.to_owned());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8) -> ManifestRecord {
        ManifestRecord {
            digest: Digest::sha256_of(&[n]),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: n.into(),
        }
    }

    #[test]
    fn tags_repos_and_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetaStore::open(&dir.path().join("m.redb")).unwrap();
        let a: RepoName = "a".parse().unwrap();
        let ab: RepoName = "a/b".parse().unwrap();
        for t in ["v3", "v1", "v2"] {
            m.apply(
                &a,
                &[
                    Change::PutManifest(rec(1)),
                    Change::SetTag(t.into(), rec(1)),
                ],
            )
            .unwrap();
        }
        m.apply(
            &ab,
            &[
                Change::SetTag("x".into(), rec(2)),
                Change::AddBlob(rec(2).digest),
            ],
        )
        .unwrap();
        assert_eq!(
            m.tags(&a, None, 10).unwrap(),
            (vec!["v1".into(), "v2".into(), "v3".into()], false)
        );
        assert_eq!(
            m.tags(&a, None, 2).unwrap(),
            (vec!["v1".into(), "v2".into()], true)
        );
        assert_eq!(
            m.tags(&a, Some("v1"), 5).unwrap(),
            (vec!["v2".into(), "v3".into()], false)
        );
        assert_eq!(m.tags(&ab, None, 5).unwrap().0, vec!["x".to_string()]);
        assert_eq!(
            m.repos(None, 10).unwrap().0,
            vec!["a".to_string(), "a/b".to_string()]
        );
        assert_eq!(m.repos(Some("a"), 10).unwrap().0, vec!["a/b".to_string()]);
        assert_eq!(m.tag(&a, "v2").unwrap(), Some(rec(1)));
        assert_eq!(m.tags_of(&a, &rec(1).digest).unwrap().len(), 3);
        assert_eq!(
            m.blob_repos(&rec(2).digest).unwrap(),
            vec!["a/b".to_string()]
        );
        m.forget_repo("a/b").unwrap();
        assert!(m.blob_repos(&rec(2).digest).unwrap().is_empty());
        assert_eq!(m.repos(None, 10).unwrap().0, vec!["a".to_string()]);
        assert_eq!(m.tags(&a, None, 10).unwrap().0.len(), 3);
    }

    #[test]
    fn an_io_error_is_recovered_by_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let switch = FaultSwitch::default();
        let m = MetaStore::open_with_faults(&dir.path().join("m.redb"), switch.clone()).unwrap();
        let a: RepoName = "a".parse().unwrap();
        m.apply(&a, &[Change::SetTag("v1".into(), rec(1))]).unwrap();
        m.flush().unwrap();
        m.apply(&a, &[Change::SetTag("v2".into(), rec(2))]).unwrap();

        // The disk fills up during the periodic flush.
        switch.fail_writes(true);
        assert!(m.flush().is_err());
        assert!(
            !m.healthy(),
            "an I/O error must leave the store reported failed"
        );
        switch.fail_writes(false);
        // Space is back, but redb refuses everything until it is reopened.
        assert!(m.apply(&a, &[Change::SetTag("v3".into(), rec(3))]).is_err());
        assert!(!m.healthy());

        m.reopen().unwrap();
        assert!(
            !m.healthy(),
            "healthy only once the owner has resynchronised"
        );
        m.mark_healthy();
        m.apply(&a, &[Change::SetTag("v3".into(), rec(3))]).unwrap();
        m.flush().unwrap();
        assert_eq!(m.tag(&a, "v1").unwrap(), Some(rec(1)));
        assert_eq!(m.tag(&a, "v3").unwrap(), Some(rec(3)));
        m.probe().unwrap();
        assert!(m.healthy());
    }

    #[test]
    fn referrers() {
        let dir = tempfile::tempdir().unwrap();
        let m = MetaStore::open(&dir.path().join("m.redb")).unwrap();
        let a: RepoName = "a".parse().unwrap();
        let subject = rec(9).digest;
        let desc = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: rec(1).digest,
            size: 1,
            artifact_type: Some("x/y".into()),
            annotations: None,
            platform: None,
            urls: None,
        };
        m.apply(
            &a,
            &[Change::PutReferrer {
                subject: subject.clone(),
                descriptor: desc.clone(),
            }],
        )
        .unwrap();
        assert_eq!(m.referrers(&a, &subject).unwrap(), vec![desc.clone()]);
        assert!(m.referrers(&a, &rec(1).digest).unwrap().is_empty());
        m.apply(
            &a,
            &[Change::RemoveReferrer {
                subject: subject.clone(),
                referrer: desc.digest,
            }],
        )
        .unwrap();
        assert!(m.referrers(&a, &subject).unwrap().is_empty());
    }
}

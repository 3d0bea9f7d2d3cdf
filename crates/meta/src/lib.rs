//! The metadata store: what must be answered fast without reading the OCI
//! layouts — tags, the repository list, the manifests of each repository,
//! referrers, and which repositories hold each blob — over an ordered
//! key-value layer (`kv`) kept either in an embedded redb file (one
//! process) or in Redis (shared by every instance of a scaled-out
//! registry; `storage.remoteCache` with a redis `cacheDriver`). The logic
//! of every table is written once, over that layer.
//!
//! Invariants:
//! - The layouts are the truth; this store is a cache of them. It is
//!   written *after* the layout it describes, so a crash can only leave it
//!   behind the layouts, never ahead of them.
//! - Each repository row carries the fingerprint of the `index.json` it
//!   was built from; at start-up a repository whose fingerprint differs
//!   from the layout's is rebuilt from the layout.
//! - redb commits are not fsynced unless they carry an event or an API key
//!   (`Durability::None`): redb keeps the file consistent, and anything
//!   lost is found stale and rebuilt. [`MetaStore::flush`], called every
//!   few seconds and at shutdown, makes them durable.
//! - An I/O error (a full disk during a flush; Redis unreachable) leaves
//!   the store reported failed ([`MetaStore::healthy`] is false) until
//!   [`MetaStore::reopen`] has reached it again and the owner has brought it
//!   back in step with the layouts and called [`MetaStore::mark_healthy`].
//!   Such errors answer [`MetaError::is_unavailable`].
//! - With Redis, every key starts with the configured key prefix: stores
//!   with different prefixes on one server never see each other's rows.

mod apikeys;
mod cve;
mod dedupe;
mod fault;
mod kv;
mod outbox;
mod search;
mod sessions;
mod sync_mark;

pub use apikeys::ApiKeyRow;
pub use fault::FaultSwitch;
pub use kv::redis_address::{RedisAddress, Sentinels};
pub use kv::redis_cluster::{ClusterNodes, is_redirect, is_redirect_value, key_slot};
pub use kv::sentinel_watch::MasterWatch;
pub use outbox::{OutboxEvent, Queued};
pub use search::cards::SavedCard;
pub use search::codec::{Reader as RecordReader, Writer as RecordWriter};
pub use search::{DigestRow, PrefList, Pull, SearchRepo, TagRow};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest, RepoName};

use kv::{Kv, Read, Write, all, delete_all, k2, k3, part, read_u64, under};

/// repo -> fingerprint of its index.json (JSON of [`Fingerprint`]).
const REPOS: &str = "repos";
/// (repo, tag) -> manifest record (JSON).
const TAGS: &str = "tags";
/// (repo, digest) -> manifest record (JSON).
const MANIFESTS: &str = "manifests";
/// (repo, subject digest, referrer digest) -> descriptor of the referrer (JSON).
const REFERRERS: &str = "referrers";
/// (blob digest, repo) -> "".
const BLOBS: &str = "blobs";
/// (repo, blob digest) -> "": the same rows keyed by repository.
const REPO_BLOBS: &str = "repo_blobs";
/// (repo, manifest digest) -> (pushed, last pulled), seconds since the
/// Unix epoch (0: never), two big-endian u64, for retention policies. Pull
/// times are written in batches ([`MetaStore::record_pulls`]), never one
/// write per request.
const TIMES: &str = "times";

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
    /// Redis answered with an error, or did not answer (`io`).
    #[error("metadata store (redis): {message}")]
    Remote { message: String, io: bool },
}

impl MetaError {
    /// An I/O error of the store, after which it must be reopened.
    fn is_io(&self) -> bool {
        matches!(
            self,
            MetaError::Db(redb::Error::Io(_) | redb::Error::PreviousIo)
                | MetaError::Unavailable
                | MetaError::Remote { io: true, .. }
        )
    }

    /// The store cannot be reached (a failed disk, Redis away): the request
    /// may succeed later (`503`), it is not a bug.
    pub fn is_unavailable(&self) -> bool {
        self.is_io()
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

fn times_value(pushed: u64, pulled: u64) -> [u8; 16] {
    let mut v = [0; 16];
    v[..8].copy_from_slice(&pushed.to_be_bytes());
    v[8..].copy_from_slice(&pulled.to_be_bytes());
    v
}

/// (pushed, pulled) of a `times` value.
fn times_of(v: &[u8]) -> (u64, u64) {
    (read_u64(v), read_u64(v.get(8..).unwrap_or(&[])))
}

pub struct MetaStore {
    kv: Box<dyn Kv>,
    /// An I/O error happened and the store is not back in step yet.
    failed: AtomicBool,
    /// The search tables are kept (see `search`).
    search: AtomicBool,
    /// The events outbox's limit and wake-up (see `outbox`).
    outbox: outbox::OutboxState,
}

impl MetaStore {
    /// Opens (or creates) the embedded store at `path`. A file that cannot
    /// be opened (corrupt, or of another version) is removed and created
    /// anew: it is rebuilt from the layouts. An I/O error is returned as is.
    pub fn open(path: &Path) -> Result<MetaStore> {
        let opener = kv::redb_kv::RedbKv::file_opener(path);
        Ok(Self::over(Box::new(kv::redb_kv::RedbKv::open(
            path, opener,
        )?)))
    }

    /// [`MetaStore::open`], on a file whose writes fail while `switch` says
    /// so: for tests of the recovery from I/O errors.
    pub fn open_with_faults(path: &Path, switch: FaultSwitch) -> Result<MetaStore> {
        let opener = kv::redb_kv::RedbKv::faulty_opener(path, switch);
        Ok(Self::over(Box::new(kv::redb_kv::RedbKv::open(
            path, opener,
        )?)))
    }

    /// The store in Redis at `address`, every key under `key_prefix`.
    /// Nothing is sent yet: when the server cannot be reached, the first
    /// operation fails with an error that [`MetaError::is_unavailable`]
    /// (see [`MetaStore::probe`]).
    pub fn open_redis(address: &RedisAddress, key_prefix: &str) -> Result<MetaStore> {
        Ok(Self::over(Box::new(kv::redis_kv::RedisKv::connect(
            address, key_prefix,
        )?)))
    }

    fn over(kv: Box<dyn Kv>) -> MetaStore {
        MetaStore {
            kv,
            failed: AtomicBool::new(false),
            search: AtomicBool::new(false),
            outbox: outbox::OutboxState::default(),
        }
    }

    /// Whether other processes share this store (Redis).
    pub fn shared(&self) -> bool {
        self.kv.shared()
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

    /// Runs `f` over a view of committed data.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Read) -> Result<T>) -> Result<T> {
        self.watch((|| {
            let mut r = self.kv.read()?;
            f(&mut *r)
        })())
    }

    /// Runs `f` in one atomic write (it may run more than once, see `kv`).
    fn write<T>(&self, durable: bool, mut f: impl FnMut(&mut dyn Write) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.watch(self.kv.write(durable, &mut |w| {
            out = Some(f(w)?);
            Ok(())
        }))?;
        out.ok_or_else(|| MetaError::Encoding("a write returned nothing".to_owned()))
    }

    /// False from an I/O error until [`MetaStore::mark_healthy`].
    pub fn healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    /// Checks that the store can be read, noting an I/O error.
    pub fn probe(&self) -> Result<()> {
        self.watch(self.kv.probe())
    }

    /// Opens the store again (redb repairs the file to its last durable
    /// commit; commits made since are lost and must be found stale and
    /// rebuilt by the owner, who then calls [`MetaStore::mark_healthy`];
    /// Redis is reached again).
    pub fn reopen(&self) -> Result<()> {
        self.kv.reopen()
    }

    /// The store is back in step with the layouts after a [`MetaStore::reopen`].
    pub fn mark_healthy(&self) {
        self.failed.store(false, Ordering::Release);
    }

    /// Makes every commit so far durable, if there were any since the last flush.
    pub fn flush(&self) -> Result<()> {
        self.watch(self.kv.flush())
    }

    /// Applies `changes` to `repo` in one transaction, registering the
    /// repository if it is new.
    /// A change that carries an event is committed durably (see `outbox`).
    pub fn apply(&self, repo: &RepoName, changes: &[Change]) -> Result<()> {
        let event = self.events_enabled() && outbox::carries_event(changes);
        self.write(event, |w| self.apply_in(w, repo.as_str(), changes))?;
        if event {
            self.outbox.appended();
        }
        Ok(())
    }

    /// Replaces every row of `repo` by `changes` (a rebuild from its
    /// layout), in one transaction. Push and pull times are history the
    /// layout does not hold: they are kept for the manifests still there.
    pub fn replace_repo(&self, repo: &RepoName, changes: &[Change]) -> Result<()> {
        self.write(false, |w| self.replace_in(w, repo.as_str(), changes))
    }

    /// [`MetaStore::replace_repo`] only if the repository's recorded
    /// fingerprint is still `expected` (checked in the same transaction):
    /// a rebuild from a layout read before another writer (another
    /// instance) recorded its change would otherwise undo that change.
    /// Whether it replaced.
    pub fn replace_repo_if(
        &self,
        repo: &RepoName,
        changes: &[Change],
        expected: Option<&Fingerprint>,
    ) -> Result<bool> {
        let r = repo.as_str();
        self.write(false, |w| {
            let stored = match w.get(REPOS, r.as_bytes())? {
                Some(v) => Some(serde_json::from_slice::<Fingerprint>(&v)?),
                None => None,
            };
            if stored.as_ref() != expected {
                return Ok(false);
            }
            self.replace_in(w, r, changes)?;
            Ok(true)
        })
    }

    /// [`MetaStore::replace_repo`] of several repositories in one
    /// transaction (a start-up rebuild of many layouts): one commit, and
    /// the B-tree pages that neighbouring repositories share are copied
    /// once rather than once per repository. All or nothing.
    pub fn replace_repos(&self, batch: &[(RepoName, Vec<Change>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(false, |w| {
            for (repo, changes) in batch {
                self.replace_in(w, repo.as_str(), changes)?;
            }
            Ok(())
        })
    }

    fn replace_in(&self, w: &mut dyn Write, r: &str, changes: &[Change]) -> Result<()> {
        Self::forget_in(w, r, false)?;
        self.apply_in(w, r, changes)?;
        for (k, _) in all(w, TIMES, &under(&[r]))? {
            if w.get(MANIFESTS, &k)?.is_none() {
                w.delete(TIMES, &k)?;
            }
        }
        search::prune(w, r)?;
        Ok(())
    }

    fn apply_in(&self, w: &mut dyn Write, r: &str, changes: &[Change]) -> Result<()> {
        let mut events = Vec::new();
        if w.get(REPOS, r.as_bytes())?.is_none() {
            let fp = serde_json::to_vec(&Fingerprint::default())?;
            w.put(REPOS, r.as_bytes(), &fp)?;
        }
        for change in changes {
            search::apply(w, r, change)?;
            match change {
                Change::SetFingerprint(fp) => {
                    w.put(REPOS, r.as_bytes(), &serde_json::to_vec(fp)?)?;
                }
                Change::PutManifest(rec) => {
                    let k = k2(r, &rec.digest.to_string());
                    w.put(MANIFESTS, &k, &serde_json::to_vec(rec)?)?;
                }
                Change::RemoveManifest(d) => {
                    let k = k2(r, &d.to_string());
                    w.delete(MANIFESTS, &k)?;
                    w.delete(TIMES, &k)?;
                }
                Change::Pushed(d, secs) => {
                    let k = k2(r, &d.to_string());
                    let pulled = w.get(TIMES, &k)?.map_or(0, |v| times_of(&v).1);
                    w.put(TIMES, &k, &times_value(*secs, pulled))?;
                }
                Change::SetTag(tag, rec) => {
                    w.put(TAGS, &k2(r, tag), &serde_json::to_vec(rec)?)?;
                }
                Change::RemoveTag(tag) => w.delete(TAGS, &k2(r, tag))?,
                Change::PutReferrer {
                    subject,
                    descriptor,
                } => {
                    let k = k3(r, &subject.to_string(), &descriptor.digest.to_string());
                    w.put(REFERRERS, &k, &serde_json::to_vec(descriptor)?)?;
                }
                Change::RemoveReferrer { subject, referrer } => {
                    let k = k3(r, &subject.to_string(), &referrer.to_string());
                    w.delete(REFERRERS, &k)?;
                }
                Change::AddBlob(d) => {
                    let d = d.to_string();
                    w.put(BLOBS, &k2(&d, r), b"")?;
                    w.put(REPO_BLOBS, &k2(r, &d), b"")?;
                }
                Change::RemoveBlob(d) => {
                    let d = d.to_string();
                    w.delete(BLOBS, &k2(&d, r))?;
                    w.delete(REPO_BLOBS, &k2(r, &d))?;
                    dedupe::drop_if(w, &d, r)?;
                }
                Change::HoldsContent(d) => dedupe::set(w, &d.to_string(), r)?,
                Change::PutImage(_) | Change::PushedBy(..) | Change::Tagged(..) => {}
                Change::Event(e) => events.push(&**e),
            }
        }
        outbox::append(w, &events, self.outbox.limit())?;
        search::touched(w, r, self.search_enabled())?;
        Ok(())
    }

    /// Removes every row of `repo` (when it is gone).
    pub fn forget_repo(&self, repo: &str) -> Result<()> {
        self.write(false, |w| Self::forget_in(w, repo, true))
    }

    fn forget_in(w: &mut dyn Write, repo: &str, times_too: bool) -> Result<()> {
        let range = under(&[repo]);
        w.delete(REPOS, repo.as_bytes())?;
        delete_all(w, TAGS, &range)?;
        delete_all(w, MANIFESTS, &range)?;
        delete_all(w, REFERRERS, &range)?;
        for k in delete_all(w, REPO_BLOBS, &range)? {
            let d = part(&k, 1);
            w.delete(BLOBS, &k2(&d, repo))?;
            dedupe::drop_if(w, &d, repo)?;
        }
        if times_too {
            delete_all(w, TIMES, &range)?;
            search::forget(w, repo)?;
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
        let v = self.read(|r| r.get(TIMES, &k2(repo.as_str(), &digest.to_string())))?;
        let known = |s: u64| (s > 0).then_some(s);
        Ok(match v {
            Some(v) => {
                let (pushed, pulled) = times_of(&v);
                Times {
                    pushed: known(pushed),
                    pulled: known(pulled),
                }
            }
            None => Times::default(),
        })
    }

    pub fn fingerprint(&self, repo: &str) -> Result<Option<Fingerprint>> {
        match self.read(|r| r.get(REPOS, repo.as_bytes()))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// The fingerprint of every repository, from one read (start-up
    /// compares them all with the layouts).
    pub fn fingerprints(&self) -> Result<std::collections::HashMap<String, Fingerprint>> {
        let rows = self.read(|r| r.range(REPOS, b"", None, usize::MAX))?;
        let mut out = std::collections::HashMap::new();
        for (k, v) in rows {
            out.insert(part(&k, 0), serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    pub fn repo_exists(&self, repo: &RepoName) -> Result<bool> {
        Ok(self
            .read(|r| r.get(REPOS, repo.as_str().as_bytes()))?
            .is_some())
    }

    /// Repositories in lexical order after `last`, at most `n` (and whether more follow).
    pub fn repos(&self, last: Option<&str>, n: usize) -> Result<(Vec<String>, bool)> {
        // The least key after `last`: `last` and a 0 byte (no name has one).
        let start = last.map_or_else(Vec::new, |l| kv::key(&[l.as_bytes(), b""]));
        let rows = self.read(|r| r.range(REPOS, &start, None, n.saturating_add(1)))?;
        Ok(page(rows.into_iter().map(|(k, _)| part(&k, 0)), n))
    }

    pub fn tag(&self, repo: &RepoName, tag: &str) -> Result<Option<ManifestRecord>> {
        match self.read(|r| r.get(TAGS, &k2(repo.as_str(), tag)))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    pub fn manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>> {
        match self.read(|r| r.get(MANIFESTS, &k2(repo.as_str(), &digest.to_string())))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Tags of `repo` pointing at `digest`.
    pub fn tags_of(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<String>> {
        let rows = self.read(|r| all(r, TAGS, &under(&[repo.as_str()])))?;
        let mut out = Vec::new();
        for (k, v) in rows {
            let rec: ManifestRecord = serde_json::from_slice(&v)?;
            if rec.digest == *digest {
                out.push(part(&k, 1));
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
        let r = repo.as_str();
        let (first, end) = under(&[r]);
        let start = last.map_or(first, |l| kv::key(&[r.as_bytes(), l.as_bytes(), b""]));
        let rows = self.read(|rd| rd.range(TAGS, &start, Some(&end), n.saturating_add(1)))?;
        Ok(page(rows.into_iter().map(|(k, _)| part(&k, 1)), n))
    }

    pub fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Descriptor>> {
        let range = under(&[repo.as_str(), &subject.to_string()]);
        let rows = self.read(|r| all(r, REFERRERS, &range))?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, v) in rows {
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// Repositories known to hold blob `digest`.
    pub fn blob_repos(&self, digest: &Digest) -> Result<Vec<String>> {
        let rows = self.read(|r| all(r, BLOBS, &under(&[&digest.to_string()])))?;
        Ok(rows.into_iter().map(|(k, _)| part(&k, 1)).collect())
    }
}

/// The first `n` of `items` (which holds at most `n + 1`), and whether
/// there were more.
fn page(items: impl Iterator<Item = String>, n: usize) -> (Vec<String>, bool) {
    let mut out: Vec<String> = items.collect();
    let more = out.len() > n;
    out.truncate(n);
    (out, more)
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
}

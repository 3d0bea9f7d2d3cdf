//! The on-disk index and its atomic replacement.
//!
//! Layout under the database directory (`<root>/_zot/cve/`):
//! - `CURRENT`: the name of the index in use (`db-000007`), replaced by
//!   writing `CURRENT.tmp` and renaming it over (fsynced, then the
//!   directory), so a reader sees the old index or the new one, never a
//!   mixture;
//! - `db-NNNNNN/index.redb`: an index, immutable once named in `CURRENT`;
//!   a new one is built in `building-NNNNNN/` and renamed to
//!   `db-NNNNNN/` only when complete; older ones are removed after the
//!   swap (a reader holding one keeps its open file);
//! - `cache/`: downloaded zips and their validators (see `source.rs`).
//!
//! An index holds three tables: advisories by `<family>\0<package key>`
//! (a multimap of JSON [`Advisory`] values, one per record and package),
//! the best CVSS of every id and alias (for the alias fallback of
//! severities), and `meta` (version, build time, source, counts).
//! Memory while building is bounded: records arrive one at a time and
//! the write transaction is committed every [`COMMIT_EVERY`] records,
//! with a fixed redb cache.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::advisory::{Advisory, Scored};
use crate::error::DbError;
use crate::matcher::{AdvisoryIndex, base_of, package_key};
use crate::osv::Record;

const ADVISORIES: MultimapTableDefinition<&str, &[u8]> = MultimapTableDefinition::new("advisories");
const CVSS: TableDefinition<&str, &[u8]> = TableDefinition::new("cvss");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Records per write transaction while building.
pub const COMMIT_EVERY: u64 = 2000;
const CACHE_BYTES: usize = 16 << 20;

fn rerr<E: Into<redb::Error>>(context: &str) -> impl Fn(E) -> DbError + '_ {
    move |e| DbError::index(context, e.into())
}

/// What an index says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInfo {
    /// Increases with every successful update.
    pub version: u64,
    /// Seconds since the Unix epoch when it was built.
    pub built_at: u64,
    /// The source it was built from (a URL or a path).
    pub source: String,
    /// The ecosystem families imported.
    pub ecosystems: Vec<String>,
    /// Records imported (withdrawn ones not counted).
    pub records: u64,
    /// Withdrawn records skipped.
    pub withdrawn: u64,
    /// A fingerprint of the inputs (validators or file stamps), so an
    /// update whose inputs did not change can keep the index.
    pub inputs: String,
}

/// One index, open for reading.
pub struct Snapshot {
    db: Database,
    info: DbInfo,
    dir: PathBuf,
}

impl Snapshot {
    fn open(dir: &Path) -> Result<Snapshot, DbError> {
        let path = dir.join("index.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .open(&path)
            .map_err(rerr(&path.display().to_string()))?;
        let txn = db.begin_read().map_err(rerr("begin read"))?;
        let meta = txn.open_table(META).map_err(rerr("meta"))?;
        let info = meta
            .get("info")
            .map_err(rerr("meta"))?
            .ok_or_else(|| DbError::index("meta", "no info"))?;
        let info: DbInfo =
            serde_json::from_str(info.value()).map_err(|e| DbError::index("meta", e))?;
        drop(meta);
        drop(txn);
        Ok(Snapshot {
            db,
            info,
            dir: dir.to_path_buf(),
        })
    }

    /// The index's description.
    pub fn info(&self) -> &DbInfo {
        &self.info
    }

    /// The index's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn advisory_key(base: &str, key: &str) -> String {
    format!("{base}\0{key}")
}

impl AdvisoryIndex for Snapshot {
    fn advisories(&self, base: &str, name: &str) -> Result<Vec<Advisory>, DbError> {
        let txn = self.db.begin_read().map_err(rerr("begin read"))?;
        let table = txn
            .open_multimap_table(ADVISORIES)
            .map_err(rerr("advisories"))?;
        let mut out = Vec::new();
        for value in table
            .get(advisory_key(base, name).as_str())
            .map_err(rerr("advisories"))?
        {
            let value = value.map_err(rerr("advisories"))?;
            out.push(
                serde_json::from_slice(value.value())
                    .map_err(|e| DbError::index("advisories", e))?,
            );
        }
        Ok(out)
    }

    fn alias_cvss(&self, id: &str) -> Result<Option<Scored>, DbError> {
        let txn = self.db.begin_read().map_err(rerr("begin read"))?;
        let table = txn.open_table(CVSS).map_err(rerr("cvss"))?;
        match table.get(id).map_err(rerr("cvss"))? {
            Some(v) => Ok(Some(
                serde_json::from_slice(v.value()).map_err(|e| DbError::index("cvss", e))?,
            )),
            None => Ok(None),
        }
    }
}

/// Builds a new index in a directory, a record at a time.
pub(crate) struct Builder {
    db: Database,
    txn: Option<redb::WriteTransaction>,
    pending: u64,
    pub(crate) records: u64,
    pub(crate) withdrawn: u64,
}

impl Builder {
    pub(crate) fn create(dir: &Path) -> Result<Builder, DbError> {
        fs::create_dir_all(dir).map_err(|e| DbError::io(dir.display().to_string(), e))?;
        let path = dir.join("index.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(rerr(&path.display().to_string()))?;
        Ok(Builder {
            db,
            txn: None,
            pending: 0,
            records: 0,
            withdrawn: 0,
        })
    }

    fn txn(&mut self) -> Result<&redb::WriteTransaction, DbError> {
        if self.txn.is_none() {
            let mut txn = self.db.begin_write().map_err(rerr("begin write"))?;
            txn.set_durability(Durability::None)
                .map_err(|e| DbError::index("durability", e))?;
            self.txn = Some(txn);
        }
        self.txn.as_ref().ok_or(DbError::Missing)
    }

    /// Adds one record (withdrawn records are counted and skipped).
    pub(crate) fn add(&mut self, record: &Record) -> Result<(), DbError> {
        if record.withdrawn.is_some() {
            self.withdrawn += 1;
            return Ok(());
        }
        let cvss = Advisory::record_cvss(record);
        let mut keys: Vec<(String, String)> = Vec::new();
        for a in &record.affected {
            if let Some(p) = &a.package {
                let base = base_of(&p.ecosystem).to_string();
                let key = package_key(&base, &p.name);
                if !p.name.is_empty() && !keys.contains(&(base.clone(), key.clone())) {
                    keys.push((base, key));
                }
            }
        }
        let txn = self.txn()?;
        {
            let mut table = txn
                .open_multimap_table(ADVISORIES)
                .map_err(rerr("advisories"))?;
            for (base, key) in &keys {
                let adv = Advisory::from_record(record, |eco, name| {
                    base_of(eco) == base && &package_key(base, name) == key
                });
                let bytes = serde_json::to_vec(&adv).map_err(|e| DbError::index("encode", e))?;
                table
                    .insert(advisory_key(base, key).as_str(), bytes.as_slice())
                    .map_err(rerr("advisories"))?;
            }
        }
        if let Some(cvss) = cvss {
            let mut table = txn.open_table(CVSS).map_err(rerr("cvss"))?;
            let bytes = serde_json::to_vec(&cvss).map_err(|e| DbError::index("encode", e))?;
            for id in std::iter::once(&record.id)
                .chain(&record.aliases)
                .chain(&record.upstream)
            {
                let better = match table.get(id.as_str()).map_err(rerr("cvss"))? {
                    Some(old) => serde_json::from_slice::<Scored>(old.value())
                        .map_or(true, |o| cvss.score > o.score),
                    None => true,
                };
                if better {
                    table
                        .insert(id.as_str(), bytes.as_slice())
                        .map_err(rerr("cvss"))?;
                }
            }
        }
        self.records += 1;
        self.pending += 1;
        if self.pending >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), DbError> {
        if let Some(txn) = self.txn.take() {
            txn.commit().map_err(rerr("commit"))?;
        }
        self.pending = 0;
        Ok(())
    }

    /// Writes the description and commits durably.
    pub(crate) fn finish(mut self, info: &DbInfo) -> Result<(), DbError> {
        self.commit()?;
        let txn = self.db.begin_write().map_err(rerr("begin write"))?;
        {
            txn.open_multimap_table(ADVISORIES)
                .map_err(rerr("advisories"))?;
            txn.open_table(CVSS).map_err(rerr("cvss"))?;
            let mut meta = txn.open_table(META).map_err(rerr("meta"))?;
            let json = serde_json::to_string(info).map_err(|e| DbError::index("meta", e))?;
            meta.insert("info", json.as_str()).map_err(rerr("meta"))?;
        }
        txn.commit().map_err(rerr("commit"))?;
        Ok(())
    }
}

/// The database: the index in use, swapped atomically on update.
pub struct VulnDb {
    dir: PathBuf,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// One update at a time.
    pub(crate) updating: tokio::sync::Mutex<()>,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sync_dir(dir: &Path) -> Result<(), DbError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DbError::io(dir.display().to_string(), e))
}

impl VulnDb {
    /// Opens the database directory (created if missing), with the index
    /// `CURRENT` names, if any. Leftovers of interrupted builds are removed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<VulnDb, DbError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| DbError::io(dir.display().to_string(), e))?;
        let current = match fs::read_to_string(dir.join("CURRENT")) {
            Ok(name) => Some(Arc::new(Snapshot::open(&dir.join(name.trim()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(DbError::io("CURRENT", e)),
        };
        let db = VulnDb {
            dir,
            current: RwLock::new(current),
            updating: tokio::sync::Mutex::new(()),
        };
        db.remove_stale();
        Ok(db)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index in use; `None` before the first successful update.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().map_or(None, |c| c.clone())
    }

    /// The description of the index in use.
    pub fn info(&self) -> Option<DbInfo> {
        self.current().map(|s| s.info.clone())
    }

    pub(crate) fn next_version(&self) -> u64 {
        self.info().map_or(1, |i| i.version + 1)
    }

    pub(crate) fn building_dir(&self, version: u64) -> PathBuf {
        self.dir.join(format!("building-{version:06}"))
    }

    /// Names a complete index as current and opens it.
    pub(crate) fn install(&self, version: u64) -> Result<(), DbError> {
        let name = format!("db-{version:06}");
        let final_dir = self.dir.join(&name);
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir)
                .map_err(|e| DbError::io(final_dir.display().to_string(), e))?;
        }
        fs::rename(self.building_dir(version), &final_dir)
            .map_err(|e| DbError::io(final_dir.display().to_string(), e))?;
        let snapshot = Arc::new(Snapshot::open(&final_dir)?);
        let tmp = self.dir.join("CURRENT.tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| DbError::io("CURRENT.tmp", e))?;
        f.write_all(format!("{name}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| DbError::io("CURRENT.tmp", e))?;
        fs::rename(&tmp, self.dir.join("CURRENT")).map_err(|e| DbError::io("CURRENT", e))?;
        sync_dir(&self.dir)?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(snapshot);
        }
        self.remove_stale();
        Ok(())
    }

    /// Removes indexes other than the current one and unfinished builds.
    fn remove_stale(&self) {
        let keep = self.current().map(|s| s.dir.clone());
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if (name.starts_with("db-") || name.starts_with("building-"))
                && Some(&path) != keep.as_ref()
                && let Err(e) = fs::remove_dir_all(&path)
            {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an old CVE index");
            }
        }
    }
}

//! The tables in a redb file: each table of the key-value layer is a redb
//! table of bytes to bytes named `kv:<table>`.
//!
//! Invariants:
//! - Commits are not fsynced unless asked (`durable`): redb keeps the file
//!   consistent, and [`Kv::flush`] (called every few seconds) makes the
//!   commits so far durable.
//! - A file that cannot be opened (corrupt, of another version, or holding
//!   tables of the typed layout before this layer) is removed and made
//!   anew: the owner rebuilds it from the layouts. From a file of the
//!   typed layout the API keys and sessions, which nothing could rebuild,
//!   are carried into the new file first (`legacy.rs`). An I/O error is
//!   returned as is; a file locked by another process is `InUse`.
//! - After an I/O error redb refuses everything until reopened:
//!   [`Kv::reopen`] closes the database and opens the file again (redb
//!   repairs it to its last durable commit).

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle,
};

use super::{Kv, Read, Row, Write};
use crate::{MetaError, Result};

/// Page cache of the store.
const CACHE_BYTES: usize = 8 << 20;

/// Makes one attempt at opening the database file.
pub(crate) type Opener =
    Box<dyn Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync>;

type Def<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
/// A table opened for reading (`None`: never written, so absent).
type ReadTable = Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>;

fn def(name: &str) -> Def<'_> {
    TableDefinition::new(name)
}

/// The redb table of a key-value table.
fn table_name(table: &str) -> String {
    format!("kv:{table}")
}

pub(crate) struct RedbKv {
    /// `None` only between a failed reopen and the next attempt.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    opener: Opener,
    /// Whether commits were made since the last durable one.
    dirty: AtomicBool,
}

impl RedbKv {
    pub(crate) fn open(path: &Path, opener: Opener) -> Result<RedbKv> {
        let db = open_db(path, &opener)?;
        Ok(RedbKv {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            opener,
            dirty: AtomicBool::new(false),
        })
    }

    /// An opener of the file at `path`.
    pub(crate) fn file_opener(path: &Path) -> Opener {
        let file = path.to_path_buf();
        // redb's default page cache is 1 GiB; the hot lookups are few and
        // small, so a modest cache keeps the registry's memory flat.
        Box::new(move || {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&file)
        })
    }

    /// An opener of the file at `path` whose writes fail while `switch` says so.
    pub(crate) fn faulty_opener(path: &Path, switch: crate::FaultSwitch) -> Opener {
        let file = path.to_path_buf();
        Box::new(move || {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&file)?;
            let backend = crate::fault::FaultyFile {
                inner: redb::backends::FileBackend::new(f)?,
                switch: switch.clone(),
            };
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(backend)
        })
    }

    fn db(&self) -> Result<Db<'_>> {
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(MetaError::Unavailable);
        }
        Ok(Db(guard))
    }
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
    // A file of the typed layout this layer replaced: made anew (it is a
    // cache of the layouts; see the module documentation).
    let old = {
        let txn = db.begin_read()?;
        txn.list_tables()?.any(|t| !t.name().starts_with("kv:"))
    };
    if old {
        // API keys and sessions cannot be rebuilt: carried into the new
        // file (see `legacy.rs`; an old file whose rows cannot be read
        // carries nothing).
        let carried = super::legacy::carry_over(&db).unwrap_or_default();
        drop(db);
        std::fs::remove_file(path).map_err(|e| MetaError::Db(redb::Error::Io(e)))?;
        let db = opener()?;
        let txn = db.begin_write()?;
        for (table, k, v) in &carried {
            txn.open_table(def(&table_name(table)))?
                .insert(k.as_slice(), v.as_slice())?;
        }
        txn.commit()?;
        return Ok(db);
    }
    Ok(db)
}

impl Kv for RedbKv {
    fn read(&self) -> Result<Box<dyn Read + '_>> {
        let txn = self.db()?.begin_read()?;
        Ok(Box::new(RedbRead {
            txn,
            tables: HashMap::new(),
        }))
    }

    fn write(&self, durable: bool, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        self.dirty.store(true, Ordering::Release);
        {
            let mut w = RedbWrite {
                txn: &txn,
                tables: HashMap::new(),
            };
            f(&mut w)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let flushed = (|| {
            let mut txn = self.db()?.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.commit()?;
            Ok(())
        })();
        if flushed.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        flushed
    }

    fn probe(&self) -> Result<()> {
        let txn = self.db()?.begin_read()?;
        let _ = txn.list_tables()?;
        Ok(())
    }

    fn reopen(&self) -> Result<()> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The old database must be closed first: it holds the file's lock,
        // and so does a transaction of it still running on another thread
        // (transactions outlive the guard they were begun under): give those
        // a moment to end before calling the file in use. Runs on the
        // blocking pool.
        drop(db.take());
        let mut tries = 0;
        let reopened = loop {
            match open_db(&self.path, &self.opener) {
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

    fn shared(&self) -> bool {
        false
    }
}

fn bounds<'k>(start: &'k [u8], end: Option<&'k [u8]>) -> (Bound<&'k [u8]>, Bound<&'k [u8]>) {
    (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// One row of a byte-keyed range, as redb yields it.
type RangeItem<'a> = std::result::Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// The keys of a range; the values' guards are dropped unread.
fn collect_keys<'a>(
    iter: impl Iterator<Item = RangeItem<'a>>,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for item in iter.take(limit) {
        out.push(item?.0.value().to_vec());
    }
    Ok(out)
}

fn collect<'a>(iter: impl Iterator<Item = RangeItem<'a>>, limit: usize) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item?;
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

struct RedbRead {
    txn: redb::ReadTransaction,
    tables: HashMap<&'static str, ReadTable>,
}

impl RedbRead {
    /// The table, `None` when it was never written.
    fn table(
        &mut self,
        table: &'static str,
    ) -> Result<Option<&redb::ReadOnlyTable<&'static [u8], &'static [u8]>>> {
        if !self.tables.contains_key(table) {
            let name = table_name(table);
            let opened = match self.txn.open_table(def(&name)) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            };
            self.tables.insert(table, opened);
        }
        Ok(self.tables.get(table).and_then(Option::as_ref))
    }
}

impl Read for RedbRead {
    fn get(&mut self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(t) = self.table(table)? else {
            return Ok(None);
        };
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let Some(t) = self.table(table)? else {
            return Ok(Vec::new());
        };
        collect(t.range::<&[u8]>(bounds(start, end))?, limit)
    }

    fn keys(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let Some(t) = self.table(table)? else {
            return Ok(Vec::new());
        };
        collect_keys(t.range::<&[u8]>(bounds(start, end))?, limit)
    }

    fn last(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<Row>> {
        let Some(t) = self.table(table)? else {
            return Ok(None);
        };
        Ok(collect(t.range::<&[u8]>(bounds(start, end))?.rev(), 1)?.pop())
    }

    fn len(&mut self, table: &'static str) -> Result<u64> {
        let Some(t) = self.table(table)? else {
            return Ok(0);
        };
        Ok(t.len()?)
    }
}

struct RedbWrite<'t> {
    txn: &'t redb::WriteTransaction,
    tables: HashMap<&'static str, redb::Table<'t, &'static [u8], &'static [u8]>>,
}

impl<'t> RedbWrite<'t> {
    fn table(
        &mut self,
        table: &'static str,
    ) -> Result<&mut redb::Table<'t, &'static [u8], &'static [u8]>> {
        if !self.tables.contains_key(table) {
            let name = table_name(table);
            let t = self.txn.open_table(def(&name))?;
            self.tables.insert(table, t);
        }
        match self.tables.get_mut(table) {
            Some(t) => Ok(t),
            None => unreachable!("just opened"),
        }
    }
}

impl Read for RedbWrite<'_> {
    fn get(&mut self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.table(table)?.get(key)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        collect(
            self.table(table)?.range::<&[u8]>(bounds(start, end))?,
            limit,
        )
    }

    fn keys(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        collect_keys(
            self.table(table)?.range::<&[u8]>(bounds(start, end))?,
            limit,
        )
    }

    fn last(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<Row>> {
        let t = self.table(table)?;
        Ok(collect(t.range::<&[u8]>(bounds(start, end))?.rev(), 1)?.pop())
    }

    fn len(&mut self, table: &'static str) -> Result<u64> {
        Ok(self.table(table)?.len()?)
    }
}

impl Write for RedbWrite<'_> {
    fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        self.table(table)?.insert(key, value)?;
        Ok(())
    }

    fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<()> {
        self.table(table)?.remove(key)?;
        Ok(())
    }
}

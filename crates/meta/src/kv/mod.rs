//! The ordered key-value layer under [`crate::MetaStore`]: named tables of
//! byte keys to byte values, each kept in key order. The store's logic
//! (repositories, tags, search rows, outbox, ...) is written once over it;
//! `redb_kv.rs` keeps the tables in a redb file, `redis_kv.rs` in Redis.
//!
//! Invariants every implementation keeps:
//! - A write ([`Kv::write`]) is atomic and isolated: its puts and deletes
//!   are all seen or none, and the reads it made still hold when it
//!   commits. An implementation may run the closure more than once (Redis
//!   runs it again after a conflicting commit of another writer), so the
//!   closure has no effect outside the [`Write`] it is handed.
//! - Inside a write, reads see the write's own puts and deletes.
//! - Ranges are in byte order of the keys, `start` included, `end`
//!   excluded; composite keys are built by [`key`] so that byte order is
//!   the order of the tuple (components joined by `0x00`, which no name,
//!   tag, digest or user contains).
//! - A read outside a write ([`Kv::read`]) sees committed data only; redb
//!   gives it one snapshot, Redis reads each call as it comes (a reader may
//!   see two writes that happened between its calls).

mod legacy;
pub(crate) mod redb_kv;
pub(crate) mod redis_address;
pub(crate) mod redis_cluster;
pub(crate) mod redis_kv;
pub(crate) mod redis_pool;
pub(crate) mod sentinel_watch;

use crate::Result;

/// One (key, value) row.
pub(crate) type Row = (Vec<u8>, Vec<u8>);

/// Reads of committed data (or, inside a write, of the write's view).
pub(crate) trait Read {
    fn get(&mut self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Rows with `start <= key < end` (`end` `None`: to the table's end),
    /// in key order, at most `limit`.
    fn range(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Row>>;
    /// The keys of the rows with `start <= key < end`, in key order, at
    /// most `limit`, without reading their values (a listing of digests
    /// must not hold every inventory in memory at once).
    fn keys(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>>;
    /// The greatest row with `start <= key < end`.
    fn last(
        &mut self,
        table: &'static str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Option<Row>>;
    /// The number of rows of `table`.
    fn len(&mut self, table: &'static str) -> Result<u64>;
}

/// A write in progress.
pub(crate) trait Write: Read {
    fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()>;
    fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<()>;
}

/// A backend of the metadata store.
pub(crate) trait Kv: Send + Sync {
    /// A view of committed data.
    fn read(&self) -> Result<Box<dyn Read + '_>>;
    /// Runs `f` in one atomic write and commits it (see the module
    /// documentation: `f` may run more than once). `durable`: the commit
    /// is on stable storage before this returns (redb: fsync; Redis keeps
    /// whatever persistence the server is configured with).
    fn write(&self, durable: bool, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()>;
    /// Makes the commits so far durable.
    fn flush(&self) -> Result<()>;
    /// Checks that the backend answers.
    fn probe(&self) -> Result<()>;
    /// Opens the backend again after an I/O error.
    fn reopen(&self) -> Result<()>;
    /// Whether other processes share this store (Redis).
    fn shared(&self) -> bool;
}

/// A composite key: the parts joined by `0x00` (see the module documentation).
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(p);
    }
    out
}

/// `(a, b)` as a key.
pub(crate) fn k2(a: &str, b: &str) -> Vec<u8> {
    key(&[a.as_bytes(), b.as_bytes()])
}

/// `(a, b, c)` as a key.
pub(crate) fn k3(a: &str, b: &str, c: &str) -> Vec<u8> {
    key(&[a.as_bytes(), b.as_bytes(), c.as_bytes()])
}

/// The range of every key that starts with the components `parts` (and
/// has more after them): `(start, end)`.
pub(crate) fn under(parts: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    let mut start = key(&bytes);
    let mut end = start.clone();
    start.push(0);
    end.push(1);
    (start, end)
}

/// The components of a composite key.
pub(crate) fn parts(key: &[u8]) -> Vec<&str> {
    key.split(|b| *b == 0)
        .map(|p| std::str::from_utf8(p).unwrap_or(""))
        .collect()
}

/// The `i`-th component of a composite key ("" when missing).
pub(crate) fn part(key: &[u8], i: usize) -> String {
    parts(key).get(i).copied().unwrap_or("").to_owned()
}

pub(crate) fn u64_bytes(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// A big-endian `u64` (0 when too short).
pub(crate) fn read_u64(b: &[u8]) -> u64 {
    b.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Reads the whole range (no limit).
pub(crate) fn all(
    r: &mut (impl Read + ?Sized),
    table: &'static str,
    (start, end): &(Vec<u8>, Vec<u8>),
) -> Result<Vec<Row>> {
    r.range(table, start, Some(end), usize::MAX)
}

/// Deletes every row of the range; returns their keys.
pub(crate) fn delete_all(
    w: &mut (impl Write + ?Sized),
    table: &'static str,
    range: &(Vec<u8>, Vec<u8>),
) -> Result<Vec<Vec<u8>>> {
    let rows = all(w, table, range)?;
    let mut keys = Vec::with_capacity(rows.len());
    for (k, _) in rows {
        w.delete(table, &k)?;
        keys.push(k);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_sort_as_tuples() {
        let mut keys = [k2("a", "b"), k2("a/b", ""), k2("a", ""), k2("ab", "a")];
        keys.sort();
        assert_eq!(
            keys,
            [k2("a", ""), k2("a", "b"), k2("a/b", ""), k2("ab", "a")]
        );
        let (start, end) = under(&["a"]);
        assert!(start <= k2("a", "") && k2("a", "zzz") < end);
        assert!(k2("a/b", "") >= end && k2("ab", "") >= end);
        assert_eq!(parts(&k3("x", "y", "z")), ["x", "y", "z"]);
    }
}

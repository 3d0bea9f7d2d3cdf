//! The vulnerability scanner's tables: per manifest digest, what the
//! scanner found in its layers (the package inventory, or why it could
//! not scan) and the findings of matching that inventory against one
//! version of the vulnerability database. Both are opaque bytes here; the
//! scanner (`zot-cve`) owns their format.
//!
//! Invariants:
//! - Rows are keyed by digest alone: a manifest's content (and so its
//!   inventory) is the same in every repository holding it.
//! - At most one findings row per digest: writing the findings of a
//!   database version removes those of other versions, in the same
//!   transaction, so a reader sees the old findings or the new ones.
//! - Rows are not removed with a manifest (another repository may hold
//!   the same digest); [`MetaStore::forget_scans`] drops those of digests
//!   no repository holds any more.

use crate::kv::{all, delete_all, key, part, read_u64, u64_bytes, under};
use crate::{MANIFESTS, ManifestRecord, MetaStore, Result};

/// manifest digest -> the scanner's record (inventory or failure).
const SCANS: &str = "cve_scans";
/// (manifest digest, database version as 8 big-endian bytes) -> findings.
const FINDINGS: &str = "cve_findings";

fn findings_key(digest: &str, version: u64) -> Vec<u8> {
    key(&[digest.as_bytes(), &u64_bytes(version)])
}

/// The database version of a findings key (its last 8 bytes).
fn version_of(k: &[u8]) -> u64 {
    read_u64(k.get(k.len().saturating_sub(8)..).unwrap_or(&[]))
}

impl MetaStore {
    /// Keeps the scanner's record of `digest`.
    pub fn put_scan(&self, digest: &str, record: &[u8]) -> Result<()> {
        self.write(false, |w| w.put(SCANS, digest.as_bytes(), record))
    }

    /// The scanner's record of `digest`, if it was scanned.
    pub fn scan(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        self.read(|r| r.get(SCANS, digest.as_bytes()))
    }

    /// Every digest with a scanner's record (the keys only: the records,
    /// inventories of tens of KiB each, are not read).
    pub fn scanned_digests(&self) -> Result<Vec<String>> {
        self.scanned_digests_after(None, usize::MAX)
    }

    /// At most `limit` digests with a scanner's record, in order, those
    /// after `after` (from the first when `None`): a caller walks them a
    /// page at a time, whatever their number.
    pub fn scanned_digests_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let start = after.map_or_else(Vec::new, |d| {
            // The least key greater than `d`.
            let mut k = d.as_bytes().to_vec();
            k.push(0);
            k
        });
        let keys = self.read(|r| r.keys(SCANS, &start, None, limit))?;
        Ok(keys.iter().map(|k| part(k, 0)).collect())
    }

    /// Keeps findings of database `version` for each digest (replacing
    /// those of other versions), in one transaction.
    pub fn put_findings(&self, rows: &[(String, u64, Vec<u8>)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(false, |w| {
            for (digest, version, bytes) in rows {
                let old = all(w, FINDINGS, &under(&[digest]))?;
                // A slower writer of an older version never wins.
                if old.iter().any(|(k, _)| version_of(k) > *version) {
                    continue;
                }
                for (k, _) in old {
                    w.delete(FINDINGS, &k)?;
                }
                w.put(FINDINGS, &findings_key(digest, *version), bytes)?;
            }
            Ok(())
        })
    }

    /// The findings of `digest` and the database version they were made
    /// with, if any.
    pub fn findings(&self, digest: &str) -> Result<Option<(u64, Vec<u8>)>> {
        let (start, end) = under(&[digest]);
        let last = self.read(|r| r.last(FINDINGS, &start, Some(&end)))?;
        Ok(last.map(|(k, v)| (version_of(&k), v)))
    }

    /// Every manifest of every repository: (repository, record).
    pub fn all_manifests(&self) -> Result<Vec<(String, ManifestRecord)>> {
        let rows = self.read(|r| r.range(MANIFESTS, b"", None, usize::MAX))?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            out.push((part(&k, 0), serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// Drops the scanner's rows of digests for which `keep` is false.
    pub fn forget_scans(&self, keep: impl Fn(&str) -> bool) -> Result<usize> {
        let gone: Vec<String> = self
            .scanned_digests()?
            .into_iter()
            .filter(|d| !keep(d))
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        self.write(false, |w| {
            for d in &gone {
                w.delete(SCANS, d.as_bytes())?;
                delete_all(w, FINDINGS, &under(&[d]))?;
            }
            Ok(())
        })?;
        Ok(gone.len())
    }
}

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

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::{MANIFESTS, ManifestRecord, MetaStore, Result};

/// manifest digest -> the scanner's record (inventory or failure).
const SCANS: TableDefinition<&str, &[u8]> = TableDefinition::new("cve_scans");
/// (manifest digest, database version) -> findings.
const FINDINGS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("cve_findings");

/// Creates the tables (at open).
pub(crate) fn create(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SCANS)?;
    txn.open_table(FINDINGS)?;
    Ok(())
}

impl MetaStore {
    /// Keeps the scanner's record of `digest`.
    pub fn put_scan(&self, digest: &str, record: &[u8]) -> Result<()> {
        self.watch((|| {
            let txn = self.begin_write()?;
            txn.open_table(SCANS)?.insert(digest, record)?;
            txn.commit()?;
            Ok(())
        })())
    }

    /// The scanner's record of `digest`, if it was scanned.
    pub fn scan(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SCANS)?;
        Ok(t.get(digest)?.map(|v| v.value().to_vec()))
    }

    /// Every digest with a scanner's record.
    pub fn scanned_digests(&self) -> Result<Vec<String>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SCANS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(row?.0.value().to_owned());
        }
        Ok(out)
    }

    /// Keeps findings of database `version` for each digest (replacing
    /// those of other versions), in one transaction.
    pub fn put_findings(&self, rows: &[(String, u64, Vec<u8>)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.watch((|| {
            let txn = self.begin_write()?;
            {
                let mut t = txn.open_table(FINDINGS)?;
                for (digest, version, bytes) in rows {
                    let old: Vec<u64> = t
                        .range((digest.as_str(), 0)..=(digest.as_str(), u64::MAX))?
                        .filter_map(|r| r.ok().map(|(k, _)| k.value().1))
                        .collect();
                    // A slower writer of an older version never wins.
                    if old.iter().any(|v| v > version) {
                        continue;
                    }
                    for v in old {
                        t.remove((digest.as_str(), v))?;
                    }
                    t.insert((digest.as_str(), *version), bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })())
    }

    /// The findings of `digest` and the database version they were made
    /// with, if any.
    pub fn findings(&self, digest: &str) -> Result<Option<(u64, Vec<u8>)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(FINDINGS)?;
        let last = t
            .range((digest, 0)..=(digest, u64::MAX))?
            .next_back()
            .transpose()?;
        Ok(last.map(|(k, v)| (k.value().1, v.value().to_vec())))
    }

    /// Every manifest of every repository: (repository, record).
    pub fn all_manifests(&self) -> Result<Vec<(String, ManifestRecord)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(MANIFESTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().0.to_owned(), serde_json::from_slice(v.value())?));
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
        self.watch((|| {
            let txn = self.begin_write()?;
            {
                let mut scans = txn.open_table(SCANS)?;
                let mut findings = txn.open_table(FINDINGS)?;
                for d in &gone {
                    scans.remove(d.as_str())?;
                    let versions: Vec<u64> = findings
                        .range((d.as_str(), 0)..=(d.as_str(), u64::MAX))?
                        .filter_map(|r| r.ok().map(|(k, _)| k.value().1))
                        .collect();
                    for v in versions {
                        findings.remove((d.as_str(), v))?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })())?;
        Ok(gone.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::MetaStore;

    #[test]
    fn findings_keep_one_version_per_digest() -> crate::Result<()> {
        let dir = tempfile::tempdir().map_err(redb::Error::Io)?;
        let store = MetaStore::open(&dir.path().join("meta.redb"))?;
        assert_eq!(store.findings("sha256:a")?, None);
        store.put_scan("sha256:a", b"inv")?;
        store.put_findings(&[("sha256:a".into(), 1, b"one".to_vec())])?;
        store.put_findings(&[("sha256:a".into(), 2, b"two".to_vec())])?;
        store.put_findings(&[("sha256:a".into(), 1, b"late".to_vec())])?;
        store.put_findings(&[("sha256:ab".into(), 1, b"other".to_vec())])?;
        assert_eq!(store.findings("sha256:a")?, Some((2, b"two".to_vec())));
        assert_eq!(store.scan("sha256:a")?, Some(b"inv".to_vec()));
        assert_eq!(store.forget_scans(|d| d != "sha256:a")?, 1);
        assert_eq!(store.findings("sha256:a")?, None);
        assert_eq!(store.scan("sha256:a")?, None);
        assert_eq!(store.findings("sha256:ab")?, Some((1, b"other".to_vec())));
        Ok(())
    }
}

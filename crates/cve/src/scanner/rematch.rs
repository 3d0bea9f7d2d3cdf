//! The re-match: after a database update (and at start-up), every stored
//! inventory whose findings are not of the current version is matched
//! again, a page of digests at a time.
//!
//! Invariants:
//! - Memory does not grow with the number of stored inventories: the
//!   scan table is walked by key ([`MetaStore::scanned_digests_after`],
//!   keys only) in pages of at most [`REMATCH_BATCH`] digests, and only
//!   that page's stored records (as bytes) and findings are held; each
//!   record is decoded on the low-priority thread just before it is
//!   matched, so one decoded inventory at a time. (Listing the digests
//!   through the rows, inventories included, took the server from 85 to
//!   about 380 MiB for 10,000 images of 180 packages, twice per re-match.)
//! - Each page's findings are written in one metadata transaction, on the
//!   blocking pool, which then hands glibc's free heap memory back
//!   ([`release_free_memory`]); the matching runs on the low-priority
//!   thread.
//! - Digests no repository holds any more lose their rows first.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use zot_meta::MetaStore;
use zot_scan::Inventory;
use zot_storage::Registry;
use zot_vulndb::{Snapshot, match_inventory};

use super::{CveScanner, Skip};
use crate::record::{ScanRecord, group};

/// Digests per page of a re-match (inventories held, findings written per
/// metadata transaction).
pub(super) const REMATCH_BATCH: usize = 64;

/// One page of a re-match: the stored records (undecoded) of the digests
/// after `after` (at most `limit` digests) whose findings are not of
/// `version`, and the page's last digest (`None`: no digest after `after`).
type Page = (Option<String>, Vec<(String, Vec<u8>)>);

fn stale_page(
    meta: &MetaStore,
    after: Option<&str>,
    limit: usize,
    version: u64,
) -> Result<Page, Skip> {
    let page = meta.scanned_digests_after(after, limit)?;
    let last = page.last().cloned();
    let mut out = Vec::new();
    for digest in page {
        if meta.findings(&digest)?.is_some_and(|(v, _)| v == version) {
            continue;
        }
        if let Some(bytes) = meta.scan(&digest)? {
            out.push((digest, bytes));
        }
    }
    Ok((last, out))
}

/// The inventories among `records`, decoded one at a time (each record's
/// bytes are dropped once decoded).
fn inventories(records: Vec<(String, Vec<u8>)>) -> impl Iterator<Item = (String, Inventory)> {
    records
        .into_iter()
        .filter_map(|(digest, bytes)| match ScanRecord::from_bytes(&bytes) {
            Some(ScanRecord::Inventory(inv)) => Some((digest, inv)),
            _ => None,
        })
}

/// Drops the rows of digests no repository of `meta` holds any more.
fn forget_unheld(meta: &MetaStore) -> Result<(), Skip> {
    let held: HashSet<String> = meta
        .all_manifests()?
        .into_iter()
        .map(|(_, r)| r.digest.to_string())
        .collect();
    let forgotten = meta.forget_scans(|d| held.contains(d))?;
    if forgotten > 0 {
        tracing::info!(
            forgotten,
            "cve: dropped the results of manifests no longer stored"
        );
    }
    Ok(())
}

impl CveScanner {
    /// Re-matches every stored inventory whose findings are not of the
    /// current database version (after an update, and at start-up), and
    /// drops the rows of digests no repository holds any more; returns how
    /// many were matched. The matching runs on the low-priority thread,
    /// page by page; the metadata reads and writes between the pages
    /// on the blocking pool, at normal priority.
    pub async fn rematch(self: &Arc<Self>) -> usize {
        let Some(snapshot) = self.db.current() else {
            return 0;
        };
        let mut total = 0;
        for reg in self.stores.distinct() {
            match self.rematch_store(reg, &snapshot).await {
                Ok(n) => total += n,
                Err(e) => tracing::warn!(error = %e, "cve: re-matching stored inventories"),
            }
        }
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = (HashMap::new(), 0);
        self.index.discard();
        total
    }

    async fn rematch_store(
        &self,
        reg: &Arc<Registry>,
        snapshot: &Arc<Snapshot>,
    ) -> Result<usize, Skip> {
        let r = Arc::clone(reg);
        tokio::task::spawn_blocking(move || forget_unheld(r.metadata())).await??;
        let version = snapshot.info().version;
        let mut n = 0;
        let mut after: Option<String> = None;
        loop {
            let (r, from) = (Arc::clone(reg), after.take());
            let (last, stale) = tokio::task::spawn_blocking(move || {
                stale_page(r.metadata(), from.as_deref(), REMATCH_BATCH, version)
            })
            .await??;
            let Some(last) = last else {
                break;
            };
            after = Some(last);
            if stale.is_empty() {
                continue;
            }
            let s = Arc::clone(snapshot);
            let rows = crate::idle::run(move || -> Result<Vec<_>, Skip> {
                let mut rows = Vec::with_capacity(stale.len());
                for (digest, inv) in inventories(stale) {
                    let _ = crate::idle::turn();
                    let list = group(match_inventory(&inv, s.as_ref())?);
                    rows.push((
                        digest,
                        version,
                        serde_json::to_vec(&list).unwrap_or_default(),
                    ));
                }
                Ok(rows)
            })
            .await??;
            n += rows.len();
            self.counters
                .manifests_matched
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            let r = Arc::clone(reg);
            tokio::task::spawn_blocking(move || {
                let written = r.metadata().put_findings(&rows);
                drop(rows);
                release_free_memory();
                written
            })
            .await??;
        }
        Ok(n)
    }
}

/// Hands the heap memory glibc keeps free back to the system, after each
/// page of a re-match. A re-match allocates and frees a few hundred MiB a
/// second (records, decoded inventories, the databases' page buffers)
/// while holding one page live; glibc keeps 30-90 MiB of it free in its
/// arenas until the process-wide trim (every second), which was most of
/// the server's peak (see BENCHMARKS.md, "Peak RSS during re-match and
/// import"). On the blocking pool, at normal priority: the trim takes
/// the arenas' locks, which the `SCHED_IDLE` thread must never hold.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim is thread-safe and only releases free memory.
        #[expect(
            unsafe_code,
            reason = "malloc_trim is glibc's way to return free memory"
        )]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_scan::{Ecosystem, Package};

    fn inventory(i: usize) -> Vec<u8> {
        let mut inv = Inventory {
            scanner: Inventory::SCANNER,
            ..Inventory::default()
        };
        inv.packages.push(Package {
            ecosystem: Ecosystem::Deb,
            name: format!("pkg{i}"),
            version: "1.0-1".to_owned(),
            source: None,
            arch: None,
            path: "var/lib/dpkg/status".to_owned(),
        });
        ScanRecord::Inventory(inv).to_bytes()
    }

    /// Walks the pages as the re-match does: every stale digest comes
    /// once, in pages of at most `limit`, and a digest whose findings are
    /// of the current version (or whose record is not an inventory) is
    /// skipped without ending the walk.
    #[test]
    fn pages_hold_at_most_a_batch_and_cover_every_stale_inventory() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let meta = MetaStore::open(&dir.path().join("meta.redb")).expect("the store");
        let digests: Vec<String> = (0..25).map(|i| format!("sha256:{i:04}")).collect();
        for (i, d) in digests.iter().enumerate() {
            meta.put_scan(d, &inventory(i)).expect("put_scan");
        }
        // A prefix of another digest: the page after it must still hold it.
        meta.put_scan("sha256:00", &inventory(99))
            .expect("put_scan");
        meta.put_scan(
            "sha256:0003x",
            &ScanRecord::Unscannable("no".into()).to_bytes(),
        )
        .expect("put_scan");
        meta.put_findings(&[
            ("sha256:0004".to_owned(), 7, b"[]".to_vec()),
            ("sha256:0005".to_owned(), 6, b"[]".to_vec()),
        ])
        .expect("put_findings");

        let (limit, version) = (4, 7);
        let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let (last, stale) =
                stale_page(&meta, after.as_deref(), limit, version).expect("a page");
            let Some(last) = last else { break };
            assert!(stale.len() <= limit, "a page of {} > {limit}", stale.len());
            seen.extend(inventories(stale).map(|(d, _)| d));
            after = Some(last);
            pages += 1;
        }
        let mut wanted: Vec<String> = digests
            .iter()
            .filter(|d| d.as_str() != "sha256:0004")
            .cloned()
            .chain(["sha256:00".to_owned()])
            .collect();
        wanted.sort();
        assert_eq!(seen, wanted);
        // 28 scan rows, 4 a page.
        assert_eq!(pages, 7);
    }
}

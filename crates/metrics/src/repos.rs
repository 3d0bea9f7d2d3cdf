//! A bounded, lock-free table of per-repository series.
//!
//! Invariants:
//! - At most `cap` repositories ever get a slot; a slot, once taken, keeps
//!   its name for the life of the process (series never disappear between
//!   scrapes, and a reader never sees a slot change name).
//! - Looking up a repository that has a slot takes no lock and allocates
//!   nothing: a hash and a linear probe over `OnceLock`s. Only taking a new
//!   slot allocates (its name), once per repository.
//! - The table has at least twice as many cells as `cap`, so a probe meets
//!   an empty cell soon; the key of the hash is random per process, so names
//!   chosen to collide cannot be prepared in advance.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::Summary;

/// The series of one repository.
#[derive(Debug)]
pub(crate) struct RepoSlot {
    pub(crate) name: Box<str>,
    /// `zot_http_repo_latency_seconds{repo}`.
    pub(crate) latency: Summary,
    /// `zot_repo_downloads_total{repo}`.
    pub(crate) downloads: AtomicU64,
    /// `zot_repo_uploads_total{repo}`.
    pub(crate) uploads: AtomicU64,
    /// `zot_repo_storage_bytes{repo}`; `u64::MAX` until measured.
    pub(crate) storage_bytes: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct RepoTable {
    cells: Box<[OnceLock<RepoSlot>]>,
    mask: usize,
    cap: usize,
    used: AtomicUsize,
    hasher: RandomState,
}

impl RepoTable {
    pub(crate) fn new(cap: usize) -> RepoTable {
        let len = (cap.saturating_mul(2)).max(2).next_power_of_two();
        RepoTable {
            cells: (0..len).map(|_| OnceLock::new()).collect(),
            mask: len - 1,
            cap,
            used: AtomicUsize::new(0),
            hasher: RandomState::new(),
        }
    }

    /// The slot of `name`, if it has one.
    pub(crate) fn find(&self, name: &str) -> Option<&RepoSlot> {
        let start = self.hasher.hash_one(name) as usize;
        for i in 0..self.cells.len() {
            match self.cells[(start + i) & self.mask].get() {
                None => return None,
                Some(slot) if *slot.name == *name => return Some(slot),
                Some(_) => {}
            }
        }
        None
    }

    /// The slot of `name`, taking a new one while fewer than `cap` are
    /// taken; `None` when the table is full.
    pub(crate) fn find_or_insert(&self, name: &str) -> Option<&RepoSlot> {
        let start = self.hasher.hash_one(name) as usize;
        for i in 0..self.cells.len() {
            let cell = &self.cells[(start + i) & self.mask];
            if let Some(slot) = cell.get() {
                if *slot.name == *name {
                    return Some(slot);
                }
                continue;
            }
            // An empty cell: `name` is not in the table. Reserve a place
            // under the cap, then race for the cell.
            if self.used.fetch_add(1, Ordering::Relaxed) >= self.cap {
                self.used.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            let mut ours = false;
            let slot = cell.get_or_init(|| {
                ours = true;
                RepoSlot {
                    name: name.into(),
                    latency: Summary::default(),
                    downloads: AtomicU64::new(0),
                    uploads: AtomicU64::new(0),
                    storage_bytes: AtomicU64::new(u64::MAX),
                }
            });
            if !ours {
                // Another thread filled the cell first: give the place back.
                self.used.fetch_sub(1, Ordering::Relaxed);
            }
            if *slot.name == *name {
                return Some(slot);
            }
        }
        None
    }

    /// Slots taken.
    pub(crate) fn len(&self) -> usize {
        self.used.load(Ordering::Relaxed).min(self.cap)
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Every taken slot, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &RepoSlot> {
        self.cells.iter().filter_map(OnceLock::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_cap_names_and_finds_each() {
        let t = RepoTable::new(3);
        for n in ["a", "b", "c"] {
            assert!(t.find_or_insert(n).is_some(), "{n}");
        }
        assert!(t.find_or_insert("d").is_none());
        assert!(t.find("d").is_none());
        for n in ["a", "b", "c"] {
            assert_eq!(t.find(n).map(|s| &*s.name), Some(n));
            assert_eq!(t.find_or_insert(n).map(|s| &*s.name), Some(n));
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().count(), 3);
    }

    #[test]
    fn zero_cap_holds_nothing() {
        let t = RepoTable::new(0);
        assert!(t.find_or_insert("a").is_none());
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn many_threads_never_exceed_the_cap() {
        let t = RepoTable::new(50);
        std::thread::scope(|s| {
            for k in 0..4 {
                let t = &t;
                s.spawn(move || {
                    for i in 0..200 {
                        t.find_or_insert(&format!("r{}", (i * 7 + k) % 120));
                    }
                });
            }
        });
        assert_eq!(t.iter().count(), 50);
        let mut names: Vec<_> = t.iter().map(|s| s.name.to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 50);
    }
}

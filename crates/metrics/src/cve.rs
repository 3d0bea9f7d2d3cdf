//! Metrics of vulnerability scanning (`extensions.search.cve`), set by the
//! scanner's sampler: the database version in use and its age, and the
//! scanner's work (layers read, manifests scanned and matched, queue).
//!
//! Invariant: nothing is rendered until the scanner first reports, so a
//! registry without CVE scanning shows none of these series.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::render::{header, load};

const UNSET: u64 = u64::MAX;

/// What the scanner reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CveStatus {
    /// The database version in use (0: none yet).
    pub db_version: u64,
    /// When it was built, seconds since the Unix epoch (0: none yet).
    pub db_built_at: u64,
    pub layers_read: u64,
    pub manifests_scanned: u64,
    pub manifests_matched: u64,
    pub queue: u64,
}

/// The scanner's last report.
#[derive(Debug)]
pub struct Cve([AtomicU64; 6]);

impl Default for Cve {
    fn default() -> Cve {
        Cve(std::array::from_fn(|_| AtomicU64::new(UNSET)))
    }
}

impl Cve {
    pub(crate) fn set(&self, s: &CveStatus) {
        let values = [
            s.db_version,
            s.db_built_at,
            s.layers_read,
            s.manifests_scanned,
            s.manifests_matched,
            s.queue,
        ];
        for (slot, v) in self.0.iter().zip(values) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn render(&self, out: &mut String, om: bool) {
        if load(&self.0[0]) == UNSET {
            return;
        }
        let built = load(&self.0[1]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let age = if built == 0 {
            0
        } else {
            now.saturating_sub(built)
        };
        let series: [(&str, &str, &str, u64); 7] = [
            (
                "zot_cve_db_version",
                "gauge",
                "Version of the vulnerability database in use (0: none yet)",
                load(&self.0[0]),
            ),
            (
                "zot_cve_db_built_timestamp_seconds",
                "gauge",
                "When the database in use was built",
                built,
            ),
            (
                "zot_cve_db_age_seconds",
                "gauge",
                "Age of the database in use",
                age,
            ),
            (
                "zot_cve_layers_read_total",
                "counter",
                "Image layers read by the scanner",
                load(&self.0[2]),
            ),
            (
                "zot_cve_manifests_scanned_total",
                "counter",
                "Manifests whose package inventory was made",
                load(&self.0[3]),
            ),
            (
                "zot_cve_manifests_matched_total",
                "counter",
                "Inventories matched against a database version",
                load(&self.0[4]),
            ),
            (
                "zot_cve_scan_queue_length",
                "gauge",
                "Manifests waiting to be scanned",
                load(&self.0[5]),
            ),
        ];
        for (name, kind, help, value) in series {
            header(out, om, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{BuildInfo, CveStatus, Metrics};

    #[test]
    fn rendered_once_reported() {
        let m = Metrics::new(BuildInfo::default(), 10);
        assert!(!m.render().contains("zot_cve_"));
        m.set_cve(&CveStatus {
            db_version: 3,
            db_built_at: 1,
            layers_read: 7,
            ..CveStatus::default()
        });
        let text = m.render();
        assert!(text.contains("zot_cve_db_version 3\n"), "{text}");
        assert!(text.contains("zot_cve_layers_read_total 7\n"), "{text}");
    }
}

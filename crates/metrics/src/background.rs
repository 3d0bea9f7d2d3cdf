//! Metrics of background work, set by the tasks themselves (never by a
//! request): the scheduler's workers and queue, each task's duration per
//! kind, what GC, retention, scrub and upload expiry did, and gauges that a
//! sampler task sets (upload sessions open, metadata-store file sizes).
//!
//! Invariants:
//! - Every series has a fixed label set: `name` is one of [`Task::ALL`],
//!   `type` one of zot's `manifest`/`blob`/`upload`, `store` one of the
//!   configured stores (a handful, named by the configuration).
//! - A gauge not yet set (`UNSET`) is not rendered, so a binary whose
//!   sampler never ran shows no made-up zero.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::render::{escape, header, histogram, load, summary};
use crate::{Histogram, Summary, nanos};

/// Prometheus' default histogram buckets, as zot's task durations use.
pub const TASK_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const UNSET: u64 = u64::MAX;

/// The kinds of background task, the `name` label of
/// `zot_scheduler_workers_tasks_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Garbage collection (with retention) of one repository.
    Gc,
    /// Scrub of one repository.
    Scrub,
    /// One sweep of abandoned upload sessions.
    UploadExpiry,
    /// Sync of one upstream repository in a periodic run.
    Sync,
}

impl Task {
    pub const ALL: [Task; 4] = [Task::Gc, Task::Scrub, Task::UploadExpiry, Task::Sync];

    pub fn name(self) -> &'static str {
        match self {
            Task::Gc => "gc",
            Task::Scrub => "scrub",
            Task::UploadExpiry => "upload-expiry",
            Task::Sync => "sync",
        }
    }
}

/// What one GC round did, summed over its repositories.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcRound {
    pub manifests_removed: u64,
    pub blobs_removed: u64,
    /// Tags removed by retention policies.
    pub tags_removed: u64,
    /// Objects that could not be read, skipped.
    pub problems: u64,
    /// Whether any repository was skipped on an error.
    pub error: bool,
}

/// What one scrub round found, summed over its repositories.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubRound {
    pub blobs_checked: u64,
    pub manifests_checked: u64,
    pub problems: u64,
}

/// The metrics of background work.
#[derive(Debug)]
pub struct Background {
    workers: AtomicU64,
    working: AtomicU64,
    waiting: AtomicU64,
    durations: [Histogram; Task::ALL.len()],
    /// `zot_gc_runs_total{error="false"|"true"}`.
    gc_runs: [AtomicU64; 2],
    gc_duration: Summary,
    /// `zot_gc_deleted_total{type}`: manifest, blob, upload.
    gc_deleted: [AtomicU64; 3],
    retention_tags: AtomicU64,
    gc_problems: AtomicU64,
    scrub_runs: AtomicU64,
    /// Blobs checked, manifests checked, problems.
    scrub: [AtomicU64; 3],
    uploads_open: AtomicU64,
    meta_bytes: Mutex<Vec<(String, u64)>>,
    /// `zot_lease_skipped_total{task}`: rounds skipped because another
    /// instance held the lease, by [`Task`].
    lease_skipped: [AtomicU64; Task::ALL.len()],
}

impl Default for Background {
    fn default() -> Background {
        Background {
            workers: AtomicU64::new(UNSET),
            working: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            durations: std::array::from_fn(|_| Histogram::new(&TASK_DURATION_BUCKETS)),
            gc_runs: Default::default(),
            gc_duration: Summary::default(),
            gc_deleted: Default::default(),
            retention_tags: AtomicU64::new(0),
            gc_problems: AtomicU64::new(0),
            scrub_runs: AtomicU64::new(0),
            scrub: Default::default(),
            uploads_open: AtomicU64::new(UNSET),
            meta_bytes: Mutex::new(Vec::new()),
            lease_skipped: Default::default(),
        }
    }
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

fn sub(a: &AtomicU64) {
    // Never below zero, even if a caller pairs calls wrongly.
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        Some(n.saturating_sub(1))
    });
}

impl Background {
    /// `scheduler.numWorkers`: how many tasks may run at once.
    pub fn set_workers(&self, n: usize) {
        self.workers.store(n as u64, Ordering::Relaxed);
    }

    /// A task now waits for a worker.
    pub fn queued(&self) {
        add(&self.waiting, 1);
    }

    /// A queued task got its worker.
    pub fn started(&self) {
        sub(&self.waiting);
        add(&self.working, 1);
    }

    /// A started task of `kind` ended after `elapsed`.
    pub fn finished(&self, kind: Task, elapsed: Duration) {
        sub(&self.working);
        self.durations[kind as usize].observe(elapsed);
    }

    /// One GC round (all repositories of a store) ended after `elapsed`.
    pub fn gc_round(&self, r: &GcRound, elapsed: Duration) {
        add(&self.gc_runs[usize::from(r.error)], 1);
        self.gc_duration.observe(nanos(elapsed));
        add(&self.gc_deleted[0], r.manifests_removed);
        add(&self.gc_deleted[1], r.blobs_removed);
        add(&self.retention_tags, r.tags_removed);
        add(&self.gc_problems, r.problems);
    }

    /// Abandoned upload sessions removed.
    pub fn uploads_expired(&self, n: u64) {
        add(&self.gc_deleted[2], n);
    }

    /// A round of `kind` skipped: another instance held its lease.
    pub fn lease_skipped(&self, kind: Task) {
        if let Some(i) = Task::ALL.iter().position(|t| *t == kind) {
            add(&self.lease_skipped[i], 1);
        }
    }

    /// One scrub round ended.
    pub fn scrub_round(&self, r: &ScrubRound) {
        add(&self.scrub_runs, 1);
        add(&self.scrub[0], r.blobs_checked);
        add(&self.scrub[1], r.manifests_checked);
        add(&self.scrub[2], r.problems);
    }

    /// Upload sessions open now, in all stores.
    pub fn set_uploads_open(&self, n: u64) {
        self.uploads_open.store(n, Ordering::Relaxed);
    }

    /// The size of `store`'s metadata-store file now.
    pub fn set_meta_store_bytes(&self, store: &str, bytes: u64) {
        let Ok(mut sizes) = self.meta_bytes.lock() else {
            return;
        };
        match sizes.iter_mut().find(|(s, _)| s == store) {
            Some((_, b)) => *b = bytes,
            None => sizes.push((store.to_owned(), bytes)),
        }
    }

    pub(crate) fn render(&self, out: &mut String, om: bool) {
        let workers = load(&self.workers);
        if workers != UNSET {
            gauge(
                out,
                om,
                "zot_scheduler_workers_total",
                "Total number of workers",
                "",
                workers,
            );
            let working = load(&self.working);
            let name = "zot_scheduler_workers";
            header(out, om, name, "gauge", "Workers by state");
            let idle = workers.saturating_sub(working);
            let _ = writeln!(out, "{name}{{state=\"idle\"}} {idle}");
            let _ = writeln!(out, "{name}{{state=\"working\"}} {working}");
            gauge(
                out,
                om,
                "zot_scheduler_tasksqueue_length",
                "Background tasks waiting for a worker",
                "",
                load(&self.waiting),
            );
        }
        let name = "zot_scheduler_workers_tasks_duration_seconds";
        header(
            out,
            om,
            name,
            "histogram",
            "How long background tasks ran, by kind",
        );
        for (task, h) in Task::ALL.iter().zip(&self.durations) {
            if load(&h.sum.count) > 0 {
                histogram(out, om, name, &format!("name=\"{}\"", task.name()), h);
            }
        }

        let name = "zot_gc_runs_total";
        header(out, om, name, "counter", "Garbage collection rounds");
        for (error, n) in ["false", "true"].iter().zip(&self.gc_runs) {
            let _ = writeln!(out, "{name}{{error=\"{error}\"}} {}", load(n));
        }
        let name = "zot_gc_duration_seconds";
        header(
            out,
            om,
            name,
            "summary",
            "How long garbage collection rounds ran",
        );
        summary(out, name, "", &self.gc_duration);
        let name = "zot_gc_deleted_total";
        header(
            out,
            om,
            name,
            "counter",
            "Objects removed by garbage collection",
        );
        for (kind, n) in ["manifest", "blob", "upload"].iter().zip(&self.gc_deleted) {
            let _ = writeln!(out, "{name}{{type=\"{kind}\"}} {}", load(n));
        }
        for (name, help, n) in [
            (
                "zot_retention_tags_removed_total",
                "Tags removed by retention policies",
                &self.retention_tags,
            ),
            (
                "zot_gc_problems_total",
                "Objects garbage collection could not read and skipped",
                &self.gc_problems,
            ),
            ("zot_scrub_runs_total", "Scrub rounds", &self.scrub_runs),
            (
                "zot_scrub_blobs_checked_total",
                "Blobs hashed by scrub",
                &self.scrub[0],
            ),
            (
                "zot_scrub_manifests_checked_total",
                "Manifests checked by scrub",
                &self.scrub[1],
            ),
            (
                "zot_scrub_problems_total",
                "Problems found by scrub",
                &self.scrub[2],
            ),
        ] {
            header(out, om, name, "counter", help);
            let _ = writeln!(out, "{name} {}", load(n));
        }

        let name = "zot_lease_skipped_total";
        header(
            out,
            om,
            name,
            "counter",
            "Background rounds skipped because another instance held the lease",
        );
        for (task, n) in Task::ALL.iter().zip(&self.lease_skipped) {
            let _ = writeln!(out, "{name}{{task=\"{}\"}} {}", task.name(), load(n));
        }

        let open = load(&self.uploads_open);
        if open != UNSET {
            gauge(
                out,
                om,
                "zot_upload_sessions_open",
                "Upload sessions open",
                "",
                open,
            );
        }
        if let Ok(sizes) = self.meta_bytes.lock()
            && !sizes.is_empty()
        {
            let name = "zot_meta_store_bytes";
            header(
                out,
                om,
                name,
                "gauge",
                "Size of the metadata-store file, per store",
            );
            for (store, bytes) in sizes.iter() {
                let _ = writeln!(out, "{name}{{store=\"{}\"}} {bytes}", escape(store));
            }
        }
    }
}

fn gauge(out: &mut String, om: bool, name: &str, help: &str, labels: &str, value: u64) {
    header(out, om, name, "gauge", help);
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildInfo, Metrics};

    #[test]
    fn scheduler_gauges_follow_tasks() {
        let m = Metrics::new(BuildInfo::default(), 10);
        let b = m.background();
        assert!(!m.render().contains("zot_scheduler_workers_total"));
        b.set_workers(3);
        b.queued();
        b.queued();
        b.started();
        let text = m.render();
        assert!(text.contains("\nzot_scheduler_workers_total 3\n"), "{text}");
        assert!(text.contains("\nzot_scheduler_workers{state=\"working\"} 1\n"));
        assert!(text.contains("\nzot_scheduler_workers{state=\"idle\"} 2\n"));
        assert!(text.contains("\nzot_scheduler_tasksqueue_length 1\n"));
        b.finished(Task::Scrub, Duration::from_millis(30));
        b.finished(Task::Scrub, Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains("\nzot_scheduler_workers{state=\"working\"} 0\n"),
            "never below zero: {text}"
        );
        let name = "zot_scheduler_workers_tasks_duration_seconds";
        assert!(text.contains(&format!(
            "\n{name}_bucket{{name=\"scrub\",le=\"0.025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "\n{name}_bucket{{name=\"scrub\",le=\"0.05\"}} 2\n"
        )));
        assert!(text.contains(&format!("\n{name}_count{{name=\"scrub\"}} 2\n")));
        assert!(!text.contains("name=\"gc\""), "{text}");
    }

    #[test]
    fn gc_scrub_and_gauges_are_counted() {
        let m = Metrics::new(BuildInfo::default(), 10);
        let b = m.background();
        b.gc_round(
            &GcRound {
                manifests_removed: 2,
                blobs_removed: 5,
                tags_removed: 1,
                problems: 0,
                error: false,
            },
            Duration::from_millis(500),
        );
        b.gc_round(
            &GcRound {
                blobs_removed: 1,
                error: true,
                ..GcRound::default()
            },
            Duration::from_millis(500),
        );
        b.uploads_expired(4);
        b.scrub_round(&ScrubRound {
            blobs_checked: 7,
            manifests_checked: 3,
            problems: 1,
        });
        b.set_uploads_open(2);
        b.set_meta_store_bytes("default", 100);
        b.set_meta_store_bytes("/a", 7);
        b.set_meta_store_bytes("default", 200);
        let text = m.render();
        for line in [
            "zot_gc_runs_total{error=\"false\"} 1",
            "zot_gc_runs_total{error=\"true\"} 1",
            "zot_gc_duration_seconds_count 2",
            "zot_gc_duration_seconds_sum 1",
            "zot_gc_deleted_total{type=\"manifest\"} 2",
            "zot_gc_deleted_total{type=\"blob\"} 6",
            "zot_gc_deleted_total{type=\"upload\"} 4",
            "zot_retention_tags_removed_total 1",
            "zot_scrub_runs_total 1",
            "zot_scrub_blobs_checked_total 7",
            "zot_scrub_problems_total 1",
            "zot_upload_sessions_open 2",
            "zot_meta_store_bytes{store=\"default\"} 200",
            "zot_meta_store_bytes{store=\"/a\"} 7",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
        }
    }
}

//! What the sync extension is doing, per upstream: served as JSON at
//! `GET /v2/_zot/ext/sync` (ours; zot has no such endpoint) and logged per
//! run. Times are Unix seconds.
//!
//! ```json
//! {"registries": [{"urls": ["https://r:5000"], "onDemand": false,
//!   "pollIntervalSeconds": 3600, "running": false, "runs": 3,
//!   "nextRun": 1796612400,
//!   "lastRun": {"start": 1796608790, "end": 1796608800, "error": null,
//!     "repositories": 4, "failed": 0, "copied": 1, "present": 9,
//!     "skipped": 0, "blobs": 2, "bytes": 1048576}}]}
//! ```

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::{RunReport, Upstream};

#[derive(Debug, Clone, Default)]
struct Entry {
    urls: Vec<String>,
    on_demand: bool,
    poll_interval: Option<Duration>,
    running: bool,
    runs: u64,
    started: Option<SystemTime>,
    last: Option<Value>,
    next: Option<SystemTime>,
}

/// The status of every upstream, in configuration order.
#[derive(Debug, Default)]
pub struct SyncStatus {
    entries: Mutex<Vec<Entry>>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SyncStatus {
    /// One entry per upstream.
    pub fn new(upstreams: &[std::sync::Arc<Upstream>]) -> SyncStatus {
        SyncStatus {
            entries: Mutex::new(
                upstreams
                    .iter()
                    .map(|u| Entry {
                        urls: u.urls.clone(),
                        on_demand: u.on_demand,
                        poll_interval: u.poll_interval(),
                        ..Entry::default()
                    })
                    .collect(),
            ),
        }
    }

    fn with(&self, i: usize, f: impl FnOnce(&mut Entry)) {
        if let Ok(mut e) = self.entries.lock()
            && let Some(entry) = e.get_mut(i)
        {
            f(entry);
        }
    }

    /// Upstream `i` starts a run.
    pub fn started(&self, i: usize) {
        self.with(i, |e| {
            e.running = true;
            e.started = Some(SystemTime::now());
            e.next = None;
        });
    }

    /// Upstream `i` ended a run, with its report or error; the next run
    /// is due after `next`.
    pub fn finished(&self, i: usize, outcome: Result<&RunReport, String>, next: Duration) {
        let now = SystemTime::now();
        self.with(i, |e| {
            e.running = false;
            e.runs += 1;
            let start = e.started.map_or(0, unix);
            e.last = Some(match outcome {
                Ok(r) => json!({
                    "start": start, "end": unix(now), "error": null,
                    "repositories": r.repositories, "failed": r.failed,
                    "copied": r.copied, "present": r.present, "skipped": r.skipped,
                    "blobs": r.stats.blobs, "bytes": r.stats.bytes,
                }),
                Err(error) => json!({ "start": start, "end": unix(now), "error": error }),
            });
            e.next = Some(now + next);
        });
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        let entries = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
        let registries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "urls": e.urls,
                    "onDemand": e.on_demand,
                    "pollIntervalSeconds": e.poll_interval.map(|d| d.as_secs()),
                    "running": e.running,
                    "runs": e.runs,
                    "nextRun": e.next.map(unix),
                    "lastRun": e.last,
                })
            })
            .collect();
        json!({ "registries": registries }).to_string()
    }
}

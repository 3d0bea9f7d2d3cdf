//! The metrics sampler (feature `metrics`): every few seconds, sets the
//! gauges that no request feeds: upload sessions open, each store's
//! metadata-store file size, and `zot_repo_storage_bytes` of each
//! repository of a local store.
//!
//! Invariants:
//! - Nothing here runs per scrape or per request.
//! - A repository's directory is walked only when it may have changed: its
//!   `index.json` (manifests, tags) or its `blobs/sha256` directory (blobs
//!   added or removed, by a push or GC) has a new mtime since the last
//!   walk; otherwise it costs two `stat`s. File I/O runs on the blocking
//!   pool.
//! - Repositories the label cap leaves without a label are not walked
//!   again (their size could not be shown).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zot_metrics::Metrics;

use crate::lifecycle::Store;

/// How often the gauges are set.
const SAMPLE: Duration = Duration::from_secs(5);

/// What was last measured of one repository.
#[derive(PartialEq)]
struct Seen {
    index: Option<SystemTime>,
    blobs: Option<SystemTime>,
}

/// A local store: its name, root and registry.
struct Sampled {
    name: String,
    root: PathBuf,
    local: bool,
    registry: Arc<zot_storage::Registry>,
    seen: HashMap<String, Seen>,
    unlabelled: HashSet<String>,
}

/// Starts the sampler over `stores`.
pub fn start(metrics: Arc<Metrics>, stores: &[Store]) {
    let mut sampled: Vec<Sampled> = stores
        .iter()
        .map(|s| Sampled {
            name: s.name.clone(),
            root: s.settings.root_directory.clone(),
            local: s.settings.storage_driver.is_none(),
            registry: s.registry.clone(),
            seen: HashMap::new(),
            unlabelled: HashSet::new(),
        })
        .collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let open: usize = sampled.iter().map(|s| s.registry.open_uploads()).sum();
            metrics.background().set_uploads_open(open as u64);
            let m = metrics.clone();
            let walked = tokio::task::spawn_blocking(move || {
                for store in &mut sampled {
                    sample(&m, store);
                }
                sampled
            });
            sampled = match walked.await {
                Ok(back) => back,
                Err(e) => {
                    tracing::error!(error = %e, "metrics sampler stopped");
                    return;
                }
            };
        }
    });
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn sample(metrics: &Metrics, store: &mut Sampled) {
    let meta = store.root.join(zot_storage::paths::META_DB);
    if let Ok(m) = std::fs::metadata(&meta) {
        metrics
            .background()
            .set_meta_store_bytes(&store.name, m.len());
    }
    if !store.local {
        return;
    }
    let names = match store.registry.catalog(None, usize::MAX) {
        Ok((names, _)) => names,
        Err(e) => {
            tracing::warn!(error = %e, store = store.name, "listing repositories for metrics");
            return;
        }
    };
    for name in names {
        if store.unlabelled.contains(&name) {
            continue;
        }
        let dir = store.root.join(&name);
        let now = Seen {
            index: mtime(&dir.join("index.json")),
            blobs: mtime(&dir.join("blobs/sha256")),
        };
        if store.seen.get(&name) == Some(&now) {
            continue;
        }
        if metrics.set_repo_storage_bytes(&name, dir_size(&dir)) {
            store.seen.insert(name, now);
        } else {
            store.unlabelled.insert(name);
        }
    }
}

/// The bytes of the regular files under `dir` (symbolic links not
/// followed), as zot's directory size.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry.path()),
                Ok(t) if t.is_file() => {
                    total += entry.metadata().map_or(0, |m| m.len());
                }
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_counts_files_below() {
        let tmp = std::env::temp_dir().join(format!("zot-dir-size-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("blobs/sha256")).unwrap();
        std::fs::write(tmp.join("index.json"), b"12345").unwrap();
        std::fs::write(tmp.join("blobs/sha256/ab"), vec![0u8; 1000]).unwrap();
        assert_eq!(dir_size(&tmp), 1005);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

//! The `storage` section.
//!
//! Invariants of a parsed [`StorageConfig`]:
//! - `root_directory` is non-empty (it is required in a file).
//! - With `gc: false`, `gcDelay` and `gcInterval` default to zero (as zot's
//!   `applyDefaultValues`), otherwise to one hour each.
//! - `remoteCache: false` is accepted (it is this build's behaviour: a local
//!   dedupe cache); `remoteCache: true` and every other key zot knows but this
//!   build does not implement is a `not supported by this build` problem.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// zot's default delay before an unreferenced blob may be collected.
pub const DEFAULT_GC_DELAY: Duration = Duration::from_secs(3600);
/// zot's default period between garbage collection runs.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(3600);

/// Keys zot knows under `storage` that this build does not implement.
const UNSUPPORTED: &[&str] = &[
    "storageDriver",
    "cacheDriver",
    "subPaths",
    "retention",
    "gcTimeWindow",
];

/// Where and how images are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Root of the OCI image layouts (`storage.rootDirectory`).
    pub root_directory: PathBuf,
    /// Store identical blobs once (`storage.dedupe`, default true).
    pub dedupe: bool,
    /// Garbage-collect unreferenced blobs and manifests (`storage.gc`, default true).
    pub gc: bool,
    /// Minimum age of a blob before GC may remove it (`storage.gcDelay`).
    pub gc_delay: Duration,
    /// Period of background GC runs (`storage.gcInterval`; zero: no periodic run).
    pub gc_interval: Duration,
    /// fsync written files before they become visible (`storage.commit`, default false).
    pub commit: bool,
}

impl StorageConfig {
    /// zot's defaults with the given root directory.
    pub fn with_root(root_directory: impl Into<PathBuf>) -> Self {
        Self {
            root_directory: root_directory.into(),
            dedupe: true,
            gc: true,
            gc_delay: DEFAULT_GC_DELAY,
            gc_interval: DEFAULT_GC_INTERVAL,
            commit: false,
        }
    }
}

/// Reads `storage` (absent: an empty section, so `rootDirectory` is reported missing).
pub(crate) fn parse(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<StorageConfig> {
    let mut section = Section::new(
        "storage".to_owned(),
        value.unwrap_or(&Value::Null),
        problems,
    )?;
    let root_present = section.has("rootDirectory");
    let root = fields::string(&mut section, "rootDirectory", problems);
    let dedupe = fields::boolean(&mut section, "dedupe", problems);
    let gc = fields::boolean(&mut section, "gc", problems).unwrap_or(true);
    let gc_delay = fields::duration(&mut section, "gcDelay", problems);
    let gc_interval = fields::duration(&mut section, "gcInterval", problems);
    let commit = fields::boolean(&mut section, "commit", problems);
    if fields::boolean(&mut section, "remoteCache", problems) == Some(true) {
        problems.push(Problem::new(
            section.child("remoteCache"),
            "not supported by this build",
        ));
    }
    section.unsupported(UNSUPPORTED, problems);
    let root_path = section.child("rootDirectory");
    section.finish(problems);

    let root = match root {
        Some(r) if r.trim().is_empty() => {
            problems.push(Problem::new(root_path, "must not be empty"));
            return None;
        }
        Some(r) => r,
        None => {
            // When present, the reader has already reported the wrong type.
            if !root_present {
                problems.push(Problem::new(root_path, "required"));
            }
            return None;
        }
    };
    let (default_delay, default_interval) = if gc {
        (DEFAULT_GC_DELAY, DEFAULT_GC_INTERVAL)
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    Some(StorageConfig {
        root_directory: PathBuf::from(root),
        dedupe: dedupe.unwrap_or(true),
        gc,
        gc_delay: gc_delay.unwrap_or(default_delay),
        gc_interval: gc_interval.unwrap_or(default_interval),
        commit: commit.unwrap_or(false),
    })
}

//! The `storage` section.
//!
//! Invariants of a parsed [`StorageConfig`]:
//! - `root_directory` is non-empty (it is required in a file).
//! - With `gc: false`, `gcDelay` and `gcInterval` default to zero (as zot's
//!   `applyDefaultValues`), otherwise to one hour each.
//! - `gcTimeWindow`, when set, is `HH:MM-HH:MM` (UTC; the window may wrap
//!   past midnight): periodic GC runs start only inside it.
//! - `retention` is read by [`crate::retention`].
//! - `remoteCache: false` is accepted (it is this build's behaviour: a local
//!   dedupe cache); `remoteCache: true` and every other key zot knows but this
//!   build does not implement is a `not supported by this build` problem.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::retention::{self, RetentionConfig};
use crate::value::Section;

/// zot's default delay before an unreferenced blob may be collected.
pub const DEFAULT_GC_DELAY: Duration = Duration::from_secs(3600);
/// zot's default period between garbage collection runs.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(3600);

/// Keys zot knows under `storage` that this build does not implement.
const UNSUPPORTED: &[&str] = &["storageDriver", "cacheDriver", "subPaths"];

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
    /// When periodic GC may start (`storage.gcTimeWindow`); `None`: any time.
    pub gc_time_window: Option<TimeWindow>,
    /// Which tags and manifests GC keeps (`storage.retention`).
    pub retention: RetentionConfig,
}

/// A daily window of UTC time, `HH:MM-HH:MM`; it wraps past midnight when
/// the end is before the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Minutes after midnight UTC at which the window opens.
    pub start_minute: u16,
    /// Minutes after midnight UTC at which it closes.
    pub end_minute: u16,
}

impl TimeWindow {
    /// Whether `minute` (after midnight UTC) is inside the window.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }

    /// Whether the current time is inside the window.
    pub fn contains_now(&self) -> bool {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.contains(((secs % 86_400) / 60) as u16)
    }
}

impl std::str::FromStr for TimeWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid time window {s:?} (expected HH:MM-HH:MM)");
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = s.split_once('-').ok_or_else(invalid)?;
        Ok(TimeWindow {
            start_minute: minute(start).ok_or_else(invalid)?,
            end_minute: minute(end).ok_or_else(invalid)?,
        })
    }
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
            gc_time_window: None,
            retention: RetentionConfig::default(),
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
    let mut gc_time_window = None;
    if let Some(w) = fields::string(&mut section, "gcTimeWindow", problems) {
        match w.parse::<TimeWindow>() {
            Ok(w) => gc_time_window = Some(w),
            Err(message) => problems.push(Problem::new(section.child("gcTimeWindow"), message)),
        }
    }
    let retention = retention::parse(section.get("retention"), problems);
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
        gc_time_window,
        retention,
    })
}

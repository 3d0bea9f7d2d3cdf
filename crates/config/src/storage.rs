//! The `storage` section.
//!
//! Invariants of a parsed [`StorageConfig`]:
//! - `root_directory` is non-empty (it is required in a file).
//! - With `gc: false`, `gcDelay` and `gcInterval` default to zero (as zot's
//!   `applyDefaultValues`), otherwise to one hour each.
//! - `gcTimeWindow`, when set, is `HH:MM-HH:MM` (UTC; the window may wrap
//!   past midnight; start and end differ, so it is never empty): periodic
//!   GC runs start only inside it, and a run that falls due outside it
//!   starts when it next opens.
//! - `retention` is read by [`crate::retention`].
//! - `storageDriver` (`name: s3`) is read by [`crate::storage_driver`];
//!   `rootDirectory` stays a local folder (the metadata store) then.
//! - `remoteCache` says whether the store's metadata lives outside the
//!   process, in `cacheDriver` (read by [`crate::cache_driver`]). As zot
//!   decides: unset, it is true for remote storage (`storageDriver`) with
//!   `dedupe`, else false; true without `cacheDriver` is a problem (the
//!   fix is a `cacheDriver`, or `remoteCache: false` to keep the metadata
//!   under `rootDirectory`); `cacheDriver` with `remoteCache` false is
//!   ignored ([`StorageConfig::cache_driver_ignored`], which the server logs
//!   as a warning). A sub-path on local storage cannot have `remoteCache`
//!   (zot: "cannot have local storage driver with remote caching").
//!   [`StorageConfig::cache_driver`] is `Some` exactly when the metadata
//!   lives in Redis.
//! - Two stores (the default and the sub-paths, or two sub-paths with
//!   different roots) never share a Redis key prefix on one server and
//!   database: each store's keys are its own.
//! - `subPaths` maps a route prefix (`/a`, or deeper such as `/a/b`: slash
//!   first, then repository-name components) to a store of its own, read
//!   with the same keys as `storage` itself (no `subPaths` inside). As in
//!   zot, a sub-path's `dedupe` and `gc` default to false (only the global
//!   section has zot's `true` defaults), and with `gc` on its `gcDelay` and
//!   `gcInterval` default to one hour; `gc` with `gcDelay` zero is refused.
//! - Root directories do not overlap: a sub-path's root is neither the
//!   default root nor inside or around it, nor inside or around another
//!   sub-path's root. Two sub-paths may share one root (one store serving
//!   both prefixes) only with identical settings, as zot requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// Stores of their own for repository prefixes (`storage.subPaths`),
    /// by prefix as written (`/a`); always empty inside a sub-path.
    pub sub_paths: BTreeMap<String, StorageConfig>,
    /// The layouts in an S3 bucket (`storage.storageDriver`, see
    /// [`crate::storage_driver`]); `None`: under `root_directory`, which
    /// holds the metadata store either way.
    pub storage_driver: Option<crate::storage_driver::S3Config>,
    /// The shared metadata store (`storage.remoteCache` with
    /// `storage.cacheDriver`, see [`crate::cache_driver`]); `None`: the
    /// embedded store under `root_directory`.
    pub cache_driver: Option<crate::cache_driver::CacheDriver>,
    /// `cacheDriver` was given with `remoteCache: false`, and is ignored
    /// (the server warns).
    pub cache_driver_ignored: bool,
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

    /// When a run that is due at `now` (time since the Unix epoch, UTC) may
    /// start: `now` when it is inside the window, else the moment the
    /// window next opens.
    pub fn start_of_run_due_at(&self, now: std::time::Duration) -> std::time::Duration {
        const DAY: u64 = 86_400;
        let secs = now.as_secs();
        if self.contains(((secs % DAY) / 60) as u16) {
            return now;
        }
        let opens_today = secs - secs % DAY + u64::from(self.start_minute) * 60;
        let opens = if opens_today > secs {
            opens_today
        } else {
            opens_today + DAY
        };
        std::time::Duration::from_secs(opens)
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
        let window = TimeWindow {
            start_minute: minute(start).ok_or_else(invalid)?,
            end_minute: minute(end).ok_or_else(invalid)?,
        };
        if window.start_minute == window.end_minute {
            return Err(format!(
                "empty time window {s:?}: it opens and closes at the same minute, so GC would never run"
            ));
        }
        Ok(window)
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
            sub_paths: BTreeMap::new(),
            storage_driver: None,
            cache_driver: None,
            cache_driver_ignored: false,
        }
    }

    /// The route prefix of a `subPaths` key: `/a/b/` is `a/b`.
    pub fn route_prefix(key: &str) -> &str {
        key.trim_matches('/')
    }
}

/// Whether `key` is a valid `subPaths` key: `/` then one or more
/// repository-name components (`[a-z0-9]+` joined by `.`, `_`, `__` or `-`s).
fn valid_route(key: &str) -> bool {
    let Some(rest) = key.strip_prefix('/') else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !rest.is_empty()
        && rest.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|&x| x.is_ascii_digit() || x.is_ascii_lowercase() || b"._-".contains(&x))
        })
}

/// Whether one of two root directories is, or lies inside, the other
/// (compared lexically, after removing `.` components).
fn overlapping(a: &Path, b: &Path) -> bool {
    let clean = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    };
    let (a, b) = (clean(a), clean(b));
    a.starts_with(&b) || b.starts_with(&a)
}

/// Reads `storage` (absent: an empty section, so `rootDirectory` is reported missing).
pub(crate) fn parse(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<StorageConfig> {
    parse_section(
        "storage".to_owned(),
        value.unwrap_or(&Value::Null),
        true,
        problems,
    )
}

/// Whether two stores would write the same Redis keys.
fn same_redis_keys(a: &StorageConfig, b: &StorageConfig) -> bool {
    use crate::cache_driver::CacheDriver::Redis;
    match (&a.cache_driver, &b.cache_driver) {
        (Some(Redis(x)), Some(Redis(y))) => {
            x.key_prefix == y.key_prefix
                && x.db == y.db
                && x.addrs.iter().any(|h| y.addrs.contains(h))
        }
        _ => false,
    }
}

/// Reads the `subPaths` of `section` (whose root is `root`, when valid).
fn parse_sub_paths(
    section: &mut Section<'_>,
    root: Option<&str>,
    global_cache: Option<&crate::cache_driver::CacheDriver>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, StorageConfig> {
    let mut out = BTreeMap::new();
    let path = section.child("subPaths");
    let Some(value) = section.get("subPaths") else {
        return out;
    };
    let Some(mut map) = Section::new(path.clone(), value, problems) else {
        return out;
    };
    let mut routes: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in map.take_rest() {
        let key_path = format!("{path}.{key}");
        if !valid_route(key) {
            problems.push(Problem::new(
                key_path.clone(),
                "not a route prefix (expected `/` and repository-name components, e.g. `/infra`)",
            ));
        }
        let route = StorageConfig::route_prefix(key).to_owned();
        if let Some(other) = routes.insert(route, key.to_owned()) {
            problems.push(Problem::new(
                key_path.clone(),
                format!("the same route prefix as {other:?}"),
            ));
        }
        if let Some(sub) = parse_section(key_path, value, false, problems) {
            out.insert(key.to_owned(), sub);
        }
    }
    map.finish(problems);
    // Roots: one per store, never nested in another store's.
    let subs: Vec<(&String, &StorageConfig)> = out.iter().collect();
    for (i, (key, sub)) in subs.iter().enumerate() {
        let at = format!("{path}.{key}.rootDirectory");
        let global = StorageConfig {
            cache_driver: global_cache.cloned(),
            ..StorageConfig::with_root("")
        };
        if same_redis_keys(sub, &global) {
            problems.push(Problem::new(
                format!("{path}.{key}.cacheDriver.keyprefix"),
                "the same Redis and keyprefix as storage.cacheDriver: each store needs a keyprefix of its own",
            ));
        }
        if let Some(root) = root
            && overlapping(&sub.root_directory, Path::new(root))
        {
            problems.push(Problem::new(
                at.clone(),
                "must not be storage.rootDirectory, nor inside or around it",
            ));
        }
        for (other_key, other) in &subs[..i] {
            if sub.root_directory == other.root_directory {
                if sub != other {
                    problems.push(Problem::new(
                        at.clone(),
                        format!(
                            "shared with subPaths.{other_key}, whose settings differ (a shared root needs identical settings)"
                        ),
                    ));
                }
            } else if same_redis_keys(sub, other) {
                problems.push(Problem::new(
                    format!("{path}.{key}.cacheDriver.keyprefix"),
                    format!(
                        "the same Redis and keyprefix as subPaths.{other_key}: each store needs a keyprefix of its own"
                    ),
                ));
            } else if overlapping(&sub.root_directory, &other.root_directory) {
                problems.push(Problem::new(
                    at.clone(),
                    format!("inside or around the rootDirectory of subPaths.{other_key}"),
                ));
            }
        }
    }
    out
}

/// Reads one storage section: `storage` itself (`global`), or one of its
/// `subPaths`.
fn parse_section(
    path: String,
    value: &Value,
    global: bool,
    problems: &mut Vec<Problem>,
) -> Option<StorageConfig> {
    let mut section = Section::new(path, value, problems)?;
    let root_present = section.has("rootDirectory");
    let root = fields::string(&mut section, "rootDirectory", problems);
    // zot's defaults (`true`) apply to the global section only.
    let dedupe = fields::boolean(&mut section, "dedupe", problems).unwrap_or(global);
    let gc = fields::boolean(&mut section, "gc", problems).unwrap_or(global);
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
    let retention = retention::parse(
        section.child("retention"),
        section.get("retention"),
        problems,
    );
    let storage_driver = section
        .get("storageDriver")
        .and_then(|v| crate::storage_driver::parse(section.child("storageDriver"), v, problems));
    // An unusable storageDriver has its problem already: no second one here.
    let remote_storage = storage_driver.is_some();
    let (cache_driver, cache_driver_ignored) =
        cache_settings(&mut section, global, remote_storage, dedupe, problems);
    let sub_paths = if global {
        parse_sub_paths(
            &mut section,
            root.as_deref().filter(|r| !r.trim().is_empty()),
            cache_driver.as_ref(),
            problems,
        )
    } else {
        BTreeMap::new()
    };
    if !global && gc && gc_delay.is_some_and(|d| d.is_zero()) {
        problems.push(Problem::new(
            section.child("gcDelay"),
            "must not be zero when gc is on",
        ));
    }
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
        dedupe,
        gc,
        gc_delay: gc_delay.unwrap_or(default_delay),
        gc_interval: gc_interval.unwrap_or(default_interval),
        commit: commit.unwrap_or(false),
        gc_time_window,
        retention,
        sub_paths,
        storage_driver,
        cache_driver,
        cache_driver_ignored,
    })
}

/// Reads `remoteCache` and `cacheDriver` of one store (see the module
/// documentation): the driver when the metadata lives there, and whether a
/// `cacheDriver` was ignored.
fn cache_settings(
    section: &mut Section<'_>,
    global: bool,
    remote_storage: bool,
    dedupe: bool,
    problems: &mut Vec<Problem>,
) -> (Option<crate::cache_driver::CacheDriver>, bool) {
    let explicit = fields::boolean(section, "remoteCache", problems);
    let remote_cache = explicit.unwrap_or(remote_storage && dedupe);
    let has_driver = section.has("cacheDriver");
    if !remote_cache {
        // zot: "remoteCache set to false but cacheDriver config is provided, ignoring it".
        let _ = section.get_even_null("cacheDriver");
        return (None, has_driver);
    }
    if !global && !remote_storage {
        problems.push(Problem::new(
            section.child("remoteCache"),
            "cannot be true for a sub-path on local storage (as zot)",
        ));
        let _ = section.get_even_null("cacheDriver");
        return (None, false);
    }
    let Some(value) = section.get("cacheDriver") else {
        let why = if explicit.is_some() {
            "needs storage.cacheDriver"
        } else {
            "is true by default for remote storage with dedupe (as zot), and needs storage.cacheDriver"
        };
        problems.push(Problem::new(
            section.child("remoteCache"),
            format!(
                "{why}: configure a redis cacheDriver (the shared metadata store), or set remoteCache: false to keep the metadata under rootDirectory"
            ),
        ));
        return (None, false);
    };
    (
        crate::cache_driver::parse(section.child("cacheDriver"), value, problems),
        false,
    )
}

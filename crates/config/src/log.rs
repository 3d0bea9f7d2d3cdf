//! The `log` and `scheduler` sections.
//!
//! Invariants: `log.level` is one of zot's (zerolog's) level names, matched
//! case-insensitively, default `debug` as in zot; an empty `output` or `audit`
//! means "not set" (standard output, no audit log), as in zot.
//! `scheduler.numWorkers: 0` means "the default", as in zot.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// Logging (`log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Least severe level written (`log.level`, default `debug` as in zot).
    pub level: LogLevel,
    /// Log file (`log.output`); `None`: standard output.
    pub output: Option<PathBuf>,
    /// Audit log file (`log.audit`); `None`: no audit log.
    pub audit: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Debug,
            output: None,
            audit: None,
        }
    }
}

/// A log level, named as in zot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
    /// `fatal`
    Fatal,
    /// `panic`
    Panic,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 7] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
        LogLevel::Panic,
    ];

    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
            LogLevel::Panic => "panic",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown log level {s:?} (expected trace, debug, info, warn, error, fatal or panic)")
            })
    }
}

/// Background task scheduling (`scheduler`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Worker count (`scheduler.numWorkers`); `None`: the default.
    pub num_workers: Option<usize>,
}

/// Reads `log` (absent: defaults).
pub(crate) fn parse_log(value: Option<&Value>, problems: &mut Vec<Problem>) -> LogConfig {
    let mut config = LogConfig::default();
    let Some(mut section) = Section::new("log".to_owned(), value.unwrap_or(&Value::Null), problems)
    else {
        return config;
    };
    if let Some(level) = fields::string(&mut section, "level", problems) {
        match level.parse() {
            Ok(level) => config.level = level,
            Err(message) => problems.push(Problem::new(section.child("level"), message)),
        }
    }
    let file = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(PathBuf::from);
    config.output = file(fields::string(&mut section, "output", problems));
    config.audit = file(fields::string(&mut section, "audit", problems));
    section.finish(problems);
    config
}

/// Reads `scheduler` (absent: defaults).
pub(crate) fn parse_scheduler(
    value: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> SchedulerConfig {
    let mut config = SchedulerConfig::default();
    let Some(mut section) = Section::new(
        "scheduler".to_owned(),
        value.unwrap_or(&Value::Null),
        problems,
    ) else {
        return config;
    };
    if let Some(n) = fields::unsigned(&mut section, "numWorkers", problems) {
        match usize::try_from(n) {
            Ok(0) => {}
            Ok(n) => config.num_workers = Some(n),
            Err(_) => problems.push(Problem::new(section.child("numWorkers"), "too large")),
        }
    }
    section.finish(problems);
    config
}

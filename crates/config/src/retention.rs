//! `storage.retention`: which tags and manifests garbage collection keeps.
//!
//! Invariants of a parsed [`RetentionConfig`] (zot's semantics):
//! - `delay` defaults to 24 h: untagged manifests and referrers are removed
//!   only once older than that.
//! - Each policy's `repositories` are valid globs (see [`crate::glob`]: `*`
//!   within one path segment, `**` across segments); an empty list matches
//!   every repository.
//! - `deleteUntagged` defaults to true, `deleteReferrers` to false.
//! - Every `keepTags[].patterns` entry is a valid regular expression
//!   (checked here, so a bad pattern is a problem at load, naming the item);
//!   an empty list means `.*`.

use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::{Section, kind};

/// zot's default `storage.retention.delay`.
pub const DEFAULT_RETENTION_DELAY: Duration = Duration::from_secs(24 * 3600);

/// `storage.retention`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Log what would be removed, remove nothing (`dryRun`, default false).
    pub dry_run: bool,
    /// Minimum age of an untagged manifest or referrer before removal (`delay`).
    pub delay: Duration,
    /// `policies`, in order: the first whose `repositories` match applies.
    pub policies: Vec<RetentionPolicy>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            delay: DEFAULT_RETENTION_DELAY,
            policies: Vec::new(),
        }
    }
}

/// One entry of `storage.retention.policies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Repository globs (`repositories`); empty: every repository.
    pub repositories: Vec<String>,
    /// Remove referrers whose subject is gone (`deleteReferrers`, default false).
    pub delete_referrers: bool,
    /// Remove manifests without tags (`deleteUntagged`, default true).
    pub delete_untagged: bool,
    /// `keepTags`: when non-empty, a tag is kept only if one rule keeps it.
    pub keep_tags: Vec<KeepTagsRule>,
}

/// One entry of `keepTags`. A tag matching `patterns` is kept when the rule
/// has no other criterion, or when any criterion holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeepTagsRule {
    /// Regular expressions (`patterns`); empty: every tag.
    pub patterns: Vec<String>,
    /// `pulledWithin`
    pub pulled_within: Option<Duration>,
    /// `pushedWithin`
    pub pushed_within: Option<Duration>,
    /// `mostRecentlyPushedCount`
    pub most_recently_pushed_count: Option<usize>,
    /// `mostRecentlyPulledCount`
    pub most_recently_pulled_count: Option<usize>,
}

/// The items of a list key; a non-list is one problem.
fn list<'a>(
    section: &mut Section<'a>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, &'a Value)> {
    match section.get(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{}[{i}]", section.child(name)), v))
            .collect(),
        Some(other) => {
            problems.push(Problem::new(
                section.child(name),
                format!("expected a list, found {}", kind(other)),
            ));
            Vec::new()
        }
    }
}

fn count(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<usize> {
    fields::unsigned(section, name, problems).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Reads `storage.retention` (or a sub-path's, at `path`; absent: defaults).
pub(crate) fn parse(
    path: String,
    value: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> RetentionConfig {
    let mut config = RetentionConfig::default();
    let Some(mut section) = Section::new(path, value.unwrap_or(&Value::Null), problems) else {
        return config;
    };
    config.dry_run = fields::boolean(&mut section, "dryRun", problems).unwrap_or(false);
    if let Some(delay) = fields::duration(&mut section, "delay", problems) {
        config.delay = delay;
    }
    for (path, item) in list(&mut section, "policies", problems) {
        if let Some(policy) = parse_policy(path, item, problems) {
            config.policies.push(policy);
        }
    }
    section.finish(problems);
    config
}

fn parse_policy(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<RetentionPolicy> {
    let mut section = Section::new(path, value, problems)?;
    let mut repositories = Vec::new();
    for (path, glob) in
        fields::string_list(&mut section, "repositories", problems).unwrap_or_default()
    {
        match crate::glob::Glob::new(&glob) {
            Ok(_) => repositories.push(glob),
            Err(e) => problems.push(Problem::new(path, e.to_string())),
        }
    }
    let delete_referrers =
        fields::boolean(&mut section, "deleteReferrers", problems).unwrap_or(false);
    let delete_untagged = fields::boolean(&mut section, "deleteUntagged", problems).unwrap_or(true);
    let mut keep_tags = Vec::new();
    for (path, item) in list(&mut section, "keepTags", problems) {
        if let Some(rule) = parse_keep_tags(path, item, problems) {
            keep_tags.push(rule);
        }
    }
    section.finish(problems);
    Some(RetentionPolicy {
        repositories,
        delete_referrers,
        delete_untagged,
        keep_tags,
    })
}

fn parse_keep_tags(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<KeepTagsRule> {
    let mut section = Section::new(path, value, problems)?;
    let mut patterns = Vec::new();
    for (path, pattern) in
        fields::string_list(&mut section, "patterns", problems).unwrap_or_default()
    {
        match regex::Regex::new(&pattern) {
            Ok(_) => patterns.push(pattern),
            Err(e) => problems.push(Problem::new(
                path,
                format!("invalid regular expression: {e}"),
            )),
        }
    }
    let rule = KeepTagsRule {
        patterns,
        pulled_within: fields::duration(&mut section, "pulledWithin", problems),
        pushed_within: fields::duration(&mut section, "pushedWithin", problems),
        most_recently_pushed_count: count(&mut section, "mostRecentlyPushedCount", problems),
        most_recently_pulled_count: count(&mut section, "mostRecentlyPulledCount", problems),
    };
    section.finish(problems);
    Some(rule)
}

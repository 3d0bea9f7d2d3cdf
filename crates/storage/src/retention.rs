//! Retention policies: which tags and manifests garbage collection keeps,
//! with zot's semantics.
//!
//! - The first policy whose repository globs match a repository applies (`*`
//!   within one path segment, `**` across segments; no globs: every
//!   repository). With no policy configured at all, the default is zot's:
//!   keep every tag, remove untagged manifests and referrers whose subject
//!   is gone. When policies are configured but none matches, nothing but
//!   unreferenced blobs is removed.
//! - With `keepTags` rules, a tag survives only if a rule keeps it: a rule
//!   selects tags by its patterns (none: every tag; a pattern selects a tag
//!   when it matches anywhere in it, unanchored, as Go's `regexp.MatchString`
//!   in zot: `prod` selects `v1-prod`) and keeps all of them
//!   when it has no other criterion, else those pushed or pulled within the
//!   given time, or among the most recently pushed or pulled `n`.
//! - Untagged manifests and referrers are removed only once older than
//!   `delay`. With `dry_run` the decisions are logged, nothing is removed.

use regex::Regex;
use std::time::Duration;
use zot_config::glob::Glob;
use zot_meta::Times;

/// One `keepTags` rule.
#[derive(Debug, Clone, Default)]
pub struct KeepTags {
    /// Tags this rule considers (a match anywhere in the tag, as zot's Go
    /// `regexp.MatchString`; anchor with `^...$` explicitly); empty: every tag.
    pub patterns: Vec<Regex>,
    pub pulled_within: Option<Duration>,
    pub pushed_within: Option<Duration>,
    pub most_recently_pushed_count: Option<usize>,
    pub most_recently_pulled_count: Option<usize>,
}

/// One policy.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Repository globs, compiled once; empty: every repository.
    pub repositories: Vec<Glob>,
    pub delete_referrers: bool,
    pub delete_untagged: bool,
    /// Empty: every tag is kept.
    pub keep_tags: Vec<KeepTags>,
}

/// The retention settings of a registry.
#[derive(Debug, Clone)]
pub struct Retention {
    pub dry_run: bool,
    pub delay: Duration,
    pub policies: Vec<RetentionPolicy>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            dry_run: false,
            delay: Duration::from_secs(24 * 3600),
            policies: Vec::new(),
        }
    }
}

/// zot's behaviour without configured policies.
static DEFAULT_POLICY: RetentionPolicy = RetentionPolicy {
    repositories: Vec::new(),
    delete_referrers: true,
    delete_untagged: true,
    keep_tags: Vec::new(),
};

impl Retention {
    /// The policy that applies to `repo`, if any.
    pub fn policy_for(&self, repo: &str) -> Option<&RetentionPolicy> {
        if self.policies.is_empty() {
            return Some(&DEFAULT_POLICY);
        }
        self.policies
            .iter()
            .find(|p| p.repositories.is_empty() || p.repositories.iter().any(|g| g.matches(repo)))
    }
}

/// A tag with the push and pull times of the manifest it points at.
#[derive(Debug, Clone)]
pub struct TagTimes {
    pub tag: String,
    pub times: Times,
}

/// The tags `policy` removes, given the current time in seconds since the epoch.
pub fn tags_to_remove(policy: &RetentionPolicy, tags: &[TagTimes], now: u64) -> Vec<String> {
    if policy.keep_tags.is_empty() {
        return Vec::new();
    }
    let mut keep = vec![false; tags.len()];
    let within = |t: Option<u64>, d: Option<Duration>| match (t, d) {
        (Some(t), Some(d)) => now.saturating_sub(t) <= d.as_secs(),
        _ => false,
    };
    for rule in &policy.keep_tags {
        let selected: Vec<usize> = (0..tags.len())
            .filter(|&i| {
                rule.patterns.is_empty() || rule.patterns.iter().any(|p| p.is_match(&tags[i].tag))
            })
            .collect();
        let no_criteria = rule.pulled_within.is_none()
            && rule.pushed_within.is_none()
            && rule.most_recently_pushed_count.is_none()
            && rule.most_recently_pulled_count.is_none();
        for &i in &selected {
            let t = tags[i].times;
            if no_criteria
                || within(t.pushed, rule.pushed_within)
                || within(t.pulled, rule.pulled_within)
            {
                keep[i] = true;
            }
        }
        let mut most_recent = |n: Option<usize>, when: &dyn Fn(&Times) -> Option<u64>| {
            let Some(n) = n else { return };
            let mut order: Vec<(u64, usize)> = selected
                .iter()
                .filter_map(|&i| when(&tags[i].times).map(|t| (t, i)))
                .collect();
            order.sort_by(|a, b| b.cmp(a));
            for (_, i) in order.into_iter().take(n) {
                keep[i] = true;
            }
        };
        most_recent(rule.most_recently_pushed_count, &|t| t.pushed);
        most_recent(rule.most_recently_pulled_count, &|t| t.pulled);
    }
    tags.iter()
        .zip(keep)
        .filter(|(_, k)| !k)
        .map(|(t, _)| t.tag.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_config::glob::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("infra/*", "infra/a"));
        assert!(!glob_match("infra/*", "infra/a/b"));
        assert!(glob_match("tmp/**", "tmp/a/b"));
        assert!(glob_match("**", "x/y"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
        assert!(!glob_match("infra/*", "other/a"));
    }

    #[test]
    fn keep_rules() {
        let tt = |tag: &str, pushed: u64, pulled: Option<u64>| TagTimes {
            tag: tag.into(),
            times: Times {
                pushed: Some(pushed),
                pulled,
            },
        };
        let tags = vec![
            tt("v1", 100, None),
            tt("v2", 200, Some(950)),
            tt("v3", 300, None),
            tt("dev", 990, None),
        ];
        let policy = |rule: KeepTags| RetentionPolicy {
            repositories: vec![],
            delete_referrers: false,
            delete_untagged: true,
            keep_tags: vec![rule],
        };
        let v = || vec![Regex::new("^v.*").unwrap()];
        let pushed = KeepTags {
            patterns: v(),
            most_recently_pushed_count: Some(2),
            ..KeepTags::default()
        };
        assert_eq!(tags_to_remove(&policy(pushed), &tags, 1000), ["v1", "dev"]);
        let pulled = KeepTags {
            most_recently_pulled_count: Some(5),
            ..KeepTags::default()
        };
        assert_eq!(
            tags_to_remove(&policy(pulled), &tags, 1000),
            ["v1", "v3", "dev"]
        );
        let recent = KeepTags {
            pushed_within: Some(Duration::from_secs(20)),
            pulled_within: Some(Duration::from_secs(60)),
            ..KeepTags::default()
        };
        assert_eq!(tags_to_remove(&policy(recent), &tags, 1000), ["v1", "v3"]);
        let all_v = KeepTags {
            patterns: v(),
            ..KeepTags::default()
        };
        assert_eq!(tags_to_remove(&policy(all_v), &tags, 1000), ["dev"]);
        // Unanchored, as zot: `v.*` matches the `v` inside `dev`.
        let unanchored_v = KeepTags {
            patterns: vec![Regex::new("v.*").unwrap()],
            ..KeepTags::default()
        };
        assert!(tags_to_remove(&policy(unanchored_v), &tags, 1000).is_empty());
    }

    /// zot matches `keepTags.patterns` with Go's `regexp.MatchString`:
    /// anywhere in the tag, and an alternation keeps whatever any branch
    /// matches (a leftmost-first `find` would stop at `v1` inside `v1.0`).
    #[test]
    fn patterns_match_anywhere_as_zot() {
        let tags: Vec<TagTimes> = ["v1-prod", "v1.0", "v2", "prod", "latest"]
            .iter()
            .map(|t| TagTimes {
                tag: (*t).into(),
                times: Times {
                    pushed: Some(1),
                    pulled: None,
                },
            })
            .collect();
        let remove = |patterns: &[&str]| {
            let policy = RetentionPolicy {
                repositories: vec![],
                delete_referrers: false,
                delete_untagged: true,
                keep_tags: vec![KeepTags {
                    patterns: patterns.iter().map(|p| Regex::new(p).unwrap()).collect(),
                    ..KeepTags::default()
                }],
            };
            tags_to_remove(&policy, &tags, 10)
        };
        assert_eq!(remove(&["prod"]), ["v1.0", "v2", "latest"]);
        assert_eq!(remove(&["v1|v1\\.0"]), ["v2", "prod", "latest"]);
        assert_eq!(
            remove(&["^v1$"]),
            ["v1-prod", "v1.0", "v2", "prod", "latest"]
        );
        assert_eq!(remove(&["^prod$", "test"]), ["v1-prod", "v1.0", "v2"]);
    }
}

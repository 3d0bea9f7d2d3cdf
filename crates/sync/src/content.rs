//! Content rules (`content[]`) with zot's semantics (`content.go`): the
//! first rule whose `prefix` glob matches an upstream repository decides
//! whether it is mirrored, under which local name, and which of its tags.
//!
//! - `prefix` is a glob over the upstream name without its leading `/`
//!   (`*` one segment, `**` any depth: the same matcher as access control).
//! - Local name: `destination` joined with the upstream name; with
//!   `stripPrefix`, the prefix's literal part (trimmed of `/` and `*`) is
//!   removed from the upstream name first. An empty or invalid result is
//!   not mirrored.
//! - Tags: kept when matching `regex` (unanchored), then dropped when
//!   matching `excludeRegex`, then, with `semver`, kept only when they parse
//!   as Masterminds/semver v1 does (lenient: `1`, `v1.2`, `1.2.3-rc1`).
//! - Rules without glob characters name their repositories: those are
//!   synced without reading the catalog (Docker Hub has none); the catalog
//!   is read only when some rule is a glob.
//! - Tags of cosign signatures and of the referrers tag schema
//!   (`sha256-<hex>`, `sha256-<hex>.sig`/`.sbom`/`.att`) are never synced
//!   as images: they follow their subjects.

use regex::Regex;
use zot_config::glob::Glob;
use zot_config::{ContentRule, TagFilter};

/// A compiled `content[]` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    glob: Glob,
    /// The pattern local names of this rule match (on demand): the
    /// destination joined with the prefix, or with its glob part only when
    /// `stripPrefix`.
    local_glob: Option<Glob>,
    /// The prefix trimmed of `/` and `*`: what `stripPrefix` removes.
    literal: String,
    destination: String,
    strip_prefix: bool,
    tags: Option<Tags>,
    /// `platforms` of the rule (empty: the registry's).
    pub platforms: Vec<crate::platforms::Platform>,
}

#[derive(Debug, Clone)]
struct Tags {
    regex: Option<Regex>,
    exclude: Option<Regex>,
    semver: bool,
}

/// The rules of one upstream registry, in order.
#[derive(Debug, Clone, Default)]
pub struct Content {
    rules: Vec<Rule>,
}

/// Why a configuration rule could not be compiled (validated when the
/// configuration was read, so only a bug reaches this).
#[derive(Debug, thiserror::Error)]
#[error("content rule {prefix:?}: {why}")]
pub struct RuleError {
    pub prefix: String,
    pub why: String,
}

fn compile_tags(f: &TagFilter, prefix: &str) -> Result<Tags, RuleError> {
    let re = |s: &Option<String>| -> Result<Option<Regex>, RuleError> {
        s.as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| RuleError {
                prefix: prefix.to_owned(),
                why: e.to_string(),
            })
    };
    Ok(Tags {
        regex: re(&f.regex)?,
        exclude: re(&f.exclude_regex)?,
        semver: f.semver,
    })
}

impl Content {
    pub fn new(rules: &[ContentRule]) -> Result<Content, RuleError> {
        let rules = rules
            .iter()
            .map(|r| {
                let prefix = r.prefix.trim_start_matches('/');
                let literal = prefix.trim_matches(|c| c == '/' || c == '*');
                let destination = r.destination.as_deref().unwrap_or("").trim_matches('/');
                let tail = if r.strip_prefix {
                    prefix
                        .strip_prefix(literal)
                        .unwrap_or(prefix)
                        .trim_start_matches('/')
                } else {
                    prefix
                };
                let local_pattern = match (destination.is_empty(), tail.is_empty()) {
                    (true, _) => tail.to_owned(),
                    (false, true) => destination.to_owned(),
                    (false, false) => format!("{destination}/{tail}"),
                };
                Ok(Rule {
                    local_glob: Glob::new(&local_pattern).ok(),
                    glob: Glob::new(prefix).map_err(|e| RuleError {
                        prefix: prefix.to_owned(),
                        why: e.to_string(),
                    })?,
                    literal: prefix.trim_matches(|c| c == '/' || c == '*').to_owned(),
                    destination: r
                        .destination
                        .as_deref()
                        .unwrap_or("")
                        .trim_matches('/')
                        .to_owned(),
                    strip_prefix: r.strip_prefix,
                    tags: r
                        .tags
                        .as_ref()
                        .map(|t| compile_tags(t, prefix))
                        .transpose()?,
                    platforms: crate::platforms::parse(&r.platforms),
                })
            })
            .collect::<Result<_, RuleError>>()?;
        Ok(Content { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The repositories named by rules without a glob character: they are
    /// asked for directly, so an upstream without a catalog (Docker Hub)
    /// can be mirrored by name.
    pub fn literal_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rules
            .iter()
            .filter(|r| !is_glob(r.glob.as_str()))
            .map(|r| r.glob.as_str().trim_matches('/').to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        names.dedup();
        names
    }

    /// Whether some rule is a glob, so the upstream's catalog is needed.
    pub fn needs_catalog(&self) -> bool {
        self.rules.iter().any(|r| is_glob(r.glob.as_str()))
    }

    /// The first rule matching the upstream repository `repo`.
    pub fn rule_for(&self, repo: &str) -> Option<&Rule> {
        let repo = repo.trim_matches('/');
        self.rules.iter().find(|r| r.glob.matches(repo))
    }
}

impl Content {
    /// The upstream name of the local repository `local` (on demand): the
    /// first rule whose local pattern matches, mapped back; the same name
    /// when there are no rules (zot: empty content is everything).
    pub fn upstream_name(&self, local: &str) -> Option<String> {
        self.upstream_rule(local).map(|(name, _)| name)
    }

    /// [`Content::upstream_name`] with the rule that mapped it.
    pub fn upstream_rule(&self, local: &str) -> Option<(String, Option<&Rule>)> {
        if self.rules.is_empty() {
            return Some((local.to_owned(), None));
        }
        self.rules
            .iter()
            .find_map(|r| r.upstream_name(local).map(|n| (n, Some(r))))
    }
}

impl Rule {
    fn upstream_name(&self, local: &str) -> Option<String> {
        if !self.local_glob.as_ref()?.matches(local) {
            return None;
        }
        let rest = if self.destination.is_empty() {
            local
        } else {
            local
                .strip_prefix(self.destination.as_str())?
                .trim_start_matches('/')
        };
        let upstream = if self.strip_prefix {
            match (self.literal.is_empty(), rest.is_empty()) {
                (true, _) => rest.to_owned(),
                (false, true) => self.literal.clone(),
                (false, false) => format!("{}/{rest}", self.literal),
            }
        } else {
            rest.to_owned()
        };
        // The name must come back to `local` by the forward mapping.
        (self.glob.matches(&upstream) && self.local_name(&upstream).as_deref() == Some(local))
            .then_some(upstream)
    }

    /// The local name of upstream `repo`; `None` when it maps to nothing.
    pub fn local_name(&self, repo: &str) -> Option<String> {
        let mut remote = repo.trim_matches('/');
        if self.strip_prefix {
            remote = remote
                .strip_prefix(self.literal.as_str())
                .unwrap_or(remote)
                .trim_matches('/');
        }
        let joined = match (self.destination.is_empty(), remote.is_empty()) {
            (true, _) => remote.to_owned(),
            (false, true) => self.destination.clone(),
            (false, false) => format!("{}/{remote}", self.destination),
        };
        (!joined.is_empty()).then_some(joined)
    }

    /// Whether the periodic sync takes `tag`.
    pub fn keeps_tag(&self, tag: &str) -> bool {
        let Some(t) = &self.tags else {
            return true;
        };
        if let Some(re) = &t.regex
            && !re.is_match(tag)
        {
            return false;
        }
        if let Some(re) = &t.exclude
            && re.is_match(tag)
        {
            return false;
        }
        !t.semver || is_lenient_semver(tag)
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{', '\\'])
}

/// Masterminds/semver v1's `NewVersion`: `v?MAJOR(.MINOR(.PATCH)?)?`, then
/// `-prerelease` and `+metadata` of dot-separated `[0-9A-Za-z-]`.
pub fn is_lenient_semver(tag: &str) -> bool {
    let s = tag.strip_prefix('v').unwrap_or(tag);
    let (core, meta) = match s.split_once('+') {
        Some((c, m)) => (c, Some(m)),
        None => (s, None),
    };
    let (numbers, pre) = match core.split_once('-') {
        Some((n, p)) => (n, Some(p)),
        None => (core, None),
    };
    let idents_ok = |x: &str| {
        x.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && pre.is_none_or(idents_ok)
        && meta.is_none_or(idents_ok)
}

/// A tag that names another manifest's signature, SBOM, attestation or
/// referrers index rather than an image of its own.
pub fn is_subject_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest
        .strip_suffix(".sig")
        .or_else(|| rest.strip_suffix(".sbom"))
        .or_else(|| rest.strip_suffix(".att"))
        .unwrap_or(rest);
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, dest: Option<&str>, strip: bool, tags: Option<TagFilter>) -> Content {
        match Content::new(&[ContentRule {
            prefix: prefix.to_owned(),
            tags,
            destination: dest.map(str::to_owned),
            strip_prefix: strip,
            platforms: Vec::new(),
        }]) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn local(c: &Content, repo: &str) -> Option<String> {
        c.rule_for(repo).and_then(|r| r.local_name(repo))
    }

    #[test]
    fn names_as_zot_maps_them() {
        let c = rule("/repo2/repo", Some("/repo"), true, None);
        assert_eq!(local(&c, "repo2/repo").as_deref(), Some("repo"));
        assert_eq!(local(&c, "repo2/other"), None);
        let c = rule("/repo3/**", None, false, None);
        assert_eq!(local(&c, "repo3/a/b").as_deref(), Some("repo3/a/b"));
        // doublestar: `x/**` matches `x` itself too.
        assert_eq!(local(&c, "repo3").as_deref(), Some("repo3"));
        assert_eq!(local(&c, "repo4/a"), None);
        let c = rule("a/*", Some("/"), true, None);
        assert_eq!(local(&c, "a/b").as_deref(), Some("b"));
        assert_eq!(local(&c, "a/b/c"), None);
        let c = rule("**", Some("/mirror"), false, None);
        assert_eq!(local(&c, "x/y").as_deref(), Some("mirror/x/y"));
        let c = rule("team/**", Some("/m"), true, None);
        assert_eq!(local(&c, "team/app/db").as_deref(), Some("m/app/db"));
    }

    #[test]
    fn literal_rules_need_no_catalog() {
        let c = Content::new(&[
            ContentRule {
                prefix: "/library/alpine".into(),
                ..Default::default()
            },
            ContentRule {
                prefix: "bitnami/redis".into(),
                ..Default::default()
            },
        ])
        .expect("rules");
        assert!(!c.needs_catalog());
        assert_eq!(c.literal_names(), ["library/alpine", "bitnami/redis"]);
        let c = rule("a/**", None, false, None);
        assert!(c.needs_catalog());
        assert!(c.literal_names().is_empty());
    }

    #[test]
    fn on_demand_maps_local_names_back() {
        let c = rule("/repo2/repo", Some("/repo"), true, None);
        assert_eq!(c.upstream_name("repo").as_deref(), Some("repo2/repo"));
        assert_eq!(c.upstream_name("repo2/repo"), None);
        let c = rule("/repo3/**", None, false, None);
        assert_eq!(c.upstream_name("repo3/a/b").as_deref(), Some("repo3/a/b"));
        assert_eq!(c.upstream_name("other"), None);
        let c = rule("a/*", Some("/"), true, None);
        assert_eq!(c.upstream_name("b").as_deref(), Some("a/b"));
        let c = rule("**", Some("/docker.io"), false, None);
        assert_eq!(
            c.upstream_name("docker.io/library/alpine").as_deref(),
            Some("library/alpine")
        );
        assert_eq!(c.upstream_name("ghcr.io/x"), None);
        let c = rule("team/**", Some("/m"), true, None);
        assert_eq!(c.upstream_name("m/app/db").as_deref(), Some("team/app/db"));
        assert_eq!(
            Content::default().upstream_name("x/y").as_deref(),
            Some("x/y")
        );
    }

    #[test]
    fn first_match_wins() {
        let c = Content::new(&[
            ContentRule {
                prefix: "a/**".into(),
                destination: Some("first".into()),
                ..Default::default()
            },
            ContentRule {
                prefix: "**".into(),
                destination: Some("second".into()),
                ..Default::default()
            },
        ])
        .expect("rules");
        assert_eq!(local(&c, "a/x").as_deref(), Some("first/a/x"));
        assert_eq!(local(&c, "b/x").as_deref(), Some("second/b/x"));
    }

    #[test]
    fn tag_filters() {
        let c = rule(
            "**",
            None,
            false,
            Some(TagFilter {
                regex: Some("4.*".into()),
                exclude_regex: Some(".*-(amd64|arm64)$".into()),
                semver: true,
            }),
        );
        let r = c.rule_for("x").expect("rule");
        assert!(r.keeps_tag("4.1.0"));
        assert!(r.keeps_tag("v1.4")); // unanchored regex
        assert!(!r.keeps_tag("4.1.0-amd64"));
        assert!(!r.keeps_tag("latest4"));
        assert!(!r.keeps_tag("1.0"));
        assert!(r.keeps_tag("4"));
    }

    #[test]
    fn lenient_semver() {
        for ok in [
            "1",
            "v1.2",
            "1.2.3",
            "1.2.3-rc1",
            "1.2.3-rc.1+b.5",
            "v10.0.0",
        ] {
            assert!(is_lenient_semver(ok), "{ok}");
        }
        for bad in ["latest", "1.2.3.4", "v", "1..2", "1.2.3-", "1.x", ""] {
            assert!(!is_lenient_semver(bad), "{bad}");
        }
    }

    #[test]
    fn subject_tags() {
        let hex = "a".repeat(64);
        assert!(is_subject_tag(&format!("sha256-{hex}")));
        assert!(is_subject_tag(&format!("sha256-{hex}.sig")));
        assert!(is_subject_tag(&format!("sha256-{hex}.sbom")));
        assert!(!is_subject_tag("sha256-abc.sig"));
        assert!(!is_subject_tag("v1"));
    }
}

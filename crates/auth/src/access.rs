//! `http.accessControl`, decided as zot decides it:
//! - `adminPolicy` applies to every repository, before anything else;
//! - otherwise, of the repository patterns that match the name, the
//!   *longest* (most specific) one alone decides;
//! - within it, a user may do the actions of every policy naming the user or
//!   one of the user's groups, plus `defaultPolicy` (any authenticated user)
//!   and `anonymousPolicy`; an anonymous client only `anonymousPolicy`;
//! - no matching pattern: nothing is allowed.
//!
//! Patterns are globs with zot's (doublestar) semantics, compiled once by
//! [`zot_config::glob`]: `*` and `?` stay within one component, `**` crosses
//! components (`tmp/**` matches `tmp/a/b`, `a/**/b` matches `a/b`, `**`
//! matches everything). Matching is bounded work for any pattern and name
//! length, with no cut-off, so a long pattern always matches its own text
//! and a broader pattern can never take over from it. A pattern that does
//! not compile (the config parser refuses those) matches nothing.

use std::collections::HashMap;

use zot_config::glob::Glob;
use zot_config::{AccessControlConfig, Policy};

use crate::Identity;

/// What a request does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Pull: manifests, blobs, tags, referrers.
    Read,
    /// Push a new tag, manifest or blob.
    Create,
    /// Move an existing tag.
    Update,
    /// Delete a manifest, tag or blob.
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

fn has(actions: &[String], action: Action) -> bool {
    actions.iter().any(|a| a == action.as_str())
}

pub(crate) struct AccessControl {
    /// user → configured groups
    groups_of: HashMap<String, Vec<String>>,
    /// Compiled patterns (those that compile) with their policies.
    repositories: Vec<(Glob, zot_config::RepositoryPolicy)>,
    admin: Option<Policy>,
    /// `metrics`, when configured.
    metrics: Option<zot_config::MetricsPolicy>,
}

impl AccessControl {
    pub(crate) fn new(config: &AccessControlConfig) -> AccessControl {
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for (group, users) in &config.groups {
            for user in users {
                groups_of
                    .entry(user.clone())
                    .or_default()
                    .push(group.clone());
            }
        }
        AccessControl {
            groups_of,
            repositories: config
                .repositories
                .iter()
                .filter_map(|(pattern, policy)| match Glob::new(pattern) {
                    Ok(glob) => Some((glob, policy.clone())),
                    Err(e) => {
                        tracing::error!(pattern, "access control pattern ignored: {e}");
                        None
                    }
                })
                .collect(),
            admin: config.admin_policy.clone(),
            metrics: config.metrics.clone(),
        }
    }

    fn groups<'a>(&'a self, who: &'a Identity) -> impl Iterator<Item = &'a String> {
        who.groups
            .iter()
            .chain(self.groups_of.get(&who.name).into_iter().flatten())
    }

    fn names(&self, policy: &Policy, who: &Identity) -> bool {
        policy.users.contains(&who.name) || self.groups(who).any(|g| policy.groups.contains(g))
    }

    pub(crate) fn allowed(&self, who: Option<&Identity>, repo: &str, action: Action) -> bool {
        if let (Some(admin), Some(who)) = (&self.admin, who)
            && self.names(admin, who)
            && has(&admin.actions, action)
        {
            return true;
        }
        let best = self
            .repositories
            .iter()
            .filter(|(glob, _)| glob.matches(repo))
            .max_by_key(|(glob, _)| glob.as_str().len());
        let Some((_, policy)) = best else {
            return false;
        };
        if has(&policy.anonymous_policy, action) {
            return true;
        }
        let Some(who) = who else {
            return false;
        };
        has(&policy.default_policy, action)
            || policy
                .policies
                .iter()
                .any(|p| self.names(p, who) && has(&p.actions, action))
    }

    /// Whether any policy (a repository's or `adminPolicy`) names `group`:
    /// the only directory groups worth carrying in a token.
    pub(crate) fn names_group(&self, group: &str) -> bool {
        let named = |p: &Policy| p.groups.iter().any(|g| g == group);
        self.admin.as_ref().is_some_and(named)
            || self
                .repositories
                .iter()
                .any(|(_, r)| r.policies.iter().any(named))
    }

    /// Whether some pattern lets anonymous clients do anything.
    /// zot's MetricsAuthzHandler under access control: an anonymous client
    /// needs `metrics.anonymousPolicy` to contain `read`, an authenticated
    /// one to be in `metrics.users` (no `metrics` key: nobody).
    pub(crate) fn may_read_metrics(&self, who: Option<&Identity>) -> bool {
        let Some(m) = &self.metrics else {
            return false;
        };
        match who {
            None => has(&m.anonymous_policy, Action::Read),
            Some(w) => m.users.contains(&w.name),
        }
    }

    pub(crate) fn any_anonymous(&self) -> bool {
        self.repositories
            .iter()
            .any(|(_, p)| !p.anonymous_policy.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_config::RepositoryPolicy;

    use zot_config::glob::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("tmp/**", "tmp/a/b"));
        assert!(!glob_match("tmp/**", "tmpx/a"));
        assert!(glob_match("*", "alpine"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("a/*/c", "a/b/c"));
        assert!(glob_match("a/**/c", "a/c"));
        assert!(glob_match("repos2/repo", "repos2/repo"));
        assert!(!glob_match("repos2/repo", "repos2/repo2"));
        assert!(glob_match("ab?", "abc"));
    }

    fn user(name: &str) -> Identity {
        Identity {
            name: name.into(),
            groups: vec![],
            method: crate::Method::Htpasswd,
            grants: None,
            key: None,
        }
    }

    #[test]
    fn most_specific_pattern_decides() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ac = AccessControl::new(&AccessControlConfig {
            groups: vec![("devs".into(), s(&["bob"]))],
            repositories: vec![
                (
                    "**".into(),
                    RepositoryPolicy {
                        policies: vec![Policy {
                            users: vec![],
                            groups: s(&["devs"]),
                            actions: s(&["read", "create"]),
                        }],
                        default_policy: s(&["read"]),
                        anonymous_policy: vec![],
                    },
                ),
                ("private/**".into(), RepositoryPolicy::default()),
            ],
            admin_policy: Some(Policy {
                users: s(&["root"]),
                groups: vec![],
                actions: s(&["read", "create", "update", "delete"]),
            }),
            metrics: None,
        });
        let bob = user("bob");
        let eve = user("eve");
        assert!(ac.allowed(Some(&bob), "a", Action::Create));
        assert!(!ac.allowed(Some(&bob), "a", Action::Delete));
        assert!(ac.allowed(Some(&eve), "a", Action::Read));
        assert!(!ac.allowed(Some(&eve), "a", Action::Create));
        assert!(!ac.allowed(None, "a", Action::Read));
        assert!(!ac.allowed(Some(&bob), "private/x", Action::Read));
        assert!(ac.allowed(Some(&user("root")), "private/x", Action::Delete));
    }

    #[test]
    fn metrics_readers_are_the_listed_users_and_anonymous_by_policy() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let with = |metrics| {
            AccessControl::new(&AccessControlConfig {
                metrics,
                ..AccessControlConfig::default()
            })
        };
        let listed = with(Some(zot_config::MetricsPolicy {
            users: s(&["prom"]),
            anonymous_policy: vec![],
        }));
        assert!(listed.may_read_metrics(Some(&user("prom"))));
        assert!(!listed.may_read_metrics(Some(&user("bob"))));
        assert!(!listed.may_read_metrics(None));
        let anonymous = with(Some(zot_config::MetricsPolicy {
            users: vec![],
            anonymous_policy: s(&["read"]),
        }));
        assert!(anonymous.may_read_metrics(None));
        assert!(!anonymous.may_read_metrics(Some(&user("bob"))));
        let absent = with(None);
        assert!(!absent.may_read_metrics(None));
        assert!(!absent.may_read_metrics(Some(&user("prom"))));
    }
}

//! What an API key may do: the intersection of its owner's rights (decided
//! by `accessControl` as for the owner's own login) and the key's scopes.
//!
//! Scope syntax (each entry of the key's `scopes` list):
//! - `pull` (or `read`): pull manifests, blobs, tags and referrers;
//! - `push`: pull, and push new or moved tags, manifests and blobs;
//! - `delete`: delete manifests, tags and blobs;
//! - `repository:<glob>`: only repositories matching the glob (zot's
//!   doublestar syntax, as in `accessControl`: `team/**`, `apps/*-ci`).
//!
//! The actions of a key are the union of its action entries, or every
//! action when it has none; its repositories are the union of its
//! `repository:` entries, or every repository when it has none. So
//! `["pull", "repository:team/**"]` reads `team/...` and nothing else, and
//! `[]` (zot's default) is the owner's full rights.
//!
//! Invariants:
//! - A scope list that does not parse (an unknown entry, an invalid glob,
//!   too many or too long entries) is refused when the key is made; a
//!   stored list that no longer parses allows nothing.
//! - A key never allows more than its owner: [`KeyScope::allows`] is only
//!   ever checked in addition to the access-control decision.

use zot_config::glob::Glob;

use crate::Action;

/// Scope entries one key may have.
pub const MAX_KEY_SCOPES: usize = 32;
/// Longest scope entry (`repository:` and a glob).
const MAX_SCOPE_LEN: usize = 300;

/// The parsed scope of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// `None`: every action.
    actions: Option<Vec<Action>>,
    /// Empty: every repository.
    repositories: Vec<Glob>,
}

impl KeyScope {
    /// The owner's full rights (no scope entries).
    pub fn unlimited() -> KeyScope {
        KeyScope {
            actions: None,
            repositories: Vec::new(),
        }
    }

    /// Parses a key's scope entries; the error names the first bad entry.
    pub fn parse(entries: &[String]) -> Result<KeyScope, String> {
        if entries.len() > MAX_KEY_SCOPES {
            return Err(format!("at most {MAX_KEY_SCOPES} scopes"));
        }
        let mut actions: Option<Vec<Action>> = None;
        let mut repositories = Vec::new();
        for entry in entries {
            if entry.len() > MAX_SCOPE_LEN {
                return Err(format!("scope longer than {MAX_SCOPE_LEN} bytes"));
            }
            let adds: &[Action] = match entry.as_str() {
                "pull" | "read" => &[Action::Read],
                "push" => &[Action::Read, Action::Create, Action::Update],
                "delete" => &[Action::Delete],
                other => match other.strip_prefix("repository:") {
                    Some(pattern) if !pattern.is_empty() => {
                        let glob =
                            Glob::new(pattern).map_err(|e| format!("scope {other:?}: {e}"))?;
                        repositories.push(glob);
                        continue;
                    }
                    _ => {
                        return Err(format!(
                            "unknown scope {other:?}: expected pull, push, delete or \
                             repository:<glob>"
                        ));
                    }
                },
            };
            let list = actions.get_or_insert_with(Vec::new);
            for a in adds {
                if !list.contains(a) {
                    list.push(*a);
                }
            }
        }
        Ok(KeyScope {
            actions,
            repositories,
        })
    }

    /// Like [`KeyScope::parse`], but a list that does not parse (a stored
    /// key whose scopes an older or newer build wrote) allows nothing.
    pub fn parse_or_nothing(entries: &[String]) -> KeyScope {
        KeyScope::parse(entries).unwrap_or(KeyScope {
            actions: Some(Vec::new()),
            repositories: Vec::new(),
        })
    }

    /// Whether the scope lets the key do `action` on `repo` (the owner's
    /// rights are checked separately).
    pub fn allows(&self, repo: &str, action: Action) -> bool {
        let action_ok = self.actions.as_ref().is_none_or(|a| a.contains(&action));
        action_ok
            && (self.repositories.is_empty() || self.repositories.iter().any(|g| g.matches(repo)))
    }

    /// Whether the key may do anything but read.
    pub fn read_only(&self) -> bool {
        self.actions
            .as_ref()
            .is_some_and(|a| a.iter().all(|x| *x == Action::Read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(entries: &[&str]) -> Result<KeyScope, String> {
        KeyScope::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn empty_scope_is_everything() {
        let s = scope(&[]).unwrap();
        for a in [Action::Read, Action::Create, Action::Update, Action::Delete] {
            assert!(s.allows("any/repo", a));
        }
        assert_eq!(s, KeyScope::unlimited());
        assert!(!s.read_only());
    }

    #[test]
    fn pull_is_read_only() {
        for entry in ["pull", "read"] {
            let s = scope(&[entry]).unwrap();
            assert!(s.allows("a", Action::Read));
            assert!(!s.allows("a", Action::Create));
            assert!(!s.allows("a", Action::Update));
            assert!(!s.allows("a", Action::Delete));
            assert!(s.read_only());
        }
    }

    #[test]
    fn push_and_delete_add_up() {
        let s = scope(&["push"]).unwrap();
        assert!(s.allows("a", Action::Read) && s.allows("a", Action::Update));
        assert!(!s.allows("a", Action::Delete));
        let s = scope(&["delete", "pull"]).unwrap();
        assert!(s.allows("a", Action::Delete) && s.allows("a", Action::Read));
        assert!(!s.allows("a", Action::Create));
    }

    #[test]
    fn repositories_are_doublestar_globs() {
        let s = scope(&["repository:team/**", "repository:apps/*-ci"]).unwrap();
        assert!(s.allows("team", Action::Create));
        assert!(s.allows("team/a/b", Action::Delete));
        assert!(s.allows("apps/web-ci", Action::Read));
        assert!(!s.allows("apps/web-ci/x", Action::Read));
        assert!(!s.allows("teams", Action::Read));
        assert!(!s.allows("other", Action::Read));
        let both = scope(&["pull", "repository:team/**"]).unwrap();
        assert!(both.allows("team/app", Action::Read));
        assert!(!both.allows("team/app", Action::Create));
        assert!(!both.allows("other", Action::Read));
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        for (bad, named) in [
            (&["write"][..], "write"),
            (&["repository:"][..], "repository:"),
            (&["repository:a/[b"][..], "a/[b"),
            (&["PULL"][..], "PULL"),
            (&["pull", "team/**"][..], "team/**"),
        ] {
            let e = scope(bad).unwrap_err();
            assert!(e.contains(named), "{bad:?}: {e}");
        }
        let many: Vec<String> = (0..=MAX_KEY_SCOPES).map(|_| "pull".to_owned()).collect();
        assert!(KeyScope::parse(&many).is_err());
        let long = format!("repository:{}", "a".repeat(MAX_SCOPE_LEN));
        assert!(KeyScope::parse(&[long]).is_err());
    }

    #[test]
    fn unparsable_stored_scopes_allow_nothing() {
        let s = KeyScope::parse_or_nothing(&["nonsense".to_owned()]);
        for a in [Action::Read, Action::Create, Action::Update, Action::Delete] {
            assert!(!s.allows("a", a));
        }
    }
}

//! Retention's repository globs are zot's (doublestar) globs, the same
//! implementation access control uses.

use zot_config::glob::Glob;
use zot_storage::retention::{Retention, RetentionPolicy};

fn retention(globs: &[&str]) -> Retention {
    Retention {
        policies: vec![RetentionPolicy {
            repositories: globs
                .iter()
                .map(|g| Glob::new(g).expect("valid glob"))
                .collect(),
            delete_referrers: false,
            delete_untagged: true,
            keep_tags: Vec::new(),
        }],
        ..Retention::default()
    }
}

#[test]
fn double_star_matches_zero_segments_as_in_access_control() {
    let r = retention(&["a/**/b"]);
    assert!(r.policy_for("a/b").is_some());
    assert!(r.policy_for("a/x/y/b").is_some());
    assert!(r.policy_for("ab").is_none());
    assert!(both_match("a/**/b", "a/b"));
}

/// Retention's matching of one pattern: access control's glob.
fn both_match(pattern: &str, name: &str) -> bool {
    retention(&[pattern]).policy_for(name).is_some() && zot_config::glob::glob_match(pattern, name)
}

#[test]
fn long_patterns_match_their_own_text() {
    let name = format!("{}/{}", "a".repeat(120), "b".repeat(130));
    let r = retention(&[&name]);
    assert!(r.policy_for(&name).is_some());
    let r = retention(&[&format!("{}/**", "a".repeat(120))]);
    assert!(r.policy_for(&name).is_some());
}

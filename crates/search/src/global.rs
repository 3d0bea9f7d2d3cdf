//! `GlobalSearch` query forms and zot's repository-name ranking
//! (zot-interfaces §1.4, `RankRepoName`).

/// Longest accepted query (and Os/Arch filter value), in bytes.
pub const MAX_QUERY: usize = 256;

/// What a normalized query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Repositories whose name ranks against the text.
    Repos(String),
    /// Images containing the digest text (ImageListForDigest semantics).
    Digest(String),
    /// Tags of exactly `repo` starting with `prefix`.
    Tags { repo: String, prefix: String },
    /// Tags of every repository containing the text.
    AnyTag(String),
}

pub const INVALID_REFERENCE: &str =
    "invalid image reference format, use [repo:tag] or [repo@digest]";
pub const INVALID_QUERY: &str = "invalid search query";

/// Trims whitespace, then spaces and `/`, lower-cases, and picks the form.
pub fn target(query: &str) -> Result<Target, &'static str> {
    let q = query
        .trim()
        .trim_matches(|c| c == ' ' || c == '/')
        .to_lowercase();
    if !q.contains(':') && !q.contains('@') {
        return Ok(Target::Repos(q));
    }
    if q.starts_with("sha256:") {
        return Ok(Target::Digest(q));
    }
    if let Some((before, after)) = q.split_once(':') {
        if after.contains(':') {
            return Err(INVALID_REFERENCE);
        }
        if !before.is_empty() {
            return Ok(Target::Tags {
                repo: before.to_owned(),
                prefix: after.to_owned(),
            });
        }
        return Ok(Target::AnyTag(after.to_owned()));
    }
    Err(INVALID_QUERY)
}

/// zot's `RankRepoName`: lower is better, `None` is no match. Allocates
/// nothing (it runs once per repository per search).
pub fn rank_repo_name(q: &str, repo: &str) -> Option<i32> {
    if q.contains('/') && q.split('/').count() > repo.split('/').count() {
        return None;
    }
    if q == repo {
        return Some(0);
    }
    let (q_dirs, q_last) = match q.rsplit_once('/') {
        Some((dirs, last)) => (Some(dirs), last),
        None => (None, q),
    };
    // Every rule below finds q, or its last segment, inside the name.
    if !repo.contains(q_last) {
        return None;
    }
    let pos = |hay: &str, needle: &str| {
        hay.find(needle)
            .map(|i| i32::try_from(i + 1).unwrap_or(i32::MAX))
    };
    let last_repo = repo.rsplit('/').next().unwrap_or("");
    if q_dirs.is_none() {
        if let Some(i) = pos(last_repo, q) {
            return Some(i);
        }
        let first_repo = repo.split('/').next().unwrap_or("");
        if let Some(i) = pos(first_repo, q) {
            return Some(i.saturating_mul(10));
        }
    }
    let dirs_match = match q_dirs {
        None => true,
        Some(dirs) => dirs.split('/').zip(repo.split('/')).all(|(a, b)| a == b),
    };
    if dirs_match && let Some(i) = pos(last_repo, q_last) {
        return Some(i);
    }
    if repo.starts_with(q) {
        return Some(10);
    }
    pos(repo, q).map(|i| i.saturating_mul(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_like_zot() {
        assert_eq!(rank_repo_name("alpine", "alpine"), Some(0));
        assert_eq!(rank_repo_name("bar", "foo/bar"), Some(1));
        assert_eq!(rank_repo_name("ar", "foo/bar"), Some(2));
        assert_eq!(rank_repo_name("foo", "foo/bar"), Some(10));
        assert_eq!(rank_repo_name("oo", "foo/bar"), Some(20));
        assert_eq!(rank_repo_name("foo/bar/rep", "foo/bar/baz/repo"), Some(1));
        assert_eq!(rank_repo_name("foo/bar/b", "foo/bar/baz/repo"), Some(10));
        assert_eq!(rank_repo_name("bar/ba", "foo/bar/baz/repo"), Some(500));
        assert_eq!(rank_repo_name("a/b/c", "a/b"), None);
        assert_eq!(rank_repo_name("zzz", "foo/bar"), None);
        assert_eq!(rank_repo_name("", "foo/bar"), Some(1));
    }

    #[test]
    fn picks_the_query_form() {
        assert_eq!(target(" /Foo/Bar/ "), Ok(Target::Repos("foo/bar".into())));
        assert_eq!(target("sha256:AB"), Ok(Target::Digest("sha256:ab".into())));
        assert_eq!(
            target("repo:1."),
            Ok(Target::Tags {
                repo: "repo".into(),
                prefix: "1.".into()
            })
        );
        assert_eq!(target(":lat"), Ok(Target::AnyTag("lat".into())));
        assert_eq!(target("a:b:c"), Err(INVALID_REFERENCE));
        assert_eq!(target("repo@x"), Err(INVALID_QUERY));
    }
}

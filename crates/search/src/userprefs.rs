//! `PUT /v2/_zot/ext/userprefs?action=toggleStar|toggleBookmark&repo=<name>`:
//! a signed-in user stars or bookmarks a repository (a second toggle undoes
//! the first). The API layer has authenticated the caller and routes only
//! `PUT` here.
//!
//! Answers exactly as zot's (`extension_userprefs.go`, `ToggleStarRepo`),
//! bodies empty, in this order of checks:
//! - `action` missing, or not `toggleStar`/`toggleBookmark`: 400;
//! - `repo` missing: 400; `repo=` empty: 404;
//! - an anonymous caller, or one who may not read the repository: 403
//!   (before the repository is looked up, so a caller learns nothing of a
//!   repository it cannot read);
//! - no such repository: 404;
//! - the metadata failing: 500 (logged);
//! - toggled: 200.
//!
//! Query keys and values are read percent-decoded (`+` is a space), the
//! first value of a repeated key wins, as Go's `url.Values` does. The
//! lookup and the toggle run on the blocking pool (they may wait for an
//! embedded-database write).

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Access, Pref, Search, SourceError, Viewer};

/// What a well-formed request asks for.
#[derive(Debug, PartialEq, Eq)]
struct Toggle {
    pref: Pref,
    repo: String,
}

/// The first value of `key` in a query string, decoded.
fn first(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The checks that need nothing but the query string.
fn parse(query: &str) -> Result<Toggle, StatusCode> {
    let pref = match first(query, "action").as_deref() {
        Some("toggleStar") => Pref::Star,
        Some("toggleBookmark") => Pref::Bookmark,
        _ => return Err(StatusCode::BAD_REQUEST),
    };
    match first(query, "repo") {
        None => Err(StatusCode::BAD_REQUEST),
        Some(repo) if repo.is_empty() => Err(StatusCode::NOT_FOUND),
        Some(repo) => Ok(Toggle { pref, repo }),
    }
}

impl Search {
    /// Answers a userprefs request (see the module documentation).
    pub async fn userprefs(&self, req: Request, viewer: Viewer) -> Response {
        if req.method() != Method::PUT {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let Toggle { pref, repo } = match parse(req.uri().query().unwrap_or("")) {
            Ok(toggle) => toggle,
            Err(status) => return status.into_response(),
        };
        let user = match viewer.user {
            Some(user) if (viewer.may)(&repo, Access::Read) => user,
            _ => return StatusCode::FORBIDDEN.into_response(),
        };
        let source = self.source().clone();
        let toggled = tokio::task::spawn_blocking(move || -> Result<bool, SourceError> {
            if source.repo(&repo)?.is_none() {
                return Ok(false);
            }
            source.toggle(&user, pref, &repo)?;
            Ok(true)
        })
        .await;
        match toggled {
            Ok(Ok(true)) => StatusCode::OK.into_response(),
            Ok(Ok(false)) => StatusCode::NOT_FOUND.into_response(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "userprefs: toggling a preference failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "userprefs: the toggle task failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RepoData, Source, UserPrefs};
    use axum::body::Body;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// Repositories `pub` and `secret`; prefs per user; `fail` makes every
    /// call an error.
    #[derive(Default)]
    struct Memory {
        prefs: Mutex<HashMap<String, UserPrefs>>,
        stars: Mutex<HashMap<String, u64>>,
        fail: bool,
    }

    const REPOS: &[&str] = &["pub", "secret", "a/b c"];

    impl Source for Memory {
        fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
            Ok(REPOS.iter().map(|r| ((*r).to_owned(), 0)).collect())
        }
        fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
            if self.fail {
                return Err(SourceError("disk on fire".into()));
            }
            Ok(REPOS.contains(&name).then(|| {
                Arc::new(RepoData {
                    name: name.to_owned(),
                    ..RepoData::default()
                })
            }))
        }
        fn user_prefs(&self, user: &str) -> Result<UserPrefs, SourceError> {
            Ok(self
                .prefs
                .lock()
                .unwrap()
                .get(user)
                .cloned()
                .unwrap_or_default())
        }
        fn toggle(&self, user: &str, pref: Pref, repo: &str) -> Result<bool, SourceError> {
            let mut prefs = self.prefs.lock().unwrap();
            let p = prefs.entry(user.to_owned()).or_default();
            let list = match pref {
                Pref::Star => &mut p.starred,
                Pref::Bookmark => &mut p.bookmarked,
            };
            let now_in = if list.remove(repo) {
                false
            } else {
                list.insert(repo.to_owned())
            };
            if pref == Pref::Star {
                let mut stars = self.stars.lock().unwrap();
                let n = stars.entry(repo.to_owned()).or_default();
                *n = if now_in { *n + 1 } else { *n - 1 };
            }
            Ok(now_in)
        }
    }

    /// A viewer named `user` (None: anonymous) who may read everything but
    /// `secret`.
    fn viewer(user: Option<&str>) -> Viewer {
        Viewer {
            user: user.map(str::to_owned),
            may: Arc::new(|repo, _| repo != "secret"),
        }
    }

    async fn call(search: &Search, method: Method, uri: &str, who: Option<&str>) -> u16 {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = search.userprefs(req, viewer(who)).await;
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert!(body.is_empty(), "{uri}: body {body:?}");
        status
    }

    fn search() -> (Search, Arc<Memory>) {
        let memory = Arc::new(Memory::default());
        (Search::new(memory.clone()), memory)
    }

    const BASE: &str = "/v2/_zot/ext/userprefs";

    #[tokio::test]
    async fn status_codes_are_zots() {
        let (s, memory) = search();
        let put = |q: &str| format!("{BASE}{q}");
        let alice = Some("alice");
        for (query, who, status) in [
            ("", alice, 400),
            ("?repo=pub", alice, 400),
            ("?action=&repo=pub", alice, 400),
            ("?action=toggleAll&repo=pub", alice, 400),
            ("?action=togglestar&repo=pub", alice, 400),
            ("?action=toggleStar", alice, 400),
            ("?action=toggleBookmark", alice, 400),
            ("?action=toggleStar&repo=", alice, 404),
            ("?action=toggleStar&repo=nope", alice, 404),
            // Refused before the lookup: no difference between a secret
            // repository and none at all.
            ("?action=toggleStar&repo=secret", alice, 403),
            ("?action=toggleStar&repo=pub", None, 403),
            ("?action=toggleBookmark&repo=pub", None, 403),
            ("?action=toggleStar&repo=nope", None, 403),
        ] {
            assert_eq!(
                call(&s, Method::PUT, &put(query), who).await,
                status,
                "{query} as {who:?}"
            );
        }
        assert!(memory.prefs.lock().unwrap().is_empty(), "nothing toggled");
        assert_eq!(
            call(&s, Method::GET, &put("?action=toggleStar&repo=pub"), alice).await,
            405
        );
    }

    #[tokio::test]
    async fn toggles_per_user_and_back() {
        let (s, memory) = search();
        let star = format!("{BASE}?action=toggleStar&repo=pub");
        let mark = format!("{BASE}?repo=pub&action=toggleBookmark");
        assert_eq!(call(&s, Method::PUT, &star, Some("alice")).await, 200);
        assert_eq!(call(&s, Method::PUT, &star, Some("bob")).await, 200);
        assert_eq!(call(&s, Method::PUT, &mark, Some("bob")).await, 200);
        assert_eq!(memory.stars.lock().unwrap()["pub"], 2);
        let alice = memory.user_prefs("alice").unwrap();
        assert!(alice.starred.contains("pub") && alice.bookmarked.is_empty());
        let bob = memory.user_prefs("bob").unwrap();
        assert!(bob.starred.contains("pub") && bob.bookmarked.contains("pub"));
        // Toggling again undoes.
        assert_eq!(call(&s, Method::PUT, &star, Some("alice")).await, 200);
        assert_eq!(memory.stars.lock().unwrap()["pub"], 1);
        assert!(memory.user_prefs("alice").unwrap().starred.is_empty());
    }

    #[tokio::test]
    async fn query_is_read_decoded_first_value_wins() {
        let (s, memory) = search();
        let uri = format!("{BASE}?action=toggle%53tar&repo=a%2Fb+c&repo=pub");
        assert_eq!(call(&s, Method::PUT, &uri, Some("alice")).await, 200);
        let prefs = memory.user_prefs("alice").unwrap();
        assert_eq!(prefs.starred.iter().collect::<Vec<_>>(), ["a/b c"]);
    }

    #[tokio::test]
    async fn a_failing_source_is_500() {
        let s = Search::new(Arc::new(Memory {
            fail: true,
            ..Memory::default()
        }));
        let uri = format!("{BASE}?action=toggleStar&repo=pub");
        assert_eq!(call(&s, Method::PUT, &uri, Some("alice")).await, 500);
    }

    #[test]
    fn parse_reads_action_then_repo() {
        assert_eq!(
            parse("repo=x&action=toggleBookmark"),
            Ok(Toggle {
                pref: Pref::Bookmark,
                repo: "x".into()
            })
        );
        assert_eq!(parse("action=toggleStar&repo"), Err(StatusCode::NOT_FOUND));
    }
}

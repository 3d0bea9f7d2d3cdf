//! The zot extension routes with search on, through the real router with
//! htpasswd and access control: who may reach `search`, `userprefs` and
//! `mgmt` (mgmt is open at exactly `/v2/_zot/ext/mgmt`), the methods each
//! answers, and userprefs' status codes end to end; the caller's name and
//! read permission reach both handlers as their `Viewer` (GraphQL shows a
//! repository only to those who may read it).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use zot_search::{Pref, RepoData, Source, SourceError, UserPrefs};

/// Repositories `pub/app` and `secret/db`, with stars and bookmarks in
/// memory.
#[derive(Default)]
struct Memory {
    prefs: Mutex<HashMap<String, UserPrefs>>,
}

const REPOS: &[&str] = &["pub/app", "secret/db"];

impl Source for Memory {
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError> {
        Ok(REPOS.iter().map(|r| ((*r).to_owned(), 0)).collect())
    }
    fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError> {
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
        let list: &mut BTreeSet<String> = match pref {
            Pref::Star => &mut p.starred,
            Pref::Bookmark => &mut p.bookmarked,
        };
        let now_in = !list.remove(repo);
        if now_in {
            list.insert(repo.to_owned());
        }
        Ok(now_in)
    }
}

struct App {
    router: Router,
    memory: Arc<Memory>,
    mgmt: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn code(&self) -> String {
        let v: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        v["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn login(user: &str) -> String {
    basic(user, &format!("{user}-pw"))
}

/// A registry with users `alice` (reads everything) and `bob` (reads
/// `pub/**`); with `anonymous`, anonymous clients read `pub/**` too.
async fn app(anonymous: bool) -> App {
    app_with(anonymous, true).await
}

/// [`app`], with the search extension on or off.
async fn app_with(anonymous: bool, search_on: bool) -> App {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let mut text = String::new();
    for user in ["alice", "bob"] {
        let hash = bcrypt::hash(format!("{user}-pw"), 4).unwrap();
        text.push_str(&format!("{user}:{hash}\n"));
    }
    std::fs::write(&htpasswd, text).unwrap();
    let anonymous_policy: Vec<&str> = if anonymous { vec!["read"] } else { vec![] };
    let config = json!({
        "storage": { "rootDirectory": dir.path().join("root") },
        "http": {
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": {
                "pub/**": {
                    "policies": [{ "users": ["alice", "bob"], "actions": ["read"] }],
                    "anonymousPolicy": anonymous_policy,
                },
                "secret/**": {
                    "policies": [{ "users": ["alice"], "actions": ["read", "delete"] }],
                },
            } }
        },
        "extensions": { "search": {} },
    });
    let config =
        zot_config::Config::from_str(&config.to_string(), zot_config::Format::Json).unwrap();
    let security = zot_auth::Security::from_config(&config.http, None).unwrap();
    let (registry, _) =
        zot_storage::open_local(&dir.path().join("root"), false, Default::default())
            .await
            .unwrap();
    let memory = Arc::new(Memory::default());
    let build = zot_api::mgmt::BuildInfo {
        commit: "c0ffee".into(),
        release_tag: "v9.9.9".into(),
        binary_type: "-search".into(),
    };
    let mgmt = zot_api::mgmt::render(&config.dist_spec_version, &config.http, &build);
    let search = zot_api::SearchExtension {
        search: Arc::new(zot_search::Search::new(memory.clone())),
        mgmt: arc_swap::ArcSwap::from_pointee(mgmt.clone()),
    };
    let state = if search_on {
        zot_api::AppState::with_search(Arc::new(registry), vec![], security, search)
    } else {
        zot_api::AppState::with_security(Arc::new(registry), vec![], security)
    };
    App {
        router: zot_api::router(state),
        memory,
        mgmt,
        _dir: dir,
    }
}

impl App {
    async fn call(&self, method: Method, uri: &str, auth: Option<&str>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `ExpandedRepoInfo(repo).Summary.Name` as `auth` sees it (null for
    /// a repository it may not read).
    async fn repo_name(&self, repo: &str, auth: Option<&str>) -> Value {
        let query = format!("{{ExpandedRepoInfo(repo:\"{repo}\"){{Summary{{Name}}}}}}");
        let uri = format!(
            "/v2/_zot/ext/search?query={}",
            form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        );
        let r = self.call(Method::GET, &uri, auth).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert!(v["errors"].is_null(), "{query}: {v}");
        v["data"]["ExpandedRepoInfo"]["Summary"]["Name"].clone()
    }

    fn starred(&self, user: &str) -> Vec<String> {
        let prefs = self.memory.user_prefs(user).unwrap();
        prefs.starred.into_iter().collect()
    }
}

const SEARCH: &str =
    "/v2/_zot/ext/search?query=%7BRepoListWithNewestImage%7BPage%7BTotalCount%7D%7D%7D";
const STAR_PUB: &str = "/v2/_zot/ext/userprefs?action=toggleStar&repo=pub/app";

#[tokio::test]
async fn without_anonymous_access_search_and_userprefs_need_a_login() {
    let app = app(false).await;
    for (method, uri) in [
        (Method::GET, SEARCH),
        (Method::POST, "/v2/_zot/ext/search"),
        (Method::GET, "/v2/_zot/ext/search/sub"),
        (Method::PUT, STAR_PUB),
        (Method::GET, "/v2/_zot/ext/mgmt?resource=config"),
    ] {
        let r = app.call(method.clone(), uri, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "UNAUTHORIZED"),
            "{method} {uri}"
        );
        assert!(
            r.header("www-authenticate").starts_with("Basic realm="),
            "{method} {uri}"
        );
        let r = app
            .call(method.clone(), uri, Some(&basic("alice", "wrong")))
            .await;
        assert_eq!(r.status, 401, "{method} {uri} with a wrong password");
    }
    // Signed in, the request reaches the extension.
    let r = app.call(Method::GET, SEARCH, Some(&login("bob"))).await;
    assert_eq!(r.status, 200, "search as bob: {}", r.body);
    // The caller's permissions reach GraphQL: alice reads secret/db, bob not.
    assert_eq!(
        app.repo_name("secret/db", Some(&login("alice"))).await,
        "secret/db"
    );
    assert_eq!(
        app.repo_name("secret/db", Some(&login("bob"))).await,
        Value::Null
    );
    assert_eq!(
        app.repo_name("pub/app", Some(&login("bob"))).await,
        "pub/app"
    );
    let r = app.call(Method::PUT, STAR_PUB, Some(&login("bob"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.starred("bob"), ["pub/app"]);
}

#[tokio::test]
async fn anonymous_clients_reach_search_when_anonymous_access_exists() {
    let app = app(true).await;
    let r = app.call(Method::GET, SEARCH, None).await;
    assert_eq!(r.status, 200, "anonymous search: {}", r.body);
    assert_eq!(app.repo_name("pub/app", None).await, "pub/app");
    assert_eq!(app.repo_name("secret/db", None).await, Value::Null);
    // ... but have no preferences to keep.
    let r = app.call(Method::PUT, STAR_PUB, None).await;
    assert_eq!(r.status, 403);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn mgmt_is_public_at_exactly_its_uri() {
    let app = app(false).await;
    let r = app.call(Method::GET, "/v2/_zot/ext/mgmt", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, app.mgmt);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["http"], json!({"auth": {"htpasswd": {}}}));
    assert_eq!(v["distSpecVersion"], "1.1.1");
    assert_eq!(v["commit"], "c0ffee");
    assert!(!r.body.contains("htpasswd\":{\"path"), "{}", r.body);
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    // Any query string, even an empty one, makes it an ordinary request.
    for uri in ["/v2/_zot/ext/mgmt?", "/v2/_zot/ext/mgmt?resource=config"] {
        let r = app.call(Method::GET, uri, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "UNAUTHORIZED"),
            "{uri}"
        );
        let r = app.call(Method::GET, uri, Some(&login("bob"))).await;
        assert_eq!(r.status, 200, "{uri} as bob");
        assert_eq!(r.body, app.mgmt);
    }
    // Wrong credentials are refused even at the public URI.
    let r = app
        .call(
            Method::GET,
            "/v2/_zot/ext/mgmt",
            Some(&basic("bob", "nope")),
        )
        .await;
    assert_eq!(r.status, 401);
    // Only GET.
    let r = app.call(Method::POST, "/v2/_zot/ext/mgmt", None).await;
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    // mgmt is one route, not a prefix.
    let r = app.call(Method::GET, "/v2/_zot/ext/mgmt/x", None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "UNSUPPORTED"));
}

#[tokio::test]
async fn each_route_answers_its_methods_only() {
    let app = app(false).await;
    let alice = login("alice");
    for (method, uri) in [
        (Method::PUT, "/v2/_zot/ext/search"),
        (Method::DELETE, "/v2/_zot/ext/search/x"),
        (Method::PATCH, "/v2/_zot/ext/search"),
        (Method::GET, STAR_PUB),
        (Method::POST, STAR_PUB),
        (Method::DELETE, STAR_PUB),
        (Method::PUT, "/v2/_zot/ext/mgmt"),
        (Method::HEAD, "/v2/_zot/ext/mgmt?x"),
    ] {
        let r = app.call(method.clone(), uri, Some(&alice)).await;
        assert_eq!(r.status, 405, "{method} {uri}: {}", r.body);
        if method != Method::HEAD {
            assert_eq!(r.code(), "UNSUPPORTED", "{method} {uri}");
        }
    }
    assert!(app.starred("alice").is_empty());
}

#[tokio::test]
async fn userprefs_status_codes_through_the_router() {
    let app = app(true).await;
    let (alice, bob) = (login("alice"), login("bob"));
    let base = "/v2/_zot/ext/userprefs";
    for (query, who, status) in [
        ("", Some(&alice), 400),
        ("?action=toggleEverything&repo=pub/app", Some(&alice), 400),
        ("?action=toggleStar", Some(&alice), 400),
        ("?action=toggleStar&repo=", Some(&alice), 404),
        ("?action=toggleStar&repo=pub/none", Some(&alice), 404),
        ("?action=toggleBookmark&repo=secret/none", Some(&alice), 404),
        // bob may not read secret/**: refused whether it exists or not.
        ("?action=toggleStar&repo=secret/db", Some(&bob), 403),
        ("?action=toggleStar&repo=secret/none", Some(&bob), 403),
        ("?action=toggleStar&repo=pub/app", None, 403),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("{base}{query}"),
                who.map(String::as_str),
            )
            .await;
        assert_eq!(r.status, status, "{query} as {who:?}: {}", r.body);
        assert!(r.body.is_empty(), "{query}: {}", r.body);
        assert_eq!(r.header("x-content-type-options"), "nosniff");
    }
    assert!(
        app.memory.prefs.lock().unwrap().is_empty(),
        "nothing toggled"
    );

    let star_secret = format!("{base}?action=toggleStar&repo=secret/db");
    let r = app.call(Method::PUT, &star_secret, Some(&alice)).await;
    assert_eq!(r.status, 200);
    let r = app.call(Method::PUT, STAR_PUB, Some(&alice)).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.starred("alice"), ["pub/app", "secret/db"]);
    assert!(app.starred("bob").is_empty());
    // A second toggle undoes the first.
    let r = app.call(Method::PUT, &star_secret, Some(&alice)).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.starred("alice"), ["pub/app"]);
    let bookmark = format!("{base}?action=toggleBookmark&repo=pub/app");
    let r = app.call(Method::PUT, &bookmark, Some(&bob)).await;
    assert_eq!(r.status, 200);
    let prefs = app.memory.user_prefs("bob").unwrap();
    assert!(prefs.bookmarked.contains("pub/app") && prefs.starred.is_empty());
}

#[tokio::test]
async fn off_routes_are_404_before_authentication() {
    let app = app_with(false, false).await;
    for (method, uri) in [
        (Method::GET, SEARCH),
        (Method::PUT, STAR_PUB),
        (Method::GET, "/v2/_zot/ext/mgmt"),
    ] {
        for auth in [None, Some(login("alice"))] {
            let r = app.call(method.clone(), uri, auth.as_deref()).await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (404, "UNSUPPORTED"),
                "{method} {uri}"
            );
        }
    }
    // The rest of the API still wants a login.
    assert_eq!(app.call(Method::GET, "/v2/", None).await.status, 401);
}

/// A user holding a token of the built-in token service (issued for no
/// repository scope, as a search client asks for none) is judged by its
/// policy, as in the catalog: alice may star `secret/db`, bob may not.
#[tokio::test]
async fn built_in_tokens_are_judged_by_their_subjects_policy() {
    let app = app(true).await;
    let token = |user: &'static str| {
        let app = &app;
        async move {
            let r = app
                .call(Method::GET, "/auth/token?service=zot", Some(&login(user)))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            let v: Value = serde_json::from_str(&r.body).unwrap();
            format!("Bearer {}", v["token"].as_str().unwrap())
        }
    };
    let star_secret = "/v2/_zot/ext/userprefs?action=toggleStar&repo=secret/db";
    let alice = token("alice").await;
    let r = app.call(Method::PUT, star_secret, Some(&alice)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.starred("alice"), ["secret/db"]);
    let bob = token("bob").await;
    let r = app.call(Method::PUT, star_secret, Some(&bob)).await;
    assert_eq!(r.status, 403);
    let r = app.call(Method::PUT, STAR_PUB, Some(&bob)).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.starred("bob"), ["pub/app"]);
}

/// Requests of zot's UI (`X-ZOT-API-CLIENT: zot-ui`) are refused without a
/// `WWW-Authenticate` challenge, so a browser shows no login dialog.
#[tokio::test]
async fn refusals_of_zot_ui_requests_carry_no_challenge() {
    let app = app(false).await;
    for (ui, challenged) in [(None, true), (Some("zot-ui"), false), (Some("zli"), true)] {
        for uri in [SEARCH, "/v2/", "/v2/pub/app/tags/list"] {
            let mut req = Request::builder().uri(uri);
            if let Some(ui) = ui {
                req = req.header("x-zot-api-client", ui);
            }
            let resp = app
                .router
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{uri} {ui:?}");
            assert_eq!(
                resp.headers().contains_key("www-authenticate"),
                challenged,
                "{uri} {ui:?}"
            );
        }
    }
}

/// The requests zot's clients send, through the router with auth on:
/// zli (`pkg/cli/client/client.go` makeGraphQLRequest: GET, the query
/// form-encoded in `?query=` and also as the body, basic auth,
/// `Content-Type: application/json`; anything but 200 is an error, 401
/// "unauthorized") and the UI (`src/api.js`: GET with the query written
/// into the URL, `{`, `}`, `[`, `]`, `:` unencoded, `X-ZOT-API-CLIENT:
/// zot-ui`, `Accept`/`Content-Type: application/json`).
#[tokio::test]
async fn requests_as_zli_and_the_ui_send_them() {
    let app = app(false).await;
    let alice = login("alice");
    let query = "\n\t{\n\t\t__schema() { queryType { fields { name } } }\n\t}";
    let uri = format!(
        "/v2/_zot/ext/search?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .finish()
    );
    let zli = |auth: &str| {
        Request::builder()
            .method(Method::GET)
            .uri(&uri)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .header("content-length", query.len())
            .body(Body::from(query))
            .unwrap()
    };
    let resp = app.router.clone().oneshot(zli(&alice)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"].is_null(), "{v}");
    assert!(
        v["data"]["__schema"]["queryType"]["fields"].is_array(),
        "{v}"
    );
    let resp = app
        .router
        .clone()
        .oneshot(zli(&basic("alice", "wrong")))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let ui = r#"/v2/_zot/ext/search?query={GlobalSearch(query:%22pub%22,%20requestedPage:%20{limit:15%20offset:0%20sortBy:%20RELEVANCE}%20,filter:%20{%20Os:[%22linux%22]}){Page%20{TotalCount%20ItemCount}%20Repos%20{Name}}}"#;
    let req = Request::builder()
        .uri(ui)
        .header("authorization", &alice)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("x-zot-api-client", "zot-ui")
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(v["data"]["GlobalSearch"]["Page"]["TotalCount"], 0, "{v}");
}

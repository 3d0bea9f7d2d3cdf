//! Sessions beyond OpenID Connect, through the real binary: GitHub's OAuth2
//! login (against a small GitHub-like server written here, the one fake of
//! these tests: GitHub cannot be reached), sessions made by a Basic login
//! from zot's UI (`X-ZOT-API-CLIENT: zot-ui`), and sessions kept in a real
//! Redis (`sessionDriver`) accepted, and revoked, by a second instance
//! (which, without `sessionKeysFile`, shares the cookie secret through it).

mod auth_common;
mod common;
mod openid_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use auth_common::{basic, start_secure, write_htpasswd};
use common::{Registry, Response};
use openid_common::{Browser, Redis, form_pairs, query_param, write_session_keys};
use serde_json::json;

/// What the fake GitHub saw: the token requests' forms.
type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A GitHub-like OAuth2 server: `/login/oauth/authorize` sends the browser
/// straight back with a code, `/login/oauth/access_token` exchanges it (for
/// the right client secret and a PKCE verifier), `/api/user/{emails,orgs,
/// teams}` answer for its token only.
fn fake_github() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split(' ').nth(1).unwrap_or("").to_owned();
            let (mut length, mut auth) = (0usize, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = header["authorization:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = target.split('?').next().unwrap_or("");
            let (status, extra, text) = match path {
                "/login/oauth/authorize" => {
                    let back = query_param(&target, "redirect_uri").unwrap_or_default();
                    let state = query_param(&target, "state").unwrap_or_default();
                    let location = format!("{back}?code=the-code&state={state}");
                    (302, format!("location: {location}\r\n"), String::new())
                }
                "/login/oauth/access_token" => {
                    let form: HashMap<String, String> = form_pairs(&String::from_utf8_lossy(&body))
                        .into_iter()
                        .collect();
                    let ok = form.get("code").map(String::as_str) == Some("the-code")
                        && form.get("client_id").map(String::as_str) == Some("gh-client")
                        && form.get("client_secret").map(String::as_str) == Some("gh-secret")
                        && form.get("code_verifier").is_some_and(|v| v.len() >= 43);
                    record.lock().expect("seen").push(form);
                    if ok {
                        (
                            200,
                            String::new(),
                            json!({"access_token": "gh-token", "token_type": "bearer"}).to_string(),
                        )
                    } else {
                        (
                            200,
                            String::new(),
                            json!({"error": "bad_verification_code"}).to_string(),
                        )
                    }
                }
                _ if auth != "Bearer gh-token" => (401, String::new(), "{}".to_owned()),
                "/api/user/emails" => (
                    200,
                    String::new(),
                    json!([
                        {"email": "old@example.test", "primary": false, "verified": true},
                        {"email": "carol@example.test", "primary": true, "verified": true},
                    ])
                    .to_string(),
                ),
                "/api/user/orgs" => (200, String::new(), json!([{"login": "acme"}]).to_string()),
                "/api/user/teams" => (
                    200,
                    String::new(),
                    json!([
                        {"slug": "builders", "organization": {"login": "acme"}},
                    ])
                    .to_string(),
                ),
                _ => (404, String::new(), "{}".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = (&stream).write_all(response.as_bytes());
        }
    });
    (base, seen)
}

fn ui_headers(cookie: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cookie", format!("session={cookie}")),
        ("x-zot-api-client", "zot-ui".to_owned()),
    ]
}

fn call(
    registry: &Registry,
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
) -> Response {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    registry.client().request(method, path, &h, None)
}

#[test]
fn github_login_maps_email_orgs_and_teams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.json");
    write_session_keys(&keys);
    let creds = dir.path().join("github.json");
    std::fs::write(
        &creds,
        r#"{"clientid": "gh-client", "clientsecret": "gh-secret"}"#,
    )
    .expect("write");
    let (github, seen) = fake_github();
    let registry = start_secure(
        json!({
            "auth": {
                "sessionKeysFile": keys,
                "openid": { "providers": { "github": {
                    "credentialsFile": creds,
                    "scopes": ["read:org", "user"],
                    "authurl": format!("{github}/login/oauth/authorize"),
                    "tokenurl": format!("{github}/login/oauth/access_token"),
                    "apiurl": format!("{github}/api"),
                }}},
            },
            "accessControl": { "repositories": {
                "acme/**": { "policies": [{ "groups": ["acme/builders"], "actions": ["read", "create"] }] },
                "ops/**": { "policies": [{ "groups": ["acme/ops"], "actions": ["read"] }] },
            }},
        }),
        json!({}),
    );
    let mut b = Browser::default();
    let started = b.get(&format!(
        "{}/zot/auth/login?provider=github",
        registry.url()
    ));
    started.expect_status(302, "login start");
    let to_github = started.header("location").expect("location").to_owned();
    assert!(
        to_github.starts_with(&format!("{github}/login/oauth/authorize?")),
        "{to_github}"
    );
    assert_eq!(
        query_param(&to_github, "scope").as_deref(),
        Some("read:org user")
    );
    let back = b.get(&to_github);
    let callback = back
        .header("location")
        .expect("back to the registry")
        .to_owned();
    b.get(&callback).expect_status(201, "GitHub login");
    let session = b.cookie(&registry.url(), "session").expect("session");
    assert_eq!(
        b.cookie(&registry.url(), "user").as_deref(),
        Some("carol%40example.test")
    );
    let form = seen
        .lock()
        .expect("seen")
        .last()
        .cloned()
        .expect("a token request");
    assert_eq!(
        form.get("redirect_uri"),
        Some(&format!("{}/zot/auth/callback/github", registry.url()))
    );

    // The team `acme/builders` may read acme/; nothing grants ops/.
    call(
        &registry,
        "GET",
        "/v2/acme/app/tags/list",
        &ui_headers(&session),
    )
    .expect_status(404, "readable (no such repository yet)");
    call(
        &registry,
        "GET",
        "/v2/ops/app/tags/list",
        &ui_headers(&session),
    )
    .expect_status(403, "not in acme/ops");

    // A replayed callback makes no session.
    let mut other = Browser::default();
    other
        .get(&callback)
        .expect_status(401, "callback without its state cookie");
}

#[test]
fn basic_login_from_the_ui_makes_a_session_shared_through_redis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = Redis::start(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    write_htpasswd(&htpasswd, &[("dana", "dana-pass")]);
    let http = json!({
        "auth": {
            "htpasswd": { "path": htpasswd },
            // No sessionKeysFile (as zot's example): the instances share
            // the cookie secret through Redis.
            "sessionDriver": { "name": "redis", "url": redis.url, "keyprefix": "zottest" },
        },
        "accessControl": { "repositories": { "**": { "defaultPolicy": ["read", "create"] } } },
    });
    let a = start_secure(http.clone(), json!({}));
    let b = start_secure(http, json!({}));

    // Basic without the UI header: no session.
    let plain = a.client().request(
        "GET",
        "/v2/",
        &[("authorization", &basic("dana", "dana-pass"))],
        None,
    );
    plain.expect_status(200, "Basic login");
    assert!(
        plain.header("set-cookie").is_none(),
        "no session without X-ZOT-API-CLIENT: {plain}"
    );
    // With it: a session cookie.
    let ui = a.client().request(
        "GET",
        "/v2/",
        &[
            ("authorization", &basic("dana", "dana-pass")),
            ("x-zot-api-client", "zot-ui"),
        ],
        None,
    );
    ui.expect_status(200, "Basic login from the UI");
    let cookie = ui
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix("session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    // Wrong password from the UI: no session either.
    let wrong = a.client().request(
        "GET",
        "/v2/",
        &[
            ("authorization", &basic("dana", "nope")),
            ("x-zot-api-client", "zot-ui"),
        ],
        None,
    );
    wrong.expect_status(401, "wrong password");
    assert!(wrong.header("set-cookie").is_none());

    // The other instance accepts the session (kept in Redis).
    call(&b, "GET", "/v2/_catalog", &ui_headers(&cookie))
        .expect_status(200, "instance B accepts A's session");
    call(&b, "GET", "/v2/_catalog", &[]).expect_status(401, "anonymous on B");
    // Logout on B revokes it on A.
    call(&b, "POST", "/zot/auth/logout", &ui_headers(&cookie)).expect_status(200, "logout on B");
    call(&a, "GET", "/v2/_catalog", &ui_headers(&cookie)).expect_status(401, "revoked on A too");
}

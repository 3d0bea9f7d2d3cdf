//! Authentication and access control of the real binary with htpasswd users:
//! the matrix of users × repository patterns × actions with exact statuses,
//! the filtered catalog, challenges, failDelay, rate limits, htpasswd
//! reload, the audit log, and bad input (malformed `Authorization`, huge
//! headers, slow clients, non-bcrypt files).

mod auth_common;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use auth_common::{
    basic, call, push_image, put_manifest, small_image, start_secure, write_htpasswd,
};
use common::Registry;
use serde_json::{Value, json};

const USERS: &[(&str, &str)] = &[
    ("admin", "admin-secret-pw"),
    ("dev", "dev-secret-pw"),
    ("plain", "plain-secret-pw"),
];

fn access_control() -> Value {
    json!({
        "groups": { "devs": { "users": ["dev"] } },
        "repositories": {
            "**": {
                "policies": [{ "groups": ["devs"], "actions": ["read", "create"] }],
                "defaultPolicy": ["read"]
            },
            "team/**": {
                "policies": [{ "groups": ["devs"], "actions": ["read", "create", "update", "delete"] }]
            },
            "public/**": { "defaultPolicy": ["read"], "anonymousPolicy": ["read"] }
        },
        "adminPolicy": { "users": ["admin"], "actions": ["read", "create", "update", "delete"] }
    })
}

fn secured(extra_auth: Value, extra_http: Value, log: Value) -> (Registry, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    let mut auth = json!({ "htpasswd": { "path": htpasswd } });
    if let (Some(a), Value::Object(extra)) = (auth.as_object_mut(), extra_auth) {
        a.extend(extra);
    }
    let mut http = json!({ "realm": "zot-test", "auth": auth, "accessControl": access_control() });
    if let (Some(h), Value::Object(extra)) = (http.as_object_mut(), extra_http) {
        h.extend(extra);
    }
    (start_secure(http, log), htpasswd)
}

const REPOS: &[&str] = &["app", "team/svc", "public/lib"];
const WHO: &[&str] = &["admin", "dev", "plain", "anonymous", "wrong-password"];

fn auth_of(who: &str) -> Option<String> {
    match who {
        "anonymous" => None,
        "wrong-password" => Some(basic("dev", "not-the-password")),
        user => USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(u, p)| basic(u, p)),
    }
}

/// Expected statuses of (pull, push a new tag, move a tag, delete).
fn expected(who: &str, repo: &str) -> [u16; 4] {
    const ALL: [u16; 4] = [200, 201, 201, 202];
    match (who, repo) {
        ("admin", _) => ALL,
        ("dev", "app") => [200, 201, 403, 403],
        ("dev", "team/svc") => ALL,
        ("dev", "public/lib") | ("plain", "app" | "public/lib") => [200, 403, 403, 403],
        ("plain", _) => [403, 403, 403, 403],
        ("anonymous", "public/lib") => [200, 401, 401, 401],
        _ => [401, 401, 401, 401],
    }
}

#[test]
fn access_matrix_users_by_repositories_by_actions() {
    let (registry, _) = secured(json!({}), json!({}), json!({}));
    let client = registry.client();
    let admin = basic("admin", "admin-secret-pw");
    let one = small_image("one");
    let two = small_image("two");
    for repo in REPOS {
        push_image(&client, Some(&admin), repo, &one, "v1");
        push_image(&client, Some(&admin), repo, &two, "v2");
        for who in WHO {
            push_image(&client, Some(&admin), repo, &one, &format!("mv-{who}"));
            push_image(&client, Some(&admin), repo, &one, &format!("del-{who}"));
        }
    }
    let mut failures = Vec::new();
    for repo in REPOS {
        for who in WHO {
            let auth = auth_of(who);
            let auth = auth.as_deref();
            let pull = call(
                &client,
                auth,
                "GET",
                &format!("/v2/{repo}/manifests/v1"),
                &[("accept", &one.manifest.media_type)],
                None,
            );
            let push = put_manifest(&client, auth, repo, &one, &format!("new-{who}"));
            let moved = put_manifest(&client, auth, repo, &two, &format!("mv-{who}"));
            let delete = call(
                &client,
                auth,
                "DELETE",
                &format!("/v2/{repo}/manifests/del-{who}"),
                &[],
                None,
            );
            let got = [pull.status, push.status, moved.status, delete.status];
            let want = expected(who, repo);
            if got != want {
                failures.push(format!(
                    "{who} on {repo}: (pull, push, move, delete) = {got:?}, expected {want:?}"
                ));
            }
            for r in [&pull, &push, &moved, &delete] {
                match r.status {
                    401 => {
                        r.expect_oci_error(401, "UNAUTHORIZED", who);
                        // Anonymous and password users coexist: the
                        // registry is its own token server (e2e_token.rs).
                        let challenge = r.header("www-authenticate").unwrap_or("");
                        let realm = format!(
                            "Bearer realm=\"{}/auth/token\",service=\"zot\"",
                            registry.url()
                        );
                        assert!(challenge.starts_with(&realm), "{challenge} {r}");
                        assert!(
                            challenge.contains(&format!(",scope=\"repository:{repo}:")),
                            "{r}"
                        );
                    }
                    403 => r.expect_oci_error(403, "DENIED", who),
                    _ => {}
                }
            }
            // A blob upload is "create" too.
            let upload = call(
                &client,
                auth,
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Some(b""),
            );
            let want_upload = match want[1] {
                201 => 202,
                other => other,
            };
            if upload.status != want_upload {
                failures.push(format!(
                    "{who} on {repo}: upload = {}, expected {want_upload}",
                    upload.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The moved tags now point at image two, the deleted ones are gone.
    let r = call(
        &client,
        Some(&admin),
        "GET",
        "/v2/team/svc/manifests/mv-dev",
        &[("accept", &two.manifest.media_type)],
        None,
    );
    assert_eq!(r.body, two.manifest.bytes);
    let logs = registry.logs();
    for (_, password) in USERS {
        assert!(!logs.contains(password), "a password reached the log");
    }
    assert!(!logs.contains("not-the-password"));
}

#[test]
fn catalog_lists_only_readable_repositories() {
    let (registry, _) = secured(json!({}), json!({}), json!({}));
    let client = registry.client();
    let admin = basic("admin", "admin-secret-pw");
    let img = small_image("cat");
    for repo in ["app", "team/svc", "team/db", "public/lib"] {
        push_image(&client, Some(&admin), repo, &img, "v1");
    }
    let list = |who: &str, query: &str| -> (u16, Vec<String>) {
        let r = call(
            &client,
            auth_of(who).as_deref(),
            "GET",
            &format!("/v2/_catalog{query}"),
            &[],
            None,
        );
        let repos = if r.status == 200 {
            r.json()["repositories"]
                .as_array()
                .expect("list")
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        } else {
            Vec::new()
        };
        (r.status, repos)
    };
    assert_eq!(
        list("admin", "").1,
        ["app", "public/lib", "team/db", "team/svc"]
    );
    assert_eq!(
        list("dev", "").1,
        ["app", "public/lib", "team/db", "team/svc"]
    );
    assert_eq!(list("plain", "").1, ["app", "public/lib"]);
    assert_eq!(list("anonymous", "").1, ["public/lib"]);
    assert_eq!(list("wrong-password", "").0, 401);
    // Pages are filled past hidden repositories.
    assert_eq!(list("plain", "?n=1").1, ["app"]);
    assert_eq!(list("plain", "?n=1&last=app").1, ["public/lib"]);
    // /v2/ itself: anonymous clients are sent to the token service (which
    // gives them an anonymous token), a wrong password is refused.
    let r = call(&client, None, "GET", "/v2/", &[], None);
    assert_eq!(r.status, 401, "{r}");
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .starts_with("Bearer realm="),
        "{r}"
    );
    assert_eq!(
        call(
            &client,
            auth_of("wrong-password").as_deref(),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        401
    );
}

#[test]
fn malformed_authorization_headers_are_401() {
    let (registry, _) = secured(json!({}), json!({}), json!({}));
    let client = registry.client();
    for bad in [
        "Basic",
        "Basic !!!notbase64",
        "Basic YWRtaW4=",
        "Digest username=admin",
        "Bearer a.b.c",
        "basic YWRtaW46",
    ] {
        let r = call(&client, Some(bad), "GET", "/v2/app/tags/list", &[], None);
        r.expect_oci_error(401, "UNAUTHORIZED", bad);
    }
    // Non-UTF-8 and a huge header through a raw socket.
    let r = common::http::raw_request(
        registry.addr(),
        "GET",
        "/v2/",
        &[("Authorization", "Basic \u{ff}\u{fe}")],
        b"",
    );
    assert_eq!(r.status, 401, "{r}");
    let huge = format!("Basic {}", "A".repeat(300 * 1024));
    let r = common::http::raw_request(
        registry.addr(),
        "GET",
        "/v2/",
        &[("Authorization", &huge)],
        b"",
    );
    assert_eq!(r.status, 431, "{r}");
    // The server is still fine.
    assert_eq!(
        call(
            &client,
            auth_of("admin").as_deref(),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        200
    );
}

#[test]
fn fail_delay_slows_wrong_passwords_only() {
    let (registry, _) = secured(json!({ "failDelay": 1 }), json!({}), json!({}));
    let client = registry.client();
    for (name, auth) in [
        ("wrong password", auth_of("wrong-password")),
        ("unknown user", Some(basic("nobody", "whatever"))),
        ("malformed header", Some("Basic !!!".to_owned())),
        ("empty password", Some(basic("dev", ""))),
    ] {
        let start = Instant::now();
        let r = call(&client, auth.as_deref(), "GET", "/v2/", &[], None);
        assert_eq!(r.status, 401, "{name}");
        assert!(
            start.elapsed() >= Duration::from_millis(950),
            "{name}: no delay: {:?}",
            start.elapsed()
        );
    }
    let start = Instant::now();
    assert_eq!(
        call(
            &client,
            auth_of("plain").as_deref(),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        200
    );
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn rate_limit_answers_429_per_method() {
    let (registry, _) = secured(
        json!({}),
        json!({ "ratelimit": { "rate": 1000, "methods": [{ "method": "GET", "rate": 3 }] } }),
        json!({}),
    );
    let client = registry.client();
    let wrong = auth_of("wrong-password");
    let statuses: Vec<u16> = (0..6)
        .map(|_| call(&client, wrong.as_deref(), "GET", "/v2/", &[], None).status)
        .collect();
    assert_eq!(&statuses[..3], [401, 401, 401], "{statuses:?}");
    assert!(
        statuses[3..].contains(&429),
        "brute force never limited: {statuses:?}"
    );
    let r = call(&client, None, "GET", "/v2/", &[], None);
    r.expect_oci_error(429, "TOOMANYREQUESTS", "over the GET rate");
    // The client is its TCP address: headers a client writes do not reset it.
    for forwarded in ["10.1.2.3", "203.0.113.9", "::1"] {
        let r = call(
            &client,
            None,
            "GET",
            "/v2/",
            &[
                ("x-forwarded-for", forwarded),
                ("x-real-ip", forwarded),
                ("forwarded", "for=10.9.9.9"),
            ],
            None,
        );
        r.expect_oci_error(429, "TOOMANYREQUESTS", forwarded);
    }
    // Other methods have their own budget.
    assert_ne!(call(&client, None, "HEAD", "/v2/", &[], None).status, 429);
}

#[test]
fn htpasswd_changes_are_picked_up_without_restart() {
    let (registry, htpasswd) = secured(json!({}), json!({}), json!({}));
    let client = registry.client();
    let newcomer = basic("newcomer", "fresh-pw");
    assert_eq!(
        call(&client, Some(&newcomer), "GET", "/v2/", &[], None).status,
        401
    );
    let mut users = USERS.to_vec();
    users.push(("newcomer", "fresh-pw"));
    users.retain(|(u, _)| *u != "plain");
    write_htpasswd(&htpasswd, &users);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = call(&client, Some(&newcomer), "GET", "/v2/", &[], None).status == 200;
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the new user never got in");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A removed user is out at once (the cache was emptied by the reload).
    assert_eq!(
        call(
            &client,
            auth_of("plain").as_deref(),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        401
    );
}

#[test]
fn non_bcrypt_htpasswd_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n").expect("write");
    let config = auth_common::config_with(
        dir.path(),
        json!({ "auth": { "htpasswd": { "path": htpasswd } } }),
    );
    let out = std::process::Command::new(common::registry::binary())
        .args(["serve"])
        .arg(&config)
        .output()
        .expect("run zot");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("only bcrypt"), "{text}");
}

#[test]
fn audit_log_records_mutations_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let (registry, _) = secured(json!({}), json!({}), json!({ "audit": audit }));
    let client = registry.client();
    let img = small_image("audit");
    push_image(&client, auth_of("dev").as_deref(), "app", &img, "v1");
    assert_eq!(
        put_manifest(&client, auth_of("plain").as_deref(), "app", &img, "x").status,
        403
    );
    assert_eq!(
        call(
            &client,
            auth_of("dev").as_deref(),
            "GET",
            "/v2/app/tags/list",
            &[],
            None
        )
        .status,
        200
    );
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        lines.iter().all(|l| l["method"] != "GET"),
        "reads are not audited: {text}"
    );
    let put = lines
        .iter()
        .find(|l| l["method"] == "PUT" && l["subject"] == "dev")
        .expect("dev's PUT");
    assert_eq!(put["path"], "/v2/app/manifests/v1");
    assert_eq!(put["status"], 201);
    assert_eq!(put["clientIP"], "127.0.0.1");
    let denied = lines
        .iter()
        .find(|l| l["status"] == 403)
        .unwrap_or_else(|| panic!("denied attempt audited: {text}"));
    assert_eq!(denied["subject"], "plain", "who was refused: {text}");
    assert_eq!(denied["path"], "/v2/app/manifests/x");
    // A failed login is audited too, as anonymous (the name typed is not
    // trusted: it may be a mistyped password).
    assert_eq!(
        put_manifest(
            &client,
            auth_of("wrong-password").as_deref(),
            "app",
            &img,
            "y"
        )
        .status,
        401
    );
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let failed: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["status"] == 401)
        .unwrap_or_else(|| panic!("failed login audited: {text}"));
    assert_eq!(failed["subject"], "anonymous");
    assert!(!text.contains("not-the-password"));
    for (_, p) in USERS {
        assert!(!text.contains(p));
    }
}

#[test]
fn slow_clients_are_disconnected() {
    let (registry, _) = secured(json!({}), json!({ "readTimeout": "1s" }), json!({}));
    let mut stream = TcpStream::connect(registry.addr()).expect("connect");
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "connection held for {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // Other clients are served meanwhile and after.
    assert_eq!(
        call(
            &registry.client(),
            auth_of("plain").as_deref(),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        200
    );
}

#[test]
fn world_readable_htpasswd_gets_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let htpasswd = dir.path().join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    std::fs::set_permissions(&htpasswd, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let registry = start_secure(
        json!({ "auth": { "htpasswd": { "path": htpasswd } } }),
        json!({}),
    );
    assert!(
        registry.logs().contains("readable by every user"),
        "{}",
        registry.logs()
    );
}

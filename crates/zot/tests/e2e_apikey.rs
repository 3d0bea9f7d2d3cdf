//! API keys (`http.auth.apikey`) on the real binary: made, listed and
//! revoked at `/zot/auth/apikey` by an htpasswd user; used as the Basic
//! password by curl-like requests, skopeo, the Docker engine and through
//! the built-in token service; scopes (pull only, repository globs)
//! within the owner's rights; expiry, immediate revocation, keys and
//! their last use surviving a restart; mgmt advertising them.

mod auth_common;
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_common::{basic, call, push_image, small_image, write_htpasswd};
use common::tools::skopeo_copy;
use common::{Client, OciLayout, Registry, Response, run_fails, skopeo};
use serde_json::{Value, json};

const USERS: &[(&str, &str)] = &[("alice", "alice-secret-pw"), ("bob", "bob-secret-pw")];

/// alice may do everything on `team/**` and `other/**`, only read `pub/**`.
fn access_control(anonymous_read: bool) -> Value {
    let anon: Vec<&str> = if anonymous_read { vec!["read"] } else { vec![] };
    json!({
        "repositories": {
            "team/**": { "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }], "anonymousPolicy": anon },
            "other/**": { "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }], "anonymousPolicy": anon },
            "pub/**": { "policies": [{ "users": ["alice", "bob"], "actions": ["read"] }], "anonymousPolicy": anon }
        }
    })
}

fn secured(anonymous_read: bool, extra: Value) -> Registry {
    secured_with(common::Config::default(), anonymous_read, extra)
}

fn secured_with(config: common::Config, anonymous_read: bool, extra: Value) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    let mut http = json!({
        "auth": { "htpasswd": { "path": htpasswd }, "apikey": true },
        "accessControl": access_control(anonymous_read),
    });
    if let (Some(h), Value::Object(extra)) = (http.as_object_mut(), extra) {
        h.extend(extra);
    }
    auth_common::start_secure_with(config, http, json!({}))
}

fn alice() -> String {
    basic("alice", "alice-secret-pw")
}

fn bob() -> String {
    basic("bob", "bob-secret-pw")
}

fn create(client: &Client, auth: Option<&str>, body: &Value) -> Response {
    call(
        client,
        auth,
        "POST",
        "/zot/auth/apikey",
        &[
            ("content-type", "application/json"),
            ("user-agent", "e2e/1"),
        ],
        Some(body.to_string().as_bytes()),
    )
}

/// Makes a key for alice with `scopes`; returns (key, uuid).
fn key_for_alice(client: &Client, scopes: &[&str]) -> (String, String) {
    let r = create(
        client,
        Some(&alice()),
        &json!({"label": "ci", "scopes": scopes}),
    );
    r.expect_status(201, "create key");
    let v = r.json();
    (
        v["apiKey"].as_str().expect("apiKey").to_owned(),
        v["uuid"].as_str().expect("uuid").to_owned(),
    )
}

/// `DELETE /zot/auth/apikey<query>` (query: "" or "?id=...").
fn revoke(client: &Client, auth: &str, query: &str) -> Response {
    let path = format!("/zot/auth/apikey{query}");
    call(client, Some(auth), "DELETE", &path, &[], None)
}

/// `POST /zot/auth/apikey` with a body sent as it is.
fn post_raw(client: &Client, auth: &str, body: &str) -> Response {
    call(
        client,
        Some(auth),
        "POST",
        "/zot/auth/apikey",
        &[],
        Some(body.as_bytes()),
    )
}

fn list(client: &Client, auth: &str) -> Vec<Value> {
    let r = call(client, Some(auth), "GET", "/zot/auth/apikey", &[], None);
    r.expect_status(200, "list keys");
    r.json()["apiKeys"].as_array().expect("apiKeys").clone()
}

fn ping(client: &Client, auth: &str) -> u16 {
    call(client, Some(auth), "GET", "/v2/", &[], None).status
}

fn rfc3339_in(secs: u64) -> String {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + secs;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{at}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn keys_are_made_listed_used_and_revoked_over_http() {
    let registry = secured(false, json!({}));
    let client = registry.client();

    // No login: 401 with a Basic challenge; preflight answered.
    let r = create(&client, None, &json!({"label": "x"}));
    r.expect_oci_error(401, "UNAUTHORIZED", "anonymous create");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic ")),
        "{r}"
    );
    call(&client, None, "OPTIONS", "/zot/auth/apikey", &[], None).expect_status(204, "preflight");

    let r = create(
        &client,
        Some(&alice()),
        &json!({"label": "ci", "scopes": ["pull", "repository:team/**"], "expirationDate": rfc3339_in(3600)}),
    );
    r.expect_status(201, "create");
    let made = r.json();
    let key = made["apiKey"].as_str().expect("apiKey").to_owned();
    assert!(key.starts_with("zak_") && key.len() == 36, "{made}");
    assert_eq!(made["label"], "ci");
    assert_eq!(made["scopes"], json!(["pull", "repository:team/**"]));
    assert_eq!(made["isExpired"], false);
    assert_eq!(made["generatedBy"], "manual");
    assert_eq!(made["creatorUa"], "e2e/1");
    assert_eq!(made["lastUsed"], "0001-01-01T00:00:00Z");
    assert!(
        made["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{made}"
    );
    assert_ne!(made["expirationDate"], "0001-01-01T00:00:00Z");
    let id = made["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(id.len(), 36);

    // Refusals: bad JSON, past or unparsable expiry, bad scope, big body.
    for (body, what) in [
        ("{".to_owned(), "bad JSON"),
        (
            json!({"label": "x", "expirationDate": "2001-01-01T00:00:00Z"}).to_string(),
            "past",
        ),
        (
            json!({"label": "x", "expirationDate": "tomorrow"}).to_string(),
            "unparsable",
        ),
        (
            json!({"label": "x", "scopes": ["write"]}).to_string(),
            "bad scope",
        ),
    ] {
        let r = post_raw(&client, &alice(), &body);
        r.expect_status(400, what);
    }
    let big = json!({"label": "x".repeat(9000)}).to_string();
    post_raw(&client, &alice(), &big).expect_status(413, "body over 8 KiB");

    // Listed for alice only, without the key itself.
    let mine = list(&client, &alice());
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["uuid"], id.as_str());
    assert!(mine[0].get("apiKey").is_none(), "{}", mine[0]);
    assert!(list(&client, &bob()).is_empty());

    // The key logs alice in, nobody else; a wrong key fails.
    assert_eq!(ping(&client, &basic("alice", &key)), 200);
    assert_eq!(ping(&client, &basic("bob", &key)), 401);
    assert_eq!(
        ping(
            &client,
            &basic("alice", "zak_00000000000000000000000000000000")
        ),
        401
    );
    // Its use shows in the listing before any flush.
    assert_ne!(
        list(&client, &alice())[0]["lastUsed"],
        "0001-01-01T00:00:00Z"
    );

    // A key cannot manage keys.
    create(
        &client,
        Some(&basic("alice", &key)),
        &json!({"label": "more"}),
    )
    .expect_oci_error(403, "DENIED", "create with a key");

    // Revocation: id required; only one's own; then refused at once.
    revoke(&client, &alice(), "").expect_status(400, "no id");
    revoke(&client, &alice(), &format!("?id={id}&id={id}")).expect_status(400, "two ids");
    revoke(&client, &bob(), &format!("?id={id}")).expect_status(404, "bob revoking alice's key");
    assert_eq!(ping(&client, &basic("alice", &key)), 200);
    revoke(&client, &alice(), &format!("?id={id}")).expect_status(200, "revoke");
    assert_eq!(
        ping(&client, &basic("alice", &key)),
        401,
        "revoked key refused at once"
    );
    assert!(list(&client, &alice()).is_empty());
    revoke(&client, &alice(), &format!("?id={id}")).expect_status(404, "revoked twice");
}

/// mgmt (anonymous, with search on) tells zot's UI that keys are on.
#[test]
fn mgmt_advertises_api_keys() {
    let search = common::Config::default().with_extensions(json!({"search": {"enable": true}}));
    let registry = secured_with(search, false, json!({}));
    let mgmt = registry.client().get("/v2/_zot/ext/mgmt");
    mgmt.expect_status(200, "mgmt");
    assert_eq!(
        mgmt.json()["http"]["auth"],
        json!({"htpasswd": {}, "apikey": true})
    );
}

#[test]
fn scopes_limit_a_key_within_its_owners_rights() {
    let registry = secured(false, json!({}));
    let client = registry.client();
    let img = small_image("apikey-scopes");
    push_image(&client, Some(&alice()), "team/app", &img, "v1");
    push_image(&client, Some(&alice()), "other/app", &img, "v1");
    let manifest = |auth: &str, repo: &str| {
        call(
            &client,
            Some(auth),
            "GET",
            &format!("/v2/{repo}/manifests/v1"),
            &[("accept", &img.manifest.media_type)],
            None,
        )
        .status
    };
    let upload = |auth: &str, repo: &str| {
        call(
            &client,
            Some(auth),
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            None,
        )
    };

    // Pull only: reads, and pushes are denied with DENIED.
    let (read, _) = key_for_alice(&client, &["pull"]);
    let read = basic("alice", &read);
    assert_eq!(manifest(&read, "team/app"), 200);
    upload(&read, "team/app").expect_oci_error(403, "DENIED", "push with a pull key");
    push_denied(&client, &read, "team/app", &img);

    // A glob: everything on team/**, nothing elsewhere.
    let (team, _) = key_for_alice(&client, &["repository:team/**"]);
    let team = basic("alice", &team);
    push_image(&client, Some(&team), "team/new", &img, "v1");
    assert_eq!(manifest(&team, "team/new"), 200);
    assert_eq!(manifest(&team, "other/app"), 403);
    upload(&team, "other/app").expect_oci_error(403, "DENIED", "push outside the glob");
    // The catalog shows only what the key may read.
    let r = call(&client, Some(&team), "GET", "/v2/_catalog", &[], None);
    r.expect_status(200, "catalog");
    assert_eq!(r.json()["repositories"], json!(["team/app", "team/new"]));

    // Never more than the owner: alice only reads pub/**.
    let (all, _) = key_for_alice(&client, &[]);
    let all = basic("alice", &all);
    upload(&all, "pub/app").expect_oci_error(403, "DENIED", "push beyond the owner's rights");
    upload(&all, "other/new").expect_status(202, "the owner's rights");
}

fn push_denied(client: &Client, auth: &str, repo: &str, img: &common::Image) {
    let r = auth_common::put_manifest(client, Some(auth), repo, img, "v2");
    r.expect_oci_error(403, "DENIED", "manifest push with a pull key");
}

#[test]
fn skopeo_pushes_and_pulls_with_a_key_and_a_read_key_cannot_push() {
    let registry = secured(false, json!({}));
    let client = registry.client();
    let work = registry.work_dir();
    let src = OciLayout::create(&work.join("src"));
    let image = common::fixtures::multi_layer_image("apikey-skopeo");
    src.add_image(&image, "v1");
    let (key, _) = key_for_alice(&client, &["repository:team/**"]);
    let creds = format!("alice:{key}");
    let dest = registry.docker_ref("team/skopeo:v1");
    let pushed = skopeo_copy(
        &["--dest-creds", &creds],
        &src.reference("v1"),
        &dest,
        &work,
    );
    assert_eq!(pushed, image.manifest.digest);
    let back = OciLayout::create(&work.join("back"));
    skopeo_copy(
        &["--src-creds", &creds],
        &dest,
        &back.reference("v1"),
        &work,
    );
    assert_eq!(back.blobs(), src.blobs(), "pulled back byte for byte");

    // Outside the key's glob: refused.
    let out = run_fails(skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &src.reference("v1"),
        &registry.docker_ref("other/skopeo:v1"),
    ]));
    let text = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(text.contains("denied") || text.contains("403"), "{text}");

    // A pull key pulls and cannot push.
    let (read, _) = key_for_alice(&client, &["pull"]);
    let read_creds = format!("alice:{read}");
    let again = OciLayout::create(&work.join("again"));
    skopeo_copy(
        &["--src-creds", &read_creds],
        &dest,
        &again.reference("v1"),
        &work,
    );
    let out = run_fails(skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &read_creds,
        &src.reference("v1"),
        &registry.docker_ref("team/skopeo:v2"),
    ]));
    let text = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(text.contains("denied") || text.contains("403"), "{text}");
}

#[test]
fn an_expired_key_is_refused() {
    let registry = secured(false, json!({}));
    let client = registry.client();
    let r = create(
        &client,
        Some(&alice()),
        &json!({"label": "short", "expirationDate": rfc3339_in(2)}),
    );
    r.expect_status(201, "create");
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_owned();
    assert_eq!(ping(&client, &basic("alice", &key)), 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ping(&client, &basic("alice", &key)), 401);
    assert_eq!(list(&client, &alice())[0]["isExpired"], true);
}

#[test]
fn keys_and_their_last_use_survive_a_restart() {
    let mut registry = secured(false, json!({}));
    let client = registry.client();
    let (key, id) = key_for_alice(&client, &["pull"]);
    let (revoked, revoked_id) = key_for_alice(&client, &[]);
    call(
        &client,
        Some(&alice()),
        "DELETE",
        &format!("/zot/auth/apikey?id={revoked_id}"),
        &[],
        None,
    )
    .expect_status(200, "revoke");
    assert_eq!(ping(&client, &basic("alice", &key)), 200);
    // A graceful stop writes the last use (no 30 s flush has run yet).
    assert!(
        registry
            .terminate(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
    registry.restart();
    let client = registry.client();
    assert_eq!(ping(&client, &basic("alice", &key)), 200);
    assert_eq!(ping(&client, &basic("alice", &revoked)), 401);
    let keys = list(&client, &alice());
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["uuid"], id.as_str());
    assert_eq!(keys[0]["scopes"], json!(["pull"]));
    assert_ne!(keys[0]["lastUsed"], "0001-01-01T00:00:00Z", "{}", keys[0]);
    // After a SIGKILL, a key made just before is still there (made durably).
    let (late, _) = key_for_alice(&client, &[]);
    registry.kill9();
    registry.restart();
    assert_eq!(ping(&registry.client(), &basic("alice", &late)), 200);
}

/// Anonymous reads make the registry its own token server: a key is the
/// password of the token request, the token carries the key's scope, and
/// a revoked key's tokens stop at once.
#[test]
fn a_key_through_the_token_service() {
    let registry = secured(true, json!({}));
    let client = registry.client();
    let img = small_image("apikey-token");
    let (key, id) = key_for_alice(&client, &["pull"]);
    let token = |auth: &str, scope: &str| {
        let path = format!(
            "/auth/token?service=zot&scope={}",
            scope.replace(':', "%3A").replace(',', "%2C")
        );
        let r = call(&client, Some(auth), "GET", &path, &[], None);
        r.expect_status(200, "token");
        let v = r.json();
        format!("Bearer {}", v["token"].as_str().expect("token"))
    };
    // Push with alice's password through a token, then read with the key's.
    let pw_token = token(&alice(), "repository:team/app:pull,push");
    push_image(&client, Some(&pw_token), "team/app", &img, "v1");
    let key_token = token(&basic("alice", &key), "repository:team/app:pull,push");
    let get = |auth: &str| {
        call(
            &client,
            Some(auth),
            "GET",
            "/v2/team/app/manifests/v1",
            &[("accept", &img.manifest.media_type)],
            None,
        )
        .status
    };
    assert_eq!(get(&key_token), 200);
    // The pull key's token grants no push.
    let r = call(
        &client,
        Some(&key_token),
        "POST",
        "/v2/team/app/blobs/uploads/",
        &[],
        None,
    );
    assert_eq!(r.status, 403, "{r}");
    // A wrong key gets no token.
    let r = call(
        &client,
        Some(&basic("alice", "zak_00000000000000000000000000000000")),
        "GET",
        "/auth/token?service=zot",
        &[],
        None,
    );
    r.expect_status(401, "token for a wrong key");
    // Revoked: the key's token stops at once.
    revoke(&client, &alice(), &format!("?id={id}")).expect_status(200, "revoke");
    let r = call(
        &client,
        Some(&key_token),
        "GET",
        "/v2/team/app/manifests/v1",
        &[],
        None,
    );
    assert_eq!(r.status, 401, "{r}");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("invalid_token")),
        "{r}"
    );

    // skopeo follows the token flow with a key as its password.
    let (push_key, _) = key_for_alice(&client, &["push", "repository:team/**"]);
    let work = registry.work_dir();
    let src = OciLayout::create(&work.join("src"));
    let image = common::fixtures::multi_layer_image("apikey-token-skopeo");
    src.add_image(&image, "v1");
    let creds = format!("alice:{push_key}");
    let pushed = skopeo_copy(
        &["--dest-creds", &creds],
        &src.reference("v1"),
        &registry.docker_ref("team/tok:v1"),
        &work,
    );
    assert_eq!(pushed, image.manifest.digest);
}

#[test]
fn docker_logs_in_pushes_and_pulls_with_a_key() {
    let engine = common::docker::Dockerd::start();
    let registry = secured(false, json!({ "compat": ["docker2s2"] }));
    let client = registry.client();
    let (key, _) = key_for_alice(&client, &["repository:team/**"]);
    let cfg = registry.work_dir().join("docker-config");
    let addr = registry.addr().to_owned();
    let docker = || engine.docker(&cfg);
    let out = common::run_stdout(docker().args(["login", "-u", "alice", "-p", &key, &addr]));
    assert!(out.contains("Login Succeeded"), "{out}");
    let app = format!("{addr}/team/docker:v1");
    engine.import(&cfg, &app, "apikey-docker");
    common::run(docker().args(["push", &app]));
    common::run(docker().args(["rmi", "-f", &app]));
    common::run(docker().args(["pull", &app]));
    // Outside the key's scope the engine is denied.
    let other = format!("{addr}/other/docker:v1");
    common::run(docker().args(["tag", &app, &other]));
    let out = run_fails(docker().args(["push", &other]));
    let text = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(text.contains("denied"), "{text}");
    // A wrong key cannot log in.
    let out = run_fails(docker().args([
        "login",
        "-u",
        "alice",
        "-p",
        "zak_00000000000000000000000000000000",
        &addr,
    ]));
    assert!(!out.status.success());
}

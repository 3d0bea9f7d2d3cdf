//! OpenID Connect login through the real binary and a real provider
//! (`oidc-provider` from npm, run by Node): the whole authorization code
//! dance (the provider's login and consent forms), the session cookie, and
//! then pushes and pulls with the rights of the user's groups; state
//! checks (tampered, mismatched, expired, replayed), `callback_ui` limited
//! to allowed origins, PKCE for a client without a secret, CSRF refusals,
//! and logout with the provider's end-session URL.

mod auth_common;
mod common;
mod openid_common;

use std::path::Path;

use auth_common::{small_image, start_secure};
use common::{Registry, Response, sha256_digest};
use openid_common::{Browser, Provider, free_port, now, query_param, seal, write_session_keys};
use serde_json::{Value, json};

const UI: &str = "http://127.0.0.1:3000";

/// A registry whose only login is the `oidc` provider at `issuer`; `dev`
/// may do anything under `dev/`, everyone else nothing.
fn registry(issuer: &str, client: Value, keys: &Path) -> Registry {
    let mut provider = json!({
        "name": "Test SSO",
        "issuer": issuer,
        "scopes": ["openid", "email", "profile", "groups"],
        "claimMapping": { "username": "preferred_username", "groups": "groups" },
    });
    for (k, v) in client.as_object().into_iter().flatten() {
        provider[k] = v.clone();
    }
    start_secure(
        json!({
            "auth": {
                "sessionKeysFile": keys,
                "openid": {
                    "callbackAllowOrigins": [UI],
                    "providers": { "oidc": provider },
                },
            },
            "accessControl": {
                "repositories": {
                    "dev/**": { "policies": [{ "groups": ["dev"], "actions": ["read", "create", "update", "delete"] }] },
                },
            },
        }),
        json!({}),
    )
}

fn client_metadata(id: &str, secret: Option<&str>, registry: &Registry) -> Value {
    let mut c = json!({
        "client_id": id,
        "redirect_uris": [format!("{}/zot/auth/callback/oidc", registry.url())],
        "post_logout_redirect_uris": [format!("{}/login", registry.url())],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    });
    match secret {
        Some(s) => c["client_secret"] = s.into(),
        None => c["token_endpoint_auth_method"] = "none".into(),
    }
    c
}

fn users() -> Value {
    json!({ "alice": { "groups": ["dev", "ops"] }, "bob": { "groups": ["qa"] } })
}

/// Starts a login at the registry; returns its answer (302 to the provider).
fn start_login(b: &mut Browser, registry: &Registry, query: &str) -> Response {
    b.get(&format!("{}/zot/auth/login?{query}", registry.url()))
}

/// A whole login of `user`: the callback's answer.
fn login(b: &mut Browser, registry: &Registry, user: &str, query: &str) -> Response {
    let started = start_login(b, registry, query);
    started.expect_status(302, "login start");
    let to_provider = started.header("location").expect("location").to_owned();
    let callback = b.through_provider(&to_provider, user, &registry.url());
    b.get(&callback)
}

/// `cookie` and `x-zot-api-client` headers of a session's requests.
fn session_headers(cookie: &str, ui: bool) -> Vec<(&'static str, String)> {
    let mut h = vec![("cookie", format!("session={cookie}"))];
    if ui {
        h.push(("x-zot-api-client", "zot-ui".to_owned()));
    }
    h
}

fn call(
    registry: &Registry,
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<&[u8]>,
    content_type: Option<&str>,
) -> Response {
    let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(ct) = content_type {
        h.push(("content-type", ct));
    }
    registry.client().request(method, path, &h, body)
}

/// Pushes `image` as `repo:tag` with `headers`, returning the manifest's answer
/// (blobs must be accepted).
fn push(
    registry: &Registry,
    headers: &[(&'static str, String)],
    repo: &str,
    tag: &str,
    seed: &str,
) -> Response {
    let image = small_image(seed);
    for blob in image.blobs() {
        let digest = sha256_digest(&blob.bytes);
        let r = call(
            registry,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            headers,
            Some(&blob.bytes),
            Some("application/octet-stream"),
        );
        if r.status != 201 {
            return r;
        }
    }
    call(
        registry,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        headers,
        Some(&image.manifest.bytes),
        Some(&image.manifest.media_type),
    )
}

/// A registry and the provider it trusts, with client `id` (and `secret`,
/// else a public client that must use PKCE) registered at the provider.
struct Setup {
    registry: Registry,
    /// The session keys (hash key, encryption key) the registry uses.
    keys: (String, String),
    /// The provider's URL.
    issuer: String,
    _provider: Provider,
    _dir: tempfile::TempDir,
}

fn setup(id: &str, secret: Option<&str>) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("session-keys.json");
    let keys = write_session_keys(&keys_path);
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut client = json!({ "clientid": id });
    if let Some(secret) = secret {
        client["clientsecret"] = json!(secret);
    }
    let registry = registry(&issuer, client, &keys_path);
    let provider = Provider::start(
        port,
        json!([client_metadata(id, secret, &registry)]),
        users(),
    );
    Setup {
        registry,
        keys,
        issuer,
        _provider: provider,
        _dir: dir,
    }
}

#[test]
fn login_session_push_pull_by_group_csrf_and_logout() {
    let mut setup = setup("zot", Some("zot-secret"));
    let issuer = setup.issuer.clone();
    let registry = &setup.registry;

    // An unknown provider is a bad request; nothing is anonymous here.
    let mut b = Browser::default();
    start_login(&mut b, registry, "provider=github").expect_status(400, "unknown provider");
    registry
        .client()
        .get("/v2/dev/app/tags/list")
        .expect_status(401, "anonymous");

    // alice (groups dev, ops): the whole dance, then a session.
    let done = login(&mut b, registry, "alice", "provider=oidc");
    done.expect_status(201, "callback without callback_ui");
    let session = b
        .cookie(&registry.url(), "session")
        .expect("session cookie");
    let set: Vec<&str> = done
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    let session_cookie = set
        .iter()
        .find(|c| c.starts_with("session="))
        .expect("Set-Cookie session");
    for flag in ["HttpOnly", "SameSite=Lax", "Max-Age=7200", "Path=/"] {
        assert!(
            session_cookie.contains(flag),
            "{flag} missing from {session_cookie}"
        );
    }
    assert!(
        !session_cookie.contains("Secure"),
        "no TLS, no secureSession: {session_cookie}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("user=alice")),
        "user cookie: {set:?}"
    );
    assert!(
        !session.contains("alice"),
        "the cookie is sealed: {session}"
    );

    // Her group may push and pull under dev/.
    let ui = session_headers(&session, true);
    push(registry, &ui, "dev/app", "v1", "alice").expect_status(201, "alice pushes");
    let plain = session_headers(&session, false);
    call(
        registry,
        "GET",
        "/v2/dev/app/manifests/v1",
        &plain,
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
    )
    .expect_status(200, "alice pulls with her cookie alone (a read)");
    call(
        registry,
        "GET",
        "/v2/other/app/tags/list",
        &plain,
        None,
        None,
    )
    .expect_status(403, "outside dev/");

    // CSRF: a state-changing request with only the cookie is refused, and
    // changes nothing.
    let r = push(registry, &plain, "dev/app", "v2", "forged");
    r.expect_oci_error(403, "DENIED", "push with the cookie and no header");
    call(registry, "GET", "/v2/dev/app/manifests/v2", &ui, None, None)
        .expect_status(404, "nothing pushed");
    let digest = call(
        registry,
        "HEAD",
        "/v2/dev/app/manifests/v1",
        &ui,
        None,
        None,
    )
    .header("docker-content-digest")
    .expect("digest")
    .to_owned();
    call(
        registry,
        "DELETE",
        &format!("/v2/dev/app/manifests/{digest}"),
        &plain,
        None,
        None,
    )
    .expect_oci_error(403, "DENIED", "DELETE with the cookie and no header");
    call(
        registry,
        "GET",
        "/v2/dev/app/manifests/v1",
        &plain,
        None,
        None,
    )
    .expect_status(200, "still there");

    // The UI makes API keys with the session (openid turns apikey on);
    // the key then pushes as alice with Basic.
    let body = br#"{"label": "ci", "scopes": []}"#;
    call(
        registry,
        "POST",
        "/zot/auth/apikey",
        &plain,
        Some(body),
        Some("application/json"),
    )
    .expect_status(403, "key creation with the cookie and no header");
    let made = call(
        registry,
        "POST",
        "/zot/auth/apikey",
        &ui,
        Some(body),
        Some("application/json"),
    );
    made.expect_status(201, "key creation from the UI session");
    let key = made.json()["apiKey"].as_str().expect("apiKey").to_owned();
    let with_key = vec![("authorization", auth_common::basic("alice", &key))];
    call(
        registry,
        "GET",
        "/v2/dev/app/tags/list",
        &with_key,
        None,
        None,
    )
    .expect_status(200, "the key reads as alice");

    // A tampered cookie is no session.
    let mut tampered = session.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    call(
        registry,
        "GET",
        "/v2/dev/app/tags/list",
        &session_headers(&tampered, true),
        None,
        None,
    )
    .expect_status(401, "tampered session cookie");

    // bob (group qa) logs in too, but may not touch dev/.
    let mut b2 = Browser::default();
    login(&mut b2, registry, "bob", "provider=oidc").expect_status(201, "bob logs in");
    let bob = b2
        .cookie(&registry.url(), "session")
        .expect("bob's session");
    push(
        registry,
        &session_headers(&bob, true),
        "dev/app",
        "bob",
        "bob",
    )
    .expect_status(403, "bob may not push");
    call(
        registry,
        "GET",
        "/v2/dev/app/tags/list",
        &session_headers(&bob, true),
        None,
        None,
    )
    .expect_status(403, "nor read");

    // Logout: needs the header too; ends the session; names the provider's
    // end-session URL.
    call(registry, "POST", "/zot/auth/logout", &plain, None, None)
        .expect_status(403, "logout without the header");
    let out = call(registry, "POST", "/zot/auth/logout", &ui, None, None);
    out.expect_status(200, "logout");
    let end = out.json()["endSessionUrl"]
        .as_str()
        .expect("endSessionUrl")
        .to_owned();
    assert!(end.starts_with(&format!("{issuer}/session/end?")), "{end}");
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("zot"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri"),
        Some(format!("{}/login", registry.url()))
    );
    assert!(
        out.headers.iter().any(|(k, v)| k == "set-cookie"
            && v.starts_with("session=;")
            && v.contains("Max-Age=0")),
        "{out}"
    );
    call(registry, "GET", "/v2/dev/app/tags/list", &ui, None, None)
        .expect_status(401, "the session is gone");
    call(
        registry,
        "GET",
        "/v2/dev/app/tags/list",
        &session_headers(&bob, true),
        None,
        None,
    )
    .expect_status(403, "bob's session lives on");

    // Sessions are kept in the metadata store: they survive a restart.
    let registry = &mut setup.registry;
    let addr_before = registry.url();
    registry.restart();
    let bob_after = call(
        registry,
        "GET",
        "/v2/",
        &session_headers(&bob, true),
        None,
        None,
    );
    bob_after.expect_status(
        200,
        &format!(
            "bob's session after a restart ({addr_before} -> {})",
            registry.url()
        ),
    );
}

#[test]
fn state_is_bound_checked_and_single_use() {
    let setup = setup("zot", Some("zot-secret"));
    let (registry, keys) = (&setup.registry, &setup.keys);
    let origin = registry.url();

    // callback_ui: a foreign origin is refused before anything happens; an
    // allowed origin and a local path are where the browser is sent.
    let mut b = Browser::default();
    for bad in [
        "https://evil.example/",
        "//evil.example/",
        "http://127.0.0.1:3000@evil.example/",
    ] {
        let q = format!(
            "provider=oidc&callback_ui={}",
            bad.replace('/', "%2F")
                .replace(':', "%3A")
                .replace('@', "%40")
        );
        start_login(&mut b, registry, &q).expect_status(400, &format!("callback_ui {bad}"));
    }
    let done = login(
        &mut b,
        registry,
        "alice",
        "provider=oidc&callback_ui=http%3A%2F%2F127.0.0.1%3A3000%2Fhome",
    );
    done.expect_status(302, "callback to an allowed origin");
    assert_eq!(done.header("location"), Some(format!("{UI}/home").as_str()));
    let done = login(
        &mut Browser::default(),
        registry,
        "alice",
        "provider=oidc&callback_ui=%2Fexplore",
    );
    done.expect_status(302, "callback to a local path");
    assert_eq!(done.header("location"), Some("/explore"));

    // Replayed: the same callback (code, state and state cookie) twice.
    let mut b = Browser::default();
    let started = start_login(&mut b, registry, "provider=oidc");
    let state_cookie = b.cookie(&origin, "statecookie").expect("state cookie");
    let callback = b.through_provider(
        started.header("location").expect("location"),
        "alice",
        &origin,
    );
    b.get(&callback)
        .expect_status(201, "first use of the state");
    b.set_cookie(&origin, "statecookie", &state_cookie);
    b.jar.get_mut(&origin).map(|c| c.remove("session"));
    b.get(&callback).expect_status(401, "replayed state");
    assert!(
        b.cookie(&origin, "session").is_none(),
        "no session from a replay"
    );

    // Tampered state cookie.
    let mut b = Browser::default();
    let started = start_login(&mut b, registry, "provider=oidc");
    let callback = b.through_provider(
        started.header("location").expect("location"),
        "alice",
        &origin,
    );
    let good = b.cookie(&origin, "statecookie").expect("state cookie");
    let mut bad = good.clone().into_bytes();
    let i = bad.len() - 3;
    bad[i] = if bad[i] == b'x' { b'y' } else { b'x' };
    b.set_cookie(
        &origin,
        "statecookie",
        &String::from_utf8(bad).expect("ascii"),
    );
    b.get(&callback).expect_status(401, "tampered state cookie");
    // No state cookie at all (another browser).
    Browser::default()
        .get(&callback)
        .expect_status(401, "callback without the state cookie");

    // Mismatch: the state cookie of one login with the state of another.
    let mut b = Browser::default();
    start_login(&mut b, registry, "provider=oidc").expect_status(302, "first login");
    let first_cookie = b.cookie(&origin, "statecookie").expect("state cookie");
    let second = start_login(&mut b, registry, "provider=oidc");
    let callback = b.through_provider(
        second.header("location").expect("location"),
        "alice",
        &origin,
    );
    b.set_cookie(&origin, "statecookie", &first_cookie);
    b.get(&callback)
        .expect_status(401, "state of another login");

    // Expired: a state cookie sealed with the registry's own keys (so
    // authentic) whose time has passed is refused; the same state sealed
    // with a future expiry goes through, so only the expiry differed.
    let mut b = Browser::default();
    let started = start_login(&mut b, registry, "provider=oidc");
    let to_provider = started.header("location").expect("location").to_owned();
    let state = query_param(&to_provider, "state").expect("state");
    let callback = b.through_provider(&to_provider, "alice", &origin);
    b.set_cookie(
        &origin,
        "statecookie",
        &seal(keys, "statecookie", &state, now() - 1),
    );
    b.get(&callback).expect_status(401, "expired state cookie");
    b.set_cookie(
        &origin,
        "statecookie",
        &seal(keys, "statecookie", &state, now() + 60),
    );
    b.get(&callback)
        .expect_status(201, "the same state, not expired");
}

#[test]
fn pkce_for_a_client_without_secret() {
    // The provider requires PKCE of this public client.
    let setup = setup("zot-public", None);
    let registry = &setup.registry;
    let mut b = Browser::default();
    let started = start_login(&mut b, registry, "provider=oidc");
    let to_provider = started.header("location").expect("location").to_owned();
    assert_eq!(
        query_param(&to_provider, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&to_provider, "nonce").is_some_and(|n| n.len() >= 32));
    let callback = b.through_provider(&to_provider, "alice", &registry.url());
    b.get(&callback).expect_status(201, "public client login");
    let session = b.cookie(&registry.url(), "session").expect("session");
    push(
        registry,
        &session_headers(&session, true),
        "dev/public",
        "v1",
        "pkce",
    )
    .expect_status(201, "push");
}

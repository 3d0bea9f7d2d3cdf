//! The built-in token service (`http.auth.token`) of the real binary:
//! anonymous access on `**`, a closed `private/**`, htpasswd users. The
//! protocol (challenges, GET and POST token requests, grants, refusals),
//! tokens held to the policy, `Basic Og==`, `enable: false`, and two
//! instances sharing a signing key behind one `externalUrl`.

mod auth_common;
mod common;

use auth_common::{
    basic, call, push_image, put_manifest, small_image, start_secure, write_htpasswd,
};
use base64::Engine;
use common::{Client, Registry, run};
use serde_json::{Value, json};

const USERS: &[(&str, &str)] = &[("alice", "alice-secret-pw"), ("bob", "bob-secret-pw")];

fn access_control() -> Value {
    json!({
        "repositories": {
            "**": { "anonymousPolicy": ["read"], "defaultPolicy": ["read"] },
            "team/**": {
                "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }],
                "anonymousPolicy": ["read"],
                "defaultPolicy": ["read"]
            },
            "private/**": {
                "policies": [{ "users": ["alice"], "actions": ["read", "create"] }]
            }
        }
    })
}

fn secured(extra_http: Value) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    let mut http = json!({
        "auth": { "htpasswd": { "path": htpasswd } },
        "accessControl": access_control()
    });
    if let (Some(h), Value::Object(extra)) = (http.as_object_mut(), extra_http) {
        for (k, v) in extra {
            match (h.get_mut(&k), v) {
                (Some(Value::Object(into)), Value::Object(from)) => into.extend(from),
                (_, v) => {
                    h.insert(k, v);
                }
            }
        }
    }
    start_secure(http, json!({}))
}

fn alice() -> String {
    basic("alice", "alice-secret-pw")
}

/// Asks the token endpoint (GET) for `scopes`.
fn token(client: &Client, auth: Option<&str>, scopes: &[&str]) -> common::Response {
    let mut path = "/auth/token?service=zot".to_owned();
    for s in scopes {
        path.push_str(&format!(
            "&scope={}",
            s.replace(':', "%3A").replace(',', "%2C")
        ));
    }
    call(client, auth, "GET", &path, &[], None)
}

fn bearer_of(r: &common::Response) -> String {
    r.expect_status(200, "token");
    let v = r.json();
    let t = v["token"].as_str().expect("token").to_owned();
    assert_eq!(v["access_token"].as_str(), Some(t.as_str()));
    assert!(v["expires_in"].as_u64().is_some_and(|s| s == 300), "{v}");
    assert!(
        v["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    format!("Bearer {t}")
}

/// The `access` claim of a token (the payload is not secret).
fn access_of(bearer: &str) -> Value {
    let jwt = bearer.trim_start_matches("Bearer ");
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["access"].clone()
}

#[test]
fn token_protocol_grants_exactly_what_the_policy_allows() {
    let registry = secured(json!({}));
    let client = registry.client();
    let img = small_image("token");
    push_image(&client, Some(&alice()), "team/app", &img, "v1");
    push_image(&client, Some(&alice()), "private/db", &img, "v1");

    // The anonymous ping is challenged towards the token endpoint.
    let r = call(&client, None, "GET", "/v2/", &[], None);
    r.expect_oci_error(401, "UNAUTHORIZED", "anonymous ping");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"{}/auth/token\",service=\"zot\"",
                registry.url()
            )
            .as_str()
        ),
        "{r}"
    );

    // Anonymous token: pull only, nothing on private/**.
    let anon = bearer_of(&token(
        &client,
        None,
        &[
            "repository:team/app:pull,push",
            "repository:private/db:pull",
        ],
    ));
    assert_eq!(
        access_of(&anon),
        json!([{ "type": "repository", "name": "team/app", "actions": ["pull"] }])
    );
    call(&client, Some(&anon), "GET", "/v2/", &[], None).expect_status(200, "anonymous token ping");
    call(
        &client,
        Some(&anon),
        "GET",
        "/v2/team/app/manifests/v1",
        &[("accept", &img.manifest.media_type)],
        None,
    )
    .expect_status(200, "anonymous pull with token");
    let r = put_manifest(&client, Some(&anon), "team/app", &img, "anon");
    r.expect_oci_error(401, "UNAUTHORIZED", "anonymous push with token");
    let r = call(
        &client,
        Some(&anon),
        "GET",
        "/v2/private/db/manifests/v1",
        &[],
        None,
    );
    r.expect_oci_error(401, "UNAUTHORIZED", "anonymous private pull");
    // The same without any token.
    call(&client, None, "GET", "/v2/private/db/tags/list", &[], None).expect_oci_error(
        401,
        "UNAUTHORIZED",
        "anonymous private tags",
    );

    // Alice: pull and push where she may, pull only what she may not push.
    let a = bearer_of(&token(
        &client,
        Some(&alice()),
        &[
            "repository:team/app:pull,push",
            "repository:public/x:pull,push,delete",
        ],
    ));
    assert_eq!(
        access_of(&a),
        json!([
            { "type": "repository", "name": "team/app", "actions": ["pull", "push"] },
            { "type": "repository", "name": "public/x", "actions": ["pull"] }
        ])
    );
    put_manifest(&client, Some(&a), "team/app", &img, "by-token")
        .expect_status(201, "push with token");
    // A scope the token lacks but the policy allows: fetch a new token.
    let r = call(
        &client,
        Some(&a),
        "DELETE",
        "/v2/team/app/manifests/by-token",
        &[],
        None,
    );
    r.expect_oci_error(
        403,
        "DENIED",
        "delete without the scope (403 with the challenge, as RFC 6750 says)",
    );
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.contains("scope=\"repository:team/app:delete\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    // Policy still decides: alice may create in private/** but not move a tag.
    let p = bearer_of(&token(
        &client,
        Some(&alice()),
        &["repository:private/db:pull,push"],
    ));
    assert_eq!(
        access_of(&p),
        json!([{ "type": "repository", "name": "private/db", "actions": ["pull", "push"] }])
    );
    put_manifest(&client, Some(&p), "private/db", &img, "v2")
        .expect_status(201, "create in private");
    let other = small_image("other");
    push_image(&client, Some(&p), "private/db", &other, "v3");
    put_manifest(&client, Some(&p), "private/db", &other, "v1").expect_oci_error(
        403,
        "DENIED",
        "moving a tag is update, which alice lacks",
    );

    // Bob is a known user without rights on private/**: 403 after login.
    let b = bearer_of(&token(
        &client,
        Some(&basic("bob", "bob-secret-pw")),
        &["repository:private/db:pull"],
    ));
    assert_eq!(access_of(&b), json!([]));
    call(
        &client,
        Some(&b),
        "GET",
        "/v2/private/db/manifests/v1",
        &[],
        None,
    )
    .expect_oci_error(403, "DENIED", "bob on private");

    // Wrong password: the token endpoint refuses it (docker login fails).
    let r = token(&client, Some(&basic("alice", "wrong")), &[]);
    r.expect_oci_error(401, "UNAUTHORIZED", "wrong password");
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .starts_with("Basic realm="),
        "{r}"
    );
    // Another service, a bearer token at the token endpoint, other methods.
    assert_eq!(
        call(&client, None, "GET", "/auth/token?service=other", &[], None).status,
        400
    );
    assert_eq!(
        call(&client, Some(&a), "GET", "/auth/token", &[], None).status,
        401
    );
    assert_eq!(
        call(&client, None, "DELETE", "/auth/token", &[], None).status,
        405
    );

    // The OAuth2 form (containerd): password grant; refresh tokens are not issued.
    let form = "grant_type=password&username=alice&password=alice-secret-pw&service=zot&scope=repository%3Ateam%2Fapp%3Apull";
    let r = call(
        &client,
        None,
        "POST",
        "/auth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    let t = bearer_of(&r);
    assert_eq!(
        access_of(&t),
        json!([{ "type": "repository", "name": "team/app", "actions": ["pull"] }])
    );
    let bad = form.replace("alice-secret-pw", "nope");
    let r = call(
        &client,
        None,
        "POST",
        "/auth/token",
        &[],
        Some(bad.as_bytes()),
    );
    assert_eq!(r.status, 401, "{r}");
    let r = call(
        &client,
        None,
        "POST",
        "/auth/token",
        &[],
        Some(b"grant_type=refresh_token&refresh_token=x"),
    );
    assert_eq!(r.status, 400, "{r}");
    let huge = vec![b'a'; 100 * 1024];
    assert_eq!(
        call(&client, None, "POST", "/auth/token", &[], Some(&huge)).status,
        413
    );

    // A forged or foreign token is refused as invalid.
    let mut parts: Vec<String> = a
        .trim_start_matches("Bearer ")
        .split('.')
        .map(str::to_owned)
        .collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        br#"{"sub":"alice","aud":"zot","exp":99999999999,"access":[{"type":"repository","name":"private/db","actions":["*"]}]}"#,
    );
    let r = call(
        &client,
        Some(&format!("Bearer {}", parts.join("."))),
        "GET",
        "/v2/private/db/tags/list",
        &[],
        None,
    );
    r.expect_oci_error(401, "UNAUTHORIZED", "forged token");
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .contains("error=\"invalid_token\""),
        "{r}"
    );

    // The catalog needs its own scope: a login token is sent for one
    // (401, as distribution answers), and a catalog token lists.
    let login = bearer_of(&token(&client, Some(&alice()), &[]));
    let r = call(&client, Some(&login), "GET", "/v2/_catalog", &[], None);
    r.expect_oci_error(401, "UNAUTHORIZED", "catalog without its scope");
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.contains("scope=\"registry:catalog:*\""),
        "{challenge}"
    );
    let cat = bearer_of(&token(&client, Some(&alice()), &["registry:catalog:*"]));
    let r = call(&client, Some(&cat), "GET", "/v2/_catalog", &[], None);
    r.expect_status(200, "catalog with its scope");
    assert_eq!(r.json()["repositories"], json!(["private/db", "team/app"]));
    // A password grant without a user name is malformed.
    let r = call(
        &client,
        None,
        "POST",
        "/auth/token",
        &[],
        Some(b"grant_type=password&password=x"),
    );
    assert_eq!(r.status, 400, "{r}");

    // Basic credentials straight on /v2/ keep working (curl, scripts);
    // empty ones (`Basic Og==`, containers/image) are anonymous.
    put_manifest(&client, Some(&alice()), "team/app", &img, "basic")
        .expect_status(201, "Basic push");
    let r = call(
        &client,
        Some("Basic Og=="),
        "GET",
        "/v2/_catalog",
        &[],
        None,
    );
    r.expect_status(200, "empty Basic credentials are anonymous");
    assert_eq!(r.json()["repositories"], json!(["team/app"]));
    assert!(
        !registry.logs().contains("alice-secret-pw"),
        "a password reached the log"
    );
}

/// A user removed from the htpasswd file loses their unexpired tokens at
/// once; the other users' tokens keep working.
#[test]
fn removed_users_lose_their_tokens() {
    let registry = secured(json!({}));
    let client = registry.client();
    let img = small_image("revoked");
    push_image(&client, Some(&alice()), "team/app", &img, "v1");
    let scope = ["repository:team/app:pull,push"];
    let a = bearer_of(&token(&client, Some(&alice()), &scope));
    let b = bearer_of(&token(
        &client,
        Some(&basic("bob", "bob-secret-pw")),
        &["repository:team/app:pull"],
    ));
    let pull = |t: &str| {
        call(
            &client,
            Some(t),
            "GET",
            "/v2/team/app/manifests/v1",
            &[("accept", &img.manifest.media_type)],
            None,
        )
    };
    pull(&a).expect_status(200, "alice's token");
    let config: Value =
        serde_json::from_slice(&std::fs::read(registry.config_path()).expect("config"))
            .expect("JSON");
    let htpasswd = std::path::PathBuf::from(
        config["http"]["auth"]["htpasswd"]["path"]
            .as_str()
            .expect("path"),
    );
    // The file is looked at again at most once a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_htpasswd(&htpasswd, &[("bob", "bob-secret-pw")]);
    let r = pull(&a);
    r.expect_oci_error(401, "UNAUTHORIZED", "a removed user's token");
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .contains("error=\"invalid_token\""),
        "{r}"
    );
    pull(&b).expect_status(200, "bob's token still works");
}

#[test]
fn enable_false_keeps_basic_challenges() {
    let registry = secured(json!({ "auth": { "token": { "enable": false } } }));
    let client = registry.client();
    call(&client, None, "GET", "/v2/", &[], None).expect_status(200, "anonymous ping");
    let r = call(&client, None, "GET", "/v2/private/x/tags/list", &[], None);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"zot\""),
        "{r}"
    );
    assert_eq!(
        call(&client, None, "GET", "/auth/token", &[], None).status,
        404
    );
}

/// Two instances behind one `externalUrl` with one `signingKey` file accept
/// each other's tokens; the realm names the external URL.
#[test]
fn instances_sharing_a_signing_key_accept_each_others_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("token-key.pem");
    run(common::tool("openssl").args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().expect("path"),
    ]));
    let http = || {
        json!({
            "externalUrl": "https://registry.example.com/",
            "auth": { "token": { "signingKey": key, "lifetime": "2m", "service": "example" } }
        })
    };
    let one = secured(http());
    let two = secured(http());
    let img = small_image("shared");
    push_image(&two.client(), Some(&alice()), "team/shared", &img, "v1");
    let r = call(&one.client(), None, "GET", "/v2/", &[], None);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"https://registry.example.com/auth/token\",service=\"example\""),
        "{r}"
    );
    let r = call(
        &one.client(),
        Some(&alice()),
        "GET",
        "/auth/token?service=example&scope=repository:team/shared:pull,push",
        &[],
        None,
    );
    r.expect_status(200, "token from one");
    assert_eq!(r.json()["expires_in"], json!(120));
    let t = format!("Bearer {}", r.json()["token"].as_str().expect("token"));
    put_manifest(&two.client(), Some(&t), "team/shared", &img, "v2")
        .expect_status(201, "token of one on two");
    // A key of its own: tokens of the others are refused.
    let three = secured(json!({ "auth": { "token": { "service": "example" } } }));
    push_image(&three.client(), Some(&alice()), "team/shared", &img, "v1");
    put_manifest(&three.client(), Some(&t), "team/shared", &img, "v2").expect_oci_error(
        401,
        "UNAUTHORIZED",
        "another key",
    );
}

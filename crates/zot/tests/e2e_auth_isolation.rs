//! Isolation between users' repositories, against the real binary: every
//! endpoint of a repository the caller may not read is refused (401 for an
//! anonymous client, 403 for a user), however the path is spelled; upload
//! sessions belong to their repository; a cross-repository mount never takes
//! a blob from a repository the caller cannot read, however the query is
//! spelled; the catalog's pages and links name only readable repositories.

mod auth_common;
mod common;

use auth_common::{basic, call, push_image, small_image, start_secure, write_htpasswd};
use common::{Client, Registry, Response};
use serde_json::json;

const USERS: &[(&str, &str)] = &[
    ("alice", "alice-secret-pw"),
    ("bob", "bob-secret-pw"),
    ("carol", "carol-secret-pw"),
];

fn start() -> Registry {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, USERS);
    let all = json!(["read", "create", "update", "delete"]);
    start_secure(
        json!({
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": {
                "alice/**": { "policies": [
                    { "users": ["alice"], "actions": all },
                    { "users": ["carol"], "actions": ["read"] }
                ] },
                "bob/**": { "policies": [{ "users": ["bob"], "actions": all }] },
                "carol/**": { "policies": [{ "users": ["carol"], "actions": all }] },
                "pub/**": { "defaultPolicy": ["read"], "anonymousPolicy": ["read"],
                            "policies": [{ "users": ["alice"], "actions": all }] }
            } }
        }),
        json!({}),
    )
}

fn user(name: &str) -> String {
    let (u, p) = USERS.iter().find(|(u, _)| *u == name).expect("known user");
    basic(u, p)
}

/// The digest of the image's one layer.
fn layer_digest(image: &common::fixtures::Image) -> String {
    image.layers.first().expect("a layer").digest.clone()
}

fn is_success(r: &Response) -> bool {
    (200..300).contains(&r.status)
}

#[test]
fn every_endpoint_of_an_unreadable_repository_is_refused() {
    let registry = start();
    let client = registry.client();
    let img = small_image("secret");
    push_image(&client, Some(&user("alice")), "alice/secret", &img, "v1");
    let manifest = common::sha256_digest(&img.manifest.bytes);
    let layer = layer_digest(&img);
    let accept = [("accept", img.manifest.media_type.as_str())];
    let requests: Vec<(&str, String)> = vec![
        ("GET", "/v2/alice/secret/manifests/v1".into()),
        ("HEAD", "/v2/alice/secret/manifests/v1".into()),
        ("GET", format!("/v2/alice/secret/manifests/{manifest}")),
        ("HEAD", format!("/v2/alice/secret/manifests/{manifest}")),
        ("GET", format!("/v2/alice/secret/blobs/{layer}")),
        ("HEAD", format!("/v2/alice/secret/blobs/{layer}")),
        ("GET", "/v2/alice/secret/tags/list".into()),
        ("GET", format!("/v2/alice/secret/referrers/{manifest}")),
        ("DELETE", "/v2/alice/secret/manifests/v1".into()),
        ("DELETE", format!("/v2/alice/secret/manifests/{manifest}")),
        ("DELETE", format!("/v2/alice/secret/blobs/{layer}")),
        ("PUT", "/v2/alice/secret/manifests/v2".into()),
        ("POST", "/v2/alice/secret/blobs/uploads/".into()),
        (
            "POST",
            format!("/v2/alice/secret/blobs/uploads/?digest={layer}"),
        ),
    ];
    for (method, path) in &requests {
        let body = matches!(*method, "PUT" | "POST").then_some(&b""[..]);
        let r = call(&client, Some(&user("bob")), method, path, &accept, body);
        assert_eq!(r.status, 403, "bob: {method} {path}: {r}");
        if *method != "HEAD" {
            r.expect_oci_error(403, "DENIED", &format!("bob: {method} {path}"));
        }
        let r = call(&client, None, method, path, &accept, body);
        assert_eq!(r.status, 401, "anonymous: {method} {path}: {r}");
        // Anonymous access exists elsewhere: the built-in token service
        // challenges, naming the scope needed.
        let challenge = r.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer realm=")
                && challenge.contains("scope=\"repository:alice/secret:"),
            "anonymous: {method} {path}: {challenge}"
        );
        let r = call(
            &client,
            Some(&basic("bob", "wrong")),
            method,
            path,
            &accept,
            body,
        );
        assert_eq!(r.status, 401, "wrong password: {method} {path}: {r}");
    }
    // carol may read but not change.
    for (method, path) in &requests {
        let body = matches!(*method, "PUT" | "POST").then_some(&b""[..]);
        let r = call(&client, Some(&user("carol")), method, path, &accept, body);
        let reads = matches!(*method, "GET" | "HEAD");
        assert_eq!(
            r.status == 403,
            !reads,
            "carol: {method} {path}: {}",
            r.status
        );
    }
    // Nothing was changed meanwhile.
    let r = call(
        &client,
        Some(&user("alice")),
        "GET",
        "/v2/alice/secret/tags/list",
        &[],
        None,
    );
    assert_eq!(r.json()["tags"], json!(["v1"]), "{r}");

    // A refused request whose body was not read closes its connection, and
    // says so (a client must not send its next request into it).
    let r = auth_common::put_manifest(&client, Some(&user("bob")), "alice/secret", &img, "v3");
    assert_eq!(
        (r.status, r.header("connection")),
        (403, Some("close")),
        "{r}"
    );
    let r = call(
        &client,
        Some(&user("bob")),
        "GET",
        "/v2/alice/secret/tags/list",
        &[],
        None,
    );
    assert_eq!(r.header("connection"), None, "{r}");

    // Other spellings of the path never reach alice's repository.
    let bob = user("bob");
    for target in [
        "/v2/bob/../alice/secret/tags/list",
        "/v2/bob/x/../../alice/secret/tags/list",
        "/v2/bob/%2e%2e/alice/secret/tags/list",
        "/v2/bob/%2E%2E/%2E%2E/alice/secret/tags/list",
        "/v2/alice%2Fsecret/tags/list",
        "/v2/alice%2fsecret/tags/list",
        "/v2//alice/secret/tags/list",
        "/v2/alice//secret/tags/list",
        "/v2/./alice/secret/tags/list",
        "/v2/alice/./secret/tags/list",
        "/v2/ALICE/secret/tags/list",
        "/v2/alice/secret/tags/list/",
        "/v2/alice/secret/tags%2Flist",
        "/v2/alice/secret%2Ftags/list",
        "/v2/%61lice/secret/tags/list",
        "/v2/bob/x/tags/list/../../../../alice/secret/tags/list",
        "/v2/alice/secret/manifests/v1%2F..%2F..%2F..%2Fbob",
        "/v2/alice/secret/manifests/..%2Fv1",
    ] {
        for auth in [Some(bob.as_str()), None] {
            let mut headers = vec![("Accept", img.manifest.media_type.as_str())];
            if let Some(a) = auth {
                headers.push(("Authorization", a));
            }
            let r = common::http::raw_request(registry.addr(), "GET", target, &headers, b"");
            assert!(!is_success(&r), "{target} ({auth:?}) answered {r}");
            assert!(
                !r.text().contains("\"v1\""),
                "{target} ({auth:?}) leaked the tags: {r}"
            );
        }
    }
}

#[test]
fn cross_repository_mounts_never_take_an_unreadable_blob() {
    let registry = start();
    let client = registry.client();
    let img = small_image("mount-me");
    push_image(&client, Some(&user("alice")), "alice/secret", &img, "v1");
    let layer = layer_digest(&img);
    let bob = user("bob");
    let mount = |who: &str, repo: &str, query: &str| -> Response {
        call(
            &client,
            Some(who),
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?{query}"),
            &[],
            Some(b""),
        )
    };
    // bob can write bob/x but cannot read alice/secret.
    let spellings = [
        format!("mount={layer}&from=alice/secret"),
        format!("from=alice/secret&mount={layer}"),
        format!("mount={layer}&from=alice%2Fsecret"),
        format!("mount={layer}"),
        format!("%6Dount={layer}&%66rom=alice/secret"),
        format!("%6dount={layer}&from=alice/secret"),
        format!("%6Dount={layer}"),
        format!("mount={layer}&%66rom=alice/secret"),
        format!("mount={layer}&from=alice/secret&from=bob/x"),
        format!("mount={layer}&from=bob/x&from=alice/secret"),
        format!("mount={layer}&from=bob/x&%6Dount={layer}"),
        format!("mount={}&from=alice/secret", layer.replace(':', "%3A")),
        format!("mount={layer}&from=pub/../alice/secret"),
    ];
    for query in &spellings {
        let r = mount(&bob, "bob/x", query);
        assert_eq!(r.status, 202, "bob mounted with ?{query}: {r}");
        assert!(
            r.header("location")
                .is_some_and(|l| l.starts_with("/v2/bob/x/blobs/uploads/")),
            "?{query}: {r}"
        );
        let r = call(
            &client,
            Some(&bob),
            "HEAD",
            &format!("/v2/bob/x/blobs/{layer}"),
            &[],
            None,
        );
        assert_eq!(r.status, 404, "after ?{query}, bob/x has the blob");
    }
    // carol, who may read alice/secret, mounts it into her own repository.
    let r = mount(
        &user("carol"),
        "carol/copy",
        &format!("mount={layer}&from=alice/secret"),
    );
    assert_eq!(r.status, 201, "{r}");
    let r = call(
        &client,
        Some(&user("carol")),
        "GET",
        &format!("/v2/carol/copy/blobs/{layer}"),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{r}");
    // And bob, from a repository he can read (pub/lib, via alice's push).
    push_image(&client, Some(&user("alice")), "pub/lib", &img, "v1");
    let r = mount(&bob, "bob/x", &format!("mount={layer}&from=pub/lib"));
    assert_eq!(r.status, 201, "{r}");
}

fn upload_location(client: &Client, auth: &str, repo: &str) -> String {
    let r = call(
        client,
        Some(auth),
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    r.expect_status(202, "start an upload");
    r.header("location").expect("Location").to_owned()
}

#[test]
fn upload_sessions_belong_to_their_repository() {
    let registry = start();
    let client = registry.client();
    let alice = user("alice");
    let location = upload_location(&client, &alice, "alice/secret");
    let id = location.rsplit('/').next().expect("upload id").to_owned();
    let data = b"alice's layer".to_vec();
    let digest = common::sha256_digest(&data);
    let evil = b"bob's layer".to_vec();
    let evil_digest = common::sha256_digest(&evil);
    // The same session through alice's repository: bob and carol may not
    // write there; anonymous clients must log in.
    let attempts: Vec<(&str, String, Option<&[u8]>)> = vec![
        ("GET", location.clone(), None),
        ("PATCH", location.clone(), Some(&evil[..])),
        (
            "PUT",
            format!("{location}?digest={evil_digest}"),
            Some(&evil[..]),
        ),
        ("DELETE", location.clone(), None),
    ];
    for (method, path, body) in &attempts {
        let headers = [("content-type", "application/octet-stream")];
        for who in ["bob", "carol"] {
            let r = call(&client, Some(&user(who)), method, path, &headers, *body);
            r.expect_oci_error(403, "DENIED", &format!("{who}: {method} {path}"));
        }
        let r = call(&client, None, method, path, &headers, *body);
        r.expect_oci_error(401, "UNAUTHORIZED", &format!("anonymous: {method} {path}"));
    }
    // Through bob's own repository, the session does not exist.
    let bob = user("bob");
    upload_location(&client, &bob, "bob/x");
    let in_bob = format!("/v2/bob/x/blobs/uploads/{id}");
    for (method, path, body) in [
        ("GET", in_bob.clone(), None),
        ("PATCH", in_bob.clone(), Some(&evil[..])),
        (
            "PUT",
            format!("{in_bob}?digest={evil_digest}"),
            Some(&evil[..]),
        ),
        ("DELETE", in_bob.clone(), None),
    ] {
        let headers = [("content-type", "application/octet-stream")];
        let r = call(&client, Some(&bob), method, &path, &headers, body);
        r.expect_oci_error(404, "BLOB_UPLOAD_UNKNOWN", &format!("bob: {method} {path}"));
    }
    // alice's session is untouched: her upload completes with her data only.
    let r = call(&client, Some(&alice), "GET", &location, &[], None);
    assert_eq!((r.status, r.header("range")), (204, Some("0-0")), "{r}");
    let r = call(
        &client,
        Some(&alice),
        "PUT",
        &format!("{location}?digest={digest}"),
        &[("content-type", "application/octet-stream")],
        Some(&data),
    );
    r.expect_status(201, "alice completes her upload");
    let r = call(
        &client,
        Some(&alice),
        "GET",
        &format!("/v2/alice/secret/blobs/{digest}"),
        &[],
        None,
    );
    assert_eq!(r.body, data);
    for repo in ["bob/x", "alice/secret"] {
        let r = call(
            &client,
            Some(&alice),
            "HEAD",
            &format!("/v2/{repo}/blobs/{evil_digest}"),
            &[],
            None,
        );
        assert_ne!(r.status, 200, "bob's data landed in {repo}");
    }
}

#[test]
fn catalog_pages_and_links_name_only_readable_repositories() {
    let registry = start();
    let client = registry.client();
    let img = small_image("catalog");
    push_image(&client, Some(&user("alice")), "alice/a", &img, "v1");
    push_image(&client, Some(&user("alice")), "alice/secret", &img, "v1");
    push_image(&client, Some(&user("bob")), "bob/x", &img, "v1");
    push_image(&client, Some(&user("alice")), "pub/lib", &img, "v1");
    let page = |auth: Option<&str>, query: &str| -> (Vec<String>, Option<String>) {
        let r = call(
            &client,
            auth,
            "GET",
            &format!("/v2/_catalog{query}"),
            &[],
            None,
        );
        r.expect_status(200, query);
        let repos = r.json()["repositories"]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_owned())
            .collect();
        (repos, r.header("link").map(str::to_owned))
    };
    let bob = user("bob");
    let (repos, link) = page(Some(&bob), "?n=1");
    assert_eq!(repos, ["bob/x"]);
    let link = link.expect("a next link");
    assert!(!link.contains("alice"), "{link}");
    let (repos, link) = page(Some(&bob), "?n=1&last=bob/x");
    assert_eq!((repos, link), (vec!["pub/lib".to_owned()], None));
    // A cursor naming a hidden repository reveals nothing more.
    let (repos, _) = page(Some(&bob), "?n=10&last=alice/a");
    assert_eq!(repos, ["bob/x", "pub/lib"]);
    let (repos, _) = page(Some(&bob), "?n=10&last=alice/secret");
    assert_eq!(repos, ["bob/x", "pub/lib"]);
    let (repos, _) = page(None, "?n=10");
    assert_eq!(repos, ["pub/lib"]);
    let (repos, _) = page(Some(&user("carol")), "");
    assert_eq!(repos, ["alice/a", "alice/secret", "pub/lib"]);
    let r = call(&client, Some(&bob), "GET", "/v2/_catalog?n=", &[], None);
    assert!(!r.text().contains("alice"), "{r}");
}

#[test]
fn user_names_match_exactly() {
    let registry = start();
    let client = registry.client();
    for (name, auth) in [
        ("upper case", basic("Alice", "alice-secret-pw")),
        ("leading space", basic(" alice", "alice-secret-pw")),
        ("trailing space", basic("alice ", "alice-secret-pw")),
        ("NUL", basic("alice\0", "alice-secret-pw")),
        (
            "password with a newline",
            basic("alice", "alice-secret-pw\n"),
        ),
    ] {
        let r = call(&client, Some(&auth), "GET", "/v2/", &[], None);
        r.expect_oci_error(401, "UNAUTHORIZED", name);
    }
    let r = call(&client, Some(&user("alice")), "GET", "/v2/", &[], None);
    r.expect_status(200, "alice");
}

//! Access control with a repository pattern longer than 64 bytes, against
//! the real binary: `"**"` with anonymous read plus a long pattern for alice
//! only must keep anonymous clients and other users out of the long one
//! (the review's reproduction; a matcher that gave up on long patterns let
//! the `**` rule decide).

mod auth_common;
mod common;

use auth_common::{basic, call, push_image, small_image, start_secure, write_htpasswd};
use serde_json::json;

const REPO: &str = "internal/finance/payments/ledger/reconciliation/nightly-batch-worker";

#[test]
fn long_pattern_keeps_anonymous_clients_out() {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let htpasswd = dir.join("htpasswd");
    write_htpasswd(&htpasswd, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let registry = start_secure(
        json!({
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": {
                "**": { "anonymousPolicy": ["read"] },
                REPO: { "policies": [
                    { "users": ["alice"], "actions": ["read", "create"] }
                ] }
            } }
        }),
        json!({}),
    );
    let client = registry.client();
    let alice = basic("alice", "alice-pw");
    let image = small_image("ledger");
    push_image(&client, Some(&alice), REPO, &image, "v1");
    let path = format!("/v2/{REPO}/manifests/v1");
    let accept = [("accept", image.manifest.media_type.as_str())];
    call(&client, Some(&alice), "GET", &path, &accept, None).expect_status(200, "alice reads");
    let anonymous = call(&client, None, "GET", &path, &accept, None);
    assert_eq!(anonymous.status, 401, "anonymous read of {REPO}");
    let bob = call(
        &client,
        Some(&basic("bob", "bob-pw")),
        "GET",
        &path,
        &accept,
        None,
    );
    assert_eq!(bob.status, 403, "bob's read of {REPO}");
}

//! Credentials reach the S3 server: a SeaweedFS that accepts one identity
//! serves a driver whose keys come from the config or from an AWS shared
//! credentials file (`credentialsfile`, profile `default`), and refuses one
//! with wrong keys.

mod s3_common;

use s3_common::seaweed::Seaweed;
use std::io;
use zot_storage::{Backend, S3Backend, S3Options};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_the_config_or_a_credentials_file() {
    let server = Seaweed::start_with_identity("ZOTKEY", "zot-secret-key", "secured");
    let mut config = server.config("secured", "zot", 5 << 20);
    config.access_key = Some("ZOTKEY".into());
    config.secret_key = Some("zot-secret-key".into());
    let with_keys = ok(S3Backend::open(&config, &S3Options::default()));
    ok(with_keys.write_atomic("r/index.json", b"{}").await);

    // No secret in the config: a credentials file it names.
    let dir = ok(tempfile::tempdir());
    let file = dir.path().join("credentials");
    ok(std::fs::write(
        &file,
        "[other]\naws_access_key_id = X\naws_secret_access_key = Y\n[default]\naws_access_key_id = ZOTKEY\naws_secret_access_key = zot-secret-key\n",
    ));
    config.access_key = None;
    config.secret_key = None;
    config.credentials_file = Some(file.clone());
    let from_file = ok(S3Backend::open(&config, &S3Options::default()));
    assert_eq!(ok(from_file.read("r/index.json").await), b"{}");

    // Wrong keys are refused by the server.
    config.credentials_file = None;
    config.access_key = Some("ZOTKEY".into());
    config.secret_key = Some("wrong".into());
    let wrong = ok(S3Backend::open(&config, &S3Options::default()));
    let refused = wrong.read("r/index.json").await.err().map(|e| e.kind());
    assert_eq!(refused, Some(io::ErrorKind::PermissionDenied));
}

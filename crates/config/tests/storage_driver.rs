//! `storage.storageDriver` with zot's S3 keys.

use zot_config::{Config, Format, S3Config};

fn load(text: &str) -> Result<Config, Vec<String>> {
    Config::from_str(text, Format::Json).map_err(|ps| ps.iter().map(ToString::to_string).collect())
}

fn driver(text: &str) -> S3Config {
    let config = load(text).unwrap_or_else(|e| panic!("{e:?}"));
    config
        .storage
        .storage_driver
        .unwrap_or_else(|| panic!("no storage driver"))
}

#[test]
fn zot_keys_are_read() {
    let d = driver(
        r#"{"storage": {"rootDirectory": "/var/lib/zot", "remoteCache": false, "storageDriver": {
            "name": "s3", "bucket": "b", "region": "eu-west-1",
            "regionendpoint": "http://127.0.0.1:8333", "forcepathstyle": "false",
            "secure": false, "skipverify": "true", "rootdirectory": "/zot/",
            "chunksize": 6291456, "storageclass": "REDUCED_REDUNDANCY",
            "accesskey": "id", "secretkey": "secret", "encrypt": false, "v4auth": true}}}"#,
    );
    assert_eq!(d.bucket, "b");
    assert_eq!(d.region, "eu-west-1");
    assert_eq!(d.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
    assert!(!d.force_path_style && !d.secure && d.skip_verify);
    assert_eq!(d.root_directory, "zot");
    assert_eq!(d.chunk_size, 6 << 20);
    assert_eq!(d.storage_class.as_deref(), Some("REDUCED_REDUNDANCY"));
    assert_eq!(
        (d.access_key.as_deref(), d.secret_key.as_deref()),
        (Some("id"), Some("secret"))
    );
}

#[test]
fn defaults_follow_zot() {
    let d = driver(
        r#"{"storage": {"rootDirectory": "/d", "dedupe": false, "storageDriver": {"name": "s3", "bucket": "b",
            "regionendpoint": "localhost:8333", "storageclass": "NONE",
            "credentialsfile": "/etc/zot/aws"}}}"#,
    );
    // An endpoint without forcepathstyle: path style; region defaults.
    assert!(d.force_path_style && d.secure && !d.skip_verify);
    assert_eq!(d.region, "us-east-1");
    assert_eq!(d.chunk_size, 10 << 20);
    assert_eq!(d.storage_class, None);
    assert_eq!(d.root_directory, "");
    assert_eq!(
        d.credentials_file.as_deref(),
        Some(std::path::Path::new("/etc/zot/aws"))
    );
    assert_eq!(d.access_key, None);
}

#[test]
fn problems_name_their_keys() {
    let got = load(
        r#"{"storage": {"rootDirectory": "/d", "storageDriver": {"name": "s3",
            "chunksize": 1024, "accesskey": "id", "bogus": 1}}}"#,
    )
    .err()
    .unwrap_or_default();
    for want in [
        "storage.storageDriver.bucket: required",
        "storage.storageDriver.region: required (unless regionendpoint is set)",
        "storage.storageDriver.accesskey: accesskey and secretkey go together",
        "storage.storageDriver.bogus: unknown key",
    ] {
        assert!(got.iter().any(|p| p == want), "{want} not in {got:?}");
    }
    assert!(
        got.iter()
            .any(|p| p.starts_with("storage.storageDriver.chunksize: must be")),
        "{got:?}"
    );
    let got = load(r#"{"storage": {"rootDirectory": "/d", "storageDriver": {"name": "swift"}}}"#)
        .err()
        .unwrap_or_default();
    assert_eq!(
        got,
        vec![r#"storage.storageDriver.name: unknown storage driver "swift" (expected s3)"#]
    );
}

//! Every config file of the Go zot's `examples/` (in `shared/zot-examples`,
//! a sibling of the repository) must give exactly the outcome in `EXPECTED`:
//! files using only what this build implements load; the others fail with
//! problems at exactly the listed key paths. A file missing from the table, or
//! a table entry without its file, fails the test, so both a regression and a
//! new example are noticed. Each row was checked by hand against the file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use zot_config::{Config, Problem};

/// `Ok(())`: loads. `Err(paths)`: fails with problems at exactly these paths.
type Outcome = Result<(), &'static [&'static str]>;

const EXPECTED: &[(&str, Outcome)] = &[
    (
        "config-all-remote.json",
        // No rootDirectory at all; search has enable: false (accepted).
        Err(&["storage.rootDirectory", "storage.cacheDriver"]),
    ),
    // metrics `{}` and sync without `enable` are enabled by presence.
    ("config-allextensions.json", Ok(())),
    ("config-azure.json", Err(&["storage.storageDriver"])),
    ("config-bearer-auth.json", Ok(())),
    ("config-bearer-oidc-workload.json", Ok(())),
    ("config-bench.json", Ok(())),
    // remoteCache: false is this build's behaviour.
    ("config-boltdb.json", Ok(())),
    ("config-commit.json", Ok(())),
    ("config-conformance.json", Ok(())),
    ("config-cve-trivy.json", Ok(())),
    ("config-cve.json", Ok(())),
    ("config-docker-compat-sync.json", Ok(())),
    ("config-docker-compat.json", Ok(())),
    // remoteCache: true is built; DynamoDB is not.
    ("config-dynamodb.json", Err(&["storage.cacheDriver"])),
    ("config-events.json", Ok(())),
    ("config-example.json", Ok(())),
    ("config-gc.json", Ok(())),
    ("config-gcs.json", Err(&["storage.storageDriver"])),
    // Not a zot config: the LDAP credentials file it refers to.
    (
        "config-ldap-credentials.json",
        Err(&["bindDN", "bindPassword", "storage.rootDirectory"]),
    ),
    ("config-ldap.json", Ok(())),
    ("config-lint.json", Ok(())),
    ("config-metrics-authn-anonymous-access.json", Ok(())),
    ("config-metrics-authz.json", Ok(())),
    ("config-metrics.json", Ok(())),
    ("config-minimal.json", Ok(())),
    ("config-mtls-spiffe.json", Ok(())),
    ("config-mtls.json", Ok(())),
    ("config-multiple-cve.json", Ok(())),
    // Three sub-paths, each with a root of its own.
    ("config-multiple.json", Ok(())),
    // `"extensions": {}` is accepted.
    ("config-openid-claim-mapping.json", Ok(())),
    // Not zot configs: OpenID client credential files.
    (
        "config-openid-github-credentials.json",
        Err(&["clientid", "clientsecret", "storage.rootDirectory"]),
    ),
    (
        "config-openid-gitlab-credentials.json",
        Err(&["clientid", "clientsecret", "storage.rootDirectory"]),
    ),
    (
        "config-openid-google-credentials.json",
        Err(&["clientid", "clientsecret", "storage.rootDirectory"]),
    ),
    (
        "config-openid-oidc-credentials.json",
        Err(&["clientid", "clientsecret", "storage.rootDirectory"]),
    ),
    ("config-openid.json", Ok(())),
    ("config-popular-registries.json", Ok(())),
    ("config-ratelimit.json", Ok(())),
    // S3 with dedupe: remoteCache defaults to true, the metadata in Redis
    // (sentinel: master_name; cluster: addr= in the URL).
    ("config-redis-all-options.json", Ok(())),
    ("config-redis-cluster.json", Ok(())),
    ("config-redis.json", Ok(())),
    // search (no `enable`: enabled by presence) and ui are accepted.
    ("config-remote-session-store-redis.json", Ok(())),
    (
        "config-s3.json",
        // The S3 drivers are read; the DynamoDB cache drivers are not supported.
        Err(&["storage.cacheDriver", "storage.subPaths./c.cacheDriver"]),
    ),
    ("config-sbom-trivy.json", Ok(())),
    ("config-scheduler.json", Ok(())),
    ("config-scrub.json", Ok(())),
    ("config-search.json", Ok(())),
    (
        "config-sync-cloud-storage.json",
        // S3 storage with sync's downloadDir: only the DynamoDB cache is refused.
        Err(&["storage.cacheDriver"]),
    ),
    // Credential helpers are validated; sync says at start-up that this
    // build has none.
    ("config-sync-ecr-credential-helper.json", Ok(())),
    // Credential helpers are validated; sync says at start-up that this
    // build has none.
    ("config-sync-gcp-credential-helper.json", Ok(())),
    // Credential helpers are validated; sync says at start-up that this
    // build has none.
    ("config-sync-oauth2-assertion-file.json", Ok(())),
    // Credential helpers are validated; sync says at start-up that this
    // build has none.
    ("config-sync-oauth2-credential-helper.json", Ok(())),
    // Credential helpers are validated; sync says at start-up that this
    // build has none.
    ("config-sync-oauth2-token-exchange.json", Ok(())),
    ("config-sync.json", Ok(())),
    ("config-test.json", Ok(())),
    ("config-tls.json", Ok(())),
    ("config-ui.json", Ok(())),
];

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/zot-examples")
}

fn is_config(name: &str) -> bool {
    [".json", ".yaml", ".yml"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

#[test]
fn every_example_has_its_expected_outcome() {
    let dir = examples_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!("the zot examples must be at {}: {e}", dir.display()),
    };
    let mut on_disk = BTreeSet::new();
    for entry in entries {
        let name = entry
            .expect("directory entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if is_config(&name) {
            on_disk.insert(name);
        }
    }
    let in_table: BTreeSet<String> = EXPECTED
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(
        in_table.len(),
        EXPECTED.len(),
        "a file is listed twice in EXPECTED"
    );
    assert_eq!(
        on_disk,
        in_table,
        "EXPECTED and the files in {} differ",
        dir.display()
    );

    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let outcome = Config::from_file(&dir.join(name));
        match (expected, &outcome) {
            (Ok(()), Ok(_)) => {}
            (Err(paths), Err(problems)) => {
                let want: BTreeSet<&str> = paths.iter().copied().collect();
                let got: BTreeSet<&str> = problems.iter().map(|p| p.path.as_str()).collect();
                if want != got || got.len() != problems.len() {
                    failures.push(format!(
                        "{name}: expected problems at {want:?}, got {}",
                        show(problems)
                    ));
                }
            }
            (Ok(()), Err(problems)) => {
                failures.push(format!("{name}: expected Ok, got {}", show(problems)))
            }
            (Err(paths), Ok(_)) => {
                failures.push(format!("{name}: expected problems at {paths:?}, got Ok"))
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn show(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("[{p}]"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn unsupported_keys_say_so() {
    let problems = Config::from_file(&examples_dir().join("config-gcs.json"))
        .expect_err("gcs is not supported");
    assert!(
        problems
            .iter()
            .any(|p| p.to_string() == "storage.storageDriver: not supported by this build")
    );
    // A build without search (`zot` built with `--no-default-features`).
    let problems = Config::from_file_with(&examples_dir().join("config-ui.json"), &["scrub"])
        .expect_err("ui is not available");
    assert!(
        problems
            .iter()
            .any(|p| p.to_string() == "extensions.ui: not available in this build")
    );
    assert!(
        problems
            .iter()
            .any(|p| p.to_string() == "extensions.search: not available in this build")
    );
}

#[test]
fn extensions_load_once_available() {
    let dir = examples_dir();
    let config =
        Config::from_file_with(&dir.join("config-ui.json"), &["search", "ui"]).expect("loads");
    let names: Vec<(&str, bool)> = config
        .extensions
        .iter()
        .map(|e| (e.name.as_str(), e.enabled))
        .collect();
    assert_eq!(names, [("search", true), ("ui", true)]);
    let search = config.extension("search").expect("search section");
    assert_eq!(search.raw["cve"]["updateInterval"], "2h");
}

#[test]
fn loaded_examples_have_the_values_written() {
    let dir = examples_dir();
    let minimal = Config::from_file(&dir.join("config-minimal.json")).expect("loads");
    assert_eq!(minimal.http.port, 8080);
    assert_eq!(minimal.storage.root_directory, PathBuf::from("/tmp/zot"));
    assert!(minimal.storage.dedupe && minimal.storage.gc && !minimal.docker2s2());

    let tls = Config::from_file(&dir.join("config-tls.json")).expect("loads");
    let certs = tls.http.tls.expect("tls section");
    assert_eq!(certs.cert, PathBuf::from("test/data/server.cert"));
    assert_eq!(tls.http.realm, "zot");

    assert!(
        Config::from_file(&dir.join("config-docker-compat.json"))
            .expect("loads")
            .docker2s2()
    );
    assert!(
        Config::from_file(&dir.join("config-commit.json"))
            .expect("loads")
            .storage
            .commit
    );
    let conformance = Config::from_file(&dir.join("config-conformance.json")).expect("loads");
    assert_eq!(conformance.http.address, "0.0.0.0");
    assert!(!conformance.storage.dedupe);
    let scheduler = Config::from_file(&dir.join("config-scheduler.json")).expect("loads");
    assert_eq!(scheduler.scheduler.num_workers, Some(3));
}

//! Matching inventories against the sample records loaded from a folder
//! of `*.json` records: expected findings written by hand (packages fixed
//! in their installed version, other releases, withdrawn records, alias
//! merging, each severity source).

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure is the test's failure"
)]

mod common;

use common::*;
use zot_vulndb::{Severity, SeveritySource, Source, VulnDb, ecosystems_for, match_inventory};

async fn loaded() -> (tempfile::TempDir, VulnDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = VulnDb::open(dir.path().join("_zot/cve")).unwrap();
    db.update(&Source::Path(samples()), &[]).await.unwrap();
    (dir, db)
}

#[tokio::test]
async fn debian_image_findings() {
    let (_dir, db) = loaded().await;
    let snapshot = db.current().unwrap();
    let findings = match_inventory(&debian_inventory(), snapshot.as_ref()).unwrap();
    assert_eq!(rows(&findings), debian_expected());

    let requests = findings.iter().find(|f| f.package == "requests").unwrap();
    assert_eq!(
        requests.advisories,
        ["GHSA-9wx4-h78v-vm56", "PYSEC-2024-60"]
    );
    assert_eq!(requests.severity_source, SeveritySource::Cvss);
    assert_eq!(requests.cvss.as_ref().unwrap().score, 5.6);
    assert!(
        requests
            .references
            .contains(&"https://osv.dev/vulnerability/GHSA-9wx4-h78v-vm56".to_string())
    );
    assert!(
        requests
            .references
            .contains(&"https://osv.dev/vulnerability/PYSEC-2024-60".to_string())
    );
    assert!(requests.title.starts_with("Requests `Session` object"));

    let urllib3 = findings.iter().find(|f| f.package == "urllib3").unwrap();
    assert_eq!(urllib3.severity_source, SeveritySource::Alias);
    assert_eq!(urllib3.advisories, ["PYSEC-2023-192"]);
    assert_eq!(urllib3.cvss.as_ref().unwrap().score, 6.6);

    let ssl = findings.iter().find(|f| f.package == "libssl3").unwrap();
    assert_eq!(ssl.severity_source, SeveritySource::Own);
    assert_eq!(ssl.path, "var/lib/dpkg/status");
    assert_eq!(ssl.advisories, ["DEBIAN-CVE-2024-2511"]);
    // No summary: the title is the first line of the details.
    assert!(ssl.title.starts_with("Issue summary"));

    let log4j = findings.iter().find(|f| f.id == "CVE-2021-44228").unwrap();
    assert_eq!(log4j.severity, Severity::Critical);
    assert_eq!(log4j.cvss.as_ref().unwrap().score, 10.0);

    let info = db.info().unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.withdrawn, 1);
    assert_eq!(info.records, 16);
}

#[tokio::test]
async fn alpine_release_and_origin() {
    let (_dir, db) = loaded().await;
    let snapshot = db.current().unwrap();
    let findings = match_inventory(&alpine_inventory("3.20.3"), snapshot.as_ref()).unwrap();
    assert_eq!(rows(&findings), alpine_expected());
    // Another release: no advisory of v3.20 applies.
    let findings = match_inventory(&alpine_inventory("3.19.1"), snapshot.as_ref()).unwrap();
    assert_eq!(rows(&findings), Vec::<Row>::new());
}

#[tokio::test]
async fn unknown_distribution_matches_no_os_package() {
    let (_dir, db) = loaded().await;
    let mut inventory = debian_inventory();
    inventory.os = os("someos", "1");
    let findings = match_inventory(&inventory, db.current().unwrap().as_ref()).unwrap();
    assert!(findings.iter().all(|f| !f.ecosystem.is_os()));
    assert_eq!(findings.len(), debian_expected().len() - 2);
}

#[test]
fn ecosystems_an_inventory_needs() {
    assert_eq!(
        ecosystems_for(&debian_inventory()),
        [
            "Debian",
            "Go",
            "Maven",
            "PyPI",
            "RubyGems",
            "crates.io",
            "npm"
        ]
    );
    assert_eq!(ecosystems_for(&alpine_inventory("3.20.0")), ["Alpine"]);
    let mut unknown = alpine_inventory("3.20.0");
    unknown.os = None;
    assert!(ecosystems_for(&unknown).is_empty());
}

fn record(eco: &str, id: &str, name: &str, fixed: &str) -> String {
    format!(
        r#"{{"id": "{id}", "upstream": ["CVE-2099-{n}"], "affected": [{{"package": {{"ecosystem": "{eco}", "name": "{name}"}}, "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#,
        n = id.len()
    )
}

#[tokio::test]
async fn ubuntu_and_rocky_releases_and_an_ecosystem_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("osv");
    for (eco, dir, id, name, fixed) in [
        (
            "Ubuntu:22.04:LTS",
            "Ubuntu",
            "UBUNTU-CVE-2099-1",
            "openssl",
            "3.0.2-0ubuntu1.15",
        ),
        (
            "Ubuntu:24.04:LTS",
            "Ubuntu",
            "UBUNTU-CVE-2099-22",
            "openssl",
            "3.0.13-0ubuntu3.2",
        ),
        (
            "Rocky Linux:9",
            "Rocky Linux",
            "RLSA-2099:333",
            "openssl",
            "1:3.0.7-27.el9",
        ),
        (
            "Rocky Linux:8",
            "Rocky Linux",
            "RLSA-2099:4444",
            "openssl",
            "1:1.1.1k-12.el8",
        ),
    ] {
        std::fs::create_dir_all(folder.join(dir)).unwrap();
        std::fs::write(
            folder
                .join(dir)
                .join(format!("{}.json", id.replace(':', "_"))),
            record(eco, id, name, fixed),
        )
        .unwrap();
    }
    let db = VulnDb::open(tmp.path().join("_zot/cve")).unwrap();
    let info = match db
        .update(&Source::Path(folder.clone()), &["Ubuntu".to_string()])
        .await
        .unwrap()
    {
        zot_vulndb::Outcome::Updated(info) => info,
        other => panic!("{other:?}"),
    };
    // Only the ecosystem asked for is imported.
    assert_eq!(
        (info.records, info.ecosystems.clone()),
        (2, vec!["Ubuntu".to_string()])
    );

    let pkg = |eco, name: &str, version: &str, source: &str| zot_scan::Package {
        ecosystem: eco,
        name: name.into(),
        version: version.into(),
        source: Some(zot_scan::SourcePackage {
            name: source.into(),
            version: version.into(),
        }),
        arch: None,
        path: "db".into(),
    };
    let ubuntu = zot_scan::Inventory {
        os: os("ubuntu", "22.04"),
        packages: vec![pkg(
            zot_scan::Ecosystem::Deb,
            "libssl3",
            "3.0.2-0ubuntu1.10",
            "openssl",
        )],
        ..Default::default()
    };
    let findings = match_inventory(&ubuntu, db.current().unwrap().as_ref()).unwrap();
    assert_eq!(
        rows(&findings),
        [row(
            "libssl3",
            "CVE-2099-17",
            "UNKNOWN",
            "3.0.2-0ubuntu1.10",
            Some("3.0.2-0ubuntu1.15")
        )]
    );

    db.update(&Source::Path(folder), &[]).await.unwrap();
    // rpm: by binary name and by source name; epochs compared.
    let rocky = zot_scan::Inventory {
        os: os("rocky", "9.3"),
        packages: vec![
            pkg(
                zot_scan::Ecosystem::Rpm,
                "openssl-libs",
                "1:3.0.7-24.el9",
                "openssl",
            ),
            pkg(
                zot_scan::Ecosystem::Rpm,
                "openssl",
                "1:3.0.7-27.el9",
                "openssl",
            ),
        ],
        ..Default::default()
    };
    let findings = match_inventory(&rocky, db.current().unwrap().as_ref()).unwrap();
    assert_eq!(
        rows(&findings),
        [row(
            "openssl-libs",
            "CVE-2099-13",
            "UNKNOWN",
            "1:3.0.7-24.el9",
            Some("1:3.0.7-27.el9")
        )]
    );
}

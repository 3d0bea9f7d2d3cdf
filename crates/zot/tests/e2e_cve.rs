//! Vulnerability scanning end to end: the real binary with search, CVE
//! scanning on an OSV folder written by the test, and metrics; images whose
//! layers carry a Debian os-release and a dpkg status database, pushed over
//! HTTP (a multi-arch index among them); then zot's CVE queries and the
//! `Vulnerabilities` summaries checked against findings written by hand.
//! A record added to the folder appears without any layer being read again
//! (`zot_cve_layers_read_total` unchanged), a restart keeps every result,
//! and `zot scan` prints the table of a local layout and fails on HIGH.

mod common;
mod cve_common;

use std::process::Command;
use std::time::Duration;

use common::fixtures::{self, Blob, OCI_INDEX, OCI_MANIFEST};
use common::{Client, OciLayout, Registry};
use cve_common::*;
use serde_json::{Value, json};

#[test]
fn scans_in_the_background_and_answers_zots_cve_queries() {
    let work = tempfile::tempdir().expect("tempdir");
    let osv = work.path().join("osv");
    write_record(
        &osv,
        &record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    write_record(&osv, &record("CVE-2099-0002", "zlib", "1:1.3.dfsg-1", LOW));
    write_record(
        &osv,
        &record("CVE-2099-0003", "curl", "7.88.1-10+deb12u6", MEDIUM),
    );
    let mut registry = Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": { "osv": { "path": osv } } },
        "metrics": { "prometheus": { "path": "/metrics" } },
    })));
    let client = registry.client();

    let old = debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1");
    let new = debian_image("amd64", "2024-06-01T00:00:00Z", "3.0.13-1~deb12u1");
    old.push(&client, "app", "1.0");
    new.push(&client, "app", "2.0");
    // A multi-arch image: amd64 vulnerable, arm64 fixed.
    let multi = index_of(
        vec![
            debian_image("amd64", "2024-02-01T00:00:00Z", "3.0.11-1~deb12u1"),
            debian_image("arm64", "2024-02-01T00:00:00Z", "3.0.13-1~deb12u1"),
        ],
        &["amd64", "arm64"],
    );
    for image in &multi.images {
        image.push(&client, "multi", &image.manifest.digest);
    }
    client
        .put_manifest("multi", "1", OCI_INDEX, &multi.index.bytes)
        .expect_status(201, "PUT index");

    wait_for("app:1.0 scanned", || {
        cve_list(&client, "app:1.0", "")["Summary"]["MaxSeverity"] != ""
    });
    wait_for("every image scanned", || {
        metric(&client, "zot_cve_manifests_matched_total") == Some(4)
    });
    assert_eq!(metric(&client, "zot_cve_layers_read_total"), Some(8));
    assert_eq!(metric(&client, "zot_cve_db_version"), Some(1));

    // CVEListForImage: every finding, by severity, written by hand.
    let r = cve_list(&client, "app:1.0", "");
    assert_eq!(r["Tag"], "1.0");
    assert_eq!(
        ids(&r["CVEList"]),
        ["CVE-2099-0001", "CVE-2099-0003", "CVE-2099-0002"]
    );
    assert_eq!(
        r["Summary"],
        json!({"MaxSeverity": "HIGH", "Count": 3, "UnknownCount": 0, "LowCount": 1, "MediumCount": 1, "HighCount": 1, "CriticalCount": 0})
    );
    let ssl = &r["CVEList"][0];
    assert_eq!(ssl["Severity"], "HIGH");
    assert_eq!(ssl["Title"], "openssl: flaw CVE-2099-0001");
    assert_eq!(
        ssl["Reference"],
        "https://www.cve.org/CVERecord?id=CVE-2099-0001"
    );
    assert_eq!(
        ssl["PackageList"],
        json!([{"Name": "libssl3", "InstalledVersion": "3.0.11-1~deb12u1", "FixedVersion": "3.0.13-1~deb12u1", "PackagePath": "var/lib/dpkg/status"}])
    );
    // Severity filter, search, exclusion and pagination.
    assert_eq!(
        ids(&cve_list(&client, "app:1.0", r#", severity: "MEDIUM""#)["CVEList"]),
        ["CVE-2099-0003"]
    );
    assert_eq!(
        ids(&cve_list(&client, "app:1.0", r#", searchedCVE: "zlib""#)["CVEList"]),
        ["CVE-2099-0002"]
    );
    assert_eq!(
        ids(&cve_list(&client, "app:1.0", r#", excludedCVE: "openssl""#)["CVEList"]),
        ["CVE-2099-0003", "CVE-2099-0002"]
    );
    let page = cve_list(
        &client,
        "app:1.0",
        r#", requestedPage: {limit: 1, offset: 1, sortBy: SEVERITY}"#,
    );
    assert_eq!(ids(&page["CVEList"]), ["CVE-2099-0003"]);
    assert_eq!(page["Page"], json!({"TotalCount": 3, "ItemCount": 1}));
    assert_eq!(
        page["Summary"]["Count"], 3,
        "the summary is over the unfiltered list"
    );
    let alpha = cve_list(
        &client,
        "app:1.0",
        r#", requestedPage: {sortBy: ALPHABETIC_DSC}"#,
    );
    assert_eq!(
        ids(&alpha["CVEList"]),
        ["CVE-2099-0003", "CVE-2099-0002", "CVE-2099-0001"]
    );
    // The fixed image, by digest too, and the index (its platforms merged).
    assert_eq!(
        ids(&cve_list(&client, "app:2.0", "")["CVEList"]),
        ["CVE-2099-0003", "CVE-2099-0002"]
    );
    let by_digest = cve_list(&client, &format!("app@{}", new.manifest.digest), "");
    assert_eq!(
        ids(&by_digest["CVEList"]),
        ["CVE-2099-0003", "CVE-2099-0002"]
    );
    assert_eq!(
        ids(&cve_list(&client, "multi:1", "")["CVEList"]),
        ["CVE-2099-0001", "CVE-2099-0003", "CVE-2099-0002"]
    );
    // zot's error texts.
    let errors = |q: &str| -> String {
        graphql(
            &client,
            &format!(r#"{{ CVEListForImage(image: "{q}") {{ Tag }} }}"#),
        )["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        errors("nope:1"),
        "repo metadata not found for given repo name"
    );
    assert_eq!(
        errors("app:9.9"),
        "tag metadata not found for given repo and tag names"
    );
    assert_eq!(errors("app"), "no reference provided");

    // ImageListForCVE: the multi-arch image included, showing its vulnerable platform.
    assert_eq!(
        images_for_cve(&client, "CVE-2099-0001"),
        ["app:1.0", "multi:1"]
    );
    assert_eq!(
        images_for_cve(&client, "CVE-2099-0003"),
        ["app:1.0", "app:2.0", "multi:1"]
    );
    let d = data(
        &client,
        r#"{ ImageListForCVE(id: "CVE-2099-0001") { Results { Tag Manifests { Platform { Arch } } } } }"#,
    );
    let multi_row = d["ImageListForCVE"]["Results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["Tag"] == "1")
        .expect("multi:1 listed")
        .clone();
    assert_eq!(
        multi_row["Manifests"],
        json!([{"Platform": {"Arch": "amd64"}}])
    );
    // ImageListWithCVEFixed: the newer image without it.
    let d = data(
        &client,
        r#"{ ImageListWithCVEFixed(id: "CVE-2099-0001", image: "app") { Results { Tag } } }"#,
    );
    assert_eq!(
        d["ImageListWithCVEFixed"]["Results"],
        json!([{"Tag": "2.0"}])
    );
    // CVEDiffListForImages: what 1.0 has that 2.0 does not; an index needs a platform.
    let d = data(
        &client,
        r#"{ CVEDiffListForImages(minuend: {Repo: "app", Tag: "1.0"}, subtrahend: {Repo: "app", Tag: "2.0"}) {
             Minuend { Repo Tag } Subtrahend { Tag } CVEList { Id PackageList { PackagePath } } Summary { Count MaxSeverity } Page { TotalCount } } }"#,
    );
    let diff = &d["CVEDiffListForImages"];
    assert_eq!(ids(&diff["CVEList"]), ["CVE-2099-0001"]);
    assert_eq!(
        diff["CVEList"][0]["PackageList"][0]["PackagePath"],
        Value::Null
    );
    assert_eq!(diff["Summary"], json!({"Count": 1, "MaxSeverity": "HIGH"}));
    assert_eq!(diff["Page"]["TotalCount"], 0);
    let doc = graphql(
        &client,
        r#"{ CVEDiffListForImages(minuend: {Repo: "multi", Tag: "1"}, subtrahend: {Repo: "app", Tag: "2.0"}) { CVEList { Id } } }"#,
    );
    assert_eq!(
        doc["errors"][0]["message"],
        "input is not specific enough: platform or specific manifest digest needed"
    );
    let d = data(
        &client,
        r#"{ CVEDiffListForImages(minuend: {Repo: "multi", Tag: "1", Platform: {Os: "linux", Arch: "amd64"}}, subtrahend: {Repo: "multi", Tag: "1", Platform: {Os: "linux", Arch: "arm64"}}) { CVEList { Id } } }"#,
    );
    assert_eq!(
        ids(&d["CVEDiffListForImages"]["CVEList"]),
        ["CVE-2099-0001"]
    );
    // Vulnerabilities summaries on images and manifests.
    let d = data(
        &client,
        r#"{ ImageList(repo: "multi") { Results { Tag Vulnerabilities { MaxSeverity Count }
             Manifests { Platform { Arch } Vulnerabilities { MaxSeverity Count } } } } }"#,
    );
    let img = &d["ImageList"]["Results"][0];
    assert_eq!(
        img["Vulnerabilities"],
        json!({"MaxSeverity": "HIGH", "Count": 3})
    );
    let by_arch: Vec<(String, Value)> = img["Manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            (
                m["Platform"]["Arch"].as_str().unwrap_or("").to_owned(),
                m["Vulnerabilities"].clone(),
            )
        })
        .collect();
    assert!(
        by_arch.contains(&("amd64".into(), json!({"MaxSeverity": "HIGH", "Count": 3}))),
        "{by_arch:?}"
    );
    assert!(
        by_arch.contains(&("arm64".into(), json!({"MaxSeverity": "MEDIUM", "Count": 2}))),
        "{by_arch:?}"
    );

    // A database update: a new record is matched against the stored
    // inventories; no layer is read again.
    write_record(
        &osv,
        &record("CVE-2099-0004", "curl", "7.88.1-10+deb12u9", CRITICAL),
    );
    wait_for("the new record matched", || {
        cve_list(&client, "app:1.0", "")["Summary"]["MaxSeverity"] == "CRITICAL"
    });
    assert_eq!(
        ids(&cve_list(&client, "app:2.0", "")["CVEList"]),
        ["CVE-2099-0004", "CVE-2099-0003", "CVE-2099-0002"]
    );
    wait_for("the metrics sampled", || {
        metric(&client, "zot_cve_db_version") == Some(2)
    });
    assert_eq!(
        metric(&client, "zot_cve_layers_read_total"),
        Some(8),
        "no layer read again"
    );
    assert_eq!(
        images_for_cve(&client, "CVE-2099-0004"),
        ["app:1.0", "app:2.0", "multi:1"]
    );

    // A restart keeps inventories and findings: answered at once, nothing read.
    // (Terminated, so the metadata store is flushed as at any shutdown.)
    registry.terminate(Duration::from_secs(30));
    registry.restart();
    let client = registry.client();
    assert_eq!(
        ids(&cve_list(&client, "app:1.0", "")["CVEList"]),
        [
            "CVE-2099-0004",
            "CVE-2099-0001",
            "CVE-2099-0003",
            "CVE-2099-0002"
        ]
    );
    wait_for("the metrics sampled after the restart", || {
        metric(&client, "zot_cve_db_version") == Some(2)
    });
    assert_eq!(metric(&client, "zot_cve_layers_read_total"), Some(0));
    assert_eq!(metric(&client, "zot_cve_manifests_scanned_total"), Some(0));

    // `zot scan` on a local layout: the table, and exit 1 at --fail-on HIGH.
    let layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image(&old, "1.0");
    let layout_dir = work.path().join("layout");
    let out = Command::new(common::registry::binary())
        .arg("scan")
        .arg(format!("{}:1.0", layout_dir.display()))
        .arg("--db")
        .arg(&osv)
        .args(["--fail-on", "high"])
        .output()
        .expect("zot scan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{stdout}");
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        first,
        [
            "CVE-2099-0004",
            "CRITICAL",
            "curl",
            "7.88.1-10+deb12u5",
            "7.88.1-10+deb12u9",
            "var/lib/dpkg/status"
        ]
    );
    assert_eq!(lines.len(), 5, "{stdout}");
    // The fixed image passes at CRITICAL only when nothing critical is left: here it is not.
    let clean = Command::new(common::registry::binary())
        .args(["scan", "--root"])
        .arg(registry.root())
        .arg("app:2.0")
        .arg("--db")
        .arg(&osv)
        .args(["--format", "json", "--fail-on", "critical"])
        .output()
        .expect("zot scan --root");
    assert_eq!(
        clean.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let doc: Value = serde_json::from_slice(&clean.stdout).expect("JSON output");
    assert_eq!(
        ids(&doc["vulnerabilities"]
            .as_array()
            .map(|l| { Value::Array(l.iter().map(|c| json!({"Id": c["id"]})).collect()) })
            .expect("vulnerabilities")),
        ["CVE-2099-0004", "CVE-2099-0003", "CVE-2099-0002"]
    );
    let pass = Command::new(common::registry::binary())
        .args(["scan", "--root"])
        .arg(registry.root())
        .arg("app:2.0")
        .arg("--db")
        .arg(&osv)
        .output()
        .expect("zot scan without --fail-on");
    assert_eq!(pass.status.code(), Some(0));
}

/// Pushes the OSV artifact `osv/db:all` (one zip layer per ecosystem,
/// titled `<ecosystem>/all.zip`, as `oras push` annotates files).
fn push_osv_artifact(client: &Client, zips: &[(&str, Vec<u8>)]) {
    let config = Blob::new(fixtures::OCI_EMPTY, b"{}".to_vec());
    client.push_blob("osv/db", &config.bytes);
    let mut layers = Vec::new();
    for (eco, bytes) in zips {
        let blob = Blob::new("application/zip", bytes.clone());
        client.push_blob("osv/db", &blob.bytes);
        let mut d = blob.descriptor();
        d["annotations"] = json!({ "org.opencontainers.image.title": format!("{eco}/all.zip") });
        layers.push(d);
    }
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.zot.osv.v1",
        "config": config.descriptor(), "layers": layers,
    });
    client
        .put_manifest(
            "osv/db",
            "all",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).expect("JSON"),
        )
        .expect_status(201, "PUT OSV artifact");
}

#[test]
fn the_database_comes_from_an_oci_artifact_in_a_registry() {
    // The registry holding the artifact, as an air-gapped fleet's would.
    let source = Registry::start();
    push_osv_artifact(
        &source.client(),
        &[(
            "Debian",
            osv_zip(&[record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH)]),
        )],
    );
    let registry = Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": { "osv": { "repository": format!("{}/osv/db:all", source.addr()) } } },
    })));
    let client = registry.client();
    debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1").push(&client, "app", "1.0");
    wait_for("app:1.0 matched against the artifact's records", || {
        cve_list(&client, "app:1.0", "")["Summary"]["MaxSeverity"] != ""
    });
    let r = cve_list(&client, "app:1.0", "");
    assert_eq!(ids(&r["CVEList"]), ["CVE-2099-0001"]);
    assert_eq!(r["Summary"]["MaxSeverity"], "HIGH");
    let fetched = registry.root().join("_zot/cve/artifact/Debian/all.zip");
    assert!(fetched.is_file(), "{} missing", fetched.display());
}

/// A configuration reload changing the CVE settings restarts the database
/// refresh with them: the new source's records are matched without a
/// restart and without reading layers again.
#[test]
fn cve_settings_reload_without_a_restart() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, second) = (work.path().join("first"), work.path().join("second"));
    write_record(
        &first,
        &record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    write_record(
        &second,
        &record("CVE-2099-0002", "zlib", "1:1.3.dfsg-1", LOW),
    );
    let registry = Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": { "osv": { "path": first } } },
        "metrics": { "prometheus": { "path": "/metrics" } },
    })));
    let client = registry.client();
    debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1").push(&client, "app", "1.0");
    let findings = || ids(&cve_list(&client, "app:1.0", "")["CVEList"]);
    wait_for("a match against the first source", || {
        findings() == ["CVE-2099-0001"]
    });
    // The scan counters reach the metrics every 2 s.
    wait_for("the scan counted", || {
        metric(&client, "zot_cve_layers_read_total").is_some_and(|n| n > 0)
    });
    let layers = metric(&client, "zot_cve_layers_read_total");

    // The file replaced by a rename, as an editor or a deployment does.
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("config JSON");
    config["extensions"]["search"]["cve"]["osv"]["path"] = json!(second);
    let staged = path.with_extension("staged");
    std::fs::write(&staged, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    std::fs::rename(&staged, &path).expect("rename");

    wait_for("a match against the reloaded source", || {
        findings() == ["CVE-2099-0002"]
    });
    assert_eq!(metric(&client, "zot_cve_layers_read_total"), layers);
    let logs = registry.logs();
    assert!(
        logs.contains("cve: database refresh restarted with the reloaded settings"),
        "{logs}"
    );
}

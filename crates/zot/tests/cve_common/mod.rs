//! Shared by the CVE end-to-end tests (`e2e_cve*.rs`): Debian-like images
//! (an os-release and a dpkg status database in two gzip layers), OSV
//! records written as folders or zips, zot's CVE queries over GraphQL, the
//! registry's metrics, and waiting for background work.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Client;
use crate::common::fixtures::{
    self, Blob, Image, ImageIndex, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
};

pub const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

/// A dpkg status database of three packages; `openssl` at `ssl`.
pub fn dpkg_status(ssl: &str) -> String {
    format!(
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: {ssl}\nDescription: SSL\n\n\
         Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\nDescription: zlib\n\n\
         Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\nDescription: curl\n"
    )
}

/// A Debian image for `arch`, created at `created`, with openssl `ssl`.
pub fn debian_image(arch: &str, created: &str, ssl: &str) -> Image {
    let (base, base_diff) = fixtures::layer(
        OCI_LAYER_GZIP,
        &[("etc/os-release", OS_RELEASE.as_bytes().to_vec())],
    );
    let (pkgs, pkgs_diff) = fixtures::layer(
        OCI_LAYER_GZIP,
        &[("var/lib/dpkg/status", dpkg_status(ssl).into_bytes())],
    );
    let config = Blob::json(
        OCI_CONFIG,
        &json!({
            "created": created, "architecture": arch, "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [base_diff, pkgs_diff] },
        }),
    );
    let layers = vec![base, pkgs];
    let manifest = Blob::json(
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        }),
    );
    Image {
        manifest,
        config,
        layers,
    }
}

pub fn index_of(images: Vec<Image>, arches: &[&str]) -> ImageIndex {
    let manifests: Vec<Value> = images
        .iter()
        .zip(arches)
        .map(|(i, a)| {
            let mut d = i.manifest.descriptor();
            d["platform"] = json!({ "os": "linux", "architecture": a });
            d
        })
        .collect();
    let index = Blob::json(
        OCI_INDEX,
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }),
    );
    ImageIndex { index, images }
}

/// A Debian OSV record: `cve` in the source package `source`, fixed in
/// `fixed`, with a CVSS v3.1 vector.
pub fn record(cve: &str, source: &str, fixed: &str, vector: &str) -> Value {
    json!({
        "id": format!("DEBIAN-{cve}"),
        "upstream": [cve],
        "summary": format!("{source}: flaw {cve}"),
        "details": format!("A flaw in {source} ({cve})."),
        "severity": [{ "type": "CVSS_V3", "score": vector }],
        "affected": [{
            "package": { "ecosystem": "Debian:12", "name": source },
            "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }],
        }],
    })
}

pub const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"; // 7.5
pub const MEDIUM: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"; // 5.4
pub const LOW: &str = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"; // 3.1
pub const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"; // 9.8

pub fn write_record(osv: &Path, r: &Value) {
    let dir = osv.join("Debian");
    std::fs::create_dir_all(&dir).expect("osv dir");
    let id = r["id"].as_str().expect("id");
    std::fs::write(
        dir.join(format!("{id}.json")),
        serde_json::to_vec(r).expect("JSON"),
    )
    .expect("write record");
}

pub fn graphql(client: &Client, query: &str) -> Value {
    let body = serde_json::to_vec(&json!({ "query": query })).expect("JSON");
    let r = client.request(
        "POST",
        "/v2/_zot/ext/search",
        &[("content-type", "application/json")],
        Some(&body),
    );
    r.expect_status(200, query);
    r.json()
}

pub fn data(client: &Client, query: &str) -> Value {
    let doc = graphql(client, query);
    assert!(doc["errors"].is_null(), "{query}: {doc}");
    doc["data"].clone()
}

pub fn cve_list(client: &Client, image: &str, extra: &str) -> Value {
    data(
        client,
        &format!(
            r#"{{ CVEListForImage(image: "{image}"{extra}) {{ Tag Page {{ TotalCount ItemCount }}
                 Summary {{ MaxSeverity Count UnknownCount LowCount MediumCount HighCount CriticalCount }}
                 CVEList {{ Id Severity Title Reference PackageList {{ Name InstalledVersion FixedVersion PackagePath }} }} }} }}"#
        ),
    )["CVEListForImage"]
        .clone()
}

pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|c| c["Id"].as_str().expect("Id").to_owned())
        .collect()
}

pub fn metric(client: &Client, name: &str) -> Option<u64> {
    let text = client.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().expect("a number"))
}

/// Waits until `check` holds (the scan and refresh run in the background).
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn images_for_cve(client: &Client, id: &str) -> Vec<String> {
    let d = data(
        client,
        &format!(r#"{{ ImageListForCVE(id: "{id}") {{ Results {{ RepoName Tag }} }} }}"#),
    );
    let mut out: Vec<String> = d["ImageListForCVE"]["Results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["RepoName"].as_str().unwrap_or(""),
                r["Tag"].as_str().unwrap_or("")
            )
        })
        .collect();
    out.sort();
    out
}

/// The zip of OSV records, as OSV's bucket serves `<ecosystem>/all.zip`.
pub fn osv_zip(records: &[Value]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for r in records {
        let name = format!("{}.json", r["id"].as_str().expect("id"));
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(&serde_json::to_vec(r).expect("JSON"))
            .expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

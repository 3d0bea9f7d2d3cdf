//! SBOM referrers end to end (`extensions.search.cve.trivy.sbom`, zot's
//! keys): the real binary scans a pushed Debian image and attaches its
//! package inventory as an SPDX 2.3 (or CycloneDX 1.5) JSON artifact whose
//! subject is the image manifest; the referrers API lists it and its
//! document lists the image's packages. Pushing the same manifest again,
//! a database update (re-match) and a restart add no second SBOM. An
//! image scanned before SBOMs were turned on gets its SBOM at the next
//! start, and the same manifest in a second repository gets one there,
//! both from the stored inventory.

mod common;
mod cve_common;

use common::{Client, Registry};
use cve_common::*;
use serde_json::{Value, json};

/// The referrers of `digest` in `repo` (the OCI referrers API).
fn referrers(client: &Client, repo: &str, digest: &str) -> Vec<Value> {
    let r = client.get(&format!("/v2/{repo}/referrers/{digest}"));
    r.expect_status(200, "GET referrers");
    r.json()["manifests"].as_array().expect("manifests").clone()
}

/// The SBOM document of the one referrer of `artifact_type`: its manifest
/// is checked (subject, config, one layer of that type), its layer read.
fn sbom_of(client: &Client, repo: &str, digest: &str, artifact_type: &str) -> Value {
    let found: Vec<Value> = referrers(client, repo, digest)
        .into_iter()
        .filter(|d| d["artifactType"] == artifact_type)
        .collect();
    assert_eq!(found.len(), 1, "one {artifact_type} referrer: {found:?}");
    let sbom_digest = found[0]["digest"].as_str().expect("digest");
    let m = client.get(&format!("/v2/{repo}/manifests/{sbom_digest}"));
    m.expect_status(200, "GET SBOM manifest");
    let manifest = m.json();
    assert_eq!(manifest["artifactType"], artifact_type);
    assert_eq!(manifest["subject"]["digest"], digest);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], artifact_type);
    let blob = client.get(&format!(
        "/v2/{repo}/blobs/{}",
        layers[0]["digest"].as_str().expect("layer digest")
    ));
    blob.expect_status(200, "GET SBOM");
    blob.json()
}

fn start(format: &str, osv: &std::path::Path) -> Registry {
    Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": {
            "osv": { "path": osv },
            "trivy": { "sbom": { "enable": true, "format": format } },
        } },
        "metrics": { "prometheus": { "path": "/metrics" } },
    })))
}

/// SPDX packages as `name version` (the image's own package left out).
fn spdx_packages(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "INSTALL")
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap_or(""),
                p["versionInfo"].as_str().unwrap_or("")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_spdx_sbom_is_attached_once_per_manifest() {
    let work = tempfile::tempdir().expect("tempdir");
    let osv = work.path().join("osv");
    write_record(
        &osv,
        &record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    let mut registry = start("spdx-json", &osv);
    let client = registry.client();
    let app = debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1");
    app.push(&client, "app", "1.0");
    let digest = app.manifest.digest.clone();
    wait_for("app:1.0 scanned", || {
        cve_list(&client, "app:1.0", "")["Summary"]["MaxSeverity"] != ""
    });
    wait_for("the SBOM", || {
        !referrers(&client, "app", &digest).is_empty()
    });

    let doc = sbom_of(&client, "app", &digest, "application/spdx+json");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], format!("app@{digest}"));
    assert!(
        doc["documentNamespace"]
            .as_str()
            .is_some_and(|n| n.starts_with("https://"))
    );
    assert!(
        doc["creationInfo"]["created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z'))
    );
    assert_eq!(
        spdx_packages(&doc),
        [
            "curl 7.88.1-10+deb12u5",
            "libssl3 3.0.11-1~deb12u1",
            "zlib1g 1:1.2.13.dfsg-1"
        ]
    );
    let purls: Vec<&str> = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/libssl3@3.0.11-1~deb12u1")),
        "{purls:?}"
    );
    assert!(
        doc["relationships"]
            .as_array()
            .expect("relationships")
            .iter()
            .any(|r| r["relationshipType"] == "DESCRIBES"),
    );

    // The same manifest pushed again, then a newer image: once the newer
    // one is scanned the queue has passed the re-push (one scan at a time).
    client
        .put_manifest(
            "app",
            "again",
            &app.manifest.media_type,
            &app.manifest.bytes,
        )
        .expect_status(201, "PUT the same manifest");
    let next = debian_image("amd64", "2024-02-01T00:00:00Z", "3.0.13-1~deb12u1");
    next.push(&client, "app", "1.1");
    wait_for("app:1.1's SBOM", || {
        !referrers(&client, "app", &next.manifest.digest).is_empty()
    });
    // A database update re-matches both without reading layers again.
    // Two images of two layers read (the counters reach /metrics every 2 s).
    wait_for("the layers counted", || {
        metric(&client, "zot_cve_layers_read_total") == Some(4)
    });
    write_record(&osv, &record("CVE-2099-0002", "zlib", "1:1.3.dfsg-1", LOW));
    wait_for("the re-match", || {
        ids(&cve_list(&client, "app:1.0", "")["CVEList"]).len() == 2
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(metric(&client, "zot_cve_layers_read_total"), Some(4));
    // A restart, then another image scanned after it.
    registry.restart();
    let client = registry.client();
    let third = debian_image("arm64", "2024-03-01T00:00:00Z", "3.0.13-1~deb12u1");
    third.push(&client, "app", "1.2");
    wait_for("app:1.2's SBOM", || {
        !referrers(&client, "app", &third.manifest.digest).is_empty()
    });
    for d in [&digest, &next.manifest.digest, &third.manifest.digest] {
        assert_eq!(referrers(&client, "app", d).len(), 1, "SBOMs of {d}");
    }
    // The SBOM manifests themselves get none (they are not images).
    let sbom = referrers(&client, "app", &digest)[0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert!(referrers(&client, "app", &sbom).is_empty());
}

#[test]
fn a_cyclonedx_sbom_when_the_format_says_so() {
    let work = tempfile::tempdir().expect("tempdir");
    let osv = work.path().join("osv");
    write_record(
        &osv,
        &record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    let registry = start("cyclonedx", &osv);
    let client = registry.client();
    let app = debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1");
    app.push(&client, "cdx/app", "1.0");
    let digest = app.manifest.digest.clone();
    wait_for("the SBOM", || {
        !referrers(&client, "cdx/app", &digest).is_empty()
    });
    let doc = sbom_of(
        &client,
        "cdx/app",
        &digest,
        "application/vnd.cyclonedx+json",
    );
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.5");
    assert!(
        doc["serialNumber"]
            .as_str()
            .is_some_and(|s| s.starts_with("urn:uuid:"))
    );
    assert_eq!(doc["metadata"]["component"]["type"], "container");
    let mut libraries: Vec<String> = doc["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["type"] == "library")
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    libraries.sort();
    assert_eq!(
        libraries,
        [
            "curl 7.88.1-10+deb12u5",
            "libssl3 3.0.11-1~deb12u1",
            "zlib1g 1:1.2.13.dfsg-1"
        ]
    );
    assert!(
        doc["components"]
            .as_array()
            .expect("components")
            .iter()
            .any(|c| c["type"] == "operating-system" && c["name"] == "debian"),
    );
}

#[test]
fn images_scanned_before_sboms_and_copies_in_other_repositories_get_theirs() {
    let work = tempfile::tempdir().expect("tempdir");
    let osv = work.path().join("osv");
    write_record(
        &osv,
        &record("CVE-2099-0001", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    let mut registry = Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": { "osv": { "path": osv } } },
        "metrics": { "prometheus": { "path": "/metrics" } },
    })));
    let client = registry.client();
    let app = debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1");
    app.push(&client, "early/app", "1.0");
    let digest = app.manifest.digest.clone();
    wait_for("the scan", || {
        ids(&cve_list(&client, "early/app:1.0", "")["CVEList"]).len() == 1
    });
    assert!(referrers(&client, "early/app", &digest).is_empty());

    // SBOMs asked for from now on: the image scanned before gets its own
    // at start-up, from the stored inventory (no layer read again).
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("config");
    config["extensions"]["search"]["cve"]["trivy"] =
        json!({ "sbom": { "enable": true, "format": "spdx-json" } });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    // A clean stop (the scan's record is flushed; a crash may lose it and
    // scan again, which this test would not tell from a re-read).
    assert!(
        registry
            .terminate(std::time::Duration::from_secs(20))
            .is_some()
    );
    registry.restart();
    let client = registry.client();
    wait_for("the SBOM of the image scanned before", || {
        !referrers(&client, "early/app", &digest).is_empty()
    });
    let doc = sbom_of(&client, "early/app", &digest, "application/spdx+json");
    assert!(spdx_packages(&doc).contains(&"libssl3 3.0.11-1~deb12u1".to_owned()));

    // The same manifest pushed to another repository: an SBOM there too.
    app.push(&client, "early/copy", "1.0");
    wait_for("the SBOM in the second repository", || {
        !referrers(&client, "early/copy", &digest).is_empty()
    });
    sbom_of(&client, "early/copy", &digest, "application/spdx+json");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        metric(&client, "zot_cve_layers_read_total"),
        Some(0),
        "the stored inventory served both SBOMs"
    );
    assert_eq!(referrers(&client, "early/app", &digest).len(), 1);
}

//! SBOM export: an inventory of every ecosystem (from real files where
//! this machine has them) exported as SPDX 2.3 and CycloneDX 1.5 JSON,
//! checked field by field and validated by the reference tools: the SPDX
//! project's `spdx-tools` (pyspdxtools) and `cyclonedx-python-lib`'s JSON
//! schema validator, each in a virtualenv that `scripts/test` creates
//! under `<target>/tmp` (`spdx-venv`, `cyclonedx-venv`). A missing
//! validator fails the test.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::{GZIP, Layer, scan};
use serde_json::Value;
use zot_scan::{Ecosystem, Inventory, SbomInfo, to_cyclonedx, to_spdx};

fn inventory() -> Inventory {
    let dpkg = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.11-1)\nVersion: 3.0.11-1~deb12u2\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n";
    let layer = Layer::new()
        .file(
            "etc/os-release",
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        )
        .file("var/lib/dpkg/status", dpkg.as_bytes())
        .file(
            "usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA",
            b"Name: PyYAML\nVersion: 6.0.1\n",
        )
        .file(
            "app/node_modules/@babel/core/package.json",
            br#"{"name":"@babel/core","version":"7.24.0"}"#,
        )
        .file(
            "app/Cargo.lock",
            b"[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\n",
        )
        .file(
            "var/lib/gems/3.1.0/specifications/rake-13.0.6.gemspec",
            b"s.name = \"rake\"\ns.version = \"13.0.6\"\n",
        )
        .file(
            "app/vendor/composer/installed.json",
            br#"{"packages":[{"name":"psr/log","version":"3.0.0"}]}"#,
        )
        .gzip();
    scan(vec![(GZIP, layer)])
}

fn info() -> SbomInfo {
    SbomInfo {
        name: "library/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .into(),
        created: UNIX_EPOCH + Duration::from_secs(1_733_500_000),
    }
}

#[test]
fn spdx_document_lists_every_package_with_its_purl() {
    let inventory = inventory();
    assert_eq!(inventory.packages.len(), 7);
    let doc = to_spdx(&inventory, &info());
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2024-12-06T15:46:40Z");
    let packages = doc["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2 + 7, "image, operating system, packages");
    let purls: Vec<&str> = packages
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    let want = [
        "pkg:cargo/serde@1.0.200",
        "pkg:composer/psr/log@3.0.0",
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
        "pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all&distro=debian-12",
        "pkg:gem/rake@13.0.6",
        "pkg:npm/%40babel/core@7.24.0",
        "pkg:pypi/pyyaml@6.0.1",
    ];
    for purl in want {
        assert!(purls.contains(&purl), "{purl} in {purls:?}");
    }
    let relationships = doc["relationships"].as_array().unwrap();
    assert_eq!(relationships.len(), 1 + 1 + 7);
    let libssl = packages.iter().find(|p| p["name"] == "libssl3").unwrap();
    assert_eq!(
        libssl["sourceInfo"],
        "deb package found in: var/lib/dpkg/status"
    );
    assert_eq!(libssl["comment"], "source package: openssl 3.0.11-1");
    // The same inventory and info give the same document.
    assert_eq!(to_spdx(&inventory, &info()), doc);
}

#[test]
fn cyclonedx_document_lists_every_package_with_its_purl_and_path() {
    let inventory = inventory();
    let doc = to_cyclonedx(&inventory, &info());
    assert_eq!(doc["specVersion"], "1.5");
    let components = doc["components"].as_array().unwrap();
    assert_eq!(components.len(), 1 + 7);
    assert_eq!(components[0]["type"], "operating-system");
    let yaml = components.iter().find(|c| c["name"] == "PyYAML").unwrap();
    assert_eq!(yaml["purl"], "pkg:pypi/pyyaml@6.0.1");
    let path = yaml["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "zot:path")
        .unwrap();
    assert_eq!(
        path["value"],
        "usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA"
    );
    assert_eq!(
        doc["dependencies"][0]["dependsOn"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    let serial = doc["serialNumber"].as_str().unwrap();
    assert_eq!(serial.len(), "urn:uuid:".len() + 36);
    assert_eq!(to_cyclonedx(&inventory, &info()), doc);
}

/// An inventory survives a round trip through JSON (as it will be stored).
#[test]
fn inventory_round_trips_through_json() {
    let inventory = inventory();
    let text = serde_json::to_string(&inventory).unwrap();
    let back: Inventory = serde_json::from_str(&text).unwrap();
    assert_eq!(back, inventory);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["packages"][0]["ecosystem"], "deb");
    assert_eq!(
        inventory
            .find(Ecosystem::Deb, "libssl3")
            .unwrap()
            .source
            .as_ref()
            .unwrap()
            .name,
        "openssl"
    );
}

fn venv_python(name: &str) -> PathBuf {
    let python = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(name)
        .join("bin/python");
    assert!(
        python.is_file(),
        "no interpreter at {}: `scripts/test` creates it",
        python.display()
    );
    python
}

#[test]
fn spdx_tools_validate_the_document() {
    let python = venv_python("spdx-venv");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&to_spdx(&inventory(), &info())).unwrap(),
    )
    .unwrap();
    let tool = python.with_file_name("pyspdxtools");
    let out = Command::new(&tool).arg("-i").arg(&file).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && !text.contains("invalid"), "{text}");
}

#[test]
fn cyclonedx_schema_validates_the_document() {
    let python = venv_python("cyclonedx-venv");
    let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerr = JsonStrictValidator(SchemaVersion.V1_5).validate_str(sys.stdin.read())\nif err:\n    print(err)\n    sys.exit(1)\nprint('valid')\n";
    let doc = serde_json::to_string(&to_cyclonedx(&inventory(), &info())).unwrap();
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.trim() == "valid", "{text}");
}

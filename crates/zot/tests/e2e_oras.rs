//! oras (the Python client, oras-py) against the real binary: push an
//! artifact with a subject using chunked uploads, pull it back, and find it
//! through the referrers API.
//!
//! The client lives in a virtualenv that `scripts/test` creates at
//! `<target>/tmp/oras-venv` (or name another interpreter with
//! `ZOT_E2E_ORAS_PYTHON`). A missing client fails the test.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::fixtures::{self, OCI_INDEX};
use common::{Registry, run_stdout};

const ARTIFACT_TYPE: &str = "application/vnd.example.sbom.config.v1+json";

fn oras_python() -> PathBuf {
    let python = std::env::var_os("ZOT_E2E_ORAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("oras-venv/bin/python"));
    assert!(
        python.is_file(),
        "no oras-py interpreter at {}: `scripts/test` creates it (python3 -m venv + pip install oras)",
        python.display()
    );
    python
}

#[test]
fn oras_pushes_pulls_and_refers() {
    let python = oras_python();
    let registry = Registry::start();
    let client = registry.client();
    let repo = "e2e/oras/app";
    let subject = fixtures::multi_layer_image("oras-subject");
    subject.push(&client, repo, "v1");

    let work = registry.work_dir();
    let sbom = br#"{"packages":[{"name":"zot-e2e","version":"1"}]}"#.to_vec();
    let big = fixtures::noise("oras-big", 300 * 1024);
    std::fs::write(work.join("sbom.json"), &sbom).expect("write sbom.json");
    std::fs::write(work.join("big.bin"), &big).expect("write big.bin");
    std::fs::write(work.join("config.json"), b"{\"tool\":\"oras-py\"}").expect("write config.json");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oras_client.py");
    let subject_json = subject.manifest.descriptor().to_string();
    let out = run_stdout(
        Command::new(&python)
            .arg(script)
            .args([registry.addr(), repo, "sbom", &subject_json])
            .arg(&work),
    );
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("oras_client.py output is not JSON ({e}):\n{out}"));
    assert_eq!(report["push_status"], 201, "{report}");
    assert_eq!(
        report["oci_subject"],
        subject.manifest.digest.as_str(),
        "OCI-Subject on oras push: {report}"
    );
    assert_eq!(
        report["pulled"],
        serde_json::json!(["big.bin", "sbom.json"]),
        "{report}"
    );
    let mut tags = report["tags"].as_array().cloned().unwrap_or_default();
    tags.sort_by_key(|t| t.to_string());
    assert_eq!(
        tags,
        [serde_json::json!("sbom"), serde_json::json!("v1")],
        "{report}"
    );
    assert_eq!(
        std::fs::read(work.join("out/sbom.json")).expect("pulled sbom.json"),
        sbom
    );
    assert!(
        std::fs::read(work.join("out/big.bin")).expect("pulled big.bin") == big,
        "big.bin differs after pull"
    );

    let digest = report["digest"]
        .as_str()
        .expect("Docker-Content-Digest on oras push")
        .to_owned();
    let referrers = client.get(&format!("/v2/{repo}/referrers/{}", subject.manifest.digest));
    referrers.expect_status(200, "referrers of the oras subject");
    assert_eq!(
        referrers.header("content-type"),
        Some(OCI_INDEX),
        "{referrers}"
    );
    let body = referrers.json();
    let listed = body["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(listed[0]["digest"], digest.as_str(), "{referrers}");
    assert_eq!(listed[0]["artifactType"], ARTIFACT_TYPE, "{referrers}");
    assert_eq!(
        listed[0]["annotations"]["org.example.tool"], "oras-py",
        "{referrers}"
    );
}

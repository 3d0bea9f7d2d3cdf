//! `zot verify` on the Go zot's example configurations that use search:
//! each is valid, and the settings this build reads but does not act on
//! (CVE scanning without the `cve` feature, the web UI) are named on
//! stderr as notes. A search
//! section with a bad key is refused by its path.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;
#[cfg(feature = "search")]
use std::path::PathBuf;
use std::process::Command;

#[cfg(feature = "search")]
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/zot-examples")
}

fn verify(file: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zot"))
        .arg("verify")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (file, has `cve`, enables `ui`)
#[cfg(feature = "search")]
const SEARCH_EXAMPLES: &[(&str, bool, bool)] = &[
    ("config-search.json", true, false),
    ("config-cve.json", true, false),
    ("config-cve-trivy.json", true, false),
    ("config-multiple-cve.json", true, false),
    ("config-sbom-trivy.json", true, true),
    ("config-ui.json", true, true),
];

#[cfg(feature = "search")]
#[test]
fn zot_search_examples_verify_with_notes() {
    for (name, cve, ui) in SEARCH_EXAMPLES {
        let file = examples_dir().join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"search\""), "{name} uses search");
        let (ok, stdout, stderr) = verify(&file);
        assert!(ok, "{name}: {stderr}");
        assert!(
            stdout.contains("configuration is valid"),
            "{name}: {stdout}"
        );
        // With the `cve` feature, scanning is on and nothing is noted.
        assert_eq!(
            stderr.contains("note: extensions.search.cve: CVE scanning is not in this build"),
            *cve && !cfg!(feature = "cve"),
            "{name}: {stderr}"
        );
        assert_eq!(
            stderr.contains("note: extensions.ui: this build serves no web UI"),
            *ui,
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_bad_search_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("config.json");
    let config = serde_json::json!({
        "storage": {"rootDirectory": tmp.path().join("root")},
        "extensions": {"search": {"enable": true, "cve": {"trivy": {"sbom": {"format": "xml"}}}}},
    });
    std::fs::write(&file, config.to_string()).unwrap();
    let (ok, _, stderr) = verify(&file);
    assert!(!ok);
    // Built with search: the bad format; without: search itself.
    let expected = if cfg!(feature = "search") {
        "extensions.search.cve.trivy.sbom.format: unknown SBOM format"
    } else {
        "extensions.search: not available in this build"
    };
    assert!(stderr.contains(expected), "{stderr}");
}

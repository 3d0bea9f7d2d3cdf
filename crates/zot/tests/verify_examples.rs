//! `zot verify` and `zot serve` on the Go zot's own example configurations
//! (`shared/zot-examples`, a sibling of the repository). `zot verify` gives
//! exactly the library's verdict on every file, naming each problem by its
//! key path; the plain configurations in [`SERVES`] also serve unchanged,
//! with only their paths and port rewritten to a temporary folder and an
//! ephemeral port. (Which file loads, and the exact key paths of the others,
//! are pinned in `crates/config/tests/examples.rs`.)
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVES: &[&str] = &[
    "config-boltdb.json",
    "config-commit.json",
    "config-conformance.json",
    "config-docker-compat.json",
    "config-minimal.json",
    "config-scheduler.json",
    "config-test.json",
    "config-tls.json",
];

fn examples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/zot-examples");
    assert!(
        dir.is_dir(),
        "missing {}: the tests need shared/ beside the repository",
        dir.display()
    );
    dir
}

fn zot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zot"))
}

/// The example with its paths moved under `tmp` and its port made ephemeral.
fn rewrite(text: &str, tmp: &Path) -> String {
    let t = tmp.display();
    text.replace("/tmp/zot", &format!("{t}/root"))
        .replace("\"8080\"", "\"0\"")
        .replace("test/data/server.cert", &format!("{t}/server.cert"))
        .replace("test/data/server.key", &format!("{t}/server.key"))
}

fn make_cert(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(dir.join("server.cert"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed");
    assert!(status.success());
}

#[test]
fn every_example_verifies_or_names_what_is_unsupported() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") && !name.ends_with(".yaml") {
            continue;
        }
        seen += 1;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(&name);
        std::fs::write(
            &file,
            rewrite(&std::fs::read_to_string(&path).unwrap(), tmp.path()),
        )
        .unwrap();
        let out = zot().arg("verify").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match zot_config::Config::from_file(&file) {
            Ok(_) => assert!(
                out.status.success(),
                "{name} should verify; stderr:\n{stderr}"
            ),
            Err(problems) => {
                assert!(!out.status.success(), "{name} should be refused");
                for p in problems {
                    let line = format!("{}: {p}", file.display());
                    assert!(
                        stderr.contains(&line),
                        "{name}: `{line}` missing from:\n{stderr}"
                    );
                    // Map keys such as `storage.subPaths./a` keep their `/`.
                    let key = p.path.as_str();
                    let is_key_path = key.is_empty()
                        || key.starts_with(|c: char| c.is_ascii_alphabetic())
                            && key
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "._[]/-".contains(c));
                    assert!(is_key_path, "{name}: not a key path: {key}");
                }
            }
        }
    }
    assert!(seen >= 50, "only {seen} example files found");
}

/// Starts `zot serve FILE`, waits for the listening line, and returns the
/// child and its address.
fn serve(file: &Path) -> (std::process::Child, String) {
    let mut child = zot()
        .arg("serve")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
            {
                let _ = tx.send(v["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("zot serve printed no listening line");
    (child, addr)
}

#[test]
fn examples_that_load_also_serve() {
    for name in SERVES {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(name);
        let text = rewrite(
            &std::fs::read_to_string(examples_dir().join(name)).unwrap(),
            tmp.path(),
        );
        std::fs::write(&file, &text).unwrap();
        let tls = text.contains("server.cert");
        if tls {
            make_cert(tmp.path());
        }
        let (mut child, addr) = serve(&file);
        let port = addr.rsplit(':').next().unwrap();
        let url = format!(
            "{}://127.0.0.1:{port}/v2/",
            if tls { "https" } else { "http" }
        );
        let start = Instant::now();
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &url])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{name}: GET {url}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(
            tmp.path().join("root").is_dir(),
            "{name}: storage root not created"
        );
        // SIGTERM: graceful exit with status 0.
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.wait().unwrap();
        assert!(status.success(), "{name}: exit status {status}");
    }
}

#[test]
fn version_and_usage() {
    let out = zot().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("zot {}", env!("CARGO_PKG_VERSION"))
    );
    let out = zot()
        .args(["verify", "/nonexistent/config.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// With `log.output` a file, the JSON log goes there and the terminal still
/// learns where the registry listens.
#[test]
fn log_output_to_a_file_still_says_where_it_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("zot.log");
    let file = tmp.path().join("config.json");
    let config = serde_json::json!({
        "storage": {"rootDirectory": tmp.path().join("root")},
        "http": {"address": "127.0.0.1", "port": "0"},
        "log": {"level": "info", "output": log},
    });
    std::fs::write(&file, config.to_string()).unwrap();
    let mut child = zot()
        .arg("serve")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on 127.0.0.1:"), "stderr: {line}");
    assert!(line.contains("storage at"), "stderr: {line}");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"message\":\"listening\"")),
        "log file: {text}"
    );
}

/// The project's own example configurations all verify.
#[test]
fn our_examples_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            continue;
        }
        seen += 1;
        let out = zot().arg("verify").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(seen >= 4, "only {seen} examples");
}

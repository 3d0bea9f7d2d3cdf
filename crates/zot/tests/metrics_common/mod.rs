//! The Prometheus parser of the metrics tests: the scraped text is read
//! by the `prometheus_client` Python package's parsers (text format and
//! OpenMetrics), in a virtualenv that `scripts/test` creates at
//! `<target>/tmp/prom-venv` (or name another interpreter with
//! `ZOT_E2E_PROM_PYTHON`). A missing parser fails the test.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Reads the text on stdin with prometheus_client's parser and prints each
/// family as `{name: {type, samples: [[name, labels, value]]}}`.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics import parser as openmetrics
parse = openmetrics.text_string_to_metric_families if sys.argv[1:] == ["om"] else text_string_to_metric_families
out = {}
for f in parse(sys.stdin.read()):
    out[f.name] = {"type": f.type,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

pub fn prom_python() -> PathBuf {
    let python = std::env::var_os("ZOT_E2E_PROM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prom-venv/bin/python"));
    assert!(
        python.is_file(),
        "no prometheus_client interpreter at {}: `scripts/test` creates it",
        python.display()
    );
    python
}

/// The families of a scrape, as prometheus_client parses them (its
/// OpenMetrics parser when `openmetrics`).
pub fn parse_as(text: &str, openmetrics: bool) -> Value {
    let mut child = Command::new(prom_python())
        .args(["-c", PARSE])
        .args(openmetrics.then_some("om"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

pub fn parse(text: &str) -> Value {
    parse_as(text, false)
}

/// The value of the sample `name` with exactly `labels`, if any.
pub fn sample(families: &Value, family: &str, name: &str, labels: Value) -> Option<f64> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find(|s| s[0] == name && s[1] == labels)
        .and_then(|s| s[2].as_f64())
}

//! Shared by the database tests: the sample records, zips made from them,
//! inventories with hand-written expectations, and a static-file HTTP
//! server (with ETags, and a truncating mode for fault tests).

#![allow(dead_code)]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zot_scan::{Ecosystem, Inventory, OsRelease, Package, SourcePackage};
use zot_vulndb::Finding;

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv")
}

/// A zip of every `*.json` in `dir` (entries named like OSV's: `<id>.json`).
pub fn zip_of(dir: &Path) -> Vec<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect();
    zip_entries(&entries)
}

pub fn zip_entries(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(name.as_str(), options).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

fn pkg(
    eco: Ecosystem,
    name: &str,
    version: &str,
    source: Option<(&str, &str)>,
    path: &str,
) -> Package {
    Package {
        ecosystem: eco,
        name: name.into(),
        version: version.into(),
        source: source.map(|(n, v)| SourcePackage {
            name: n.into(),
            version: v.into(),
        }),
        arch: None,
        path: path.into(),
    }
}

pub fn os(id: &str, version: &str) -> Option<OsRelease> {
    Some(OsRelease {
        id: id.into(),
        version_id: Some(version.into()),
        ..OsRelease::default()
    })
}

/// A Debian 12 image with language packages of every ecosystem.
pub fn debian_inventory() -> Inventory {
    let status = "var/lib/dpkg/status";
    let mut packages = vec![
        pkg(
            Ecosystem::Deb,
            "bash",
            "5.2.15-2+b2",
            Some(("bash", "5.2.15-2+b2")),
            status,
        ),
        pkg(
            Ecosystem::Deb,
            "libc6",
            "2.36-9+deb12u4",
            Some(("glibc", "2.36-9+deb12u4")),
            status,
        ),
        pkg(
            Ecosystem::Deb,
            "libssl3",
            "3.0.11-1~deb12u2",
            Some(("openssl", "3.0.11-1~deb12u2")),
            status,
        ),
        pkg(
            Ecosystem::Deb,
            "openssl",
            "3.0.11-1~deb12u2",
            Some(("openssl", "3.0.11-1~deb12u2")),
            status,
        ),
        pkg(
            Ecosystem::Pypi,
            "requests",
            "2.31.0",
            None,
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
        ),
        pkg(
            Ecosystem::Pypi,
            "urllib3",
            "1.26.5",
            None,
            "usr/lib/python3/dist-packages/urllib3-1.26.5.dist-info/METADATA",
        ),
        pkg(
            Ecosystem::Npm,
            "lodash",
            "4.17.20",
            None,
            "app/node_modules/lodash/package.json",
        ),
        pkg(
            Ecosystem::Npm,
            "minimist",
            "1.2.8",
            None,
            "app/node_modules/minimist/package.json",
        ),
        pkg(
            Ecosystem::Golang,
            "golang.org/x/net",
            "v0.17.0",
            None,
            "usr/local/bin/server",
        ),
        pkg(
            Ecosystem::Cargo,
            "smallvec",
            "1.6.0",
            None,
            "usr/local/bin/tool",
        ),
        pkg(
            Ecosystem::Maven,
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            None,
            "app/lib/log4j-core-2.14.1.jar",
        ),
        pkg(
            Ecosystem::Gem,
            "rack",
            "2.2.3",
            None,
            "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.3.gemspec",
        ),
    ];
    packages.sort();
    Inventory {
        scanner: Inventory::SCANNER,
        os: os("debian", "12"),
        packages,
        ..Inventory::default()
    }
}

pub fn alpine_inventory(version: &str) -> Inventory {
    let db = "lib/apk/db/installed";
    Inventory {
        scanner: Inventory::SCANNER,
        os: os("alpine", version),
        packages: vec![
            pkg(
                Ecosystem::Apk,
                "libcrypto3",
                "3.3.1-r0",
                Some(("openssl", "3.3.1-r0")),
                db,
            ),
            pkg(
                Ecosystem::Apk,
                "musl",
                "1.2.5-r0",
                Some(("musl", "1.2.5-r0")),
                db,
            ),
        ],
        ..Inventory::default()
    }
}

/// (package, id, severity, installed, fixed)
pub type Row = (String, String, &'static str, String, Option<String>);

pub fn rows(findings: &[Finding]) -> Vec<Row> {
    let mut rows: Vec<Row> = findings
        .iter()
        .map(|f| {
            (
                f.package.clone(),
                f.id.clone(),
                f.severity.as_str(),
                f.installed_version.clone(),
                f.fixed_version.clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

pub fn row(p: &str, id: &str, sev: &'static str, installed: &str, fixed: Option<&str>) -> Row {
    (
        p.into(),
        id.into(),
        sev,
        installed.into(),
        fixed.map(str::to_string),
    )
}

/// What the Debian inventory has against the sample records, by hand.
pub fn debian_expected() -> Vec<Row> {
    let mut rows = vec![
        // DEBIAN-CVE-2024-2511 (own severity "low"); DSA-5532-1 is fixed in
        // the installed version; the Debian:11 record is another release.
        row(
            "libssl3",
            "CVE-2024-2511",
            "LOW",
            "3.0.11-1~deb12u2",
            Some("3.0.13-1~deb12u1"),
        ),
        row(
            "openssl",
            "CVE-2024-2511",
            "LOW",
            "3.0.11-1~deb12u2",
            Some("3.0.13-1~deb12u1"),
        ),
        // GHSA and PYSEC merged under the CVE; CVSS 5.6.
        row(
            "requests",
            "CVE-2024-35195",
            "MEDIUM",
            "2.31.0",
            Some("2.32.0"),
        ),
        // PYSEC has no severity: the GHSA alias's CVSS (6.6).
        row(
            "urllib3",
            "CVE-2023-43804",
            "MEDIUM",
            "1.26.5",
            Some("1.26.17"),
        ),
        row(
            "lodash",
            "CVE-2021-23337",
            "HIGH",
            "4.17.20",
            Some("4.17.21"),
        ),
        row(
            "golang.org/x/net",
            "CVE-2023-45288",
            "UNKNOWN",
            "v0.17.0",
            Some("0.23.0"),
        ),
        row("smallvec", "CVE-2021-25900", "UNKNOWN", "1.6.0", None),
        row(
            "org.apache.logging.log4j:log4j-core",
            "CVE-2021-44228",
            "CRITICAL",
            "2.14.1",
            Some("2.15.0"),
        ),
        row("rack", "GHSA-xxxx-rubyg-ems1", "UNKNOWN", "2.2.3", None),
    ];
    rows.sort();
    rows
}

pub fn alpine_expected() -> Vec<Row> {
    let mut rows = vec![
        row(
            "libcrypto3",
            "CVE-2024-6119",
            "UNKNOWN",
            "3.3.1-r0",
            Some("3.3.2-r0"),
        ),
        row(
            "musl",
            "CVE-2025-26519",
            "HIGH",
            "1.2.5-r0",
            Some("1.2.5-r1"),
        ),
    ];
    rows.sort();
    rows
}

/// How the server answers a path.
#[derive(Clone)]
pub enum Reply {
    File {
        body: Vec<u8>,
        etag: String,
    },
    /// Validated by `Last-Modified` only (no ETag).
    Dated {
        body: Vec<u8>,
        date: String,
    },
    /// Announces the full length, sends half, closes.
    Truncated(Vec<u8>),
}

#[derive(Clone, Default)]
pub struct Server {
    pub files: Arc<Mutex<HashMap<String, Reply>>>,
    /// (path, status) of every request.
    pub log: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Server {
    pub fn put(&self, path: &str, body: Vec<u8>, etag: &str) {
        self.files.lock().unwrap().insert(
            path.into(),
            Reply::File {
                body,
                etag: format!("\"{etag}\""),
            },
        );
    }

    pub fn put_dated(&self, path: &str, body: Vec<u8>, date: &str) {
        self.files.lock().unwrap().insert(
            path.into(),
            Reply::Dated {
                body,
                date: date.into(),
            },
        );
    }

    pub fn statuses(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// Serves on 127.0.0.1; returns the base URL.
    pub async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    let header = |name: &str| {
                        text.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                    };
                    let inm = header("if-none-match");
                    let ims = header("if-modified-since");
                    let reply = me.files.lock().unwrap().get(&path).cloned();
                    let (status, head, body): (u16, String, Vec<u8>) = match reply {
                        None => (404, "Content-Length: 0\r\n".into(), Vec::new()),
                        Some(Reply::File { etag, .. }) if inm.as_deref() == Some(etag.as_str()) => {
                            (304, format!("ETag: {etag}\r\n"), Vec::new())
                        }
                        Some(Reply::File { body, etag }) => (
                            200,
                            format!("ETag: {etag}\r\nContent-Length: {}\r\n", body.len()),
                            body,
                        ),
                        Some(Reply::Dated { date, .. })
                            if ims.as_deref() == Some(date.as_str()) =>
                        {
                            (304, String::new(), Vec::new())
                        }
                        Some(Reply::Dated { body, date }) => (
                            200,
                            format!(
                                "Last-Modified: {date}\r\nContent-Length: {}\r\n",
                                body.len()
                            ),
                            body,
                        ),
                        Some(Reply::Truncated(body)) => (
                            200,
                            format!("Content-Length: {}\r\n", body.len()),
                            body[..body.len() / 2].to_vec(),
                        ),
                    };
                    me.log.lock().unwrap().push((path, status));
                    let reason = match status {
                        200 => "OK",
                        304 => "Not Modified",
                        _ => "Not Found",
                    };
                    let head =
                        format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n{head}\r\n");
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }
}

//! The OSV database from a base URL (`cve.osv.url`) end to end: a small
//! HTTP server started by the test serves `<base>/Debian/all.zip` with an
//! ETag and answers `If-None-Match` with 304. The real binary fetches only
//! once a scan needs Debian; a second refresh (a configuration reload
//! restarts the refresh) gets 304 and keeps the database; an updated zip
//! is imported and re-matched between two scans; a truncated download
//! leaves the previous database in use, and the next request still
//! carries the validators of the zip in use.

mod common;
mod cve_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::Registry;
use cve_common::*;
use serde_json::{Value, json};

/// What the server serves, and every request it answered.
#[derive(Default)]
struct Served {
    etag: String,
    zip: Vec<u8>,
    /// Send the headers and half the body, then close.
    truncate: bool,
    /// (path, If-None-Match, status)
    log: Vec<(String, Option<String>, u16)>,
}

fn answer(stream: TcpStream, state: &Mutex<Served>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut if_none_match = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(v.trim().to_owned());
        }
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = stream;
    let status = if path != "/osv/Debian/all.zip" {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        404
    } else if if_none_match.as_deref() == Some(s.etag.as_str()) {
        let head = format!(
            "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n",
            s.etag
        );
        out.write_all(head.as_bytes())?;
        304
    } else {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nETag: {}\r\nConnection: close\r\n\r\n",
            s.zip.len(),
            s.etag
        );
        out.write_all(head.as_bytes())?;
        let end = if s.truncate {
            s.zip.len() / 2
        } else {
            s.zip.len()
        };
        out.write_all(&s.zip[..end])?;
        200
    };
    out.flush()?;
    s.log.push((path, if_none_match, status));
    Ok(())
}

/// Starts the server; its base URL (`.../osv`) and state.
fn serve() -> (String, Arc<Mutex<Served>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/osv", listener.local_addr().expect("addr"));
    let state = Arc::new(Mutex::new(Served::default()));
    let s = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let _ = answer(stream, &s);
            });
        }
    });
    (base, state)
}

fn publish(state: &Mutex<Served>, etag: &str, records: &[Value], truncate: bool) {
    let mut s = state.lock().expect("state");
    s.etag = format!("\"{etag}\"");
    s.zip = osv_zip(records);
    s.truncate = truncate;
}

fn requests(state: &Mutex<Served>) -> Vec<(String, Option<String>, u16)> {
    state.lock().expect("state").log.clone()
}

/// A reload with another `updateInterval` restarts the refresh at once.
fn reload_with_interval(registry: &Registry, interval: &str) {
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("config JSON");
    config["extensions"]["search"]["cve"]["updateInterval"] = json!(interval);
    let staged = path.with_extension("staged");
    std::fs::write(&staged, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    std::fs::rename(&staged, &path).expect("rename");
}

#[test]
fn the_database_comes_from_a_url_with_conditional_requests() {
    let (base, state) = serve();
    let ssl = record("CVE-2099-0201", "openssl", "3.0.13-1~deb12u1", HIGH);
    let zlib = record("CVE-2099-0202", "zlib", "1:1.3.dfsg-1", LOW);
    let curl = record("CVE-2099-0203", "curl", "7.88.1-10+deb12u9", CRITICAL);
    publish(&state, "v1", std::slice::from_ref(&ssl), false);
    let registry = Registry::start_with(common::Config::default().with_extensions(json!({
        "search": { "cve": { "updateInterval": "2h", "osv": { "url": base } } },
        "metrics": { "prometheus": { "path": "/metrics" } },
    })));
    let client = registry.client();
    let findings = |image: &str| ids(&cve_list(&client, image, "")["CVEList"]);

    // Nothing is fetched before an image needs Debian; then Debian only.
    debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1").push(&client, "app", "1.0");
    wait_for("a match against the first zip", || {
        findings("app:1.0") == ["CVE-2099-0201"]
    });
    let log = requests(&state);
    assert_eq!(log, [("/osv/Debian/all.zip".to_owned(), None, 200)]);

    // A second refresh: 304, the database kept.
    reload_with_interval(&registry, "3h");
    wait_for("a conditional request", || requests(&state).len() == 2);
    assert_eq!(
        requests(&state)[1],
        (
            "/osv/Debian/all.zip".to_owned(),
            Some("\"v1\"".to_owned()),
            304
        )
    );
    wait_for("the metrics", || {
        metric(&client, "zot_cve_db_version") == Some(1)
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        metric(&client, "zot_cve_db_version"),
        Some(1),
        "a 304 keeps the database"
    );

    // An update between two scans: the stored image is re-matched, the
    // next one is scanned against the new database.
    publish(&state, "v2", &[ssl.clone(), zlib.clone()], false);
    reload_with_interval(&registry, "4h");
    wait_for("a match against the updated zip", || {
        findings("app:1.0") == ["CVE-2099-0201", "CVE-2099-0202"]
    });
    wait_for("version 2", || {
        metric(&client, "zot_cve_db_version") == Some(2)
    });
    debian_image("amd64", "2024-06-01T00:00:00Z", "3.0.13-1~deb12u1").push(&client, "app", "2.0");
    wait_for("app:2.0 scanned", || {
        findings("app:2.0") == ["CVE-2099-0202"]
    });

    // A truncated download: the database in use stays, and is retried with
    // the validators of the zip in use.
    publish(&state, "v3", &[ssl, zlib, curl], true);
    let before = requests(&state).len();
    reload_with_interval(&registry, "5h");
    wait_for("a retry after the truncated download", || {
        requests(&state).len() >= before + 2
    });
    let log = requests(&state);
    for (_, inm, status) in &log[before..] {
        assert_eq!((inm.as_deref(), *status), (Some("\"v2\""), 200));
    }
    let logs = registry.logs();
    assert!(
        logs.contains("truncated download") || logs.contains("download interrupted"),
        "{logs}"
    );
    assert!(
        logs.contains("the previous database stays in use"),
        "{logs}"
    );
    assert_eq!(metric(&client, "zot_cve_db_version"), Some(2));
    assert_eq!(findings("app:1.0"), ["CVE-2099-0201", "CVE-2099-0202"]);

    // Served whole again: the next retry imports it.
    state.lock().expect("state").truncate = false;
    wait_for("the curl finding", || {
        findings("app:1.0") == ["CVE-2099-0203", "CVE-2099-0201", "CVE-2099-0202"]
    });
    // The version gauge follows at the metrics reporter's next tick.
    wait_for("the database version metric", || {
        metric(&client, "zot_cve_db_version") == Some(3)
    });
}

//! The binary's command line and process contract: `--version`, `verify`,
//! the default config, graceful exit on SIGTERM and SIGINT, and the `/v2/`
//! base endpoint.

mod common;

use std::process::Command;
use std::time::Duration;

use common::registry::binary;
use common::tools::output;
use common::{Registry, run};

#[test]
fn version_names_the_package_version() {
    let out = run(Command::new(binary()).arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")),
        "`zot --version` printed {text:?}"
    );
}

#[test]
fn verify_accepts_a_good_config_and_names_bad_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        serde_json::to_vec(&serde_json::json!({
            "distSpecVersion": "1.1.1",
            "storage": { "rootDirectory": dir.path().join("root"), "dedupe": true, "gc": false },
            "http": { "address": "127.0.0.1", "port": "5000", "compat": ["docker2s2"] },
            "log": { "level": "info" },
        }))
        .expect("json"),
    )
    .expect("write good config");
    run(Command::new(binary()).arg("verify").arg(&good));

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"distSpecVersion":"1.1.1","storage":{"rootDirectory":42},"http":{"address":"127.0.0.1","port":"not-a-port"}}"#,
    )
    .expect("write bad config");
    let (out, _) = output(Command::new(binary()).arg("verify").arg(&bad));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "`zot verify` accepted a bad config:\n{text}"
    );
    for key in ["storage.rootDirectory", "http.port"] {
        assert!(
            text.contains(key),
            "`zot verify` should name `{key}`; it said:\n{text}"
        );
    }

    // An empty gcTimeWindow would stop GC for good.
    let empty_window = dir.path().join("empty-window.json");
    std::fs::write(
        &empty_window,
        serde_json::to_vec(&serde_json::json!({
            "storage": { "rootDirectory": dir.path().join("root"), "gcTimeWindow": "08:00-08:00" },
            "http": { "address": "127.0.0.1", "port": "5000" },
        }))
        .expect("json"),
    )
    .expect("write config");
    let (out, _) = output(Command::new(binary()).arg("verify").arg(&empty_window));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && text.contains("storage.gcTimeWindow"),
        "`zot verify` accepted an empty gcTimeWindow:\n{text}"
    );

    let (out, _) = output(
        Command::new(binary())
            .arg("verify")
            .arg(dir.path().join("missing.json")),
    );
    assert!(
        !out.status.success(),
        "`zot verify` of a missing file must fail"
    );
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let mut registry = Registry::start();
        let ping = registry.client().get("/v2/");
        ping.expect_status(200, "GET /v2/");
        if signal == "-TERM" {
            let status = registry
                .terminate(Duration::from_secs(20))
                .expect("zot exits within 20 s of SIGTERM");
            assert!(
                status.success(),
                "exit status after SIGTERM: {status}\n{}",
                registry.logs()
            );
        } else {
            let status = registry
                .interrupt(Duration::from_secs(20))
                .expect("zot exits within 20 s of SIGINT");
            assert!(
                status.success(),
                "exit status after SIGINT: {status}\n{}",
                registry.logs()
            );
        }
        assert!(
            registry
                .client()
                .try_request("GET", "/v2/", &[], None)
                .is_err(),
            "still answering after {signal}"
        );
        // Restart on the same root: still healthy.
        registry.restart();
        registry
            .client()
            .get("/v2/")
            .expect_status(200, "GET /v2/ after restart");
    }
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish() {
    let mut registry = Registry::start();
    let client = registry.client();
    let repo = "e2e/lifecycle/slow";
    let start = client.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    start.expect_status(202, "POST upload");
    let location = start.header("location").expect("Location").to_owned();
    let body = common::fixtures::noise("slow-upload", 1024 * 1024);
    let digest = common::sha256_digest(&body);
    let sep = if location.contains('?') { '&' } else { '?' };
    let target = format!("{location}{sep}digest={digest}");
    let addr = registry.addr().to_owned();

    // A client that sends its body slowly, over about two seconds.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let uploader = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "PUT {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write head");
        for (n, chunk) in body.chunks(64 * 1024).enumerate() {
            stream.write_all(chunk).expect("write body chunk");
            if n == 2 {
                let _ = started_tx.send(());
            }
            std::thread::sleep(Duration::from_millis(120));
        }
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read response");
        String::from_utf8_lossy(&response).into_owned()
    });
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("upload started");
    registry.signal("-TERM");
    // New connections are refused soon after the signal (polled, so a
    // loaded machine does not make this flaky).
    let probe = common::Client::new(&registry.url());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while probe.try_request("GET", "/v2/", &[], None).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "new requests are still served 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = uploader.join().expect("uploader thread");
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight upload should complete after SIGTERM; got:\n{response}\n{}",
        registry.logs()
    );
    let status = registry.wait_exit(Duration::from_secs(10));
    let status = status.expect("zot exits within 10 s once the upload is done");
    assert!(status.success(), "exit status: {status}");

    registry.restart();
    let got = registry.client().get(&format!("/v2/{repo}/blobs/{digest}"));
    got.expect_status(200, "the blob uploaded during shutdown");
    assert_eq!(common::sha256_digest(&got.body), digest);
}

#[test]
fn default_config_listens_on_5000_and_stores_in_zot_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(binary())
        .arg("serve")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start zot serve");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("listening") => break line,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no `listening` line from `zot serve` with the default config ({e}); output:\n{}",
                    seen.join("\n")
                );
            }
        }
    };
    let result = std::panic::catch_unwind(|| {
        assert!(
            listening.contains("\"127.0.0.1:5000\""),
            "default address: {listening}"
        );
        let client = common::Client::new("http://127.0.0.1:5000");
        client
            .get("/v2/")
            .expect_status(200, "GET /v2/ on the default port");
        let image = common::fixtures::multi_layer_image("default-config");
        image.push(&client, "e2e/default", "1");
        assert!(
            dir.path().join("zot-data/e2e/default/index.json").is_file(),
            "default storage root ./zot-data holds the pushed repository"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

//! The events extension on the real binary: CloudEvents to an HTTP
//! receiver (binary content mode) that fails, hangs, goes down and comes
//! back, and to a real NATS server (structured mode, `nats-server`, which
//! `scripts/test` installs); at-least-once delivery through restarts and
//! a crash, in order; one event per change, none for an identical
//! re-push; a full outbox drops the oldest, counted.

mod auth_common;
mod common;
mod events_common;

use std::time::Duration;

use serde_json::{Value, json};

use common::tools::skopeo_copy;
use common::{Config, OciLayout, Registry, fixtures};
use events_common::nats::{NatsServer, Subscriber};
use events_common::receiver::{Mode, Received, Receiver};

const CREATED: &str = "zotregistry.repository.created";
const UPDATED: &str = "zotregistry.image.updated";
const DELETED: &str = "zotregistry.image.deleted";
const LINT_FAILED: &str = "zotregistry.image.lint_failed";

fn http_sink(receiver: &Receiver, outbox: Value) -> Value {
    json!({"events": {"enable": true, "outbox": outbox, "sinks": [{
        "type": "http",
        "address": receiver.url(),
        "timeout": "1s",
        "channel": "ci",
        "headers": {"X-Registry": "e2e"},
        "credentials": {"username": "hook", "password": "secret"},
    }]}})
}

fn small(seed: &str) -> fixtures::Image {
    fixtures::image(
        ("linux", "amd64"),
        &[vec![("seed.txt", seed.as_bytes().to_vec())]],
        false,
    )
}

/// (type, name, reference) of each accepted event.
fn summary(got: &[Received]) -> Vec<(String, String, String)> {
    got.iter()
        .map(|r| {
            let s = |k: &str| r.data[k].as_str().unwrap_or("").to_owned();
            (r.event_type().to_owned(), s("name"), s("reference"))
        })
        .collect()
}

fn ev(t: &str, name: &str, reference: &str) -> (String, String, String) {
    (t.to_owned(), name.to_owned(), reference.to_owned())
}

#[test]
fn http_sink_receives_every_event_once_in_order_through_failures() {
    let receiver = Receiver::start();
    let registry = Registry::start_with(
        Config::default().with_extensions(http_sink(&receiver, json!({"maxBackoff": "1s"}))),
    );
    let work = registry.work_dir();
    let image = small("http-a");
    let src = OciLayout::create(&work.join("src"));
    src.add_image(&image, "1.0");
    let push = |to: &str| skopeo_copy(&[], &src.reference("1.0"), &registry.docker_ref(to), &work);

    // A real client's push: the repository, then the tag.
    let digest = push("ev/a:1.0");
    let got = receiver.wait_for("the first push", |g| g.len() >= 2);
    assert_eq!(
        summary(&got),
        vec![ev(CREATED, "ev/a", ""), ev(UPDATED, "ev/a", "1.0")]
    );
    let e = &got[1];
    assert_eq!(e.header("ce-specversion"), "1.0");
    assert_eq!(e.header("ce-source"), "zotregistry.dev");
    assert_eq!(e.header("ce-channel"), "ci");
    assert_eq!(e.header("content-type"), "application/json");
    assert_eq!(e.header("x-registry"), "e2e");
    assert_eq!(e.header("authorization"), "Basic aG9vazpzZWNyZXQ=");
    assert!(!e.header("ce-id").is_empty() && e.header("ce-id") != got[0].header("ce-id"));
    assert!(
        e.header("ce-time").ends_with('Z'),
        "{}",
        e.header("ce-time")
    );
    assert_eq!(e.data["digest"], digest.as_str());
    assert_eq!(
        e.data["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        e.data["manifest"],
        String::from_utf8_lossy(&image.manifest.bytes).as_ref()
    );
    assert_eq!(e.data["request"]["method"], "PUT");
    assert!(
        !e.data["request"]["useragent"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    );
    assert_eq!(e.data["request"]["addr"], "127.0.0.1");
    assert!(e.data.get("actor").is_none(), "anonymous: no actor");

    // An identical re-push makes nothing: the next event is the marker's.
    push("ev/a:1.0");
    push("ev/a:marker");
    let got = receiver.wait_for("the marker", |g| g.len() >= 3);
    assert_eq!(summary(&got)[2..], [ev(UPDATED, "ev/a", "marker")]);

    // The receiver fails (500), then hangs past the timeout, then is down:
    // events wait, retried with back-off, and arrive in order afterwards.
    receiver.set(Mode::Fail);
    push("ev/a:2.0");
    push("ev/b:1.0");
    receiver.wait_failures(|(refused, _)| refused >= 3);
    receiver.set(Mode::Hang);
    receiver.wait_failures(|(_, hung)| hung >= 1);
    receiver.set(Mode::Down);
    push("ev/a:3.0");
    std::thread::sleep(Duration::from_secs(3));
    let client = registry.client();
    client
        .request("DELETE", "/v2/ev/a/manifests/2.0", &[], None)
        .expect_status(202, "delete a tag");
    assert_eq!(
        receiver.accepted().len(),
        3,
        "nothing accepted while failing"
    );
    receiver.set(Mode::Accept);
    let got = receiver.wait_for("the events held back", |g| g.len() >= 8);
    assert_eq!(
        summary(&got)[3..],
        [
            ev(UPDATED, "ev/a", "2.0"),
            ev(CREATED, "ev/b", ""),
            ev(UPDATED, "ev/b", "1.0"),
            ev(UPDATED, "ev/a", "3.0"),
            ev(DELETED, "ev/a", "2.0"),
        ]
    );
    assert_eq!(got[7].data["request"]["method"], "DELETE");
    // Nothing more comes (each accepted once): one more marker is next.
    push("ev/a:marker2");
    let got = receiver.wait_for("the second marker", |g| g.len() >= 9);
    assert_eq!(summary(&got)[8..], [ev(UPDATED, "ev/a", "marker2")]);
}

#[test]
fn undelivered_events_survive_a_restart_and_a_crash() {
    let receiver = Receiver::start();
    let mut registry = Registry::start_with(
        Config::default().with_extensions(http_sink(&receiver, json!({"maxBackoff": "1s"}))),
    );
    receiver.set(Mode::Down);
    small("restart-1").push(&registry.client(), "ev/r", "1");
    // A graceful stop with the event undelivered.
    assert!(registry.terminate(Duration::from_secs(30)).is_some());
    registry.restart();
    small("restart-2").push(&registry.client(), "ev/r", "2");
    // A crash right after the push was answered.
    registry.kill9();
    registry.restart();
    assert!(receiver.accepted().is_empty());
    receiver.set(Mode::Accept);
    let got = receiver.wait_for("the events of both runs", |g| g.len() >= 3);
    assert_eq!(
        summary(&got),
        vec![
            ev(CREATED, "ev/r", ""),
            ev(UPDATED, "ev/r", "1"),
            ev(UPDATED, "ev/r", "2"),
        ]
    );
    // Acknowledged events are gone: after a graceful stop nothing is sent
    // again. (After a crash, acknowledgements of the last few seconds,
    // not yet durable, may be lost: those events are sent again.)
    assert!(registry.terminate(Duration::from_secs(30)).is_some());
    registry.restart();
    small("restart-3").push(&registry.client(), "ev/r", "3");
    let got = receiver.wait_for("the third push", |g| g.len() >= 4);
    assert_eq!(summary(&got)[3..], [ev(UPDATED, "ev/r", "3")]);
}

#[test]
fn a_full_outbox_drops_the_oldest_and_counts_them() {
    let receiver = Receiver::start();
    let outbox = json!({"maxEvents": 3, "maxBackoff": "200ms"});
    let mut extensions = http_sink(&receiver, outbox);
    extensions["metrics"] = json!({"enable": true});
    let registry = Registry::start_with(Config::default().with_extensions(extensions));
    receiver.set(Mode::Down);
    let client = registry.client();
    let image = small("full");
    image.push(&client, "ev/full", "t1");
    for t in ["t2", "t3", "t4", "t5"] {
        client
            .put_manifest(
                "ev/full",
                t,
                &image.manifest.media_type,
                &image.manifest.bytes,
            )
            .expect_status(201, t);
    }
    // 6 events (created, t1..t5), 3 kept: the oldest 3 dropped, logged.
    let start = std::time::Instant::now();
    while !registry
        .logs()
        .contains("the oldest undelivered events were dropped")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The metrics follow within a few seconds.
    let start = std::time::Instant::now();
    loop {
        let metrics = client.get("/metrics").text();
        if metrics.contains("zot_events_outbox_dropped_total 3")
            && metrics.contains("zot_events_outbox_events 3")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    receiver.set(Mode::Accept);
    let got = receiver.wait_for("the events kept", |g| g.len() >= 3);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        summary(&receiver.accepted()),
        vec![
            ev(UPDATED, "ev/full", "t3"),
            ev(UPDATED, "ev/full", "t4"),
            ev(UPDATED, "ev/full", "t5"),
        ],
        "{got:?}"
    );
}

#[test]
fn nats_subscriber_receives_structured_events_with_the_actor() {
    let nats = NatsServer::start("zot", "natspass");
    let subscriber = Subscriber::start(&nats.url(), "zot", "natspass", "zot.events");
    let events = json!({"events": {"enable": true, "sinks": [{
        "type": "nats",
        "address": nats.url(),
        "channel": "zot.events",
        "timeout": "5s",
        "credentials": {"username": "zot", "password": "natspass"},
    }]}});
    let mut registry = Registry::start_with(Config::default().with_extensions(events));
    // With a user: events name the actor.
    registry.kill9();
    let htpasswd = registry.work_dir().join("htpasswd");
    auth_common::write_htpasswd(&htpasswd, &[("alice", "alice-pw")]);
    let path = registry.config_path().to_owned();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("config")).expect("JSON");
    config["http"]["auth"] = json!({"htpasswd": {"path": htpasswd}});
    std::fs::write(&path, serde_json::to_vec(&config).expect("JSON")).expect("write");
    registry.restart();

    let auth = auth_common::basic("alice", "alice-pw");
    let client = registry.client();
    let image = small("nats");
    auth_common::push_image(&client, Some(&auth), "ev/n", &image, "1.0");
    // Identical re-push: nothing; a delete: one event.
    auth_common::push_image(&client, Some(&auth), "ev/n", &image, "1.0");
    auth_common::call(
        &client,
        Some(&auth),
        "DELETE",
        &format!("/v2/ev/n/manifests/{}", image.manifest.digest),
        &[],
        None,
    )
    .expect_status(202, "delete by digest");
    let got = subscriber.wait_for("three events", |g| g.len() >= 3);
    let types: Vec<&str> = got
        .iter()
        .map(|v| v["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, vec![CREATED, UPDATED, DELETED]);
    for v in &got {
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["source"], "zotregistry.dev");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["name"], "ev/n");
        assert_eq!(v["data"]["actor"]["name"], "alice");
        assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert_eq!(got[1]["data"]["reference"], "1.0");
    assert_eq!(got[2]["data"]["reference"], image.manifest.digest.as_str());
    assert_eq!(got[2]["data"]["digest"], image.manifest.digest.as_str());
    std::thread::sleep(Duration::from_secs(1));
    subscriber.wait_for("no more", |g| g.len() == 3);
}

#[test]
fn a_push_refused_by_lint_makes_lint_failed() {
    let receiver = Receiver::start();
    let mut extensions = http_sink(&receiver, json!({}));
    extensions["lint"] = json!({"enable": true, "mandatoryAnnotations": ["org.example.team"]});
    let registry = Registry::start_with(Config::default().with_extensions(extensions));
    let client = registry.client();
    let image = small("lint");
    for blob in image.blobs() {
        client.push_blob("ev/lint", &blob.bytes);
    }
    let refused = client.put_manifest(
        "ev/lint",
        "1.0",
        &image.manifest.media_type,
        &image.manifest.bytes,
    );
    refused.expect_status(400, "lint refuses the push");
    let got = receiver.wait_for("lint_failed", |g| g.len() >= 2);
    assert_eq!(
        summary(&got),
        vec![
            ev(CREATED, "ev/lint", ""),
            ev(LINT_FAILED, "ev/lint", "1.0")
        ]
    );
    assert_eq!(got[1].data["digest"], image.manifest.digest.as_str());
    assert_eq!(
        got[1].data["manifest"],
        String::from_utf8_lossy(&image.manifest.bytes).as_ref()
    );
    assert!(client.get_manifest("ev/lint", "1.0").status == 404);
}

#[test]
fn nats_sink_with_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = auth_common::pki::Pki::new(dir.path());
    let (server_crt, server_key) = pki.issue("nats", "127.0.0.1", true);
    let (client_crt, client_key) = pki.issue("zot", "zot", false);
    let ca = pki.path("ca.crt");
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8 path").to_owned();
    let nats = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        &path(&server_crt),
        "--tlskey",
        &path(&server_key),
        "--tlscacert",
        &path(&ca),
    ]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .add_client_certificate(client_crt.clone(), client_key.clone())
        .require_tls(true);
    let subscriber = Subscriber::start_with(&nats.url(), options, "zot.tls");
    let events = json!({"events": {"enable": true, "sinks": [{
        "type": "nats",
        "address": nats.url(),
        "channel": "zot.tls",
        "tlsConfig": {"caCertFile": ca, "certFile": client_crt, "keyFile": client_key},
    }]}});
    let registry = Registry::start_with(Config::default().with_extensions(events));
    small("tls").push(&registry.client(), "ev/tls", "1");
    let got = subscriber.wait_for("two events over TLS", |g| g.len() >= 2);
    let types: Vec<&str> = got
        .iter()
        .map(|v| v["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, vec![CREATED, UPDATED]);
}

/// An HTTPS receiver (rustls, a certificate of the test's CA) that
/// accepts every event; returns its URL and what it received.
fn https_receiver(
    pki: &auth_common::pki::Pki,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let (crt, key) = pki.issue("hooks", "127.0.0.1", true);
    let tls = zot_auth::tls::server_config(&crt, &key, None).expect("server TLS");
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let g = got.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/events",
                post(move |headers: axum::http::HeaderMap, body: String| {
                    let g = g.clone();
                    async move {
                        let ce_type = headers
                            .get("ce-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let data: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        g.lock()
                            .expect("received")
                            .push(json!({"type": ce_type, "data": data}));
                        "ok"
                    }
                }),
            );
            let config =
                axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(tls));
            listener.set_nonblocking(true).expect("nonblocking");
            axum_server::from_tcp_rustls(listener, config)
                .expect("server")
                .serve(app.into_make_service())
                .await
                .expect("serve");
        });
    });
    (format!("https://127.0.0.1:{port}/events"), got)
}

#[test]
fn http_sink_over_tls_with_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = auth_common::pki::Pki::new(dir.path());
    let (url, got) = https_receiver(&pki);
    let (client_crt, client_key) = pki.issue("zot", "zot", false);
    let events = json!({"events": {"enable": true, "sinks": [{
        "type": "http",
        "address": url,
        "timeout": "5s",
        "tlsConfig": {"caCertFile": pki.path("ca.crt"), "certFile": client_crt, "keyFile": client_key},
    }]}});
    let registry = Registry::start_with(Config::default().with_extensions(events));
    small("https").push(&registry.client(), "ev/https", "1");
    let start = std::time::Instant::now();
    loop {
        let seen = got.lock().expect("received").clone();
        if seen.len() >= 2 {
            assert_eq!(seen[0]["type"], CREATED);
            assert_eq!(seen[1]["type"], UPDATED);
            assert_eq!(seen[1]["data"]["reference"], "1");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{seen:?}\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nats_jetstream_sink_waits_for_a_stream_to_store_its_events() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = store.path().to_str().expect("UTF-8 path").to_owned();
    let nats = NatsServer::start_with(&["-js", "-sd", &dir]);
    let events = json!({"events": {"enable": true, "outbox": {"maxBackoff": "500ms"}, "sinks": [{
        "type": "nats",
        "address": nats.url(),
        "channel": "zot.js",
        "jetstream": true,
        "timeout": "2s",
    }]}});
    let registry = Registry::start_with(Config::default().with_extensions(events));
    small("js").push(&registry.client(), "ev/js", "1");
    // No stream on the subject yet: nothing is acknowledged; then one is
    // made, and the events held in the outbox are stored in it.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stored = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut stream = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: "ZOT".into(),
                subjects: vec!["zot.js".into()],
                ..Default::default()
            })
            .await
            .expect("create the stream");
        let start = std::time::Instant::now();
        loop {
            let n = stream.info().await.expect("stream info").state.messages;
            if n >= 2 {
                break n;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{}",
                registry.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(stored, 2, "each event stored once");
    assert!(
        registry.logs().contains("JetStream publish"),
        "the publish without a stream failed and was retried"
    );
    let last = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("ZOT").await.expect("stream");
        stream
            .get_last_raw_message_by_subject("zot.js")
            .await
            .expect("last message")
    });
    let v: Value = serde_json::from_slice(&last.payload).expect("JSON");
    assert_eq!(v["type"], UPDATED);
    assert_eq!(v["data"]["reference"], "1");
}

//! Configuration reload without restart, on the real binary: the file
//! rewritten in place, renamed over, and swapped through a `..data`
//! symbolic link as Kubernetes does, and `SIGHUP`. What changes takes effect
//! for new requests (users, access control, metrics, discover) while a
//! chunked upload started before completes; an invalid file is refused with
//! `zot verify`'s own text and the old configuration keeps serving; keys
//! that need a restart are named in one log line. Every reload is counted in
//! `/metrics` with the hash of the file loaded.

mod auth_common;
mod common;
#[cfg(feature = "events")]
mod events_common;

use std::path::Path;
use std::time::{Duration, Instant};

use auth_common::{basic, call, push_image, small_image, start_secure, write_htpasswd};
use common::{Config, Registry};
use serde_json::{Value, json};
use sha2::Digest as _;

/// Longer than the watcher's poll and settle time, with room for a slow machine.
const RELOAD_DEADLINE: Duration = Duration::from_secs(20);

/// The JSON log lines whose `message` is `message`.
fn log_lines(registry: &Registry, message: &str) -> Vec<Value> {
    registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"].as_str() == Some(message))
        .collect()
}

/// Waits for the `n`-th log line with `message` and returns it.
fn wait_for_log(registry: &Registry, message: &str, n: usize) -> Value {
    let start = Instant::now();
    loop {
        if let Some(line) = log_lines(registry, message).into_iter().nth(n - 1) {
            return line;
        }
        assert!(
            start.elapsed() < RELOAD_DEADLINE,
            "no log line #{n} {message:?} within {RELOAD_DEADLINE:?}; log:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_config(registry: &Registry) -> Value {
    serde_json::from_slice(&std::fs::read(registry.config_path()).expect("read config"))
        .expect("config JSON")
}

fn text_of(config: &Value) -> String {
    serde_json::to_string_pretty(config).expect("JSON")
}

fn sha256_hex(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Rewrites the file in place (same inode: truncate and write).
fn write_in_place(path: &Path, text: &str) {
    use std::io::Write;
    let before = std::fs::metadata(path).expect("stat").ino();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open config");
    file.write_all(text.as_bytes()).expect("write config");
    drop(file);
    assert_eq!(std::fs::metadata(path).expect("stat").ino(), before);
}

/// Writes a new file beside it and renames it over.
fn rename_over(path: &Path, text: &str) {
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, text).expect("write new config");
    std::fs::rename(&tmp, path).expect("rename over config");
}

/// Kubernetes' ConfigMap update: the file is `config.json ->
/// ..data/config.json`, `..data` a symbolic link to a timestamped
/// directory; an update writes a new directory and renames a new `..data`
/// link over the old one. The first call also turns the file into that
/// link (itself a rename over the file).
fn symlink_swap(path: &Path, text: &str, generation: u32) {
    let dir = path.parent().expect("config dir");
    let name = path.file_name().expect("config name");
    let versioned = dir.join(format!("..2026_12_07_{generation}"));
    std::fs::create_dir_all(&versioned).expect("mkdir");
    std::fs::write(versioned.join(name), text).expect("write versioned config");
    let data_tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&data_tmp);
    std::os::unix::fs::symlink(versioned.file_name().expect("name"), &data_tmp).expect("symlink");
    std::fs::rename(&data_tmp, dir.join("..data")).expect("swap ..data");
    if !std::fs::symlink_metadata(path)
        .expect("lstat")
        .file_type()
        .is_symlink()
    {
        let link_tmp = dir.join("config.link");
        std::os::unix::fs::symlink(Path::new("..data").join(name), &link_tmp).expect("symlink");
        std::fs::rename(&link_tmp, path).expect("link config");
    }
}

use std::os::unix::fs::MetadataExt;

/// `zot_config_reloads_total{result}` and `zot_config_info`'s hash.
fn reload_metrics(registry: &Registry, auth: Option<&str>) -> (u64, u64, String) {
    let scrape = call(&registry.client(), auth, "GET", "/metrics", &[], None);
    scrape.expect_status(200, "GET /metrics");
    let text = scrape.text();
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .trim()
            .to_owned()
    };
    let ok = value("zot_config_reloads_total{result=\"success\"}");
    let failed = value("zot_config_reloads_total{result=\"failure\"}");
    let hash = value("zot_config_info{hash=\"");
    let hash = hash
        .strip_suffix("\"} 1")
        .unwrap_or_else(|| panic!("zot_config_info line: {hash}"));
    (
        ok.parse().expect("count"),
        failed.parse().expect("count"),
        hash.to_owned(),
    )
}

/// A way of replacing the configuration file (at a path) with a text.
type Replace = fn(&Path, &str);

fn with_metrics() -> Config {
    Config::default().with_extensions(json!({"metrics": {"prometheus": {"path": "/metrics"}}}))
}

#[test]
fn every_replacement_style_reloads_and_is_counted_with_its_hash() {
    let registry = Registry::start_with(with_metrics());
    let path = registry.config_path().to_owned();
    let start = std::fs::read_to_string(&path).expect("read config");
    let (ok, failed, hash) = reload_metrics(&registry, None);
    assert_eq!((ok, failed), (0, 0));
    assert_eq!(hash, sha256_hex(&start), "the hash of the file started on");

    let mut config = read_config(&registry);
    let styles: [(&str, Replace); 4] = [
        ("in place", write_in_place),
        ("rename", rename_over),
        ("symlink (first swap)", |p, t| symlink_swap(p, t, 1)),
        ("symlink (..data swap)", |p, t| symlink_swap(p, t, 2)),
    ];
    for (i, (style, replace)) in styles.iter().enumerate() {
        config["storage"]["gcDelay"] = json!(format!("{}h", i + 2));
        let text = text_of(&config);
        replace(&path, &text);
        let line = wait_for_log(&registry, "configuration reloaded", i + 1);
        assert_eq!(line["trigger"], "file changed", "{style}: {line}");
        assert_eq!(line["hash"], sha256_hex(&text).as_str(), "{style}");
        assert_eq!(line["changed"], "storage", "{style}");
        let (ok, failed, hash) = reload_metrics(&registry, None);
        assert_eq!((ok, failed), (i as u64 + 1, 0), "{style}");
        assert_eq!(hash, sha256_hex(&text), "{style}: zot_config_info");
    }
    assert!(
        std::fs::symlink_metadata(&path)
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    // Nothing reloads the same content twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(log_lines(&registry, "configuration reloaded").len(), 4);
}

#[test]
fn an_invalid_file_is_refused_with_verify_text_and_the_old_one_keeps_serving() {
    let registry = Registry::start_with(with_metrics());
    let path = registry.config_path().to_owned();
    let hash_before = sha256_hex(&std::fs::read_to_string(&path).expect("read"));
    let mut config = read_config(&registry);
    config["storage"]["gcDelay"] = json!("soon");
    config["http"]["accessControl"] = json!({"repositories": {"[": {"anonymousPolicy": ["read"]}}});
    config["extensions"]["nonsense"] = json!({});
    write_in_place(&path, &text_of(&config));
    let refused = wait_for_log(
        &registry,
        "configuration not reloaded: the running configuration stays",
        1,
    );
    assert_eq!(refused["trigger"], "file changed");
    assert_eq!(refused["hash"], hash_before.as_str(), "still the old one");

    // Each problem `zot verify` prints is in the log, word for word.
    let verify = std::process::Command::new(common::registry::binary())
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run zot verify");
    assert!(!verify.status.success());
    let printed = String::from_utf8_lossy(&verify.stderr).into_owned();
    let problems: Vec<&str> = printed
        .lines()
        .filter(|l| !l.ends_with("problem(s)"))
        .collect();
    assert!(problems.len() >= 3, "{printed}");
    let logged: Vec<String> = registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "ERROR")
        .filter_map(|v| v["message"].as_str().map(str::to_owned))
        .collect();
    for problem in &problems {
        assert!(
            logged.iter().any(|l| l == problem),
            "{problem:?} not logged; errors logged: {logged:#?}"
        );
    }
    assert_eq!(refused["problems"], problems.len());

    // The old configuration serves on, and counts the failure.
    registry.client().get("/v2/").expect_status(200, "GET /v2/");
    let (ok, failed, hash) = reload_metrics(&registry, None);
    assert_eq!((ok, failed), (0, 1));
    assert_eq!(hash, hash_before);

    // Fixed: loaded.
    config["storage"]["gcDelay"] = json!("2h");
    config["http"]
        .as_object_mut()
        .expect("http")
        .remove("accessControl");
    config["extensions"]
        .as_object_mut()
        .expect("extensions")
        .remove("nonsense");
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(reload_metrics(&registry, None).0, 1);
}

#[test]
fn sighup_reloads_and_restart_only_keys_are_named_in_one_line() {
    let registry = Registry::start_with(with_metrics());
    // SIGHUP reloads even an unchanged file, and does not stop the process.
    registry.signal("-HUP");
    let line = wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(line["trigger"], "SIGHUP");
    registry.signal("-HUP");
    wait_for_log(&registry, "configuration reloaded", 2);
    assert_eq!(reload_metrics(&registry, None).0, 2);

    // Restart-only keys: named once, ignored; live keys still applied.
    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["http"]["port"] = json!("1");
    config["storage"]["rootDirectory"] = json!("/nonexistent/elsewhere");
    config["storage"]["dedupe"] = json!(false);
    config["log"]["level"] = json!("info");
    rename_over(&path, &text_of(&config));
    let line = wait_for_log(&registry, "configuration reloaded", 3);
    assert_eq!(
        line["restart_needed"],
        "http.port, storage.rootDirectory, storage.dedupe"
    );
    assert_eq!(line["changed"], "log.level");
    let warnings: Vec<Value> = registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "WARN" && v["keys"].is_string())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let message = warnings[0]["message"].as_str().expect("message");
    for key in ["http.port", "storage.rootDirectory", "storage.dedupe"] {
        assert!(message.contains(key), "{message}");
    }
    // Still on the same port and root; log.level info: no more DEBUG lines.
    let image = small_image("after restart-only change");
    push_image(&registry.client(), None, "still/here", &image, "v1");
    assert!(registry.root().join("still/here/index.json").exists());
    let debug_before = count_level(&registry, "DEBUG");
    for _ in 0..5 {
        registry.client().get("/v2/still/here/tags/list");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_level(&registry, "DEBUG"), debug_before);
}

fn count_level(registry: &Registry, level: &str) -> usize {
    registry
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == level)
        .count()
}

#[test]
fn discover_and_metrics_follow_the_file() {
    let registry = Registry::start();
    let client = registry.client();
    let discover = || client.get("/v2/_oci/ext/discover").json()["extensions"].clone();
    assert_eq!(discover(), json!([]));
    client.get("/metrics").expect_status(404, "metrics off");

    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["extensions"] = json!({
        "metrics": {"prometheus": {"path": "/metrics"}},
        "scrub": {"interval": "24h"}
    });
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 1);
    let names: Vec<Value> = discover()
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("_zot_scrub")],
        "scrub on; metrics never listed"
    );
    client.get("/v2/").expect_status(200, "a request to count");
    let (ok, _, _) = reload_metrics(&registry, None);
    assert_eq!(ok, 1);
    let scrape = client.get("/metrics").text();
    assert!(
        scrape.contains("zot_http_requests_total{code=\"200\",method=\"GET\"}"),
        "requests recorded once on:\n{scrape}"
    );

    // Metrics on another path, then off; scrub off.
    config["extensions"] = json!({"metrics": {"prometheus": {"path": "/other-metrics"}}});
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 2);
    assert_eq!(discover(), json!([]));
    client.get("/metrics").expect_status(404, "old path");
    client.get("/other-metrics").expect_status(200, "new path");
    config["extensions"] = json!({});
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 3);
    client
        .get("/other-metrics")
        .expect_status(404, "metrics off again");
}

/// A chunk of an upload: PATCH with `Content-Range`; returns the next location.
fn patch_chunk(
    registry: &Registry,
    auth: &str,
    location: &str,
    offset: usize,
    chunk: &[u8],
) -> String {
    let range = format!("{offset}-{}", offset + chunk.len() - 1);
    let resp = call(
        &registry.client(),
        Some(auth),
        "PATCH",
        location,
        &[
            ("content-type", "application/octet-stream"),
            ("content-range", &range),
        ],
        Some(chunk),
    );
    resp.expect_status(202, "PATCH chunk");
    resp.header("location").expect("location").to_owned()
}

#[test]
fn users_and_policies_change_without_restart_while_a_chunked_push_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("htpasswd-1");
    let second = dir.path().join("htpasswd-2");
    write_htpasswd(&first, &[("alice", "alice-pw")]);
    write_htpasswd(&second, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let policy = |users: &[&str]| {
        json!({"repositories": {"**": {"policies": [
            {"users": users, "actions": ["read", "create", "update"]}]}}})
    };
    let registry = start_secure(
        json!({"auth": {"htpasswd": {"path": first}}, "accessControl": policy(&["alice"])}),
        json!({}),
    );
    let alice = basic("alice", "alice-pw");
    let bob = basic("bob", "bob-pw");
    let carol = basic("carol", "carol-pw");
    let client = registry.client();
    call(&client, Some(&bob), "GET", "/v2/", &[], None).expect_status(401, "bob unknown");

    // Alice starts a chunked upload.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = common::sha256_digest(&blob);
    let started = call(
        &client,
        Some(&alice),
        "POST",
        "/v2/team/app/blobs/uploads/",
        &[],
        None,
    );
    started.expect_status(202, "start upload");
    let mut location = started.header("location").expect("location").to_owned();
    let chunks: Vec<&[u8]> = blob.chunks(1024 * 1024).collect();
    location = patch_chunk(&registry, &alice, &location, 0, chunks[0]);

    // The new file: a second htpasswd file with bob, and a policy for both.
    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["http"]["auth"]["htpasswd"]["path"] = json!(second);
    config["http"]["accessControl"] = policy(&["alice", "bob"]);
    config["http"]["accessControl"]["repositories"]["private/**"] =
        json!({"policies": [{"users": ["alice"], "actions": ["read", "create"]}]});
    write_in_place(&path, &text_of(&config));
    location = patch_chunk(&registry, &alice, &location, chunks[0].len(), chunks[1]);
    let line = wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(line["changed"], "http.auth, http.accessControl");

    // Alice's upload goes on and completes.
    let offset = chunks[0].len() + chunks[1].len();
    location = patch_chunk(&registry, &alice, &location, offset, chunks[2]);
    let sep = if location.contains('?') { '&' } else { '?' };
    call(
        &client,
        Some(&alice),
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[],
        None,
    )
    .expect_status(201, "complete the upload begun before the reload");
    let got = call(
        &client,
        Some(&alice),
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        &[],
        None,
    );
    got.expect_status(200, "the blob");
    assert_eq!(got.body, blob);

    // Bob exists and may push, but not where the new policy keeps him out.
    let image = small_image("bob's");
    push_image(&client, Some(&bob), "bob/tool", &image, "v1");
    call(
        &client,
        Some(&bob),
        "GET",
        "/v2/private/x/tags/list",
        &[],
        None,
    )
    .expect_status(403, "private is alice's");

    // A user added to the (new) htpasswd file: no reload needed.
    call(&client, Some(&carol), "GET", "/v2/", &[], None).expect_status(401, "carol unknown");
    write_htpasswd(
        &second,
        &[
            ("alice", "alice-pw"),
            ("bob", "bob-pw"),
            ("carol", "carol-pw"),
        ],
    );
    let start = Instant::now();
    while call(&client, Some(&carol), "GET", "/v2/", &[], None).status != 200 {
        assert!(
            start.elapsed() < RELOAD_DEADLINE,
            "carol never accepted; log:\n{}",
            registry.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Bob taken out of the policy again: refused at once.
    config["http"]["accessControl"] = policy(&["alice"]);
    rename_over(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 2);
    call(
        &client,
        Some(&bob),
        "GET",
        "/v2/bob/tool/tags/list",
        &[],
        None,
    )
    .expect_status(403, "bob's rights withdrawn");
}

#[cfg(feature = "sync")]
#[test]
fn sync_upstreams_change_without_restart() {
    let upstream = Registry::start();
    small_image("mirrored").push(&upstream.client(), "lib/app", "v1");
    let registry = Registry::start();
    let client = registry.client();
    client
        .get_manifest("lib/app", "v1")
        .expect_status(404, "no sync yet");
    client
        .get("/v2/_zot/ext/sync")
        .expect_status(404, "sync off");

    // Sync on, on demand, from the upstream.
    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["extensions"] = json!({"sync": {"registries": [{
        "urls": [upstream.url()], "onDemand": true, "tlsVerify": false
    }]}});
    write_in_place(&path, &text_of(&config));
    let line = wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(line["changed"], "extensions.sync");
    client
        .get_manifest("lib/app", "v1")
        .expect_status(200, "fetched on demand");
    let status = client.get("/v2/_zot/ext/sync");
    status.expect_status(200, "sync status");
    assert_eq!(
        status.json()["registries"][0]["urls"][0],
        upstream.url().as_str()
    );

    // Sync off again: nothing more is fetched.
    small_image("later").push(&upstream.client(), "lib/other", "v1");
    config["extensions"] = json!({});
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 2);
    client
        .get_manifest("lib/other", "v1")
        .expect_status(404, "sync off again");
    client
        .get("/v2/_zot/ext/sync")
        .expect_status(404, "sync off again");
}

#[test]
fn lint_turns_on_and_off_without_restart() {
    let registry = Registry::start();
    let client = registry.client();
    push_image(&client, None, "app", &small_image("before lint"), "v1");

    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["extensions"] = json!({"lint": {"enable": true,
        "mandatoryAnnotations": ["org.opencontainers.image.vendor"]}});
    write_in_place(&path, &text_of(&config));
    let line = wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(line["changed"], "extensions.lint");
    let image = small_image("under lint");
    for blob in image.blobs() {
        client.push_blob("app", &blob.bytes);
    }
    let refused = auth_common::put_manifest(&client, None, "app", &image, "v2");
    refused.expect_oci_error(400, "MANIFEST_INVALID", "a manifest without the annotation");
    assert!(refused.text().contains("org.opencontainers.image.vendor"));
    let names: Vec<Value> = client.get("/v2/_oci/ext/discover").json()["extensions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, [json!("_zot_lint")]);

    config["extensions"] = json!({});
    write_in_place(&path, &text_of(&config));
    wait_for_log(&registry, "configuration reloaded", 2);
    auth_common::put_manifest(&client, None, "app", &image, "v2")
        .expect_status(201, "lint off again");
}

#[cfg(feature = "events")]
#[test]
fn events_sinks_change_without_restart_and_nothing_is_lost() {
    use events_common::receiver::Receiver;
    let sink = |r: &Receiver| {
        json!({"events": {"enable": true, "sinks": [
        {"type": "http", "address": r.url(), "timeout": "1s"}]}})
    };
    let first = Receiver::start();
    let second = Receiver::start();
    let registry = Registry::start_with(Config::default().with_extensions(sink(&first)));
    let client = registry.client();
    push_image(&client, None, "app", &small_image("one"), "v1");
    let tagged = |got: &[events_common::receiver::Received], tag: &str| {
        got.iter()
            .any(|r| r.event_type() == "zotregistry.image.updated" && r.data["reference"] == tag)
    };
    first.wait_for("v1 at the first sink", |got| tagged(got, "v1"));

    let path = registry.config_path().to_owned();
    let mut config = read_config(&registry);
    config["extensions"] = sink(&second);
    write_in_place(&path, &text_of(&config));
    let line = wait_for_log(&registry, "configuration reloaded", 1);
    assert_eq!(line["changed"], "extensions.events");
    assert_eq!(line["restart_needed"], "");
    push_image(&client, None, "app", &small_image("two"), "v2");
    let got = second.wait_for("v2 at the second sink", |got| tagged(got, "v2"));
    // The new sink starts after the events kept when it was added.
    assert!(
        !tagged(&got, "v1"),
        "the new sink starts with what comes next"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !tagged(&first.accepted(), "v2"),
        "the removed sink gets nothing more"
    );

    // A sink that cannot be set up refuses the reload; delivery goes on.
    config["extensions"]["events"]["sinks"][0]["address"] = json!("not a url");
    write_in_place(&path, &text_of(&config));
    wait_for_log(
        &registry,
        "configuration not reloaded: the running configuration stays",
        1,
    );
    push_image(&client, None, "app", &small_image("three"), "v3");
    second.wait_for("v3 at the second sink", |got| tagged(got, "v3"));
}

//! `zot scrub CONFIG` on a storage root: exit 0 and "no problem" when
//! intact; exit 1 with the repository, tag and digest of a corrupt or
//! missing blob; exit 2 on an invalid configuration. A repository whose
//! layout cannot be read (an unparsable `index.json`) is a problem (exit
//! 1, a row naming the file), and the blob results found before it stay.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod common;

use common::OciLayout;
use common::fixtures::multi_layer_image;
use std::process::{Command, Output};

fn scrub(config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zot"))
        .arg("scrub")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn zot_scrub_reports_corrupt_and_missing_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let image = multi_layer_image("scrub");
    OciLayout::create(&root.join("lib/app")).add_image(&image, "v1");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"storage": {"rootDirectory": root}}).to_string(),
    )
    .unwrap();

    let out = scrub(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("no problem"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[1/1] lib/app"));

    let layers = &image.layers;
    let path = |hex: &str| root.join("lib/app/blobs/sha256").join(hex);
    let mut bytes = std::fs::read(path(layers[0].hex())).unwrap();
    bytes[10] ^= 1;
    std::fs::write(path(layers[0].hex()), bytes).unwrap();
    std::fs::remove_file(path(layers[1].hex())).unwrap();
    let out = scrub(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for (blob, status) in [(&layers[0], "corrupt"), (&layers[1], "missing")] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&blob.digest))
            .unwrap_or_else(|| panic!("{} not reported:\n{stdout}", blob.digest));
        assert!(
            line.starts_with("lib/app") && line.contains("v1") && line.contains(status),
            "{line}"
        );
    }

    std::fs::write(&config, r#"{"storage": {"rootDirectory": 5}}"#).unwrap();
    assert_eq!(scrub(&config).status.code(), Some(2));
}

/// A second process on a live root (`zot scrub`, or a mistaken second
/// `zot serve`) refuses with a clear message before touching anything:
/// the server's temporary files survive and its writes keep working.
#[test]
fn a_second_process_on_a_live_root_refuses_and_touches_nothing() {
    use common::Registry;
    let registry = Registry::start();
    let client = registry.client();
    multi_layer_image("live-1").push(&client, "live/app", "v1");
    // A write of the server in flight: its temporary file must stay.
    let in_flight = registry.root().join("_zot/tmp/.tmp-in-flight");
    std::fs::write(&in_flight, b"half of an index.json").unwrap();

    let out = scrub(registry.config_path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another zot process") && stderr.contains("offline"),
        "{stderr}"
    );
    assert!(
        in_flight.exists(),
        "zot scrub emptied the server's _zot/tmp"
    );

    let second = Command::new(env!("CARGO_BIN_EXE_zot"))
        .arg("serve")
        .arg(registry.config_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(stderr.contains("in use by another zot process"), "{stderr}");
    assert!(in_flight.exists(), "a second zot serve emptied _zot/tmp");

    multi_layer_image("live-2").push(&client, "live/app", "v2");
    let tags = client.get("/v2/live/app/tags/list").json();
    assert_eq!(
        tags["tags"],
        serde_json::json!(["v1", "v2"]),
        "{}",
        registry.logs()
    );
}

#[test]
fn zot_scrub_counts_an_unreadable_layout_and_keeps_blob_results() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let image = multi_layer_image("scrub-index");
    OciLayout::create(&root.join("lib/app")).add_image(&image, "v1");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"storage": {"rootDirectory": root}}).to_string(),
    )
    .unwrap();
    // Start once on the intact layout, so the metadata store knows it.
    assert!(scrub(&config).status.success());

    let layer = &image.layers[0];
    let path = root.join("lib/app/blobs/sha256").join(layer.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(root.join("lib/app/index.json"), b"{\"manifests\": [").unwrap();

    let out = scrub(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not reported:\n{stdout}"))
            .to_owned()
    };
    let index_row = row("index.json");
    assert!(
        index_row.starts_with("lib/app") && index_row.contains("unreadable"),
        "{index_row}"
    );
    let blob_row = row(&layer.digest);
    assert!(blob_row.contains("corrupt"), "{blob_row}");
    assert!(stdout.contains("2 problem(s)"), "{stdout}");
}

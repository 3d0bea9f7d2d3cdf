//! Timing of start-up at scale (not a timed test: run by hand, release
//! build recommended):
//!
//! `ZOT_SCALE_REPOS=10000 cargo test --release -p zot-search --test scale -- --ignored --nocapture`
//!
//! Writes N layouts of 5 tagged images each (every 10th repository has a
//! two-platform index as one of its tags) straight to disk, then opens the
//! store with search on three times: a full rebuild (no metadata store),
//! a start-up with the store present, and one after `meta.redb` was made
//! by a registry without search (records filled at start-up).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use serde_json::json;
use sha2::Digest as _;
use std::path::Path;
use std::time::Instant;

fn write_blob(layout: &Path, data: &[u8]) -> serde_json::Value {
    let hex = hex::encode(sha2::Sha256::digest(data));
    std::fs::write(layout.join("blobs/sha256").join(&hex), data).unwrap();
    json!({"digest": format!("sha256:{hex}"), "size": data.len()})
}

fn image(layout: &Path, name: &str, tag: &str, arch: &str) -> serde_json::Value {
    let config = serde_json::to_vec(&json!({
        "os": "linux", "architecture": arch, "created": "2024-01-01T00:00:00Z",
        "config": {"Labels": {"org.opencontainers.image.title": format!("{name}:{tag}")}},
        "history": [{"created_by": "ADD a"}, {"created_by": "ADD b"}],
    }))
    .unwrap();
    let mut c = write_blob(layout, &config);
    c["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let mut layers = Vec::new();
    for i in 0..2 {
        let mut l = write_blob(layout, format!("{name}/{tag}/{arch}/{i}").as_bytes());
        l["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        layers.push(l);
    }
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": c, "layers": layers,
    }))
    .unwrap();
    let mut d = write_blob(layout, &m);
    d["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    d
}

fn generate(root: &Path, repos: usize) {
    for n in 0..repos {
        let name = format!("org{}/repo{n}", n % 100);
        let layout = root.join(&name);
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let mut entries = Vec::new();
        for t in 0..5 {
            let tag = format!("v{t}");
            let mut d = if n % 10 == 0 && t == 0 {
                let a = image(&layout, &name, &tag, "amd64");
                let b = image(&layout, &name, &tag, "arm64");
                entries.push(a.clone());
                entries.push(b.clone());
                let idx = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [a, b],
                }))
                .unwrap();
                let mut d = write_blob(&layout, &idx);
                d["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
                d
            } else {
                image(&layout, &name, &tag, "amd64")
            };
            d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
            entries.push(d);
        }
        let index = json!({"schemaVersion": 2, "manifests": entries});
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

async fn timed_open(root: &Path, search: bool) -> (f64, zot_storage::SyncReport) {
    let t = Instant::now();
    let options = zot_storage::Options {
        search,
        ..Default::default()
    };
    let (reg, report) = zot_storage::open_local(root, false, options).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    reg.flush_metadata().unwrap();
    (secs, report)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, run by hand"]
async fn start_up_at_scale() {
    let repos: usize = std::env::var("ZOT_SCALE_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir =
        tempfile::tempdir_in(std::env::var("ZOT_SCALE_DIR").unwrap_or("/tmp".into())).unwrap();
    let t = Instant::now();
    generate(dir.path(), repos);
    println!(
        "generated {repos} repositories in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let (secs, report) = timed_open(dir.path(), true).await;
    println!("full rebuild, search on: {secs:.2}s ({report:?})");
    let (secs, report) = timed_open(dir.path(), true).await;
    println!("start-up with the store present, search on: {secs:.2}s ({report:?})");
    std::fs::remove_file(dir.path().join("_zot/meta.redb")).unwrap();
    let (secs, _) = timed_open(dir.path(), false).await;
    println!("full rebuild, search off: {secs:.2}s");
    let (secs, _) = timed_open(dir.path(), true).await;
    println!("start-up filling records (store made without search): {secs:.2}s");
}

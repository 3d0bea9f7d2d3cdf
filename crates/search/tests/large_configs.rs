//! Configs read in batches at rebuild stay within the batch memory budget:
//! those past it are read one by one, and every record is still derived
//! from its own config.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod stores_common;
use stores_common as common;

use common::*;
use serde_json::json;
use zot_oci::image_meta::MetaKind;

#[tokio::test]
async fn configs_past_the_batch_budget_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo("big/configs");
    let reg = open(dir.path(), true).await;
    let mut pushed = Vec::new();
    // Four configs of 3 MiB each: more than one batch (8 MiB) holds.
    for (i, arch) in ["amd64", "arm64", "s390x", "ppc64le"].iter().enumerate() {
        let padding = "x".repeat(3 << 20);
        let cfg = config(
            "linux",
            arch,
            json!({"org.opencontainers.image.description": padding}),
        );
        let doc = image_doc(&reg, &r, &cfg, &[format!("layer {i}").as_bytes()]).await;
        pushed.push((put(&reg, &r, &format!("v{i}"), &doc, None).await, *arch));
    }
    reg.flush_metadata().unwrap();
    drop(reg);
    std::fs::remove_file(dir.path().join("_zot/meta.redb")).unwrap();

    let reg = open(dir.path(), true).await;
    let d = data(&source(&reg), "big/configs");
    assert_eq!(d.images.len(), 4);
    for (digest, arch) in pushed {
        let meta = &d.images[&digest];
        let MetaKind::Manifest(m) = &meta.kind else {
            panic!("an image")
        };
        assert_eq!(m.platform.as_ref().map(|p| p.arch.as_str()), Some(arch));
        assert_eq!(meta.annotated.description.len(), 3 << 20);
    }
}

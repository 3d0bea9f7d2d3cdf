//! Values as zot's gqlgen writes them: `Time` as Go's RFC3339Nano in UTC
//! (trailing fraction zeros dropped, zero time as null), sizes as decimal
//! strings, and per-digest download counts on index children.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn times_sizes_and_child_download_counts() {
    let amd = web_2_amd();
    let arm = web_2_arm();
    let idx = web_2();
    let mem = Memory::default();
    mem.put(
        RepoBuilder::new("multi")
            .tag("2.0", &idx, None)
            .image(&amd)
            .image(&arm)
            .stats(
                &idx.digest,
                3,
                Some("2024-03-04T05:06:07.120000000Z"),
                "dora",
            )
            .stats(
                &amd.digest,
                4,
                Some("2024-03-04T05:06:06.000000001Z"),
                "dora",
            )
            .build(),
    );
    let h = Harness::new(mem);
    let d = h
        .data(
            r#"{ ImageList(repo: "multi") { Results {
                Tag Size DownloadCount PushTimestamp TaggedTimestamp LastPullTimestamp LastUpdated
                Manifests { Digest Size DownloadCount LastUpdated } } } }"#,
        )
        .await;
    let img = &d["ImageList"]["Results"][0];
    assert_eq!(img["PushTimestamp"], "2024-03-04T05:06:07.12Z");
    // No tag time recorded: the push time.
    assert_eq!(img["TaggedTimestamp"], "2024-03-04T05:06:07.12Z");
    assert_eq!(img["LastPullTimestamp"], "2024-07-01T00:00:00Z");
    // The index: the latest of its manifests' created times.
    assert_eq!(img["LastUpdated"], "2024-05-02T00:00:00Z");
    assert_eq!(img["DownloadCount"], 3);
    // Σ per manifest of (manifest + config + layers): 2 × (500+100+2000).
    assert_eq!(img["Size"], "5200");
    assert_eq!(
        img["Manifests"],
        json!([
            {"Digest": amd.digest.to_string(), "Size": "2600", "DownloadCount": 4,
             "LastUpdated": "2024-05-01T00:00:00Z"},
            {"Digest": arm.digest.to_string(), "Size": "2600", "DownloadCount": 0,
             "LastUpdated": "2024-05-02T00:00:00Z"},
        ])
    );

    // Never pulled, never pushed through us, no created time: null, as
    // gqlgen writes Go's zero time.
    let mem = Memory::default();
    let bare = M {
        created: None,
        ..M::new("bare", &["layer-bare"])
    }
    .meta();
    mem.put(RepoBuilder::new("bare").tag("1", &bare, None).build());
    let h = Harness::new(mem);
    let d = h
        .data(
            r#"{ Image(image: "bare:1") { PushTimestamp TaggedTimestamp LastPullTimestamp
                LastUpdated PushedBy DownloadCount Manifests { LastUpdated } } }"#,
        )
        .await;
    assert_eq!(
        d["Image"],
        json!({"PushTimestamp": null, "TaggedTimestamp": null, "LastPullTimestamp": null,
               "LastUpdated": null, "PushedBy": "", "DownloadCount": 0,
               "Manifests": [{"LastUpdated": null}]})
    );
}

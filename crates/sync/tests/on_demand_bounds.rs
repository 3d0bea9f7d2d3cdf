//! The on-demand bookkeeping stays bounded: with `manifestCheckInterval`
//! every reference asked for used to be remembered for good; past
//! `MAX_TRACKED` references, those not in use are forgotten.

use std::sync::Arc;

use zot_config::{Config, Format};
use zot_oci::{Reference, RepoName, Tag};
use zot_storage::{Options, Stores};
use zot_sync::{CredentialsFile, MAX_TRACKED, OnDemandSync, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_asked_for_are_not_remembered_without_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (registry, _) = zot_storage::open_local(dir.path(), false, Options::default())
        .await
        .expect("registry");
    let stores = Stores::single(Arc::new(registry));
    // An upstream that refuses connections at once, checked at most hourly.
    let cfg = Config::from_str(
        r#"{"storage": {"rootDirectory": "/tmp/unused"}, "http": {"address": "127.0.0.1", "port": "5000"},
            "extensions": {"sync": {"registries": [{"urls": ["http://127.0.0.1:1"], "onDemand": true,
            "manifestCheckInterval": "1h", "maxRetries": 0, "retryDelay": "1ms"}]}}}"#,
        Format::Json,
    )
    .expect("config");
    let sync = cfg
        .extension("sync")
        .and_then(|e| e.sync())
        .expect("sync section");
    let upstream = Arc::new(
        Upstream::new(&sync.registries[0], &CredentialsFile::default()).expect("upstream"),
    );
    let od =
        OnDemandSync::new(&[upstream], stores, dir.path().join("_zot/tmp")).expect("on demand");
    let repo = "app".parse::<RepoName>().expect("repo");
    let asked = MAX_TRACKED + MAX_TRACKED / 2;
    for i in 0..asked {
        let tag = Reference::Tag(format!("v{i}").parse::<Tag>().expect("tag"));
        assert!(od.manifest(&repo, &tag, None).await.is_none());
        assert!(od.tracked() <= MAX_TRACKED, "after {i}: {}", od.tracked());
    }
    assert!(od.tracked() > 0);
    assert_eq!(od.pulls_in_flight(), 0);
    assert_eq!(od.pending_manifests(), 0);
}

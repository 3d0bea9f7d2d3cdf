//! Two registries (two instances) on one bucket and one Redis metadata
//! store (`open_with_meta`): concurrent tag pushes through both lose
//! nothing and every tag is listed by both at once; a delete through one
//! is gone on the other; content pushed through both is stored once; the
//! first registry compares the store with the bucket and marks it, a
//! later one trusts the mark.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

#[path = "../../meta/tests/redis_common/mod.rs"]
mod redis_common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use s3_common::seaweed;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::{Layouts, MetaStore, Options, RedisAddress, Registry, S3Options, SyncReport};

const CHUNK: u64 = 5 << 20;

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

async fn push_blob(reg: &Registry, r: &RepoName, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let frames: Vec<Result<Bytes, Infallible>> = vec![Ok(Bytes::copy_from_slice(data))];
    let id = reg.start_upload(r).await.unwrap();
    reg.complete_upload(r, &id, &d, None, Some(futures_util::stream::iter(frames)))
        .await
        .unwrap();
    d
}

fn manifest(config: &Digest, layer: &Digest, n: usize) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{n}}}]}}"#
    )
}

async fn open(
    config: &zot_config::S3Config,
    redis: &redis_common::RedisServer,
) -> (Registry, SyncReport) {
    open_prefix(config, redis, "shared").await
}

async fn open_prefix(
    config: &zot_config::S3Config,
    redis: &redis_common::RedisServer,
    prefix: &str,
) -> (Registry, SyncReport) {
    let address = RedisAddress {
        url: redis.url(),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        sentinel: None,
        cluster: None,
    };
    let meta = MetaStore::open_redis(&address, prefix).unwrap();
    let layouts = Layouts::S3 {
        driver: config,
        options: &S3Options::default(),
    };
    zot_storage::open_with_meta(layouts, meta, Options::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_tags_at_once_and_store_content_once() {
    let server = seaweed::shared();
    let config = server.config(&server.bucket(), "zot", CHUNK);
    let redis = redis_common::RedisServer::start();

    // A bucket with a layout already in it, and a new store: compared.
    let (seed, _) = open(&config, &redis).await;
    let r = repo("shared/app");
    let cfg = push_blob(&seed, &r, b"{}").await;
    let layer = push_blob(&seed, &r, b"layer").await;
    let m = manifest(&cfg, &layer, 5);
    let first = Reference::Tag("first".parse().unwrap());
    seed.put_manifest(&r, &first, None, m.as_bytes())
        .await
        .unwrap();
    drop(seed);
    // A layout the shared store never heard of (written with another
    // store): a start that compared would find it.
    let (elsewhere, _) = open_prefix(&config, &redis, "elsewhere").await;
    push_blob(&elsewhere, &repo("hidden/app"), b"x").await;
    drop(elsewhere);

    let (one, report) = open(&config, &redis).await;
    assert_eq!(
        (report.repositories, report.rebuilt),
        (1, 0),
        "marked in step by the first start: not compared again ({report:?})"
    );
    assert_eq!(one.catalog(None, 10).unwrap().0, ["shared/app"]);
    let (two, _) = open(&config, &redis).await;
    let (one, two) = (Arc::new(one), Arc::new(two));

    // The same content through the other instance: stored once.
    assert_eq!(push_blob(&two, &repo("other/app"), b"layer").await, layer);
    let other = zot_storage::S3Backend::open(&config, &S3Options::default()).unwrap();
    use zot_storage::Backend as _;
    let size = other
        .size(&format!("other/app/blobs/sha256/{}", layer.hex()))
        .await
        .unwrap();
    assert_eq!(size, Some(0), "a placeholder: the content is in shared/app");

    let mut tasks = Vec::new();
    for i in 0..10 {
        for (name, reg) in [("one", one.clone()), ("two", two.clone())] {
            let (r, m) = (r.clone(), m.clone());
            tasks.push(tokio::spawn(async move {
                let tag = Reference::Tag(format!("{name}-{i}").parse().unwrap());
                reg.put_manifest(&r, &tag, None, m.as_bytes()).await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Both list every tag, at once (no write needed to learn them).
    let (a, _) = one.tags(&r, None, 100).unwrap();
    let (b, _) = two.tags(&r, None, 100).unwrap();
    assert_eq!(a.len(), 21, "{a:?}");
    assert_eq!(a, b);
    assert_eq!(
        one.catalog(None, 10).unwrap(),
        two.catalog(None, 10).unwrap()
    );

    // A tag deleted through one is gone on the other.
    let gone = Reference::Tag("two-3".parse().unwrap());
    one.delete_manifest(&r, &gone).await.unwrap();
    let (b, _) = two.tags(&r, None, 100).unwrap();
    assert!(!b.contains(&"two-3".to_owned()), "{b:?}");
    assert_eq!(b.len(), 20);
}

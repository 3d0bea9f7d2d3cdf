//! Upload sessions and leases shared between instances, on a real Redis
//! (`redis-server`) and a real S3 server (SeaweedFS): the session record's
//! compare-and-set, leases, and chunked uploads continued, queried,
//! finished and cancelled by other registries on the same bucket.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod s3_common;

use bytes::Bytes;
use futures_util::StreamExt;
use s3_common::redis::Redis;
use s3_common::seaweed;
use std::convert::Infallible;
use std::time::Duration;
use zot_oci::{Algorithm, Digest, HashState, RepoName};
use zot_storage::shared::SharedState;
use zot_storage::shared::lease::Leases;
use zot_storage::shared::sessions::{Caps, Created, Session, SessionRecord, SessionRecords};
use zot_storage::{
    Backend, Options, Registry, S3Backend, S3Options, StorageError, UploadState, open_local,
    open_s3,
};

const CHUNK: u64 = 5 << 20;

type Body = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>>;

fn body(data: &[u8]) -> Body {
    let frames: Vec<_> = data
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(frames)
}

fn no_body() -> Option<Body> {
    None
}

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

async fn read_blob(reg: &Registry, r: &RepoName, d: &Digest, len: u64) -> Vec<u8> {
    let mut s = reg.blob_stream(r, d, 0, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

struct Instances {
    regs: Vec<Registry>,
    config: zot_config::S3Config,
    _meta: Vec<tempfile::TempDir>,
}

impl Instances {
    /// Which of `keys` are objects in the bucket.
    async fn existing(&self, keys: &[String]) -> Vec<String> {
        let raw = S3Backend::open(&self.config, &S3Options::default()).unwrap();
        let mut out = Vec::new();
        for key in keys {
            if raw.size(key).await.unwrap().is_some() {
                out.push(key.clone());
            }
        }
        out
    }
}

/// The tail object the session record of `id` names, if any.
async fn tail_of(redis: &Redis, id: &uuid::Uuid) -> Option<String> {
    let shared = SharedState::connect(&redis.url, "zt").await.unwrap();
    let records = SessionRecords::new(shared, Duration::from_secs(60));
    match records.get(id).await.unwrap() {
        Some(Session::Open(r)) => r.data.tail.clone(),
        other => panic!("session {id}: {other:?}"),
    }
}

/// `n` registries on one bucket, each with its own metadata store, sharing
/// upload sessions through `redis`.
async fn instances(n: usize, redis: &Redis) -> Instances {
    let server = seaweed::shared();
    let config = server.config(&server.bucket(), "zot", CHUNK);
    let mut regs = Vec::new();
    let mut meta = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _) = open_s3(
            dir.path(),
            &config,
            &S3Options::default(),
            Options::default(),
        )
        .await
        .unwrap();
        let shared = SharedState::connect(&redis.url, "zt").await.unwrap();
        assert!(reg.share_state(shared));
        regs.push(reg);
        meta.push(dir);
    }
    Instances {
        regs,
        config,
        _meta: meta,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_records_compare_and_set_on_the_size() {
    let redis = Redis::start();
    let shared = SharedState::connect(&redis.url, "cas").await.unwrap();
    let records = SessionRecords::new(shared, Duration::from_secs(60));
    let id = uuid::Uuid::new_v4();
    let mut rec = SessionRecord {
        repo: "a/b".into(),
        size: 0,
        hash: HashState::new(Algorithm::Sha256),
        data: UploadState::default(),
        created: 1,
    };
    let caps = Caps {
        per_repo: 2,
        total: 3,
    };
    assert_eq!(records.create(&id, &rec, caps).await.unwrap(), Created::Yes);
    assert_eq!(
        records.create(&id, &rec, caps).await.unwrap(),
        Created::Taken,
        "an id is created once"
    );
    assert_eq!(
        records.get(&id).await.unwrap(),
        Some(Session::Open(Box::new(rec.clone())))
    );

    // Two writers at offset 0: the first to commit wins, the second fails.
    let mut first = rec.clone();
    first.size = 10;
    first.hash.update(b"0123456789");
    let mut second = rec.clone();
    second.size = 3;
    assert!(records.commit(&id, 0, &first).await.unwrap());
    assert!(!records.commit(&id, 0, &second).await.unwrap());
    assert_eq!(
        records.get(&id).await.unwrap(),
        Some(Session::Open(Box::new(first.clone())))
    );

    // Closing is a compare-and-set too; a closed session takes no write.
    assert!(!records.close(&id, "a/b", 3).await.unwrap());

    // Caps: two open sessions in a/b, three in all; closing uncounts.
    let other = uuid::Uuid::new_v4();
    assert_eq!(
        records.create(&other, &rec, caps).await.unwrap(),
        Created::Yes
    );
    assert_eq!(
        records
            .create(&uuid::Uuid::new_v4(), &rec, caps)
            .await
            .unwrap(),
        Created::RepoFull
    );
    let mut elsewhere = rec.clone();
    elsewhere.repo = "c".into();
    assert_eq!(
        records
            .create(&uuid::Uuid::new_v4(), &elsewhere, caps)
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(
        records
            .create(&uuid::Uuid::new_v4(), &elsewhere, caps)
            .await
            .unwrap(),
        Created::AllFull
    );
    assert!(records.close(&other, "a/b", 0).await.unwrap());
    assert_eq!(
        records
            .create(&uuid::Uuid::new_v4(), &elsewhere, caps)
            .await
            .unwrap(),
        Created::Yes
    );
    assert!(records.close(&id, "a/b", 10).await.unwrap());
    rec.size = 20;
    assert!(!records.commit(&id, 10, &rec).await.unwrap());
    assert_eq!(records.get(&id).await.unwrap(), Some(Session::Closed));
    records.delete(&id).await.unwrap();
    assert_eq!(records.get(&id).await.unwrap(), None);
    assert!(
        !records.commit(&id, 10, &rec).await.unwrap(),
        "a gone session takes no write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_renewed_released_and_expire() {
    let redis = Redis::start();
    let a = Leases::redis(SharedState::connect(&redis.url, "l").await.unwrap())
        .with_ttl(Duration::from_millis(600));
    let b = Leases::redis(SharedState::connect(&redis.url, "l").await.unwrap())
        .with_ttl(Duration::from_millis(600));

    let held = a.try_acquire("gc:default").await.unwrap().unwrap();
    assert!(b.try_acquire("gc:default").await.unwrap().is_none());
    // Renewed past its time to live while held.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(b.try_acquire("gc:default").await.unwrap().is_none());
    assert!(!held.is_lost());
    assert_eq!(
        b.holder("gc:default").await.unwrap().as_deref(),
        Some(held.token())
    );
    held.release().await.unwrap();
    let taken = b.try_acquire("gc:default").await.unwrap().unwrap();
    // Another name is another lease.
    let other = a.try_acquire("scrub:default").await.unwrap();
    assert!(other.is_some());
    drop(taken);

    // A holder that crashed (a token nobody renews) is replaced after the
    // time to live.
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("l:lease:sync:0")
        .arg("crashed")
        .arg("PX")
        .arg(700)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(a.try_acquire("sync:0").await.unwrap().is_none());
    let started = std::time::Instant::now();
    let guard = a.acquire("sync:0").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The crashed holder's late release cannot remove the new lease.
    let _: i64 = redis::cmd("EVAL")
        .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
        .arg(1)
        .arg("l:lease:sync:0")
        .arg("crashed")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(b.try_acquire("sync:0").await.unwrap().is_none());
    drop(guard);

    // Someone else takes the key over: the holder learns it lost the lease.
    let held = a.try_acquire("scrub:x").await.unwrap().unwrap();
    let _: () = redis::cmd("SET")
        .arg("l:lease:scrub:x")
        .arg("thief")
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(held.is_lost());

    // Without Redis every lease is granted at once.
    let local = Leases::local();
    let one = local.try_acquire("gc:default").await.unwrap().unwrap();
    assert!(local.try_acquire("gc:default").await.unwrap().is_some());
    assert!(!one.is_lost());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_moves_between_three_registries_on_one_bucket() {
    let redis = Redis::start();
    let set = instances(3, &redis).await;
    let [a, b, c] = &set.regs[..] else { panic!() };
    let r: RepoName = "team/app".parse().unwrap();
    // Chunks smaller and larger than a part, one exactly a part, ending on
    // a part boundary and not.
    let sizes = [1 << 20, 7 << 20, 300 << 10, 5 << 20, 1, 11 << 20, 123_457];
    let total: usize = sizes.iter().sum();
    let data = content(total, 7);
    let digest = Digest::sha256_of(&data);

    let id = a.start_upload(&r).await.unwrap();
    let mut at = 0usize;
    let mut tails = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let reg = &set.regs[i % 3];
        let size = reg
            .append_upload(&r, &id, Some(at as u64), body(&data[at..at + n]))
            .await
            .unwrap();
        at += n;
        assert_eq!(size, at as u64);
        // The bytes after the last whole part are one tail object; the
        // one it replaced is gone.
        let tail = tail_of(&redis, &id).await;
        assert_eq!(
            tail.is_some(),
            !(at as u64).is_multiple_of(CHUNK),
            "{tail:?} at {at}"
        );
        tails.extend(tail.clone());
        let existing = set.existing(&tails).await;
        assert_eq!(existing, tail.into_iter().collect::<Vec<_>>());
        for other in &set.regs {
            assert_eq!(other.upload_size(&r, &id).await.unwrap(), size);
        }
        if i == 2 {
            // A chunk at a wrong offset, on another instance: 416 with the size.
            let wrong = b.append_upload(&r, &id, Some(3), body(b"x")).await;
            assert!(
                matches!(wrong, Err(StorageError::RangeInvalid { size: s }) if s == at as u64),
                "{wrong:?}"
            );
        }
    }
    // Another repository cannot use the session.
    let elsewhere: RepoName = "team/other".parse().unwrap();
    assert!(matches!(
        b.upload_size(&elsewhere, &id).await,
        Err(StorageError::UploadUnknown)
    ));
    // The last chunk comes with the PUT, on C.
    let last = content(4 << 20, 9);
    let mut all = data.clone();
    all.extend_from_slice(&last);
    let digest_all = Digest::sha256_of(&all);
    assert_ne!(digest, digest_all);
    c.complete_upload(&r, &id, &digest_all, Some(at as u64), Some(body(&last)))
        .await
        .unwrap();
    for reg in [a, b, c] {
        assert!(matches!(
            reg.upload_size(&r, &id).await,
            Err(StorageError::UploadUnknown)
        ));
        let got = read_blob(reg, &r, &digest_all, all.len() as u64).await;
        assert_eq!(Digest::sha256_of(&got), digest_all);
    }
    // Over 16 MiB: parked by C (served above from the finished upload by
    // every instance), then moved by another instance.
    let raw = S3Backend::open(&set.config, &S3Options::default()).unwrap();
    let blob_key = format!("{r}/blobs/sha256/{}", digest_all.hex());
    assert_eq!(raw.size(&blob_key).await.unwrap(), Some(0), "parked");
    assert_eq!(a.move_parked_now().await.unwrap(), 1);
    assert_eq!(raw.size(&blob_key).await.unwrap(), Some(all.len() as u64));
    assert!(raw.list(".parked").await.unwrap().is_empty());
    for reg in [a, b, c] {
        let got = read_blob(reg, &r, &digest_all, all.len() as u64).await;
        assert_eq!(Digest::sha256_of(&got), digest_all);
    }

    assert!(tails.len() >= 4, "{tails:?}");
    assert_eq!(set.existing(&tails).await, Vec::<String>::new());

    // A small upload finished elsewhere with a SHA-512 digest (hashed from
    // the stored data), and a wrong digest storing nothing.
    let small = content(1000, 3);
    let mut h = Algorithm::Sha512.hasher();
    h.update(&small);
    let d512 = h.finish();
    let id = b.start_upload(&r).await.unwrap();
    a.append_upload(&r, &id, Some(0), body(&small))
        .await
        .unwrap();
    c.complete_upload(&r, &id, &d512, None, no_body())
        .await
        .unwrap();
    assert_eq!(read_blob(a, &r, &d512, 1000).await, small);
    let id = b.start_upload(&r).await.unwrap();
    a.append_upload(&r, &id, Some(0), body(b"abc"))
        .await
        .unwrap();
    let wrong = c
        .complete_upload(&r, &id, &Digest::sha256_of(b"abd"), None, no_body())
        .await;
    assert!(
        matches!(wrong, Err(StorageError::DigestInvalid(_))),
        "{wrong:?}"
    );
    assert_eq!(
        a.blob_size(&r, &Digest::sha256_of(b"abc")).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chunks_at_one_offset_and_a_cancel_elsewhere() {
    let redis = Redis::start();
    let set = instances(2, &redis).await;
    let [a, b] = &set.regs[..] else { panic!() };
    let r: RepoName = "race".parse().unwrap();
    let id = a.start_upload(&r).await.unwrap();
    let one = content(6 << 20, 1);
    let two = content(2 << 20, 2);
    let (x, y) = tokio::join!(
        a.append_upload(&r, &id, Some(0), body(&one)),
        b.append_upload(&r, &id, Some(0), body(&two)),
    );
    // Exactly one is acknowledged; the other is told the size it lost to.
    let won = match (&x, &y) {
        (Ok(n), Err(StorageError::RangeInvalid { size })) if *n == *size => &one,
        (Err(StorageError::RangeInvalid { size }), Ok(n)) if *n == *size => &two,
        other => panic!("expected one success and one 416: {other:?}"),
    };
    let digest = Digest::sha256_of(won);
    b.complete_upload(&r, &id, &digest, None, no_body())
        .await
        .unwrap();
    assert_eq!(read_blob(a, &r, &digest, won.len() as u64).await, *won);

    // Cancelled on B, the session is gone on A.
    let id = a.start_upload(&r).await.unwrap();
    a.append_upload(&r, &id, None, body(&content(6 << 20, 4)))
        .await
        .unwrap();
    let tail = tail_of(&redis, &id).await.unwrap();
    assert_eq!(
        set.existing(std::slice::from_ref(&tail)).await,
        vec![tail.clone()]
    );
    b.cancel_upload(&r, &id).await.unwrap();
    assert_eq!(set.existing(&[tail]).await, Vec::<String>::new());
    assert!(matches!(
        a.upload_size(&r, &id).await,
        Err(StorageError::UploadUnknown)
    ));
    assert!(matches!(
        a.append_upload(&r, &id, None, body(b"late")).await,
        Err(StorageError::UploadUnknown)
    ));
    // Nothing is left behind: completion and cancel removed the tails.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sessions_over_the_local_driver() {
    let redis = Redis::start();
    let root = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(root.path(), false, Options::default())
        .await
        .unwrap();
    assert!(reg.share_state(SharedState::connect(&redis.url, "loc").await.unwrap()));
    let r: RepoName = "local/one".parse().unwrap();
    let data = content(3 << 20, 5);
    let id = reg.start_upload(&r).await.unwrap();
    for (i, piece) in data.chunks(700_001).enumerate() {
        let size = reg
            .append_upload(&r, &id, Some((i * 700_001) as u64), body(piece))
            .await
            .unwrap();
        assert_eq!(size, (i * 700_001 + piece.len()) as u64);
    }
    let d = Digest::sha256_of(&data);
    reg.complete_upload(&r, &id, &d, None, no_body())
        .await
        .unwrap();
    assert_eq!(read_blob(&reg, &r, &d, data.len() as u64).await, data);
    // An empty upload completes too.
    let id = reg.start_upload(&r).await.unwrap();
    let empty = Digest::sha256_of(b"");
    reg.complete_upload(&r, &id, &empty, None, no_body())
        .await
        .unwrap();
    assert_eq!(reg.blob_size(&r, &empty).await.unwrap(), Some(0));
}

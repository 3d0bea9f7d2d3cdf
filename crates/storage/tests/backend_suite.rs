//! One test suite for every storage driver (object_store's habit): each
//! case runs against `LocalBackend` on a temporary folder and `S3Backend`
//! on a fresh bucket of a SeaweedFS server started once for this binary.

mod s3_common;

use futures_util::StreamExt;
use s3_common::seaweed;
use std::io::{self, Write};
use std::sync::Arc;
use zot_storage::{Backend, BoxSink, Entry, LocalBackend, S3Backend, S3Options};

/// S3's smallest part: uploads past it become multipart uploads.
const CHUNK: u64 = 5 << 20;

struct Subject {
    backend: Arc<dyn Backend>,
    _dir: Option<tempfile::TempDir>,
}

fn local() -> Subject {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend =
        LocalBackend::new(dir.path().to_path_buf(), false).unwrap_or_else(|e| panic!("{e}"));
    Subject {
        backend: Arc::new(backend),
        _dir: Some(dir),
    }
}

fn s3() -> Subject {
    let server = seaweed::shared();
    let config = server.config(&server.bucket(), "zot", CHUNK);
    let backend = S3Backend::open(&config, &S3Options::default()).unwrap_or_else(|e| panic!("{e}"));
    Subject {
        backend: Arc::new(backend),
        _dir: None,
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod local_disk {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::local().backend).await })*
        }
        mod s3_bucket {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::s3().backend).await })*
        }
    };
}

both!(
    missing_keys,
    whole_objects,
    ranges,
    uploads_append_across_sinks,
    large_upload_spans_parts,
    resumed_upload_drops_unacknowledged_data,
    links,
    deletes,
    listing_nested_prefixes,
    delete_prefix_removes_only_its_subtree,
    fingerprints_change_with_content,
    conditional_writes,
);

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn kind<T>(r: io::Result<T>) -> Option<io::ErrorKind> {
    r.err().map(|e| e.kind())
}

/// Deterministic content: `n` bytes from `seed`.
fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Writes `data` in 256 KiB writes on a blocking thread (as the registry
/// does), flushing at the end when `flush`.
async fn write(sink: BoxSink, data: Vec<u8>, flush: bool) -> BoxSink {
    ok(tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        for piece in data.chunks(256 << 10) {
            sink.write_all(piece)?;
        }
        if flush {
            sink.flush()?;
        }
        io::Result::Ok(sink)
    })
    .await
    .map_err(io::Error::other)
    .and_then(|r| r))
}

async fn read_range(b: &Arc<dyn Backend>, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut stream = b.read_stream(key, start, len).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Every object under `prefix`, found by listing folder by folder.
async fn objects_under(b: &Arc<dyn Backend>, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut folders = vec![prefix.to_owned()];
    while let Some(dir) = folders.pop() {
        for e in ok(b.list(&dir).await) {
            let key = format!("{dir}/{}", e.name);
            if e.is_dir {
                folders.push(key);
            } else {
                out.push(key);
            }
        }
    }
    out
}

async fn missing_keys(b: Arc<dyn Backend>) {
    let key = "r/blobs/sha256/none";
    assert_eq!(ok(b.size(key).await), None);
    assert_eq!(kind(b.read(key).await), Some(io::ErrorKind::NotFound));
    assert_eq!(
        kind(b.read_at_most(key, 10).await),
        Some(io::ErrorKind::NotFound)
    );
    assert_eq!(
        kind(b.read_stream(key, 0, 1).await),
        Some(io::ErrorKind::NotFound)
    );
    assert_eq!(
        kind(b.read_stream(key, 0, 0).await),
        Some(io::ErrorKind::NotFound)
    );
    assert_eq!(ok(b.fingerprint(key).await), None);
    assert_eq!(ok(b.age_secs(key).await), None);
    assert!(!ok(b.delete(key).await));
    assert_eq!(ok(b.list("r").await), Vec::<Entry>::new());
    assert_eq!(
        kind(b.link(key, "r/x").await),
        Some(io::ErrorKind::NotFound)
    );
    ok(b.delete_prefix("nothing/here").await);
    // A sink cannot continue an object that is not there.
    assert_eq!(
        kind(b.sink("r/.uploads/u", 5).await),
        Some(io::ErrorKind::UnexpectedEof)
    );
}

async fn whole_objects(b: Arc<dyn Backend>) {
    ok(b.write_atomic("r/index.json", b"0123456789").await);
    assert_eq!(ok(b.size("r/index.json").await), Some(10));
    assert_eq!(ok(b.read("r/index.json").await), b"0123456789");
    assert_eq!(ok(b.read_at_most("r/index.json", 10).await), b"0123456789");
    assert_eq!(
        kind(b.read_at_most("r/index.json", 9).await),
        Some(io::ErrorKind::FileTooLarge)
    );
    // Replaced whole.
    ok(b.write_atomic("r/index.json", b"abc").await);
    assert_eq!(ok(b.read("r/index.json").await), b"abc");
    ok(b.write_atomic("r/empty", b"").await);
    assert_eq!(ok(b.size("r/empty").await), Some(0));
    assert_eq!(ok(b.read("r/empty").await), b"");
    let many = b
        .read_many_at_most(
            vec!["r/index.json".into(), "r/missing".into(), "r/empty".into()],
            5,
            u64::MAX,
        )
        .await;
    let got: Vec<_> = many
        .into_iter()
        .map(|r| r.map(|r| r.map_err(|e| e.kind())))
        .collect();
    assert_eq!(
        got,
        vec![
            Some(Ok(b"abc".to_vec())),
            Some(Err(io::ErrorKind::NotFound)),
            Some(Ok(Vec::new()))
        ]
    );
    // Past the budget, the rest is not read.
    let capped = b
        .read_many_at_most(vec!["r/index.json".into(); 40], 5, 3)
        .await;
    assert_eq!(capped.len(), 40);
    assert!(capped[0].is_some(), "the first group is read");
    assert!(capped[39].is_none(), "past the budget nothing is read");
    let age = ok(b.age_secs("r/index.json").await);
    assert!(age.is_some_and(|a| a < 120), "age {age:?}");
}

async fn ranges(b: Arc<dyn Backend>) {
    let data = content(3 << 20, 7);
    ok(b.write_atomic("r/blobs/sha256/a", &data).await);
    let key = "r/blobs/sha256/a";
    assert_eq!(ok(read_range(&b, key, 0, data.len() as u64).await), data);
    assert_eq!(ok(read_range(&b, key, 5, 10).await), &data[5..15]);
    let tail = data.len() as u64 - 100;
    assert_eq!(
        ok(read_range(&b, key, tail, 100).await),
        &data[tail as usize..]
    );
    assert_eq!(ok(read_range(&b, key, 17, 0).await), b"");
    // A range past the end is an error, at once or in the stream: never a short body.
    let past = read_range(&b, key, tail, 200).await;
    assert!(
        past.is_err(),
        "a range past the end read {:?} bytes",
        past.map(|v| v.len())
    );
}

async fn uploads_append_across_sinks(b: Arc<dyn Backend>) {
    let key = "r/.uploads/11111111-1111-1111-1111-111111111111";
    // Created empty, as a new upload session does.
    drop(ok(b.sink(key, 0).await));
    assert_eq!(ok(b.size(key).await), Some(0));
    let listed = ok(b.list("r/.uploads").await);
    assert_eq!(
        listed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["11111111-1111-1111-1111-111111111111"]
    );
    assert!(ok(b.list("r").await).contains(&Entry {
        name: ".uploads".into(),
        is_dir: true
    }));
    let (a, c) = (content(1000, 1), content(70_000, 2));
    drop(write(ok(b.sink(key, 0).await), a.clone(), true).await);
    assert_eq!(ok(b.size(key).await), Some(1000));
    drop(write(ok(b.sink(key, 1000).await), c.clone(), true).await);
    assert_eq!(ok(b.size(key).await), Some(71_000));
    assert!(ok(b.age_secs(key).await).is_some_and(|a| a < 120));
    ok(b.publish(key, "r/blobs/sha256/small").await);
    assert_eq!(ok(b.size(key).await), None);
    assert_eq!(ok(b.read("r/blobs/sha256/small").await), [a, c].concat());
    assert!(ok(b.list("r/.uploads").await).is_empty());
}

async fn large_upload_spans_parts(b: Arc<dyn Backend>) {
    let key = "r/.uploads/22222222-2222-2222-2222-222222222222";
    let data = content((2 * CHUNK + 123_457) as usize, 3);
    // Three PATCH-like sinks of uneven sizes: parts fill across them.
    let cuts = [0, 3 << 20, (8 << 20) + 5, data.len()];
    for w in cuts.windows(2) {
        let sink = ok(b.sink(key, w[0] as u64).await);
        drop(write(sink, data[w[0]..w[1]].to_vec(), true).await);
        assert_eq!(ok(b.size(key).await), Some(w[1] as u64));
    }
    // Reading an upload being written sees all of it.
    assert_eq!(ok(read_range(&b, key, 0, 10).await), &data[..10]);
    ok(b.publish(key, "r/blobs/sha256/large").await);
    assert_eq!(
        ok(b.size("r/blobs/sha256/large").await),
        Some(data.len() as u64)
    );
    assert_eq!(ok(b.size(key).await), None);
    let start = CHUNK - 10;
    assert_eq!(
        ok(read_range(&b, "r/blobs/sha256/large", start, 20).await),
        &data[start as usize..start as usize + 20]
    );
    let all = ok(read_range(&b, "r/blobs/sha256/large", 0, data.len() as u64).await);
    assert!(
        all == data,
        "the published blob differs from what was written"
    );
}

async fn resumed_upload_drops_unacknowledged_data(b: Arc<dyn Backend>) {
    let key = "r/.uploads/33333333-3333-3333-3333-333333333333";
    let acked = content(3 << 20, 4);
    drop(write(ok(b.sink(key, 0).await), acked.clone(), true).await);
    // A request dropped mid-body: 4 MiB more written (past a part
    // boundary), never flushed nor acknowledged.
    let dropped = write(ok(b.sink(key, 3 << 20).await), content(4 << 20, 5), false).await;
    drop(dropped);
    // The next request continues at the acknowledged offset.
    let next = content(1 << 20, 6);
    drop(write(ok(b.sink(key, 3 << 20).await), next.clone(), true).await);
    assert_eq!(ok(b.size(key).await), Some(4 << 20));
    ok(b.publish(key, "r/blobs/sha256/resumed").await);
    let got = ok(b.read("r/blobs/sha256/resumed").await);
    assert!(
        got == [acked, next].concat(),
        "resumed upload content differs"
    );
    // A request dropped after its flush but before its acknowledgement:
    // the next one starts at the acknowledged offset, inside a part.
    let key3 = "r/.uploads/77777777-7777-7777-7777-777777777777";
    let first = content(3 << 20, 9);
    drop(write(ok(b.sink(key3, 0).await), first.clone(), true).await);
    drop(write(ok(b.sink(key3, 3 << 20).await), content(4 << 20, 10), true).await);
    assert_eq!(ok(b.size(key3).await), Some(7 << 20));
    let again = content(2 << 20, 11);
    drop(write(ok(b.sink(key3, 3 << 20).await), again.clone(), true).await);
    ok(b.publish(key3, "r/blobs/sha256/after-flush").await);
    let got = ok(b.read("r/blobs/sha256/after-flush").await);
    assert!(
        got == [first, again].concat(),
        "content after the cut differs"
    );
    // A sink past the end is refused.
    let key2 = "r/.uploads/44444444-4444-4444-4444-444444444444";
    drop(write(ok(b.sink(key2, 0).await), b"abc".to_vec(), true).await);
    assert_eq!(
        kind(b.sink(key2, 4).await),
        Some(io::ErrorKind::UnexpectedEof)
    );
    // Cutting within what was acknowledged.
    drop(write(ok(b.sink(key2, 1).await), b"Z".to_vec(), true).await);
    ok(b.publish(key2, "r/blobs/sha256/cut").await);
    assert_eq!(ok(b.read("r/blobs/sha256/cut").await), b"aZ");
}

async fn links(b: Arc<dyn Backend>) {
    ok(b.write_atomic("a/blobs/sha256/x", b"shared").await);
    ok(b.link("a/blobs/sha256/x", "b/blobs/sha256/x").await);
    assert_eq!(ok(b.read("b/blobs/sha256/x").await), b"shared");
    assert_eq!(
        kind(b.link("a/blobs/sha256/x", "b/blobs/sha256/x").await),
        Some(io::ErrorKind::AlreadyExists)
    );
    // Each holder deletes its own.
    assert!(ok(b.delete("a/blobs/sha256/x").await));
    assert_eq!(ok(b.read("b/blobs/sha256/x").await), b"shared");
}

async fn deletes(b: Arc<dyn Backend>) {
    ok(b.write_atomic("r/oci-layout", b"{}").await);
    assert!(ok(b.delete("r/oci-layout").await));
    assert!(!ok(b.delete("r/oci-layout").await));
    assert_eq!(ok(b.size("r/oci-layout").await), None);
    // An upload being written.
    let key = "r/.uploads/55555555-5555-5555-5555-555555555555";
    drop(
        write(
            ok(b.sink(key, 0).await),
            content(CHUNK as usize + 10, 8),
            true,
        )
        .await,
    );
    assert!(ok(b.delete(key).await));
    assert_eq!(ok(b.size(key).await), None);
    assert!(ok(b.list("r/.uploads").await).is_empty());
}

async fn listing_nested_prefixes(b: Arc<dyn Backend>) {
    for key in ["a/b/c", "a/b/d/e", "a/f", "a2/g", "a/b/d/h/i"] {
        ok(b.write_atomic(key, key.as_bytes()).await);
    }
    let names = |v: Vec<Entry>| {
        v.into_iter()
            .map(|e| (e.name, e.is_dir))
            .collect::<Vec<_>>()
    };
    let s = |n: &str, d| (n.to_owned(), d);
    assert_eq!(
        names(ok(b.list("a").await)),
        vec![s("b", true), s("f", false)]
    );
    assert_eq!(
        names(ok(b.list("a/b").await)),
        vec![s("c", false), s("d", true)]
    );
    assert_eq!(
        names(ok(b.list("a/b/d").await)),
        vec![s("e", false), s("h", true)]
    );
    let top = names(ok(b.list("").await));
    assert!(
        top.contains(&s("a", true)) && top.contains(&s("a2", true)),
        "{top:?}"
    );
    assert!(ok(b.list("a/f/none").await).is_empty());
}

async fn delete_prefix_removes_only_its_subtree(b: Arc<dyn Backend>) {
    for key in ["a/b/c", "a/b/d/e", "a/f", "a2/g", "ab/h"] {
        ok(b.write_atomic(key, b"x").await);
    }
    let upload = "a/.uploads/66666666-6666-6666-6666-666666666666";
    drop(write(ok(b.sink(upload, 0).await), b"abc".to_vec(), true).await);
    ok(b.delete_prefix("a").await);
    for key in ["a/b/c", "a/b/d/e", "a/f", upload] {
        assert_eq!(ok(b.size(key).await), None, "{key} survived");
    }
    // No object is left under it (SeaweedFS may still list an empty folder).
    let left = objects_under(&b, "a").await;
    assert!(left.is_empty(), "{left:?}");
    for key in ["a2/g", "ab/h"] {
        assert_eq!(ok(b.size(key).await), Some(1), "{key} was removed");
    }
}

async fn fingerprints_change_with_content(b: Arc<dyn Backend>) {
    ok(b.write_atomic("r/index.json", b"one").await);
    let first = ok(b.fingerprint("r/index.json").await);
    assert_eq!(first.map(|f| f.size), Some(3));
    assert_eq!(ok(b.fingerprint("r/index.json").await), first, "unstable");
    ok(b.write_atomic("r/index.json", b"two").await);
    let second = ok(b.fingerprint("r/index.json").await);
    assert!(second.is_some() && second != first, "{first:?} {second:?}");
}

async fn conditional_writes(b: Arc<dyn Backend>) {
    let key = "r/index.json";
    let written = ok(b.write_atomic_if(key, b"first", None).await);
    assert_eq!(written, ok(b.fingerprint(key).await));
    assert!(written.is_some());
    // Only if absent: it exists now.
    assert_eq!(ok(b.write_atomic_if(key, b"again", None).await), None);
    let read = ok(b.read_versioned(key).await);
    assert_eq!(read.data, b"first");
    assert_eq!(Some(read.fingerprint), ok(b.fingerprint(key).await));
    let v1 = read.version;
    let written = ok(b.write_atomic_if(key, b"second", Some(&v1)).await);
    assert!(written.is_some() && written != ok(b.fingerprint("r/none").await));
    assert_eq!(written, ok(b.fingerprint(key).await));
    // A writer that read the first version lost the race: nothing written.
    assert_eq!(ok(b.write_atomic_if(key, b"lost", Some(&v1)).await), None);
    let read = ok(b.read_versioned(key).await);
    assert_eq!(read.data, b"second");
    let v2 = read.version;
    assert_ne!(v1, v2);
    assert_eq!(
        kind(b.read_versioned("r/none").await),
        Some(io::ErrorKind::NotFound)
    );
}

//! Upload sessions under concurrency and cancellation: the caps on open
//! sessions hold, and a request dropped mid-way leaves nothing counted or
//! stored for good.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use bytes::Bytes;
use std::convert::Infallible;
use std::sync::Arc;
use zot_oci::{Digest, RepoName};
use zot_storage::{Options, StorageError, open_local};

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

/// Starts `n` sessions at once, in the repositories `repo_of(i)`; returns
/// how many were opened. Every failure must be a cap.
async fn start_concurrently(
    reg: &Arc<zot_storage::Registry>,
    n: usize,
    repo_of: impl Fn(usize) -> RepoName,
) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (reg, r) = (reg.clone(), repo_of(i));
            tokio::spawn(async move { reg.start_upload(&r).await })
        })
        .collect();
    let mut opened = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => opened += 1,
            Err(StorageError::TooManyUploads(_) | StorageError::TooManyOpenUploads(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    opened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_never_pass_the_repository_cap() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_uploads_per_repo: 5,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let reg = Arc::new(reg);
    assert_eq!(start_concurrently(&reg, 60, |_| repo("capped")).await, 5);
    let files = std::fs::read_dir(dir.path().join("capped/.uploads")).unwrap();
    assert_eq!(files.count(), 5, "no file of a refused session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_sessions_are_capped_across_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_uploads: 7,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    let reg = Arc::new(reg);
    let opened = start_concurrently(&reg, 40, |i| repo(&format!("x/r{i}"))).await;
    assert_eq!(opened, 7);
    assert!(matches!(
        reg.start_upload(&repo("x/another")).await,
        Err(StorageError::TooManyOpenUploads(7))
    ));
}

/// A completing `PUT` whose client disconnects is dropped once it has
/// closed its session (here: once the blob's repository layout is written,
/// before the blob is placed): the session must not stay counted, and the
/// sweep removes it and its file.
#[tokio::test]
async fn completions_dropped_midway_free_their_session() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_uploads: 3,
        ..Options::default()
    };
    let (reg, _) = open_local(dir.path(), false, options).await.unwrap();
    // Rarely, every wait of a completion is over before it is polled
    // again and it completes (or its blob is placed): that attempt does
    // not count.
    let (mut dropped, mut attempts) = (0, 0u8);
    while dropped < 6 {
        assert!(attempts < 60, "completions always finished");
        let i = attempts;
        attempts += 1;
        let r = repo(&format!("dropped/r{i}"));
        let data = [b'a', i];
        let id = reg.start_upload(&r).await.unwrap();
        reg.append_upload(&r, &id, Some(0), body(&data))
            .await
            .unwrap();
        let d = Digest::sha256_of(&data);
        let no_body = None::<futures_util::stream::Empty<Result<Bytes, Infallible>>>;
        let mut completing = std::pin::pin!(reg.complete_upload(&r, &id, &d, None, no_body));
        let layout = dir.path().join(format!("dropped/r{i}/oci-layout"));
        let mut completed = false;
        while !layout.exists() && !completed {
            completed = futures_util::poll!(completing.as_mut()).is_ready();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // The placement runs on a blocking thread of its own: on a loaded
        // machine it may have moved the file before this drop, and then
        // the attempt was not dropped midway either (it does not count).
        let file = dir.path().join(format!("dropped/r{i}/.uploads/{id}"));
        if !completed && file.exists() {
            dropped += 1;
        }
    }
    // More dropped completions than the cap: new sessions still open.
    let r = repo("dropped/r0");
    let id = reg.start_upload(&r).await.unwrap();
    reg.cancel_upload(&r, &id).await.unwrap();

    // The sweep removes the dropped sessions' files, whatever the TTL.
    reg.expire_uploads(false).await.unwrap();
    for i in 0..attempts {
        let uploads = dir.path().join(format!("dropped/r{i}/.uploads"));
        let left: Vec<_> = std::fs::read_dir(uploads).unwrap().collect();
        assert!(left.is_empty(), "orphaned upload files: {left:?}");
    }
}

/// An upload followed while written (the sync pull-through's way): the
/// hook hears only of bytes in the file, in order, up to the whole body;
/// the handle reads them, and still reads the blob once completion moved
/// the file into place.
#[tokio::test]
async fn an_upload_is_followed_through_its_file_as_far_as_it_is_written() {
    use std::os::unix::fs::FileExt;
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let r = repo("followed");
    let id = reg.start_upload(&r).await.unwrap();
    let file = reg
        .upload_file(&r, &id)
        .await
        .unwrap()
        .expect("a local file");
    // Many frames, so that the writer writes several batches.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let frames: Vec<Result<Bytes, Infallible>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook: zot_storage::WrittenHook = {
        let (seen, file) = (seen.clone(), file.try_clone().unwrap());
        Arc::new(move |n| {
            // Every byte reported is readable through the handle.
            let mut buf = vec![0u8; usize::try_from(n).unwrap()];
            file.read_exact_at(&mut buf, 0).unwrap();
            seen.lock().unwrap().push((n, buf.len()));
        })
    };
    let size = reg
        .append_upload_watched(
            &r,
            &id,
            Some(0),
            futures_util::stream::iter(frames),
            Some(hook),
        )
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 1, "one report per batch: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "in order: {seen:?}"
    );
    assert_eq!(seen.last().map(|s| s.0), Some(data.len() as u64));
    let digest = Digest::sha256_of(&data);
    reg.complete_upload(
        &r,
        &id,
        &digest,
        None,
        None::<futures_util::stream::Empty<Result<Bytes, Infallible>>>,
    )
    .await
    .unwrap();
    let mut back = vec![0u8; data.len()];
    file.read_exact_at(&mut back, 0).unwrap();
    assert!(back == data, "the handle reads the stored blob");
    assert_eq!(
        reg.blob_size(&r, &digest).await.unwrap(),
        Some(data.len() as u64)
    );
}

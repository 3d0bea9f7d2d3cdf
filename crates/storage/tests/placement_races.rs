//! Blob placements and mounts racing garbage collection, made deterministic
//! by a driver that stops a placement half-way until the test lets it go.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod pausing_common;

use bytes::Bytes;
use pausing_common::{Pausing, Stop};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use zot_oci::{Digest, RepoName};
use zot_storage::{GcOptions, LocalBackend, MetaStore, Options, Registry};

fn open(root: &std::path::Path) -> (Arc<Registry>, Arc<Pausing>) {
    std::fs::create_dir_all(root.join("_zot")).unwrap();
    let meta = MetaStore::open(&root.join("_zot/meta.redb")).unwrap();
    let local = LocalBackend::new(root.to_path_buf(), false).unwrap();
    let backend = Arc::new(Pausing::new(Arc::new(local)));
    let reg = Registry::new(backend.clone(), meta, Options::default());
    (Arc::new(reg), backend)
}

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, Infallible>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

fn gc(delay: Duration) -> GcOptions {
    GcOptions {
        delay,
        ..GcOptions::default()
    }
}

/// GC finds a new repository empty while its first blob is being placed:
/// it must not remove the layout from under the placement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_does_not_remove_a_repository_whose_first_blob_is_being_placed() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, backend) = open(dir.path());
    reg.track_placements(Duration::from_secs(3600));
    let r = repo("first/blob");
    let data = b"the first blob of a new repository";
    let digest = Digest::sha256_of(data);
    backend.stop_at(Stop::BeforePublish, digest.hex());

    let id = reg.start_upload(&r).await.unwrap();
    let (reg2, r2, d2) = (reg.clone(), r.clone(), digest.clone());
    let upload = tokio::spawn(async move {
        reg2.complete_upload(&r2, &id, &d2, None, Some(body(data)))
            .await
    });
    backend.reached.notified().await;
    // The placement has made the layout and is about to store the blob.
    let (reg3, r3) = (reg.clone(), r.clone());
    let collect =
        tokio::spawn(async move { reg3.gc_repo(&r3, &gc(Duration::from_secs(3600))).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.go.notify_one();
    upload.await.unwrap().unwrap();
    let report = collect.await.unwrap().unwrap();

    let blob = dir
        .path()
        .join(format!("first/blob/blobs/sha256/{}", digest.hex()));
    assert!(blob.exists());
    assert!(
        !report.repository_removed && dir.path().join("first/blob/oci-layout").exists(),
        "the blob was left in a folder that is no longer a layout: {report:?}"
    );
    assert!(reg.repositories().await.unwrap().contains(&r));
    assert_eq!(reg.locked_repositories(), 0, "idle locks are pruned");
}

/// GC sweeps the target repository right after a mount has linked the
/// blob: the just-mounted blob (whose file is old) must survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_a_blob_mounted_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, backend) = open(dir.path());
    let delay = Duration::from_secs(1);
    reg.track_placements(delay);
    let (src, dst) = (repo("mount/src"), repo("mount/dst"));
    let data = b"a layer that is mounted";
    let digest = Digest::sha256_of(data);
    let id = reg.start_upload(&src).await.unwrap();
    reg.complete_upload(&src, &id, &digest, None, Some(body(data)))
        .await
        .unwrap();
    // The source file is old (the mount's hard link shares its age), and
    // the grace period after start-up is over.
    let src_file = dir
        .path()
        .join(format!("mount/src/blobs/sha256/{}", digest.hex()));
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&src_file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    tokio::time::sleep(delay + Duration::from_millis(100)).await;

    backend.stop_at(
        Stop::AfterLink,
        &format!("mount/dst/blobs/sha256/{}", digest.hex()),
    );
    let (reg2, d2, src2, dst2) = (reg.clone(), digest.clone(), src.clone(), dst.clone());
    let mount = tokio::spawn(async move { reg2.mount_blob(&dst2, &d2, Some(&src2)).await });
    backend.reached.notified().await;
    let (reg3, dst3) = (reg.clone(), dst.clone());
    let collect = tokio::spawn(async move { reg3.gc_repo(&dst3, &gc(delay)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.go.notify_one();
    assert!(mount.await.unwrap().unwrap());
    let report = collect.await.unwrap().unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    assert_eq!(
        reg.blob_size(&dst, &digest).await.unwrap(),
        Some(data.len() as u64),
        "GC removed a blob just mounted"
    );
}

//! Bounded stress (about 5 s): pushes, untags and pulls run concurrently
//! across repositories sharing layers, while GC runs every second with a
//! 1 s gcDelay. Every push must succeed, and no pull of an acknowledged,
//! still-tagged image may ever fail.

mod gc_common;

use gc_common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zot_oci::RepoName;
use zot_storage::retention::Retention;
use zot_storage::{GcOptions, Options, open_local};

const RUN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_and_pulls_with_gc_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = open_local(dir.path(), false, Options::default())
        .await
        .unwrap();
    let reg = Arc::new(reg);
    let delay = Duration::from_secs(1);
    reg.track_placements(delay);
    let acked: Arc<Mutex<Vec<(RepoName, String)>>> = Arc::default();
    let end = Instant::now() + RUN;
    let mut tasks = Vec::new();

    for p in 0..3 {
        let (reg, acked) = (reg.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let r = repo(&format!("stress/r{}", p % 2));
            let mut n = 0;
            while Instant::now() < end {
                n += 1;
                let t = format!("p{p}-{n}");
                let unique = format!("unique {p} {n}");
                push_image(&reg, &r, &t, &[b"shared layer", unique.as_bytes()]).await;
                if n % 2 == 0 {
                    // Garbage: untagged at once, removed by a later GC.
                    reg.delete_manifest(&r, &tag(&t)).await.unwrap();
                } else {
                    acked.lock().unwrap().push((r.clone(), t));
                }
            }
            n
        }));
    }
    let mut pulls = Vec::new();
    for q in 0..3usize {
        let (reg, acked) = (reg.clone(), acked.clone());
        pulls.push(tokio::spawn(async move {
            let mut done = 0usize;
            while Instant::now() < end {
                let pick = {
                    let a = acked.lock().unwrap();
                    (!a.is_empty()).then(|| a[(done * 7 + q) % a.len()].clone())
                };
                match pick {
                    Some((r, t)) => {
                        if let Err(e) = try_pull_image(&reg, &r, &t).await {
                            panic!("pull of acknowledged {r}:{t} failed: {e}");
                        }
                        done += 1;
                    }
                    None => tokio::task::yield_now().await,
                }
            }
            done
        }));
    }
    let gc = {
        let reg = reg.clone();
        tokio::spawn(async move {
            let options = GcOptions {
                delay,
                retention: Retention {
                    delay: Duration::ZERO,
                    ..Retention::default()
                },
            };
            let mut removed = 0;
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_secs(1)).await;
                removed += reg.gc_all(&options).await.unwrap().manifests_removed;
            }
            removed
        })
    };
    let mut pushed = 0;
    for t in tasks {
        pushed += t.await.unwrap();
    }
    let mut pulled = 0;
    for t in pulls {
        pulled += t.await.unwrap();
    }
    let removed = gc.await.unwrap();
    assert!(
        pushed > 10 && pulled > 10,
        "pushed {pushed}, pulled {pulled}"
    );
    assert!(removed > 0, "GC removed nothing");
    let acked = acked.lock().unwrap().clone();
    for (r, t) in &acked {
        pull_image(&reg, r, t).await;
    }
}

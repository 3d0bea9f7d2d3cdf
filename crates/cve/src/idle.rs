//! The scanner's CPU work at the lowest CPU priority: reading layers
//! (decompression, tar walks, parsing) and matching run on one thread of
//! their own whose nice value is 19, so on a busy machine the threads
//! serving requests get the cores first ("foreground first") and a scan
//! storm takes only what they leave.
//!
//! Invariants:
//! - One thread, started on first use, runs the jobs one after the other
//!   (the scan queue and re-matches run one at a time anyway).
//! - The thread is niced, not `SCHED_IDLE`: a job that holds a metadata
//!   write lock still progresses under full load (a niced thread gets
//!   about 1.5% of a core against a busy one), so a push waiting on that
//!   lock is not starved.
//! - A job that panics loses only its answer ([`Gone`]); the thread goes on.
//! - Jobs may block on the runtime (`SyncIoBridge` reads of blob streams):
//!   the thread is not one of the runtime's.

use std::sync::OnceLock;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// A job's answer was lost (it panicked, or the thread could not start).
#[derive(Debug, thiserror::Error)]
#[error("the low-priority scan thread dropped the job")]
pub struct Gone;

fn lower_priority() {
    // SAFETY: setpriority on the calling thread's id has no memory effects.
    #[expect(
        unsafe_code,
        reason = "no safe wrapper for setpriority in our dependencies"
    )]
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cve: could not lower the scan thread's priority");
    }
}

fn queue() -> Option<&'static mpsc::Sender<Job>> {
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("cve-scan".into())
                .spawn(move || {
                    lower_priority();
                    while let Ok(job) = rx.recv() {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, "cve: could not start the scan thread");
                    None
                }
            }
        })
        .as_ref()
}

/// Runs `f` on the low-priority thread and waits for its answer.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Gone> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    queue().ok_or(Gone)?.send(job).map_err(|_| Gone)?;
    rx.await.map_err(|_| Gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_niced_and_a_panic_loses_only_its_answer() {
        let nice = run(|| {
            // SAFETY: getpriority only reads.
            #[expect(unsafe_code, reason = "reading the thread's nice value")]
            let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            n
        })
        .await;
        assert_eq!(nice.ok(), Some(19));
        assert!(run(|| panic!("a failing job")).await.is_err());
        assert_eq!(run(|| 7).await.ok(), Some(7));
    }
}

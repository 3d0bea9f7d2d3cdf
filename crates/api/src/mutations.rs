//! Mutating requests run to completion whatever the client does.
//!
//! A client that disconnects (or an HTTP/2 stream that is reset) drops the
//! request future. A manifest `PUT` or `DELETE` dropped between its
//! `index.json` write and its metadata commit would leave the two out of
//! step, and the audit line, written after the handler, would be lost. So
//! every mutating request (`PUT`, `POST`, `PATCH`, `DELETE` on `/v2/...`:
//! manifest pushes and deletes, blob deletes, upload completion, mounts) is
//! run as a task of its own, tracked here: dropping the request only stops
//! waiting for the answer. The task writes the audit line itself.
//!
//! Invariants:
//! - a tracked task is counted from before it is spawned until it has
//!   finished (its count guard lives inside the task), so
//!   [`Mutations::wait_idle`] never returns while one is running;
//! - a panic in the handler is caught in the task (answered 500 and
//!   audited); one elsewhere in the task (the security check) ends it, and
//!   the request is answered 500 and audited by the waiting dispatcher; the
//!   count guard is dropped while the panic unwinds either way.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The mutating requests in flight.
#[derive(Debug, Default)]
pub struct Mutations {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts one task; dropped when the task ends (or is dropped unpolled).
struct Running(Arc<Mutations>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Mutations {
    /// Runs `work` as its own task, counted until it finishes; the handle
    /// gives its result (dropping the handle does not cancel the task).
    pub(crate) fn spawn<F>(self: &Arc<Self>, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.clone());
        tokio::spawn(async move {
            let _running = running;
            work.await
        })
    }

    /// How many mutating requests are running.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Waits until no mutating request is running, at most `limit`.
    /// Returns whether none is left.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.running() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_spawned_work_even_when_its_handle_is_dropped() {
        let m = Arc::new(Mutations::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        drop(m.spawn(async move {
            let _ = rx.await;
        }));
        assert_eq!(m.running(), 1);
        assert!(!m.wait_idle(Duration::from_millis(50)).await);
        let _ = tx.send(());
        assert!(m.wait_idle(Duration::from_secs(5)).await);
        assert_eq!(m.running(), 0);
    }
}

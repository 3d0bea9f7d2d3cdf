//! Pacing a pull to the readers that keep up with it: before it takes
//! the next chunk from upstream, the transfer waits for a reader more than
//! [`LAG_BYTES`] behind, so that reader keeps taking its bytes from the
//! pull's tail (in memory) instead of reading them back from the file.
//! On loopback the upstream sends faster than a client takes, and a
//! reader that fell off the tail read most of the blob back (77 MB of
//! 200 MB, with a blocking-pool hand-off per read).
//!
//! Invariants:
//! - Only readers that never read the file pace the transfer (a client
//!   joining mid-way, behind the tail, never does).
//! - The transfer waits at most [`STALL`] at a time (the readers that did
//!   not catch up by then are let go for good: they read the file from
//!   then on) and [`BUDGET`] in all (then nobody paces it any more), so a
//!   stalled or slow client delays the store by at most that much.
//! - A reader leaves when it is dropped, so a client going away never
//!   holds the transfer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How far behind the newest byte a reader may be before the transfer
/// waits for it: half the tail, so that with chunks of up to half a MiB
/// the bytes such a reader needs next are still in the tail.
pub(super) const LAG_BYTES: u64 = super::reader::TAIL_BYTES as u64 / 2;
/// Longest wait for a reader at once.
const STALL: Duration = Duration::from_millis(50);
/// Longest wait for a reader in all.
const BUDGET: Duration = Duration::from_secs(1);

/// The readers that keep pace with one pull.
#[derive(Default)]
pub(super) struct Pace {
    readers: Mutex<Readers>,
    moved: Notify,
}

#[derive(Default)]
struct Readers {
    next: u64,
    /// Each pacing reader's position and the end of its range.
    paced: HashMap<u64, (u64, u64)>,
    /// How long the transfer waited so far.
    waited: Duration,
    /// Past [`BUDGET`]: nobody paces the transfer any more.
    off: bool,
}

impl Readers {
    /// Whether a reader is more than [`LAG_BYTES`] behind `arrived` with
    /// bytes still to take that are not all in.
    fn lags(pos: u64, end: u64, arrived: u64) -> bool {
        pos.saturating_add(LAG_BYTES) < arrived && pos.saturating_add(1) < end
    }

    fn lagging(&self, arrived: u64) -> bool {
        self.paced
            .values()
            .any(|&(pos, end)| Readers::lags(pos, end, arrived))
    }
}

impl Pace {
    /// A reader at `pos` wanting bytes up to `end` (`None`: the blob's
    /// end): its id, `None` once pacing is off.
    pub(super) fn join(&self, pos: u64, end: Option<u64>) -> Option<u64> {
        let mut r = self.readers.lock().ok()?;
        if r.off {
            return None;
        }
        let id = r.next;
        r.next += 1;
        r.paced.insert(id, (pos, end.unwrap_or(u64::MAX)));
        Some(id)
    }

    /// Reader `id` took the bytes up to `pos`.
    pub(super) fn advance(&self, id: u64, pos: u64) {
        if let Ok(mut r) = self.readers.lock()
            && let Some(p) = r.paced.get_mut(&id)
        {
            p.0 = pos;
        }
        self.moved.notify_waiters();
    }

    /// Reader `id` paces no more (it reads the file, or it is gone).
    pub(super) fn leave(&self, id: u64) {
        if let Ok(mut r) = self.readers.lock() {
            r.paced.remove(&id);
        }
        self.moved.notify_waiters();
    }

    /// Waits until no reader lags behind `arrived`: at most [`STALL`],
    /// after which the readers still lagging are let go, and at most what
    /// is left of [`BUDGET`], after which pacing is off.
    pub(super) async fn wait(&self, arrived: u64) {
        let start = Instant::now();
        let Some(left) = self
            .readers
            .lock()
            .ok()
            .map(|r| BUDGET.saturating_sub(r.waited))
        else {
            return;
        };
        let until = start + STALL.min(left);
        let caught_up = loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if !self.readers.lock().is_ok_and(|r| r.lagging(arrived)) {
                break true;
            }
            if tokio::time::timeout_at(until, moved).await.is_err() {
                break false;
            }
        };
        if let Ok(mut r) = self.readers.lock() {
            r.waited += start.elapsed();
            if r.waited >= BUDGET {
                r.off = true;
                r.paced.clear();
            } else if !caught_up {
                r.paced
                    .retain(|_, &mut (pos, end)| !Readers::lags(pos, end, arrived));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn paced(p: &Pace) -> usize {
        p.readers.lock().map_or(0, |r| r.paced.len())
    }

    #[test]
    fn a_reader_lags_only_when_far_behind_with_bytes_still_to_take() {
        assert!(!Readers::lags(0, u64::MAX, LAG_BYTES), "at the bound");
        assert!(Readers::lags(0, u64::MAX, LAG_BYTES + 1));
        // Its range is all in but its held-back last byte: nothing to wait for.
        assert!(!Readers::lags(9, 10, 10 * MIB));
        assert!(Readers::lags(8, 10, 10 * MIB));
    }

    #[tokio::test]
    async fn without_lagging_readers_the_transfer_goes_on() {
        let pace = Pace::default();
        pace.wait(10 * MIB).await;
        let id = pace.join(10 * MIB, None).expect("joined");
        pace.wait(10 * MIB + LAG_BYTES).await;
        pace.advance(id, 11 * MIB);
        pace.wait(11 * MIB + LAG_BYTES).await;
        assert_eq!(paced(&pace), 1, "a reader keeping up stays paced");
        pace.leave(id);
        pace.wait(100 * MIB).await;
        assert_eq!(paced(&pace), 0);
    }

    #[tokio::test]
    async fn a_stalled_reader_is_let_go_and_paces_no_more() {
        let pace = Pace::default();
        let stalled = pace.join(0, None).expect("joined");
        let keeping_up = pace.join(4 * MIB, None).expect("joined");
        pace.wait(4 * MIB).await;
        assert_eq!(paced(&pace), 1, "the stalled one is let go");
        // It advancing later changes nothing: it reads the file now.
        pace.advance(stalled, 4 * MIB);
        assert_eq!(paced(&pace), 1);
        pace.advance(keeping_up, 8 * MIB);
        pace.wait(8 * MIB).await;
        assert_eq!(paced(&pace), 1);
    }

    #[tokio::test]
    async fn a_reader_catching_up_ends_the_wait() {
        let pace = std::sync::Arc::new(Pace::default());
        let id = pace.join(0, None).expect("joined");
        let p = pace.clone();
        let wait = tokio::spawn(async move { p.wait(4 * MIB).await });
        tokio::task::yield_now().await;
        pace.advance(id, 4 * MIB);
        wait.await.expect("the wait ended");
        let r = pace.readers.lock().expect("lock");
        assert_eq!(r.paced.get(&id), Some(&(4 * MIB, u64::MAX)), "still paced");
        assert!(r.waited < STALL);
    }

    #[tokio::test]
    async fn past_the_budget_nobody_paces_the_transfer() {
        let pace = Pace::default();
        // Each stalled reader costs a stall; the budget ends it.
        let mut stalls = 0;
        while pace.join(0, None).is_some() {
            pace.wait(4 * MIB).await;
            stalls += 1;
            assert!(stalls <= BUDGET.as_millis() / STALL.as_millis() + 1);
        }
        assert_eq!(paced(&pace), 0);
        pace.wait(100 * MIB).await;
    }
}

//! Foreground activity: how many requests are in progress in this process
//! and when the last one ended, so that background CPU work (the CVE scan
//! thread) can step aside while clients are being served ("foreground
//! first") instead of only relying on the kernel's priorities.
//!
//! Invariants:
//! - Every request counted in is counted out exactly once ([`Request`] is
//!   a guard; the API holds it until the response body is dropped).
//! - Reading the state is two relaxed atomic loads and a clock read; it
//!   takes no lock, so a low-priority reader can never hold up a request.
//! - The counts are process-wide and approximate by design (relaxed
//!   ordering): a reader may see a request a moment late; nothing depends
//!   on more than "busy just now or not".

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long after the last request ends the process still counts as busy
/// (a client's next request usually follows within this).
pub const QUIET_AFTER: Duration = Duration::from_millis(1);

static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);
/// Microseconds since [`epoch`] when the last request ended.
static LAST_END_US: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One request in progress, from its head until its response is done.
#[derive(Debug)]
pub struct Request(());

impl Request {
    /// Counts a request in.
    pub fn start() -> Request {
        IN_PROGRESS.fetch_add(1, Ordering::Relaxed);
        Request(())
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // Never 0, which stands for "no request yet".
        LAST_END_US.store(now_us().max(1), Ordering::Relaxed);
        IN_PROGRESS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a request is in progress or one ended less than
/// [`QUIET_AFTER`] ago.
pub fn busy() -> bool {
    busy_at(now_us())
}

/// [`busy`] at `now` (microseconds since [`epoch`]).
fn busy_at(now: u64) -> bool {
    if IN_PROGRESS.load(Ordering::Relaxed) > 0 {
        return true;
    }
    let last = LAST_END_US.load(Ordering::Relaxed);
    last != 0 && now.saturating_sub(last) < QUIET_AFTER.as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_a_request_runs_and_briefly_after() {
        // Other tests of this crate do not count requests; this one owns
        // the counters. Times after the last request are given, not
        // waited for (a loaded machine may stall the test for longer).
        let quiet = QUIET_AFTER.as_micros() as u64;
        let r = Request::start();
        assert!(busy());
        let r2 = Request::start();
        drop(r);
        assert!(busy_at(u64::MAX), "one request still in progress");
        drop(r2);
        let ended = LAST_END_US.load(Ordering::Relaxed);
        assert_ne!(ended, 0);
        assert!(busy_at(ended + quiet - 1), "just ended: still busy");
        assert!(!busy_at(ended + quiet), "quiet after QUIET_AFTER");
        std::thread::sleep(QUIET_AFTER * 3);
        assert!(!busy());
    }
}

//! The scanner's CPU work at the lowest CPU priority: reading layers
//! (file reads, decompression, tar walks, parsing) and matching run on one
//! thread of their own under `SCHED_IDLE` (nice 19 where that is
//! refused), with the idle I/O class, so the threads serving requests get
//! the cores first ("foreground first") and a scan storm takes only what
//! they leave.
//!
//! Why `SCHED_IDLE` rather than nice 19: under EEVDF (Linux 6.6+) a
//! niced thread, once picked, keeps its CPU for its time slice against
//! woken request threads (run-to-parity protection: about 0.75–3 ms,
//! whatever its weight), which is the tail a request waits; a
//! `SCHED_IDLE` thread is preempted at every wake-up of a normal one, and
//! a CPU running only it counts as idle when the kernel places a woken
//! thread. It still runs when nothing else wants the CPU, so on an
//! otherwise idle machine scans are as fast as before.
//!
//! `SCHED_IDLE` is not enough on its own: when the kernel does pick the
//! scan thread while request threads are runnable on the same CPU (its
//! turn comes, however rarely, at weight 3 against 1024), nothing
//! preempts it before the next tick (4 ms at `HZ=250`; the slice is not
//! enforced in between): a request thread waits that long. So the scan
//! thread also hands the CPU back by itself, every [`TURN`] of its CPU
//! time ([`turn`], called by the layer reader on every read and by the
//! re-match between inventories): a `sched_yield` that costs a syscall
//! when nothing else wants the CPU, and lets a waiting request thread run
//! at once when one does. While requests are in progress in the process
//! (`zot_storage::foreground`), it pauses instead ([`PAUSE`] after each
//! turn: about a tenth of a CPU, so scans still finish under constant
//! traffic): whatever the kernel does, the scan is then mostly not running
//! while requests are, so it cannot hold a lock they need (glibc's heap
//! locks are shared with request threads, and a `SCHED_IDLE` thread
//! preempted inside `malloc` waits for a free CPU before it releases
//! one), nor evict their caches. (Measured with a `SCHED_IDLE` spinner and a
//! busy normal thread pinned to one CPU: the spinner's longest runs were
//! 1.3–3.9 ms, one to three per 3 s; yielding every 100 µs, 100 µs.)
//!
//! Invariants:
//! - One thread, started on first use, runs the jobs one after the other
//!   (the scan queue and re-matches run one at a time anyway).
//! - Jobs compute on data they own: they take no lock a request thread
//!   could wait for (no metadata store reads or writes, which run on the
//!   blocking pool at normal priority: a job preempted inside a critical
//!   section would hold up whoever waits behind it until the CPU is
//!   free). What remains shared is the allocator's heap and, for a
//!   backend without local files, the stream the job reads.
//! - A job that panics loses only its answer ([`Gone`]); the thread goes on.
//! - Jobs may block on the runtime (`SyncIoBridge` reads of blob streams):
//!   the thread is not one of the runtime's.

use std::cell::Cell;
use std::io::Read;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// A job's answer was lost (it panicked, or the thread could not start).
#[derive(Debug, thiserror::Error)]
#[error("the low-priority scan thread dropped the job")]
pub struct Gone;

/// The scan thread's CPU and I/O priority: `SCHED_IDLE`, else nice 19.
fn lower_priority() {
    let tid = {
        // SAFETY: gettid has no preconditions.
        #[expect(unsafe_code, reason = "no safe wrapper for gettid")]
        let t = unsafe { libc::gettid() };
        t
    };
    // Nice 19 first: what stays if SCHED_IDLE is refused.
    // SAFETY: setpriority on the calling thread's id has no memory effects.
    #[expect(
        unsafe_code,
        reason = "no safe wrapper for setpriority in our dependencies"
    )]
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cve: could not lower the scan thread's priority");
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(0, ..) changes only the calling thread's
    // policy; `param` outlives the call.
    #[expect(unsafe_code, reason = "no safe wrapper for sched_setscheduler")]
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cve: could not make the scan thread SCHED_IDLE; it stays at nice 19");
    }
    // The idle I/O class (what SCHED_IDLE implies when no class is set;
    // said explicitly). Only I/O schedulers with classes (BFQ,
    // mq-deadline) use it; layers in the page cache cost no I/O anyway.
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    // SAFETY: ioprio_set on the calling thread's id has no memory effects.
    #[expect(unsafe_code, reason = "no wrapper for ioprio_set in libc")]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            libc::c_long::from(tid),
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cve: could not set the scan thread's I/O class");
    }
}

/// The longest stretch the scan thread computes without offering the CPU
/// back (what a request thread can wait behind it at worst, besides the
/// kernel's own latency).
pub const TURN: Duration = Duration::from_micros(100);

thread_local! {
    /// On the scan thread: its CPU time when it last offered the CPU back.
    /// `None` on every other thread ([`turn`] does nothing there).
    static LAST_TURN: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// The calling thread's CPU time (what a turn counts: time the thread was
/// preempted or waiting is not work).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`, which outlives the call.
    #[expect(unsafe_code, reason = "no safe wrapper for the thread CPU clock")]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// While requests are being served, how long the scan thread pauses after
/// each [`TURN`]: it keeps about a tenth of one CPU
/// (`TURN / (TURN + PAUSE)`), so scans still finish under constant
/// traffic, and steps aside for the rest.
pub const PAUSE: Duration = Duration::from_micros(900);

/// On the scan thread, once it has computed for [`TURN`] since it last
/// did: pauses for [`PAUSE`] if requests are in progress (or just ended,
/// `zot_storage::foreground`), else yields the CPU; elsewhere, nothing.
/// Cheap enough to call per read (a thread-local read, a clock read).
/// Says whether the turn ended.
pub fn turn() -> bool {
    LAST_TURN.with(|last| match last.get() {
        Some(at) if cpu_time().saturating_sub(at) >= TURN => {
            if zot_storage::foreground::busy() {
                std::thread::sleep(PAUSE);
            } else {
                std::thread::yield_now();
            }
            last.set(Some(cpu_time()));
            true
        }
        _ => false,
    })
}

/// A reader that calls [`turn`] before each read: a layer's bytes come
/// through it, so decompression and parsing are cut into turns too.
pub struct Turns<R>(pub R);

impl<R: Read> Read for Turns<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let _ = turn();
        self.0.read(buf)
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
                        // A job starts a fresh turn.
                        LAST_TURN.with(|last| last.set(Some(cpu_time())));
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
    async fn jobs_run_idle_and_a_panic_loses_only_its_answer() {
        let (policy, nice) = run(|| {
            // SAFETY: sched_getscheduler and getpriority only read.
            #[expect(unsafe_code, reason = "reading the thread's policy and nice value")]
            unsafe {
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t),
                )
            }
        })
        .await
        .ok()
        .unzip();
        assert_eq!(policy, Some(libc::SCHED_IDLE));
        assert_eq!(nice, Some(19));
        assert!(run(|| panic!("a failing job")).await.is_err());
        assert_eq!(run(|| 7).await.ok(), Some(7));
    }

    /// The scan thread offers the CPU back after each turn of its CPU
    /// time, and not before; other threads never yield through `turn`.
    #[tokio::test]
    async fn the_scan_thread_yields_every_turn() {
        let burn = |d: Duration| {
            let until = cpu_time() + d;
            let mut yields = 0;
            while cpu_time() < until {
                yields += usize::from(turn());
            }
            yields
        };
        // A job starts a fresh turn: a job shorter than a turn never yields.
        assert_eq!(run(move || burn(TURN / 4)).await.ok(), Some(0));
        let long = run(move || burn(TURN * 20)).await.ok();
        assert!(
            long.is_some_and(|n| (15..=20).contains(&n)),
            "yields in 20 turns of CPU time: {long:?}"
        );
        assert_eq!(burn(TURN * 3), 0, "a request thread never yields");
    }

    /// While a request is in progress, each turn ends with a pause: ten
    /// turns of work take at least ten pauses of wall time.
    #[tokio::test]
    async fn the_scan_thread_steps_aside_while_requests_run() {
        let burn = |turns: u32| {
            let started = std::time::Instant::now();
            let until = cpu_time() + TURN * turns;
            while cpu_time() < until {
                let _ = turn();
            }
            started.elapsed()
        };
        let request = zot_storage::foreground::Request::start();
        let busy = run(move || burn(10)).await.ok();
        drop(request);
        assert!(
            busy.is_some_and(|d| d >= PAUSE * 9),
            "ten turns under load took {busy:?}"
        );
    }
}

//! The log writer: lines formatted on any thread are queued and written by
//! one background thread, so a request never waits on the terminal or the
//! disk for its log line.
//!
//! Invariants:
//! - Lossless and in order: every line queued before [`LogGuard`] drops is
//!   written, in the order it was queued, and the sink is flushed last.
//! - At most [`LIMIT`] bytes wait; a thread queueing more waits until the
//!   writer has taken the queue (back-pressure rather than loss). A single
//!   line longer than that is still queued once the queue is empty.
//! - No allocation per line: a line is copied into one shared buffer under
//!   the lock, and the writer swaps that buffer for its own (emptied) one
//!   and writes the whole batch at once. Freeing lines on the writer that
//!   request threads allocated cost a lock of their allocator heap each,
//!   which the request threads then waited on.
//! - Memory follows what is queued: nothing is reserved up front, and the
//!   buffers' capacity is given back after a burst (down to [`KEEP`]).
//! - A burst of lines costs one flush of the sink: the writer flushes only
//!   when it finds the queue empty.
//! - Lines are written at most [`LINGER`] after they were queued, in
//!   batches: a writer woken from sleep lets lines gather for up to
//!   [`LINGER`] (less once [`BATCH`] bytes wait) before it takes the
//!   queue, and only a sleeping writer is woken by a line. Under steady
//!   traffic that is one wake-up and one `write` per [`LINGER`] instead of
//!   one per line (a wake-up costs the logging thread a system call and
//!   the writer a context switch: a third of a manifest request's CPU).
//! - Waking the writer happens after the lock is released: a writer woken
//!   inside the critical section would only block on the lock again, and
//!   the threads logging behind it with it.
//! - Lines queued after the guard dropped are discarded (the process is
//!   exiting).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Bytes queued at most before a logging thread waits.
pub const LIMIT: usize = 32 << 20;
/// Buffer capacity (bytes) kept after a burst; more is given back.
const KEEP: usize = 64 << 10;
/// How long a woken writer lets lines gather before writing them.
const LINGER: Duration = Duration::from_millis(2);
/// Queued bytes that end the writer's wait early (capped at half the limit).
const BATCH: usize = 256 << 10;

#[derive(Default)]
struct State {
    /// The queued lines, back to back.
    buf: Vec<u8>,
    closed: bool,
    /// The writer sleeps on `ready` (so a push must wake it).
    writer_asleep: bool,
    /// Threads waiting on `room`.
    waiting_for_room: usize,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    room: Condvar,
    /// Bytes queued at most ([`LIMIT`]; smaller in tests).
    limit: usize,
}

impl Shared {
    fn new(limit: usize) -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            room: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queued bytes that end the writer's linger.
    fn batch(&self) -> usize {
        BATCH.min(self.limit / 2)
    }

    fn push(&self, line: &[u8]) {
        let wake = {
            let mut s = self.lock();
            while !s.closed && !s.buf.is_empty() && s.buf.len() + line.len() > self.limit {
                s.waiting_for_room += 1;
                // A lingering writer takes the queue now.
                self.ready.notify_one();
                s = self.room.wait(s).unwrap_or_else(PoisonError::into_inner);
                s.waiting_for_room -= 1;
            }
            if s.closed {
                return;
            }
            let before = s.buf.len();
            s.buf.extend_from_slice(line);
            // The writer, asleep since it set this under the lock, cannot
            // miss the wake-up below; a lingering one is woken once the
            // batch is full.
            std::mem::take(&mut s.writer_asleep)
                || (before < self.batch() && s.buf.len() >= self.batch())
        };
        if wake {
            self.ready.notify_one();
        }
    }

    /// The writer thread: takes the whole queue at a time.
    fn drain(&self, sink: &mut dyn Write) {
        let mut batch: Vec<u8> = Vec::new();
        loop {
            let closed = {
                let mut s = self.lock();
                while s.buf.is_empty() && !s.closed {
                    s.writer_asleep = true;
                    s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                // Let a burst gather into one write (see the module doc).
                let until = Instant::now() + LINGER;
                while !s.closed && s.buf.len() < self.batch() && s.waiting_for_room == 0 {
                    let Some(left) = until.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    if left.is_zero() {
                        break;
                    }
                    s = self
                        .ready
                        .wait_timeout(s, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                std::mem::swap(&mut s.buf, &mut batch);
                if s.waiting_for_room > 0 {
                    self.room.notify_all();
                }
                s.closed
            };
            // A sink that fails (a closed stdout) cannot be reported
            // anywhere better; the lines are dropped.
            let _ = sink.write_all(&batch);
            batch.clear();
            batch.shrink_to(KEEP);
            let idle = closed || self.lock().buf.is_empty();
            if idle {
                let _ = sink.flush();
            }
            if closed && self.lock().buf.is_empty() {
                return;
            }
        }
    }
}

/// Where `tracing` writes: each formatted event is one `write` call, queued
/// as one line.
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

/// Writes what is still queued and flushes the sink when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        {
            let mut s = self.shared.lock();
            s.closed = true;
            self.shared.ready.notify_one();
            self.shared.room.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread over `sink`.
pub fn start(sink: Box<dyn Write + Send>) -> std::io::Result<(LogWriter, LogGuard)> {
    start_limited(sink, LIMIT)
}

fn start_limited(
    mut sink: Box<dyn Write + Send>,
    limit: usize,
) -> std::io::Result<(LogWriter, LogGuard)> {
    let shared = Arc::new(Shared::new(limit));
    let for_thread = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || for_thread.drain(&mut *sink))?;
    Ok((
        LogWriter(Arc::clone(&shared)),
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink recording what reaches it, and its flushes.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<AtomicUsize>,
        writes: Arc<AtomicUsize>,
        /// Held to stall the writer.
        gate: Arc<Mutex<()>>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.bytes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_is_written_in_order_and_flushed_on_drop() {
        let rec = Recorder::default();
        let (writer, guard) = start(Box::new(rec.clone())).expect("writer thread");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        w.write_all(format!("{t} {i}\n").as_bytes())
                            .expect("queued");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("logging thread");
        }
        drop(guard);
        let text = String::from_utf8(rec.bytes.lock().expect("bytes").clone()).expect("utf-8");
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').expect("two fields");
            let (t, i): (usize, usize) = (t.parse().expect("t"), i.parse().expect("i"));
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
        assert!(rec.flushes.load(Ordering::SeqCst) >= 1);
        // After the guard: discarded, not blocking.
        let mut late = writer.clone();
        late.write_all(b"late\n").expect("accepted");
        assert!(!rec.bytes.lock().expect("bytes").ends_with(b"late\n"));
    }

    #[test]
    fn lines_arriving_one_by_one_are_written_in_batches() {
        let rec = Recorder::default();
        let (mut writer, guard) = start(Box::new(rec.clone())).expect("writer thread");
        let started = Instant::now();
        for i in 0..1000 {
            writer
                .write_all(format!("{i}\n").as_bytes())
                .expect("queued");
            // Far apart enough for a writer woken per line to catch up.
            std::thread::sleep(Duration::from_micros(20));
        }
        let elapsed = started.elapsed();
        drop(guard);
        let writes = rec.writes.load(Ordering::SeqCst);
        // One write per linger at most (plus the last batch at the drop).
        let bound = (elapsed.as_micros() / LINGER.as_micros()) as usize + 2;
        assert!(
            writes <= bound,
            "{writes} writes for 1000 lines in {elapsed:?} (at most {bound} wanted)"
        );
        assert_eq!(
            rec.bytes
                .lock()
                .expect("bytes")
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            1000
        );
    }

    #[test]
    fn a_full_queue_makes_the_logging_thread_wait_and_loses_nothing() {
        const SMALL: usize = 4096;
        let rec = Recorder::default();
        let stall = rec.gate.lock().expect("gate");
        let (writer, guard) = start_limited(Box::new(rec.clone()), SMALL).expect("writer thread");
        let queued = Arc::new(AtomicUsize::new(0));
        let lines = SMALL * 2 + 10;
        let producer = {
            let (mut w, queued) = (writer.clone(), Arc::clone(&queued));
            std::thread::spawn(move || {
                for _ in 0..lines {
                    w.write_all(b"x\n").expect("queued");
                    queued.fetch_add(2, Ordering::SeqCst);
                }
            })
        };
        // The writer holds at most one batch (≤ SMALL bytes) while stalled
        // and the queue at most SMALL more: the producer must stop short
        // and wait, unfinished, until the writer moves again.
        let mut last = 0;
        let mut still = 0;
        while still < 4 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = queued.load(Ordering::SeqCst);
            still = if now == last && now >= SMALL {
                still + 1
            } else {
                0
            };
            last = now;
        }
        assert!(last <= SMALL * 2, "queued {last} bytes past the limit");
        assert!(!producer.is_finished(), "the producer never waited");
        drop(stall);
        producer.join().expect("producer");
        drop(guard);
        assert_eq!(rec.bytes.lock().expect("bytes").len(), lines * 2);
    }

    #[test]
    fn a_line_longer_than_the_limit_still_passes() {
        let rec = Recorder::default();
        let (mut writer, guard) = start_limited(Box::new(rec.clone()), 8).expect("writer thread");
        writer
            .write_all(b"a line of more than eight bytes\n")
            .expect("queued");
        writer.write_all(b"next\n").expect("queued");
        drop(guard);
        assert_eq!(
            rec.bytes.lock().expect("bytes").as_slice(),
            b"a line of more than eight bytes\nnext\n"
        );
    }
}

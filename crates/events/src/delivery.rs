//! Delivery: one lane per (store, sink), each sending the store's outbox
//! to its sink in the order of the events' numbers.
//!
//! Invariants:
//! - A lane sends event n+1 only once event n was acknowledged by its sink
//!   (or dropped from the outbox at its bound): order is kept per sink for
//!   the whole store, so per repository too.
//! - A failed send is retried, after 250 ms, then twice as long each time up
//!   to `maxBackoff`, for as long as the event is in the outbox; before each
//!   retry the lane checks it was not dropped meanwhile.
//! - The sink's cursor moves (and the event leaves the outbox once every
//!   sink has it) only after the sink accepted it: a crash or restart
//!   before that sends it again (at least once, never lost while kept).
//! - Lanes wait on the store's append hook, never poll the request path;
//!   redb reads and writes run on the blocking pool.
//! - With shared leases (several instances, one outbox) a lane sends only
//!   while it holds its lease: it takes it (trying again every
//!   [`IDLE_CHECK`] while another instance has it), then resumes from the
//!   sink's cursor in the store, not its own; a lost lease stops it before
//!   the next send or retry. Events appended by other instances do not
//!   wake it: it finds them within [`IDLE_CHECK`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use zot_meta::{MetaStore, Queued};

use crate::{HeldLease, LaneLeases, Sink};

/// The first wait after a failed send.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A lane with nothing to send looks again this often even unwoken.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// A failing sink is logged at most this often per lane.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);
/// How often the outbox size and the dropped count are read.
const MONITOR_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Lane {
    pub meta: Arc<MetaStore>,
    pub store: String,
    pub sink: Arc<Sink>,
    pub name: String,
    pub cursor: u64,
    pub wake: Arc<Notify>,
    pub max_backoff: Duration,
    pub leases: Option<Arc<dyn LaneLeases>>,
    pub held: Option<Box<dyn HeldLease>>,
}

/// Runs `f` on the blocking pool (redb may wait for another writer).
async fn blocking<T: Send + 'static>(
    meta: &Arc<MetaStore>,
    f: impl FnOnce(&MetaStore) -> zot_meta::Result<T> + Send + 'static,
) -> zot_meta::Result<T> {
    let meta = meta.clone();
    match tokio::task::spawn_blocking(move || f(&meta)).await {
        Ok(r) => r,
        Err(_) => Err(zot_meta::MetaError::Unavailable),
    }
}

impl Lane {
    pub(crate) async fn run(mut self) {
        loop {
            if !self.hold_lease().await {
                tokio::time::sleep(IDLE_CHECK).await;
                continue;
            }
            let cursor = self.cursor;
            let next = blocking(&self.meta, move |m| m.outbox_after(cursor, 1)).await;
            let queued = match next {
                Ok(mut q) if !q.is_empty() => q.remove(0),
                Ok(_) => {
                    let _ = tokio::time::timeout(IDLE_CHECK, self.wake.notified()).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(store = self.store, error = %e, "events: reading the outbox");
                    tokio::time::sleep(IDLE_CHECK).await;
                    continue;
                }
            };
            if !self.deliver(&queued).await {
                continue;
            }
            self.cursor = queued.seq;
            let (name, seq) = (self.name.clone(), queued.seq);
            // A failed acknowledgement only means a resend after a restart.
            if let Err(e) = blocking(&self.meta, move |m| m.outbox_ack(&name, seq)).await {
                tracing::warn!(store = self.store, sink = self.name, error = %e, "events: recording a delivery");
            }
        }
    }

    /// Whether this lane may send now: always without shared leases;
    /// with them, once it holds its lease (taken here, the cursor then
    /// read back from the store, where the last holder left it).
    async fn hold_lease(&mut self) -> bool {
        let Some(leases) = &self.leases else {
            return true;
        };
        if self.held.as_ref().is_some_and(|h| !h.is_lost()) {
            return true;
        }
        if self.held.take().is_some() {
            tracing::warn!(
                store = self.store,
                sink = self.name,
                "events: delivery lease lost; another instance delivers"
            );
        }
        let Some(held) = leases
            .try_take(format!("events:{}:{}", self.store, self.name))
            .await
        else {
            return false;
        };
        let sink = self.name.clone();
        match blocking(&self.meta, move |m| m.outbox_cursor(&sink)).await {
            Ok(cursor) => {
                self.cursor = self.cursor.max(cursor);
                self.held = Some(held);
                tracing::info!(
                    store = self.store,
                    sink = self.name,
                    from = self.cursor,
                    "events: this instance delivers"
                );
                true
            }
            Err(e) => {
                tracing::warn!(store = self.store, error = %e, "events: reading the sink's cursor");
                false
            }
        }
    }

    /// Whether the lane lost its shared lease (it must stop sending).
    fn lost(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.is_lost())
    }

    /// Sends until the sink accepts the event (true) or it leaves the
    /// outbox (true: nothing more to do for it), or the lane's lease is
    /// lost (false: the event is left to the new holder).
    async fn deliver(&self, q: &Queued) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u64;
        let mut logged: Option<Instant> = None;
        loop {
            attempts += 1;
            match self.sink.send(&q.event).await {
                Ok(()) => {
                    if attempts > 1 {
                        tracing::info!(
                            sink = self.name,
                            seq = q.seq,
                            attempts,
                            "events: sink accepts events again"
                        );
                    }
                    return true;
                }
                Err(e) => {
                    if logged.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
                        logged = Some(Instant::now());
                        tracing::warn!(
                            store = self.store,
                            sink = self.name,
                            seq = q.seq,
                            event_type = q.event.event_type,
                            repo = q.event.repo,
                            attempts,
                            error = %e,
                            "events: delivery failed; retrying with back-off"
                        );
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.max_backoff);
            if self.lost() {
                return false;
            }
            let seq = q.seq;
            if let Ok(false) = blocking(&self.meta, move |m| m.outbox_contains(seq)).await {
                // Dropped at the outbox's bound (counted and logged there).
                return true;
            }
        }
    }
}

/// The outbox size and dropped count of one store, as last read.
#[derive(Debug, Default)]
pub struct OutboxGauge {
    pub pending: AtomicU64,
    pub dropped: AtomicU64,
}

/// Reads the outbox counts every second; logs events dropped at the bound.
pub(crate) async fn monitor(meta: Arc<MetaStore>, store: String, gauge: Arc<OutboxGauge>) {
    let mut seen: Option<u64> = None;
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    loop {
        tick.tick().await;
        let Ok((pending, dropped)) = blocking(&meta, |m| m.outbox_counts()).await else {
            continue;
        };
        gauge.pending.store(pending, Ordering::Relaxed);
        gauge.dropped.store(dropped, Ordering::Relaxed);
        if let Some(before) = seen
            && dropped > before
        {
            tracing::warn!(
                store,
                dropped = dropped - before,
                dropped_total = dropped,
                kept = pending,
                "events: outbox full (a sink stays down); the oldest undelivered events were dropped"
            );
        }
        seen = Some(dropped);
    }
}

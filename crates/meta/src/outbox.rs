//! The events outbox: events describing changes to the store's
//! repositories, written in the same transaction as the change they
//! describe (`Change::Event`), kept until every sink has acknowledged them.
//!
//! Invariants:
//! - Events are numbered from one store-wide sequence that never goes back
//!   (the last number handed out is kept in `outbox_state`), so the order of
//!   the numbers is the order of the changes, for every repository.
//! - Event numbers are keys of 8 big-endian bytes, so key order is number
//!   order.
//! - A transaction that carries an event is committed durably (fsync) by
//!   [`crate::MetaStore::apply`] and [`MetaStore::append_events`]: an event
//!   of a change that was answered survives a crash of the process.
//! - Each sink has a cursor, the number of the last event it acknowledged;
//!   an event is removed once every configured sink's cursor has passed it
//!   ([`MetaStore::outbox_ack`]).
//! - The outbox holds at most its limit ([`MetaStore::set_outbox_limit`]):
//!   an append beyond it removes the oldest events, whether delivered to
//!   some sinks or not, and adds them to the `dropped` count.
//! - With the limit at 0 (events off) `Change::Event` is ignored.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::kv::{Write, read_u64, u64_bytes};
use crate::{MetaStore, Result};

/// Event number -> [`OutboxEvent`] (JSON).
const OUTBOX: &str = "outbox";
/// Sink name -> number of the last event it acknowledged.
const CURSORS: &str = "outbox_cursors";
/// `seq` -> last number handed out; `dropped` -> events dropped at the limit.
const STATE: &str = "outbox_state";

const SEQ: &[u8] = b"seq";
const DROPPED: &[u8] = b"dropped";

/// One event as stored: everything a sink needs to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// The repository it is about (events of one repository are delivered
    /// in order).
    pub repo: String,
    /// The CloudEvents `type`, e.g. `zotregistry.image.updated`.
    pub event_type: String,
    /// The CloudEvents `id` (a UUID).
    pub id: String,
    /// The CloudEvents `time` (RFC 3339, UTC).
    pub time: String,
    /// The CloudEvents `data`: a JSON object, as text.
    pub data: String,
}

/// An event with its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub seq: u64,
    pub event: OutboxEvent,
}

/// What the store keeps in memory about its outbox.
#[derive(Default)]
pub(crate) struct OutboxState {
    /// Most events kept; 0 when events are off.
    limit: AtomicU64,
    /// Called after a commit that appended events (wakes the delivery).
    hook: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

fn get_u64(w: &mut dyn crate::kv::Read, table: &'static str, key: &[u8]) -> Result<u64> {
    Ok(w.get(table, key)?.map_or(0, |v| read_u64(&v)))
}

/// Appends `events` in order; drops the oldest beyond `limit`.
pub(crate) fn append(w: &mut dyn Write, events: &[&OutboxEvent], limit: u64) -> Result<()> {
    if events.is_empty() || limit == 0 {
        return Ok(());
    }
    let mut seq = get_u64(w, STATE, SEQ)?;
    for event in events {
        seq += 1;
        w.put(OUTBOX, &u64_bytes(seq), &serde_json::to_vec(event)?)?;
    }
    w.put(STATE, SEQ, &u64_bytes(seq))?;
    let len = w.len(OUTBOX)?;
    if len > limit {
        let excess = len - limit;
        let oldest = w.range(
            OUTBOX,
            b"",
            None,
            usize::try_from(excess).unwrap_or(usize::MAX),
        )?;
        for (k, _) in oldest {
            w.delete(OUTBOX, &k)?;
        }
        let dropped = get_u64(w, STATE, DROPPED)?;
        w.put(STATE, DROPPED, &u64_bytes(dropped + excess))?;
    }
    Ok(())
}

impl OutboxState {
    pub(crate) fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    pub(crate) fn appended(&self) {
        if let Some(hook) = self.hook.get() {
            hook();
        }
    }
}

/// Whether `changes` carry an event (the transaction is then durable).
pub(crate) fn carries_event(changes: &[crate::Change]) -> bool {
    changes.iter().any(|c| matches!(c, crate::Change::Event(_)))
}

impl MetaStore {
    /// Keeps at most `limit` events in the outbox; 0 turns events off
    /// (`Change::Event` is then ignored).
    pub fn set_outbox_limit(&self, limit: u64) {
        self.outbox.limit.store(limit, Ordering::Release);
    }

    /// Whether events are kept.
    pub fn events_enabled(&self) -> bool {
        self.outbox.limit() > 0
    }

    /// Calls `hook` after every commit that appended events (once; later
    /// calls are ignored).
    pub fn on_outbox_append(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.outbox.hook.set(hook);
    }

    /// Appends events that go with no other change (a refused push), in
    /// one durable transaction.
    pub fn append_events(&self, events: &[OutboxEvent]) -> Result<()> {
        let limit = self.outbox.limit();
        if events.is_empty() || limit == 0 {
            return Ok(());
        }
        let refs: Vec<&OutboxEvent> = events.iter().collect();
        self.write(true, |w| append(w, &refs, limit))?;
        self.outbox.appended();
        Ok(())
    }

    /// Up to `n` events numbered after `after`, in order.
    pub fn outbox_after(&self, after: u64, n: usize) -> Result<Vec<Queued>> {
        let start = u64_bytes(after.saturating_add(1));
        if after == u64::MAX {
            return Ok(Vec::new());
        }
        let rows = self.read(|r| r.range(OUTBOX, &start, None, n))?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            out.push(Queued {
                seq: read_u64(&k),
                event: serde_json::from_slice(&v)?,
            });
        }
        Ok(out)
    }

    /// Whether event `seq` is still in the outbox (not dropped).
    pub fn outbox_contains(&self, seq: u64) -> Result<bool> {
        Ok(self.read(|r| r.get(OUTBOX, &u64_bytes(seq)))?.is_some())
    }

    /// Events in the outbox, and events dropped at the limit so far.
    pub fn outbox_counts(&self) -> Result<(u64, u64)> {
        self.read(|r| Ok((r.len(OUTBOX)?, get_u64(r, STATE, DROPPED)?)))
    }

    /// The cursor of `sink` (0 when it has none): where a delivery taken
    /// over from another instance resumes.
    pub fn outbox_cursor(&self, sink: &str) -> Result<u64> {
        self.read(|r| get_u64(r, CURSORS, sink.as_bytes()))
    }

    /// Sets the sinks events are delivered to, returning each one's cursor:
    /// a sink not seen before starts before the oldest event kept (so it
    /// receives every event still undelivered somewhere), the cursors of
    /// sinks no longer configured are removed, and events every sink has
    /// passed are removed.
    pub fn outbox_sinks(&self, sinks: &[String]) -> Result<Vec<u64>> {
        self.write(false, |w| {
            let start = match w.range(OUTBOX, b"", None, 1)?.first() {
                Some((k, _)) => read_u64(k) - 1,
                None => get_u64(w, STATE, SEQ)?,
            };
            for (k, _) in w.range(CURSORS, b"", None, usize::MAX)? {
                if !sinks.iter().any(|s| s.as_bytes() == k.as_slice()) {
                    w.delete(CURSORS, &k)?;
                }
            }
            let mut cursors_out = Vec::new();
            for sink in sinks {
                let at = match w.get(CURSORS, sink.as_bytes())? {
                    Some(v) => read_u64(&v),
                    None => {
                        w.put(CURSORS, sink.as_bytes(), &u64_bytes(start))?;
                        start
                    }
                };
                cursors_out.push(at);
            }
            trim(w)?;
            Ok(cursors_out)
        })
    }

    /// `sink` acknowledged every event up to `seq`: moves its cursor and
    /// removes the events every sink has passed.
    pub fn outbox_ack(&self, sink: &str, seq: u64) -> Result<()> {
        self.write(false, |w| {
            let at = get_u64(w, CURSORS, sink.as_bytes())?;
            w.put(CURSORS, sink.as_bytes(), &u64_bytes(at.max(seq)))?;
            trim(w)
        })
    }
}

/// Removes the events every sink's cursor has passed.
fn trim(w: &mut dyn Write) -> Result<()> {
    let low = w
        .range(CURSORS, b"", None, usize::MAX)?
        .iter()
        .map(|(_, v)| read_u64(v))
        .min();
    let Some(low) = low else {
        return Ok(());
    };
    // Every event numbered up to `low` (keys before `low + 1`).
    let end = u64_bytes(low.saturating_add(1));
    let passed = if low == u64::MAX {
        w.range(OUTBOX, b"", None, usize::MAX)?
    } else {
        w.range(OUTBOX, b"", Some(&end), usize::MAX)?
    };
    for (k, _) in passed {
        w.delete(OUTBOX, &k)?;
    }
    Ok(())
}

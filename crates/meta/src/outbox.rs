//! The events outbox: events describing changes to the store's
//! repositories, written in the same transaction as the change they
//! describe (`Change::Event`), kept until every sink has acknowledged them.
//!
//! Invariants:
//! - Events are numbered from one store-wide sequence that never goes back
//!   (the last number handed out is kept in `outbox_state`), so the order of
//!   the numbers is the order of the changes, for every repository.
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

use redb::{
    Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::{MetaStore, Result};

/// Event number -> [`OutboxEvent`] (JSON).
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Sink name -> number of the last event it acknowledged.
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("outbox_cursors");
/// `seq` -> last number handed out; `dropped` -> events dropped at the limit.
const STATE: TableDefinition<&str, u64> = TableDefinition::new("outbox_state");

const SEQ: &str = "seq";
const DROPPED: &str = "dropped";

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

/// Creates the tables (at open).
pub(crate) fn create(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(OUTBOX)?;
    txn.open_table(CURSORS)?;
    txn.open_table(STATE)?;
    Ok(())
}

/// Appends `events` in order; drops the oldest beyond `limit`.
pub(crate) fn append(txn: &WriteTransaction, events: &[&OutboxEvent], limit: u64) -> Result<()> {
    if events.is_empty() || limit == 0 {
        return Ok(());
    }
    let mut state = txn.open_table(STATE)?;
    let mut outbox = txn.open_table(OUTBOX)?;
    let mut seq = state.get(SEQ)?.map_or(0, |v| v.value());
    for event in events {
        seq += 1;
        outbox.insert(seq, serde_json::to_vec(event)?.as_slice())?;
    }
    state.insert(SEQ, seq)?;
    let len = outbox.len()?;
    if len > limit {
        let excess = len - limit;
        for _ in 0..excess {
            outbox.pop_first()?;
        }
        let dropped = state.get(DROPPED)?.map_or(0, |v| v.value());
        state.insert(DROPPED, dropped + excess)?;
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
        self.watch((|| {
            let mut txn = self.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let refs: Vec<&OutboxEvent> = events.iter().collect();
            append(&txn, &refs, limit)?;
            txn.commit()?;
            Ok(())
        })())?;
        self.outbox.appended();
        Ok(())
    }

    /// Up to `n` events numbered after `after`, in order.
    pub fn outbox_after(&self, after: u64, n: usize) -> Result<Vec<Queued>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for item in t.range(after.saturating_add(1)..)?.take(n) {
            let (k, v) = item?;
            out.push(Queued {
                seq: k.value(),
                event: serde_json::from_slice(v.value())?,
            });
        }
        Ok(out)
    }

    /// Whether event `seq` is still in the outbox (not dropped).
    pub fn outbox_contains(&self, seq: u64) -> Result<bool> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(OUTBOX)?.get(seq)?.is_some())
    }

    /// Events in the outbox, and events dropped at the limit so far.
    pub fn outbox_counts(&self) -> Result<(u64, u64)> {
        let txn = self.db()?.begin_read()?;
        let len = txn.open_table(OUTBOX)?.len()?;
        let dropped = txn
            .open_table(STATE)?
            .get(DROPPED)?
            .map_or(0, |v| v.value());
        Ok((len, dropped))
    }

    /// Sets the sinks events are delivered to, returning each one's cursor:
    /// a sink not seen before starts before the oldest event kept (so it
    /// receives every event still undelivered somewhere), the cursors of
    /// sinks no longer configured are removed, and events every sink has
    /// passed are removed.
    pub fn outbox_sinks(&self, sinks: &[String]) -> Result<Vec<u64>> {
        self.watch((|| {
            let txn = self.begin_write()?;
            let mut cursors_out = Vec::new();
            {
                let outbox = txn.open_table(OUTBOX)?;
                let start = match outbox.first()? {
                    Some((k, _)) => k.value() - 1,
                    None => txn.open_table(STATE)?.get(SEQ)?.map_or(0, |v| v.value()),
                };
                drop(outbox);
                let mut cursors = txn.open_table(CURSORS)?;
                cursors.retain(|k, _| sinks.iter().any(|s| s == k))?;
                for sink in sinks {
                    let at = cursors.get(sink.as_str())?.map(|v| v.value());
                    let at = match at {
                        Some(at) => at,
                        None => {
                            cursors.insert(sink.as_str(), start)?;
                            start
                        }
                    };
                    cursors_out.push(at);
                }
            }
            trim(&txn)?;
            txn.commit()?;
            Ok(cursors_out)
        })())
    }

    /// `sink` acknowledged every event up to `seq`: moves its cursor and
    /// removes the events every sink has passed.
    pub fn outbox_ack(&self, sink: &str, seq: u64) -> Result<()> {
        self.watch((|| {
            let txn = self.begin_write()?;
            {
                let mut cursors = txn.open_table(CURSORS)?;
                let at = cursors.get(sink)?.map_or(0, |v| v.value());
                cursors.insert(sink, at.max(seq))?;
            }
            trim(&txn)?;
            txn.commit()?;
            Ok(())
        })())
    }
}

/// Removes the events every sink's cursor has passed.
fn trim(txn: &WriteTransaction) -> Result<()> {
    let cursors = txn.open_table(CURSORS)?;
    let mut low: Option<u64> = None;
    for item in cursors.iter()? {
        let v = item?.1.value();
        low = Some(low.map_or(v, |l| l.min(v)));
    }
    let Some(low) = low else {
        return Ok(());
    };
    let mut outbox = txn.open_table(OUTBOX)?;
    outbox.retain_in(..=low, |_, _| false)?;
    Ok(())
}

//! The events extension's delivery: events are made by storage and kept in
//! each store's outbox (`zot_meta`, written in the same transaction as the
//! change they describe); this crate sends them to the configured sinks
//! (`extensions.events.sinks`) as CloudEvents 1.0 — binary content mode
//! over HTTP, structured JSON over NATS — at least once, in order.
//!
//! Invariants:
//! - [`start`] spawns one delivery lane per (store, sink) and one monitor
//!   per store (see `delivery.rs`); nothing here runs on the request path:
//!   a commit that appends events only wakes the lanes.
//! - Each sink's position in each outbox is kept in the store under the
//!   sink's name ([`zot_config::SinkConfig::name`]), so a restart resumes
//!   where it stopped; a sink added later starts at the oldest event kept.
//! - When several instances share one outbox (the metadata store in Redis),
//!   a lane sends only while it holds the lease `events:<store>:<sink>`
//!   ([`Outbox::leases`]): one instance at a time delivers each sink, from
//!   the cursor kept in the shared store, and another takes over once a
//!   crashed holder's lease expires (an event being sent then may be sent
//!   again: at least once still, never once per instance).

mod cloudevent;
mod delivery;
mod http;
mod nats;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Notify;
use zot_config::{EventsConfig, SinkConfig, SinkKind};
use zot_meta::{MetaStore, OutboxEvent};

pub use cloudevent::{DATA_CONTENT_TYPE, SOURCE, SPEC_VERSION, binary_headers, structured};
pub use delivery::OutboxGauge;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink cannot be set up from its configuration.
    #[error("event sink {0}")]
    Setup(String),
    /// The event did not reach the sink.
    #[error("{0}")]
    Send(String),
    /// The sink answered, but did not accept the event.
    #[error("{0}")]
    Refused(String),
    /// The outbox could not be read or written.
    #[error("events outbox: {0}")]
    Outbox(#[from] zot_meta::MetaError),
}

/// One configured sink.
pub(crate) enum Sink {
    Http(Box<http::HttpSink>),
    Nats(Box<nats::NatsSink>),
}

impl Sink {
    fn new(cfg: &SinkConfig) -> Result<Sink, SinkError> {
        Ok(match cfg.kind {
            SinkKind::Http => Sink::Http(Box::new(http::HttpSink::new(cfg)?)),
            SinkKind::Nats => Sink::Nats(Box::new(nats::NatsSink::new(cfg)?)),
        })
    }

    pub(crate) async fn send(&self, event: &OutboxEvent) -> Result<(), SinkError> {
        match self {
            Sink::Http(s) => s.send(event).await,
            Sink::Nats(s) => s.send(event).await,
        }
    }
}

/// Leases that let one instance at a time deliver a lane when several
/// instances share an outbox.
pub trait LaneLeases: Send + Sync {
    /// Takes the lease `name` unless another instance holds it; `None`
    /// then, or when it cannot be asked (logged by the implementation).
    fn try_take(&self, name: String) -> LeaseFuture;
}

/// What [`LaneLeases::try_take`] answers.
pub type LeaseFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<Box<dyn HeldLease>>> + Send>>;

/// A lease taken by [`LaneLeases::try_take`]; given back when dropped.
pub trait HeldLease: Send + Sync {
    /// Whether another instance may hold it now: the lane stops sending.
    fn is_lost(&self) -> bool;
}

/// One store's outbox to deliver.
pub struct Outbox {
    pub name: String,
    pub meta: Arc<MetaStore>,
    /// `Some` when other instances deliver the same outbox (shared
    /// metadata): each lane sends only while holding its lease.
    pub leases: Option<Arc<dyn LaneLeases>>,
}

/// One store's outbox as the delivery sees it.
struct Store {
    name: String,
    meta: Arc<MetaStore>,
    leases: Option<Arc<dyn LaneLeases>>,
    /// The wakes of the store's current lanes: the append hook (set once
    /// per metadata store) wakes whatever lanes run now.
    wakes: Arc<std::sync::Mutex<Vec<Arc<Notify>>>>,
}

/// The running delivery: the outbox gauges of every store, and the lanes
/// of the current sinks (replaced by [`Delivery::replace_sinks`]).
pub struct Delivery {
    gauges: Vec<Arc<OutboxGauge>>,
    stores: Vec<Store>,
    lanes: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Delivery {
    /// Events kept in the outboxes (not yet acknowledged by every sink).
    pub fn pending(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| g.pending.load(Ordering::Relaxed))
            .sum()
    }

    /// Events dropped at the outboxes' bound since they were made.
    pub fn dropped(&self) -> u64 {
        self.gauges
            .iter()
            .map(|g| g.dropped.load(Ordering::Relaxed))
            .sum()
    }

    /// Delivers to the sinks of `cfg` from now on (a configuration
    /// reload). The sinks are set up first: one that cannot be changes
    /// nothing. Then the lanes stop (an event being sent when its lane
    /// stops is sent again: its cursor had not moved) and new ones start,
    /// each sink from its cursor; a sink no longer configured loses its
    /// cursor, and a new one starts after the events already kept.
    pub async fn replace_sinks(&self, cfg: &EventsConfig) -> Result<(), SinkError> {
        let sinks = make_sinks(cfg)?;
        let old: Vec<_> = std::mem::take(&mut *lock(&self.lanes));
        for lane in old {
            lane.abort();
        }
        self.start_lanes(&sinks, cfg).await
    }

    async fn start_lanes(
        &self,
        sinks: &[(String, Arc<Sink>)],
        cfg: &EventsConfig,
    ) -> Result<(), SinkError> {
        let names: Vec<String> = sinks.iter().map(|(n, _)| n.clone()).collect();
        for store in &self.stores {
            let m = store.meta.clone();
            let n = names.clone();
            let cursors = tokio::task::spawn_blocking(move || m.outbox_sinks(&n))
                .await
                .map_err(|_| SinkError::Outbox(zot_meta::MetaError::Unavailable))??;
            let wakes: Vec<Arc<Notify>> = sinks.iter().map(|_| Arc::new(Notify::new())).collect();
            *lock(&store.wakes) = wakes.clone();
            for (((name, sink), cursor), wake) in sinks.iter().zip(cursors).zip(wakes) {
                tracing::info!(
                    store = store.name,
                    sink = name,
                    from = cursor,
                    "events: delivering"
                );
                let lane = delivery::Lane {
                    meta: store.meta.clone(),
                    store: store.name.clone(),
                    sink: sink.clone(),
                    name: name.clone(),
                    cursor,
                    wake,
                    max_backoff: cfg.max_backoff,
                    leases: store.leases.clone(),
                    held: None,
                };
                lock(&self.lanes).push(tokio::spawn(lane.run()).abort_handle());
            }
        }
        Ok(())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether every sink of `cfg` can be set up (what [`start`] and
/// [`Delivery::replace_sinks`] would refuse), without starting anything.
pub fn check_sinks(cfg: &EventsConfig) -> Result<(), SinkError> {
    make_sinks(cfg).map(|_| ())
}

fn make_sinks(cfg: &EventsConfig) -> Result<Vec<(String, Arc<Sink>)>, SinkError> {
    cfg.sinks
        .iter()
        .map(|s| Ok((s.name(), Arc::new(Sink::new(s)?))))
        .collect()
}

/// Starts delivering the outboxes of `stores` (name, metadata store) to
/// the sinks of `cfg`. The stores must keep events already
/// (`MetaStore::set_outbox_limit`).
pub async fn start(cfg: &EventsConfig, stores: Vec<Outbox>) -> Result<Delivery, SinkError> {
    let sinks = make_sinks(cfg)?;
    let mut delivery = Delivery {
        gauges: Vec::new(),
        stores: Vec::new(),
        lanes: std::sync::Mutex::new(Vec::new()),
    };
    for Outbox { name, meta, leases } in stores {
        let wakes: Arc<std::sync::Mutex<Vec<Arc<Notify>>>> = Arc::default();
        let hook_wakes = wakes.clone();
        meta.on_outbox_append(Box::new(move || {
            for w in lock(&hook_wakes).iter() {
                w.notify_one();
            }
        }));
        let gauge = Arc::new(OutboxGauge::default());
        tokio::spawn(delivery::monitor(meta.clone(), name.clone(), gauge.clone()));
        delivery.gauges.push(gauge);
        delivery.stores.push(Store {
            name,
            meta,
            leases,
            wakes,
        });
    }
    delivery.start_lanes(&sinks, cfg).await?;
    Ok(delivery)
}

//! Wiring of the events extension (Cargo feature `events`): with the
//! feature off nothing of it is compiled, and an enabled
//! `extensions.events` is refused by `zot verify` as not available.
//! Events are made by storage (in the outbox of each store, see
//! `zot_storage::events`); this starts their delivery (`zot_events`).

use zot_config::Config;

/// The outbox bound given to every store, when events are on.
#[cfg(feature = "events")]
pub fn outbox_limit(cfg: &Config) -> Option<u64> {
    let events = cfg.extension("events").and_then(|e| e.events())?;
    Some(events.max_outbox_events)
}

/// Starts delivering every store's outbox, when events are on.
#[cfg(feature = "events")]
pub async fn start(
    cfg: &Config,
    stores: &[crate::lifecycle::Store],
) -> anyhow::Result<Option<zot_events::Delivery>> {
    use anyhow::Context;
    let Some(events) = cfg.extension("events").and_then(|e| e.events()) else {
        return Ok(None);
    };
    let outboxes = stores
        .iter()
        .map(|s| {
            let leases = s.registry.leases();
            zot_events::Outbox {
                name: s.name.clone(),
                meta: s.registry.outbox(),
                // Instances sharing the store's metadata share its outbox:
                // one of them delivers each sink (see `zot_events`).
                leases: leases.is_shared().then(|| {
                    std::sync::Arc::new(SharedLeases(leases))
                        as std::sync::Arc<dyn zot_events::LaneLeases>
                }),
            }
        })
        .collect();
    let delivery = zot_events::start(&events, outboxes)
        .await
        .context("starting the events extension")?;
    tracing::info!(
        sinks = events.sinks.len(),
        max_outbox_events = events.max_outbox_events,
        "events: on"
    );
    Ok(Some(delivery))
}

/// The store's leases in Redis, as the delivery takes them.
#[cfg(feature = "events")]
struct SharedLeases(zot_storage::shared::lease::Leases);

#[cfg(feature = "events")]
struct HeldLease(zot_storage::shared::lease::LeaseGuard);

#[cfg(feature = "events")]
impl zot_events::HeldLease for HeldLease {
    fn is_lost(&self) -> bool {
        self.0.is_lost()
    }
}

#[cfg(feature = "events")]
impl zot_events::LaneLeases for SharedLeases {
    fn try_take(&self, name: String) -> zot_events::LeaseFuture {
        let leases = self.0.clone();
        Box::pin(async move {
            match leases.try_acquire(&name).await {
                Ok(Some(guard)) => {
                    Some(Box::new(HeldLease(guard)) as Box<dyn zot_events::HeldLease>)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(lease = name, error = %e, "events: the delivery lease could not be taken");
                    None
                }
            }
        })
    }
}

/// Sets the metrics' outbox gauges: (events kept, events dropped).
#[cfg(feature = "events")]
pub type OutboxGauges = Box<dyn Fn(u64, u64) + Send + Sync>;

/// Copies the delivery's outbox counts into the metrics every second when
/// metrics are on.
#[cfg(feature = "events")]
pub fn report(delivery: std::sync::Arc<zot_events::Delivery>, metrics: Option<OutboxGauges>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(set) = &metrics {
                set(delivery.pending(), delivery.dropped());
            }
        }
    });
}

/// Without the feature: never on.
#[cfg(not(feature = "events"))]
pub fn outbox_limit(_cfg: &Config) -> Option<u64> {
    None
}

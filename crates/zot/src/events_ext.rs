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
        .map(|s| (s.name.clone(), s.registry.outbox()))
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

/// Without the feature: never on.
#[cfg(not(feature = "events"))]
pub fn outbox_limit(_cfg: &Config) -> Option<u64> {
    None
}

//! CloudEvents 1.0 renderings of an outbox event: binary content mode for
//! HTTP (attributes as `ce-*` headers, the body the event's `data`), and
//! structured content mode (one JSON object) for NATS.
//!
//! Invariant: both carry the same attributes — `specversion` 1.0, `id`,
//! `source` `zotregistry.dev` (zot's), `type`, `time`,
//! `datacontenttype` `application/json`, and the extension attribute
//! `channel` when the sink has one — and the `data` text as stored.

use serde_json::{Map, Value};
use zot_meta::OutboxEvent;

/// zot's CloudEvents `source`.
pub const SOURCE: &str = "zotregistry.dev";
pub const SPEC_VERSION: &str = "1.0";
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// The headers of an HTTP request in binary content mode (the body is
/// `event.data`).
pub fn binary_headers(event: &OutboxEvent, channel: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("ce-specversion", SPEC_VERSION.to_owned()),
        ("ce-id", event.id.clone()),
        ("ce-source", SOURCE.to_owned()),
        ("ce-type", event.event_type.clone()),
        ("ce-time", event.time.clone()),
        ("content-type", DATA_CONTENT_TYPE.to_owned()),
    ];
    if let Some(c) = channel {
        h.push(("ce-channel", c.to_owned()));
    }
    h
}

/// The event as one JSON object (structured content mode).
pub fn structured(event: &OutboxEvent, channel: Option<&str>) -> Vec<u8> {
    let mut o = Map::new();
    o.insert("specversion".into(), SPEC_VERSION.into());
    o.insert("id".into(), event.id.clone().into());
    o.insert("source".into(), SOURCE.into());
    o.insert("type".into(), event.event_type.clone().into());
    o.insert("time".into(), event.time.clone().into());
    o.insert("datacontenttype".into(), DATA_CONTENT_TYPE.into());
    if let Some(c) = channel {
        o.insert("channel".into(), c.into());
    }
    // Stored as JSON text by storage; a record that is not (never written
    // so) travels as a string rather than being lost.
    let data = serde_json::from_str::<Value>(&event.data)
        .unwrap_or_else(|_| Value::String(event.data.clone()));
    o.insert("data".into(), data);
    Value::Object(o).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> OutboxEvent {
        OutboxEvent {
            repo: "a".into(),
            event_type: "zotregistry.repository.created".into(),
            id: "1".into(),
            time: "2026-12-07T00:00:00Z".into(),
            data: r#"{"name":"a"}"#.into(),
        }
    }

    #[test]
    fn structured_carries_every_attribute_and_the_data() {
        let v: Value = serde_json::from_slice(&structured(&event(), Some("c"))).unwrap_or_default();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["source"], "zotregistry.dev");
        assert_eq!(v["type"], "zotregistry.repository.created");
        assert_eq!(v["channel"], "c");
        assert_eq!(v["data"]["name"], "a");
    }

    #[test]
    fn binary_names_the_channel_only_when_set() {
        assert!(
            !binary_headers(&event(), None)
                .iter()
                .any(|(k, _)| *k == "ce-channel")
        );
        assert!(binary_headers(&event(), Some("x")).contains(&("ce-channel", "x".to_owned())));
    }
}

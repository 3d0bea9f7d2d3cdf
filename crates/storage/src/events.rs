//! Events (zot's CloudEvents types and payloads), made by the storage
//! operations that change a repository and written to the metadata store's
//! outbox in the same transaction as the change (`Change::Event`).
//!
//! Invariants:
//! - An event is made only when the change happened: a repository whose
//!   `index.json` is created (`repository.created`), a tag set to another
//!   digest or a digest newly listed (`image.updated`; re-pushing an
//!   identical manifest under the same tag or digest makes none), a manifest
//!   or tag deleted (`image.deleted`), a push refused by lint
//!   (`image.lint_failed`, in a transaction of its own), a scan finished
//!   ([`crate::Registry::record_scanned`], by the scanner: `image.scanned`).
//! - Nothing is made while the store keeps no events
//!   ([`zot_meta::MetaStore::events_enabled`]).
//! - Who asked and how (`actor`, `request`) come from the [`Origin`] the
//!   API layer runs a mutating request in ([`with_origin`]); an operation
//!   outside a request (start-up, GC) has neither.
//! - GC and retention make `image.deleted` as zot's storage does when they
//!   call its manifest delete: one per tag a policy removed (the tag as
//!   `reference`) and one per manifest removed (its digest), in the same
//!   transaction as the removal; nothing when nothing was removed, and
//!   nothing in a dry run.

use serde_json::{Map, Value, json};
use zot_meta::OutboxEvent;
use zot_oci::{Digest, RepoName};

/// zot's CloudEvents types.
pub const REPOSITORY_CREATED: &str = "zotregistry.repository.created";
pub const IMAGE_UPDATED: &str = "zotregistry.image.updated";
pub const IMAGE_DELETED: &str = "zotregistry.image.deleted";
pub const IMAGE_LINT_FAILED: &str = "zotregistry.image.lint_failed";
pub const IMAGE_SCANNED: &str = "zotregistry.image.scanned";

/// The request a change comes from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The authenticated user's name (`None`: anonymous).
    pub actor: Option<String>,
    /// The client's address.
    pub addr: String,
    pub method: String,
    pub user_agent: String,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

/// Runs `work` with `origin` as the origin of the events it makes.
pub async fn with_origin<F: std::future::Future>(origin: Origin, work: F) -> F::Output {
    ORIGIN.scope(origin, work).await
}

/// What identifies an image in `image.*` events.
pub struct Image<'a> {
    pub reference: &'a str,
    pub digest: &'a Digest,
    pub media_type: &'a str,
}

/// The outbox record of an event of `event_type` about `repo` with `data`
/// (zot's fields), adding `actor` and `request` from the current origin.
fn event(repo: &RepoName, event_type: &str, mut data: Map<String, Value>) -> OutboxEvent {
    // Outside `with_origin` (start-up, background work) there is none.
    if let Ok(origin) = ORIGIN.try_with(Origin::clone) {
        if let Some(name) = origin.actor {
            data.insert("actor".into(), json!({ "name": name }));
        }
        data.insert(
            "request".into(),
            json!({
                "addr": origin.addr,
                "method": origin.method,
                "useragent": origin.user_agent,
            }),
        );
    }
    OutboxEvent {
        repo: repo.as_str().to_owned(),
        event_type: event_type.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        data: Value::Object(data).to_string(),
    }
}

fn image_data(repo: &RepoName, image: &Image<'_>) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("name".into(), repo.as_str().into());
    data.insert("reference".into(), image.reference.into());
    data.insert("digest".into(), image.digest.to_string().into());
    data.insert("mediaType".into(), image.media_type.into());
    data
}

pub(crate) fn repository_created(repo: &RepoName) -> OutboxEvent {
    let mut data = Map::new();
    data.insert("name".into(), repo.as_str().into());
    event(repo, REPOSITORY_CREATED, data)
}

/// `image.updated` (or, with `lint_failed`, `image.lint_failed`): the
/// manifest travels as its text, as zot sends it.
pub(crate) fn image_pushed(
    repo: &RepoName,
    image: &Image<'_>,
    manifest: &[u8],
    lint_failed: bool,
) -> OutboxEvent {
    let mut data = image_data(repo, image);
    data.insert(
        "manifest".into(),
        String::from_utf8_lossy(manifest).into_owned().into(),
    );
    let kind = if lint_failed {
        IMAGE_LINT_FAILED
    } else {
        IMAGE_UPDATED
    };
    event(repo, kind, data)
}

/// What a vulnerability scan found (zot's `summary` of `image.scanned`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub count: u64,
    pub fixable_count: u64,
    pub unknown_count: u64,
    pub low_count: u64,
    pub medium_count: u64,
    pub high_count: u64,
    pub critical_count: u64,
    pub max_severity: String,
}

pub(crate) fn image_scanned(repo: &RepoName, image: &Image<'_>, s: &ScanSummary) -> OutboxEvent {
    let mut data = image_data(repo, image);
    data.insert(
        "summary".into(),
        json!({
            "count": s.count,
            "fixableCount": s.fixable_count,
            "unknownCount": s.unknown_count,
            "lowCount": s.low_count,
            "mediumCount": s.medium_count,
            "highCount": s.high_count,
            "criticalCount": s.critical_count,
            "maxSeverity": s.max_severity,
        }),
    );
    event(repo, IMAGE_SCANNED, data)
}

pub(crate) fn image_deleted(repo: &RepoName, image: &Image<'_>) -> OutboxEvent {
    event(repo, IMAGE_DELETED, image_data(repo, image))
}

/// `image.deleted` for what a GC round removed from `repo`: each of
/// `tags` (sorted), naming the manifest it pointed at, then each of
/// `digests` (sorted). `listed` is what `index.json` listed before, each
/// manifest's descriptor with its tags.
pub(crate) fn removed_by_gc<'a>(
    repo: &RepoName,
    listed: impl Iterator<Item = (&'a zot_oci::Descriptor, &'a [String])> + Clone,
    tags: &std::collections::HashSet<String>,
    digests: &std::collections::HashSet<Digest>,
) -> Vec<OutboxEvent> {
    let mut out = Vec::new();
    let mut tags: Vec<&String> = tags.iter().collect();
    tags.sort();
    for tag in tags {
        if let Some((desc, _)) = listed.clone().find(|(_, t)| t.contains(tag)) {
            let image = Image {
                reference: tag,
                digest: &desc.digest,
                media_type: &desc.media_type,
            };
            out.push(image_deleted(repo, &image));
        }
    }
    let mut digests: Vec<&Digest> = digests.iter().collect();
    digests.sort();
    for digest in digests {
        if let Some((desc, _)) = listed.clone().find(|(d, _)| d.digest == *digest) {
            let image = Image {
                reference: &digest.to_string(),
                digest,
                media_type: &desc.media_type,
            };
            out.push(image_deleted(repo, &image));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn actor_and_request_come_from_the_origin() {
        let repo: RepoName = "a/b".parse().unwrap_or_else(|_| unreachable!());
        let plain = repository_created(&repo);
        assert_eq!(plain.data, r#"{"name":"a/b"}"#);
        assert_eq!(plain.event_type, REPOSITORY_CREATED);
        let origin = Origin {
            actor: Some("alice".into()),
            addr: "10.0.0.1".into(),
            method: "PUT".into(),
            user_agent: "skopeo".into(),
        };
        let e = with_origin(origin, async { repository_created(&repo) }).await;
        let data: Value = serde_json::from_str(&e.data).unwrap_or_default();
        assert_eq!(data["actor"]["name"], "alice");
        assert_eq!(data["request"]["addr"], "10.0.0.1");
        assert_eq!(data["request"]["method"], "PUT");
        assert_eq!(data["request"]["useragent"], "skopeo");
        assert!(e.time.ends_with('Z') && e.time.contains('T'), "{}", e.time);
    }
}

//! The registry's Prometheus metrics: zot's names, types and labels
//! (`zot_http_requests_total`, `zot_http_method_latency_seconds`,
//! `zot_http_repo_latency_seconds`, `zot_repo_downloads_total`,
//! `zot_repo_uploads_total`, `zot_repo_storage_bytes`, `zot_info`, the
//! scheduler's and GC's, see [`Background`]), ours (repository label use),
//! series other crates count and a [`Source`] reads when rendered (storage
//! locks, the manifest cache, sync) and process metrics, rendered in the
//! Prometheus text exposition format.
//!
//! Invariants:
//! - Recording a request ([`Metrics::begin`], [`Metrics::finish`]) takes no
//!   lock and allocates nothing for a labelled repository or a path naming
//!   none: a lookup and a handful of relaxed atomic additions into fixed
//!   arrays. A repository without a label yet has its name copied.
//! - Label cardinality is bounded: `method` is one of [`METHODS`], `code`
//!   one of 100..=599, and `repo` one of at most `max_repositories` names,
//!   each given its label only by a successful (2xx) answer about it, so a
//!   client inventing names (answered 404) creates nothing. Requests for a
//!   repository without a label count under `repo="N/A"`, as zot counts
//!   requests that name none; names refused by the cap are counted in
//!   `zot_metrics_repo_labels_dropped_total`.
//! - Histograms keep one counter per bucket (not cumulative), summed when
//!   rendered; a scrape may see a request in a count but not yet in a sum
//!   (the usual tolerance of lock-free metrics).

mod background;
mod config;
mod cve;
mod process;
pub mod render;
mod repos;
mod sources;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use background::{Background, GcRound, ScrubRound, TASK_DURATION_BUCKETS, Task};
pub use config::ConfigState;
pub use cve::CveStatus;
use repos::{RepoSlot, RepoTable};
pub use sources::{Collected, Source};

/// How many repositories get labels when the config does not say.
pub const DEFAULT_MAX_REPOSITORIES: usize = 1000;

/// zot's buckets of `zot_http_method_latency_seconds`.
pub const METHOD_LATENCY_BUCKETS: [f64; 7] = [0.05, 0.5, 1.0, 5.0, 30.0, 60.0, 600.0];

/// The `method` label values; any other method counts as `OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

const CODES: usize = 500;

/// A count and a sum (nanoseconds): a Prometheus summary without quantiles,
/// as zot's (client_golang's default objectives are none).
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) count: AtomicU64,
    pub(crate) sum_nanos: AtomicU64,
}

impl Summary {
    pub(crate) fn observe(&self, nanos: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A histogram over `bounds` (plus `+Inf`).
#[derive(Debug)]
pub(crate) struct Histogram {
    pub(crate) bounds: &'static [f64],
    /// Observations falling in each bucket alone (the last is `+Inf`).
    pub(crate) buckets: Box<[AtomicU64]>,
    pub(crate) sum: Summary,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: Summary::default(),
        }
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.observe(nanos(elapsed));
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What `zot_info` says about the build.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// `version`: the configured `distSpecVersion`, as zot.
    pub version: String,
    /// `commit`: the source commit, when known at build time.
    pub commit: String,
    /// `binaryType`: the extensions built in, as zot's `-a-b-c`.
    pub binary_type: String,
    /// `goVersion`: here, the language and toolchain (`rust`).
    pub go_version: String,
}

/// One answered request, as [`Metrics::record`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub status: u16,
    /// The repository of `/v2/<repo>/(blobs|tags|manifests)/...`.
    pub repo: Option<&'a str>,
    /// Whether the path is `/v2/<repo>/manifests/<reference>`.
    pub manifest: bool,
    pub elapsed: Duration,
}

/// A request being answered ([`Metrics::begin`]): its method and its
/// repository, looked up before the answer so that the path need not be
/// kept. A labelled repository is its slot (nothing copied); only a name
/// without a label yet is copied.
#[derive(Debug)]
pub struct Pending<'a> {
    method: usize,
    repo: Option<Repo<'a>>,
    manifest: bool,
    start: Instant,
}

#[derive(Debug)]
enum Repo<'a> {
    Slot(&'a RepoSlot),
    Name(Cow<'a, str>),
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    /// `zot_http_requests_total{method,code}`: `[method][code - 100]`.
    requests: Box<[AtomicU64]>,
    method_latency: [Histogram; METHODS.len()],
    /// `zot_http_repo_latency_seconds{repo="N/A"}`.
    unlabelled_latency: Summary,
    repos: RepoTable,
    dropped_repo_labels: AtomicU64,
    /// The events outboxes: events kept, events dropped at the bound
    /// (`u64::MAX` in the first: events off, not rendered).
    events_outbox: [AtomicU64; 2],
    background: Background,
    /// Series read from the rest of the process when rendered.
    sources: sources::Sources,
    cve: cve::Cve,
    /// Reloads of the configuration and the hash of the one in use.
    config: ConfigState,
    info: BuildInfo,
    started: SystemTime,
}

impl Metrics {
    /// Labels for at most `max_repositories` repositories.
    pub fn new(info: BuildInfo, max_repositories: usize) -> Metrics {
        Metrics {
            requests: (0..METHODS.len() * CODES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            method_latency: std::array::from_fn(|_| Histogram::new(&METHOD_LATENCY_BUCKETS)),
            unlabelled_latency: Summary::default(),
            repos: RepoTable::new(max_repositories),
            dropped_repo_labels: AtomicU64::new(0),
            events_outbox: [AtomicU64::new(u64::MAX), AtomicU64::new(0)],
            background: Background::default(),
            sources: sources::Sources::default(),
            cve: cve::Cve::default(),
            config: ConfigState::default(),
            info,
            started: SystemTime::now(),
        }
    }

    /// The events outboxes now: events kept (not yet acknowledged by every
    /// sink) and events dropped at the bound so far. Rendered once set.
    pub fn set_events_outbox(&self, kept: u64, dropped: u64) {
        self.events_outbox[0].store(kept, Ordering::Relaxed);
        self.events_outbox[1].store(dropped, Ordering::Relaxed);
    }

    /// What the vulnerability scanner reports (rendered once set).
    pub fn set_cve(&self, status: &CveStatus) {
        self.cve.set(status);
    }

    /// The metrics of background work (scheduler, GC, scrub, samplers).
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Configuration reloads and the hash of the configuration in use.
    pub fn config(&self) -> &ConfigState {
        &self.config
    }

    /// The storage `repo` uses now, as a background task measured it.
    /// Taking the repository's label like a successful request; `false`
    /// when the label cap left it without one.
    pub fn set_repo_storage_bytes(&self, repo: &str, bytes: u64) -> bool {
        match self.repos.find_or_insert(repo) {
            Some(slot) => {
                slot.storage_bytes
                    .store(bytes.min(u64::MAX - 1), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Starts timing a request for `path` (what the hot path calls: no
    /// allocation when the repository has its label).
    pub fn begin(&self, method: &str, path: &str) -> Pending<'_> {
        let target = repo_of_path(path);
        Pending {
            method: method_index(method),
            repo: target.map(|(name, _)| match self.repos.find(name) {
                Some(slot) => Repo::Slot(slot),
                None => Repo::Name(Cow::Owned(name.to_owned())),
            }),
            manifest: target.is_some_and(|(_, manifest)| manifest),
            start: Instant::now(),
        }
    }

    /// Counts a request [`Metrics::begin`] started, answered with `status`.
    pub fn finish(&self, pending: Pending<'_>, status: u16) {
        let elapsed = pending.start.elapsed();
        let Pending {
            method,
            repo,
            manifest,
            ..
        } = pending;
        self.count(method, status, repo, manifest, elapsed);
    }

    /// Counts one answered request.
    pub fn record(&self, r: &Request<'_>) {
        let repo = r.repo.map(|name| Repo::Name(Cow::Borrowed(name)));
        self.count(
            method_index(r.method),
            r.status,
            repo,
            r.manifest,
            r.elapsed,
        );
    }

    fn count(
        &self,
        m: usize,
        status: u16,
        repo: Option<Repo<'_>>,
        manifest: bool,
        elapsed: Duration,
    ) {
        let code = usize::from(status.clamp(100, 599)) - 100;
        self.requests[m * CODES + code].fetch_add(1, Ordering::Relaxed);
        self.method_latency[m].observe(elapsed);
        let ok = (200..300).contains(&status);
        let slot = match repo {
            Some(Repo::Slot(slot)) => Some(slot),
            Some(Repo::Name(name)) if ok => {
                let slot = self.repos.find_or_insert(&name);
                if slot.is_none() {
                    self.dropped_repo_labels.fetch_add(1, Ordering::Relaxed);
                }
                slot
            }
            Some(Repo::Name(name)) => self.repos.find(&name),
            None => None,
        };
        let latency = slot.map_or(&self.unlabelled_latency, |s| &s.latency);
        latency.observe(nanos(elapsed));
        if let Some(slot) = slot
            && ok
            && manifest
        {
            match METHODS[m] {
                "GET" | "HEAD" => slot.downloads.fetch_add(1, Ordering::Relaxed),
                "PUT" => slot.uploads.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        render::render(self, false)
    }

    /// The same in OpenMetrics 1.0 text.
    pub fn render_openmetrics(&self) -> String {
        render::render(self, true)
    }
}

fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// The repository of a `/v2/<repo>/(blobs|tags|manifests)/...` path, as
/// zot's label: the part before the first of those segments; and whether
/// it is a manifest path.
pub fn repo_of_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/v2/")?;
    let mut from = 0;
    while let Some(i) = rest[from..].find('/') {
        let at = from + i;
        let tail = &rest[at + 1..];
        for (kind, manifest) in [("blobs/", false), ("tags/", false), ("manifests/", true)] {
            if tail.starts_with(kind) && at > 0 {
                return Some((&rest[..at], manifest));
            }
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_of_path_takes_the_first_kind_segment() {
        assert_eq!(
            repo_of_path("/v2/a/b/manifests/latest"),
            Some(("a/b", true))
        );
        assert_eq!(repo_of_path("/v2/a/blobs/uploads/x"), Some(("a", false)));
        assert_eq!(repo_of_path("/v2/a/tags/list"), Some(("a", false)));
        assert_eq!(repo_of_path("/v2/_catalog"), None);
        assert_eq!(repo_of_path("/v2//manifests/x"), None);
        assert_eq!(repo_of_path("/metrics"), None);
    }

    #[test]
    fn latency_lands_in_its_bucket() {
        let h = Histogram::new(&METHOD_LATENCY_BUCKETS);
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_secs(2));
        h.observe(Duration::from_secs(7200));
        let got: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(got, vec![1, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn only_successful_answers_give_labels() {
        let m = Metrics::new(BuildInfo::default(), 2);
        let req = |repo, status, method| Request {
            method,
            status,
            repo: Some(repo),
            manifest: true,
            elapsed: Duration::from_millis(1),
        };
        m.record(&req("ghost", 404, "GET"));
        assert!(m.repos.find("ghost").is_none());
        m.record(&req("a", 201, "PUT"));
        m.record(&req("a", 200, "GET"));
        m.record(&req("a", 404, "GET"));
        m.record(&req("b", 200, "HEAD"));
        m.record(&req("c", 200, "GET"));
        let a = m.repos.find("a").map(|s| {
            (
                s.uploads.load(Ordering::Relaxed),
                s.downloads.load(Ordering::Relaxed),
                s.latency.count.load(Ordering::Relaxed),
            )
        });
        assert_eq!(a, Some((1, 1, 3)));
        assert!(m.repos.find("c").is_none());
        assert_eq!(m.dropped_repo_labels.load(Ordering::Relaxed), 1);
        assert_eq!(m.unlabelled_latency.count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn repo_storage_bytes_share_the_label_cap() {
        let m = Metrics::new(BuildInfo::default(), 1);
        assert!(m.set_repo_storage_bytes("a", 10));
        assert!(m.set_repo_storage_bytes("a", 12));
        assert!(!m.set_repo_storage_bytes("b", 5));
        let text = m.render();
        assert!(
            text.contains("\nzot_repo_storage_bytes{repo=\"a\"} 12\n"),
            "{text}"
        );
        assert!(!text.contains("repo=\"b\""), "{text}");
    }

    #[test]
    fn begin_and_finish_count_like_record() {
        let m = Metrics::new(BuildInfo::default(), 10);
        let p = m.begin("PUT", "/v2/x/y/manifests/v1");
        assert!(matches!(p.repo, Some(Repo::Name(_))));
        m.finish(p, 201);
        let p = m.begin("GET", "/v2/x/y/manifests/v1");
        assert!(
            matches!(p.repo, Some(Repo::Slot(_))),
            "a labelled repository is its slot"
        );
        m.finish(p, 200);
        m.finish(m.begin("GET", "/v2/ghost/manifests/v1"), 404);
        let slot = m.repos.find("x/y").map(|s| {
            (
                s.uploads.load(Ordering::Relaxed),
                s.downloads.load(Ordering::Relaxed),
            )
        });
        assert_eq!(slot, Some((1, 1)));
        assert!(m.repos.find("ghost").is_none());
        assert_eq!(
            m.requests[method_index("GET") * CODES + 304].load(Ordering::Relaxed),
            1
        );
    }
}

//! [`Upstream`]: one `registries[]` entry: its client, its content rules,
//! and a periodic run over its catalog.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use zot_client::{ClientError, ClientOptions, CredentialsFile, RegistryClient, RetryPolicy};
use zot_config::SyncRegistry;
use zot_oci::{Digest, Reference, RepoName, Tag};
use zot_storage::Stores;

use crate::SyncError;
use crate::content::{Content, Rule, is_subject_tag};
use crate::copy::{CopyStats, RepoPair};

mod referrers;
pub(crate) use referrers::Subject;

/// Artifact types that make an image signed (notation, cosign).
const SIGNATURE_TYPES: &[&str] = &[
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];
/// How deep referrers of referrers are followed.
const MAX_REFERRER_DEPTH: usize = 8;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Upstream repositories matched by `content`.
    pub repositories: usize,
    /// Of those, how many failed (logged each).
    pub failed: usize,
    /// Images (tags) copied, already present, and skipped (not signed, ...).
    pub copied: usize,
    pub present: usize,
    pub skipped: usize,
    pub stats: CopyStats,
}

impl std::ops::AddAssign for RunReport {
    fn add_assign(&mut self, o: RunReport) {
        self.repositories += o.repositories;
        self.failed += o.failed;
        self.copied += o.copied;
        self.present += o.present;
        self.skipped += o.skipped;
        self.stats += o.stats;
    }
}

/// One upstream registry.
pub struct Upstream {
    /// The first URL, for logs.
    pub name: String,
    /// `urls`, for the status.
    pub urls: Vec<String>,
    client: Arc<RegistryClient>,
    content: Content,
    poll_interval: Option<Duration>,
    only_signed: bool,
    legacy_cosign_tags: bool,
    /// Docker images converted to OCI (not `preserveDigest`).
    convert: bool,
    /// `platforms` of the registry.
    platforms: Vec<crate::platforms::Platform>,
    /// `host[:port]` of each URL (lower case).
    hosts: Vec<String>,
    /// `onDemand`, `manifestCheckInterval`, `syncTimeout`.
    pub(crate) on_demand: bool,
    pub(crate) check_interval: Duration,
    /// Background retries of a failed on-demand fetch (`maxRetries` with
    /// `retryDelay`/`maxRetryDelay`); none without `maxRetries`.
    pub(crate) background_retry: Option<RetryPolicy>,
    pub(crate) timeout: Duration,
    pub(crate) response_header_timeout: Duration,
    /// Which local repositories the periodic sync writes (cluster mode:
    /// those this member owns); `None`: all.
    keep: Option<RepoFilter>,
    /// Runs and fetches, for metrics.
    pub counters: crate::UpstreamCounters,
}

/// Whether a local repository name is this instance's to sync.
pub type RepoFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The client settings of a `registries[]` entry.
pub fn client_options(cfg: &SyncRegistry, credentials: &CredentialsFile) -> ClientOptions {
    let mut o = ClientOptions::new(cfg.urls.clone());
    o.tls_verify = cfg.tls_verify;
    o.cert_dir = cfg.cert_dir.clone();
    o.credentials = credentials.clone();
    if let Some(delay) = cfg.retry_delay {
        o.retry = RetryPolicy {
            max_retries: cfg.max_retries.unwrap_or(0),
            delay,
            max_delay: cfg.max_retry_delay.unwrap_or(delay).max(delay),
        };
    }
    o.timeout = cfg.sync_timeout;
    o.response_header_timeout = cfg.response_header_timeout;
    if let Some(n) = cfg.req_concurrent {
        o.concurrency = n;
    }
    o.requests_per_second = cfg.req_per_sec;
    o.disable_http2 = cfg.disable_http2;
    o.max_idle_per_host = cfg.max_idle_conns_per_host;
    o
}

impl Upstream {
    pub fn new(cfg: &SyncRegistry, credentials: &CredentialsFile) -> Result<Upstream, SyncError> {
        let client = Arc::new(RegistryClient::new(&client_options(cfg, credentials))?);
        let content = Content::new(&cfg.content).map_err(|e| SyncError::Invalid(e.to_string()))?;
        Ok(Upstream {
            name: cfg.urls.first().cloned().unwrap_or_default(),
            urls: cfg.urls.clone(),
            client,
            content,
            poll_interval: cfg.poll_interval,
            only_signed: cfg.only_signed,
            legacy_cosign_tags: cfg.sync_legacy_cosign_tags,
            convert: !cfg.preserve_digest,
            platforms: crate::platforms::parse(&cfg.platforms),
            hosts: cfg.urls.iter().filter_map(|u| host_of(u)).collect(),
            on_demand: cfg.on_demand,
            check_interval: cfg.manifest_check_interval,
            background_retry: match (cfg.max_retries, cfg.retry_delay) {
                (Some(n), Some(delay)) if n > 0 => Some(RetryPolicy {
                    max_retries: n,
                    delay,
                    max_delay: cfg.max_retry_delay.unwrap_or(delay).max(delay),
                }),
                _ => None,
            },
            timeout: cfg.sync_timeout,
            response_header_timeout: cfg.response_header_timeout,
            keep: None,
            counters: crate::UpstreamCounters::default(),
        })
    }

    /// Makes the periodic sync skip the repositories whose local name
    /// `keep` refuses (in cluster mode, another member's: that member
    /// syncs them).
    pub fn keep_only(&mut self, keep: RepoFilter) {
        self.keep = Some(keep);
    }

    /// Whether this upstream is registry `ns` (containerd's `?ns=`): one of
    /// its URLs has that `host[:port]`, Docker Hub by any of its names.
    pub fn serves(&self, ns: &str) -> bool {
        let ns = ns.to_ascii_lowercase();
        let hub = zot_client::names::is_docker_hub(&ns);
        self.hosts
            .iter()
            .any(|h| *h == ns || hub && zot_client::names::is_docker_hub(h))
    }

    /// The platforms a rule (or, without its own, the registry) syncs.
    /// The copy from `upstream` into `local` (in its store), with the
    /// platforms `rule` keeps.
    fn pair<'a>(
        &'a self,
        upstream: &'a str,
        (stores, local): (&'a Stores, &'a RepoName),
        rule: Option<&'a Rule>,
    ) -> RepoPair<'a> {
        RepoPair {
            client: &self.client,
            upstream,
            registry: stores.for_repo(local),
            local,
            convert: self.convert,
            platforms: self.platforms_of(rule),
            pulls: None,
        }
    }

    fn platforms_of<'s>(&'s self, rule: Option<&'s Rule>) -> &'s [crate::platforms::Platform] {
        match rule {
            Some(r) if !r.platforms.is_empty() => &r.platforms,
            _ => &self.platforms,
        }
    }

    /// The period of the periodic sync: set only with a `pollInterval` and
    /// `content` (zot's rule).
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval.filter(|_| !self.content.is_empty())
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// One periodic run: the repositories named by literal rules and, when
    /// a rule is a glob, the catalog; then every repository that a content
    /// rule matches, each holding one of `permits` while it syncs (and
    /// reported to `hooks` as a scheduler task). Fails only when the
    /// catalog cannot be read. Counted in [`Upstream::counters`].
    pub async fn sync_once(
        &self,
        stores: &Stores,
        permits: &Arc<Semaphore>,
        hooks: &dyn crate::TaskHooks,
    ) -> Result<RunReport, SyncError> {
        let run = self.run_once(stores, permits, hooks).await;
        let failed_repositories = run.as_ref().map_or(0, |r| r.failed);
        self.counters.run(run.is_err(), failed_repositories);
        run
    }

    async fn run_once(
        &self,
        stores: &Stores,
        permits: &Arc<Semaphore>,
        hooks: &dyn crate::TaskHooks,
    ) -> Result<RunReport, SyncError> {
        let started = Instant::now();
        let mut names = self.content.literal_names();
        if self.content.needs_catalog() {
            for repo in self.client.catalog().await? {
                if !names.contains(&repo) {
                    names.push(repo);
                }
            }
        }
        // Repositories sync side by side, as many as the scheduler's
        // permits allow (requests per host are bounded by the client).
        let total = std::sync::Mutex::new(RunReport::default());
        futures_util::stream::iter(names.iter())
            .for_each_concurrent(None, |repo| {
                let total = &total;
                async move {
                    let Some(rule) = self.content.rule_for(repo) else {
                        return;
                    };
                    if let Some(keep) = &self.keep
                        && !rule.local_name(repo).is_some_and(|local| keep(&local))
                    {
                        return;
                    }
                    hooks.queued();
                    let Ok(_permit) = permits.acquire().await else {
                        return;
                    };
                    hooks.started();
                    let began = Instant::now();
                    let mut mine = RunReport {
                        repositories: 1,
                        ..RunReport::default()
                    };
                    if let Err(e) = self.sync_repo(stores, repo, rule, &mut mine).await {
                        mine.failed += 1;
                        tracing::warn!(upstream = %self.name, repo, error = %e, "sync: repository failed; the others go on");
                    }
                    hooks.finished(began.elapsed());
                    if let Ok(mut t) = total.lock() {
                        *t += mine;
                    }
                }
            })
            .await;
        let report = total.into_inner().unwrap_or_default();
        tracing::info!(
            upstream = %self.name,
            repositories = report.repositories,
            failed = report.failed,
            copied = report.copied,
            present = report.present,
            skipped = report.skipped,
            blobs = report.stats.blobs,
            bytes = report.stats.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sync: run finished"
        );
        Ok(report)
    }

    /// Syncs the tags of one upstream repository that `rule` keeps.
    async fn sync_repo(
        &self,
        stores: &Stores,
        repo: &str,
        rule: &Rule,
        report: &mut RunReport,
    ) -> Result<(), SyncError> {
        let local_name = rule
            .local_name(repo)
            .ok_or_else(|| SyncError::Invalid(format!("{repo} maps to no local name")))?;
        let local: RepoName = local_name
            .parse()
            .map_err(|e| SyncError::Invalid(format!("local name {local_name:?}: {e}")))?;
        let pair = self.pair(repo, (stores, &local), Some(rule));
        let tags = self.client.tags(repo).await?;
        let all: HashSet<&str> = tags.iter().map(String::as_str).collect();
        for tag in tags
            .iter()
            .filter(|t| !is_subject_tag(t) && rule.keeps_tag(t))
        {
            let Ok(tag) = tag.parse::<Tag>() else {
                continue;
            };
            match self.sync_tag(&pair, &tag, &all).await {
                Ok((true, stats)) => {
                    report.copied += 1;
                    report.stats += stats;
                    tracing::info!(upstream = %self.name, repo, local = %local, %tag, manifests = stats.manifests, blobs = stats.blobs, bytes = stats.bytes, "sync: image copied");
                }
                Ok((false, stats)) => {
                    report.present += 1;
                    report.stats += stats;
                }
                Err(e) if e.skips_image() => {
                    report.skipped += 1;
                    tracing::info!(upstream = %self.name, repo, %tag, reason = %e, "sync: image skipped");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One tag with its referrers; `true` when the image itself was copied.
    async fn sync_tag(
        &self,
        pair: &RepoPair<'_>,
        tag: &Tag,
        all_tags: &HashSet<&str>,
    ) -> Result<(bool, CopyStats), SyncError> {
        let fetched = pair.fetch(tag.as_str()).await?;
        let upstream_digest = &fetched.upstream_digest;
        if self.only_signed
            && !self
                .is_signed(pair.upstream, upstream_digest, all_tags)
                .await?
        {
            return Err(SyncError::NotSigned);
        }
        let mut stats = CopyStats::default();
        // Skip by digest: the stored digest (predicted when converted).
        let copied = pair.local_tag(tag).as_ref() != Some(&fetched.manifest.digest);
        if copied {
            stats += pair.store(&fetched, Reference::Tag(tag.clone())).await?;
        }
        // Referrers and signatures name the upstream digest; those of a
        // converted image are re-pointed at the digest stored here.
        let local = Subject::converted(&fetched);
        stats += self
            .copy_referrers(pair, upstream_digest, local.clone())
            .await?;
        if self.legacy_cosign_tags {
            let here = local.as_ref().map_or(upstream_digest, |s| &s.digest);
            for suffix in [".sig", ".sbom", ".att"] {
                let legacy = format!("sha256-{}{suffix}", upstream_digest.hex());
                if upstream_digest.algorithm() != zot_oci::Algorithm::Sha256
                    || !all_tags.contains(legacy.as_str())
                {
                    continue;
                }
                let renamed = format!("sha256-{}{suffix}", here.hex());
                if let (Ok(from), Ok(to)) = (legacy.parse::<Tag>(), renamed.parse::<Tag>()) {
                    stats += self.copy_legacy_tag(pair, &from, &to).await?;
                }
            }
        }
        Ok((copied, stats))
    }

    /// On demand: copies `reference` of the local repository `local` from
    /// this upstream (only the image: referrers come with a referrers
    /// request). `Ok(false)` when this upstream does not map `local`.
    /// Blobs come through `pulls`; `fetched` is told what was fetched
    /// before it is stored.
    pub(crate) async fn fetch_image(
        &self,
        stores: &Stores,
        (local, reference): (&RepoName, &Reference),
        pulls: &Arc<crate::pull::Pulls>,
        fetched: &mut (dyn FnMut(&crate::copy::Fetched) + Send),
    ) -> Result<bool, SyncError> {
        let Some((upstream, rule)) = self.content.upstream_rule(local.as_str()) else {
            return Ok(false);
        };
        let mut pair = self.pair(&upstream, (stores, local), rule);
        pair.pulls = Some(pulls);
        if self.only_signed {
            let manifest = self
                .client
                .manifest(&upstream, &reference.to_string())
                .await?;
            let tags = self.client.tags(&upstream).await.unwrap_or_default();
            let all: HashSet<&str> = tags.iter().map(String::as_str).collect();
            if !self.is_signed(&upstream, &manifest.digest, &all).await? {
                return Err(SyncError::NotSigned);
            }
        }
        let mut converted = None;
        let mut tell = |f: &crate::copy::Fetched| {
            converted = Subject::converted(f).map(|s| (f.upstream_digest.clone(), s));
            fetched(f);
        };
        let (digest, stats) = pair.copy_reference_then(reference, &mut tell).await?;
        // A converted image's referrers cannot be found upstream by the
        // digest stored here: they come with it, re-pointed.
        if let Some((upstream_digest, subject)) = converted
            && let Err(e) = self
                .copy_referrers(&pair, &upstream_digest, Some(subject))
                .await
        {
            tracing::warn!(upstream = %self.name, repo = %local, %digest, error = %e, "sync: referrers of a converted image not copied");
        }
        if stats.manifests > 0 {
            tracing::info!(upstream = %self.name, repo = %local, %reference, %digest, blobs = stats.blobs, bytes = stats.bytes, "sync: image fetched on demand");
        }
        Ok(true)
    }

    /// On demand: the stream of blob `digest` of the local repository
    /// `local` from this upstream; `Ok(None)` when this upstream does not
    /// map `local`, or has no such blob (or refuses it).
    pub(crate) async fn blob_stream(
        &self,
        local: &RepoName,
        digest: &Digest,
    ) -> Result<Option<zot_client::BlobStream>, SyncError> {
        let Some((upstream, _)) = self.content.upstream_rule(local.as_str()) else {
            return Ok(None);
        };
        match self.client.blob(&upstream, digest, None).await {
            Ok(s) => Ok(Some(s)),
            Err(e @ (ClientError::NotFound { .. } | ClientError::Unauthorized { .. })) => {
                tracing::debug!(upstream = %self.name, repo = %local, %digest, reason = %e, "sync: blob not on this upstream");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// On demand: the referrers of `subject` in `local` from this upstream.
    pub(crate) async fn fetch_referrers(
        &self,
        stores: &Stores,
        local: &RepoName,
        subject: &Digest,
    ) -> Result<bool, SyncError> {
        let Some((upstream, rule)) = self.content.upstream_rule(local.as_str()) else {
            return Ok(false);
        };
        let pair = self.pair(&upstream, (stores, local), rule);
        self.copy_referrers(&pair, subject, None).await?;
        Ok(true)
    }

    /// Whether the image `digest` has a signature upstream.
    async fn is_signed(
        &self,
        repo: &str,
        digest: &Digest,
        all_tags: &HashSet<&str>,
    ) -> Result<bool, SyncError> {
        if all_tags.contains(format!("sha256-{}.sig", digest.hex()).as_str()) {
            return Ok(true);
        }
        let referrers = self.client.referrers(repo, digest).await?;
        Ok(referrers.iter().any(|d| {
            d.artifact_type
                .as_deref()
                .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
        }))
    }
}

/// `host[:port]` of a URL, lower case.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

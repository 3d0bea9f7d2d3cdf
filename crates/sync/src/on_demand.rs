//! On-demand sync (`onDemand: true`): a manifest or referrers request for
//! a name that an upstream's `content` maps is first fetched from there.
//!
//! Invariants:
//! - Upstreams are asked in configuration order; the first that maps the
//!   name and has the content ends the search. Not found, unauthorized, not
//!   signed and invalid content mean "ask the next one"; other failures are
//!   logged and the next is asked too. The client is then answered from
//!   local storage (what was there, or what arrived).
//! - Identical requests (repository and reference) arriving while a fetch
//!   of them runs wait for it and do not fetch again.
//! - With containerd's `?ns=<registry>`, only the upstreams with a URL of
//!   that registry (`host[:port]`; Docker Hub by any of its names) are
//!   asked.
//! - With `manifestCheckInterval`, a reference fetched (or found current)
//!   within it, and present locally, is not asked upstream again.
//! - A fetch that failed otherwise than "not here" is tried again in the
//!   background, `maxRetries` times, once per upstream and reference.
//! - A fetch runs as a task of its own: a client that goes away does not
//!   cut it short.
//! - Streaming pull-through: once an image's manifest is fetched (and
//!   verified), the request is answered with it (`pending.rs`) while its
//!   blobs are copied; a blob `GET` for a blob not here joins the pull in
//!   flight or starts one (`pull.rs`), so the client's bytes and the
//!   stored bytes are one upstream transfer.
//! - The per-reference bookkeeping is bounded: past [`MAX_TRACKED`]
//!   references, those not in use and checked longer than
//!   `manifestCheckInterval` ago are forgotten, then (still too many) any
//!   not in use (which costs at most one more upstream check). The request waits for it at most `syncTimeout`, or, when
//!   the content is already here, at most `responseHeaderTimeout` (a slow
//!   or unreachable upstream then delays a client by that much, and it gets
//!   what is here).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zot_client::Manifest;
use zot_oci::{Digest, Reference, RepoName};
use zot_storage::Stores;

use crate::Upstream;
use crate::pending::Pending;
use crate::pull::{Pull, Pulls};

/// References whose last fetch is remembered, at most (see the module doc).
pub const MAX_TRACKED: usize = 4096;

/// Per reference: when its last fetch ended (the lock is held while it runs).
type Cell = Arc<tokio::sync::Mutex<Option<Instant>>>;

/// The upstreams with `onDemand`, and the state of their fetches.
pub struct OnDemandSync {
    upstreams: Vec<Arc<Upstream>>,
    stores: Stores,
    /// Per key: when its last fetch ended (the lock is held while it runs).
    fetches: Mutex<HashMap<String, Cell>>,
    /// Background retries running, by upstream and reference.
    retrying: Mutex<HashSet<String>>,
    /// Blobs arriving from upstream.
    pulls: Arc<Pulls>,
    /// Manifests answered while their image is copied.
    pending: Pending,
}

/// Tells the waiting request that the manifest is pending (it can be
/// answered before the copy ends).
struct Ready(watch::Sender<bool>);

impl OnDemandSync {
    /// `None` when no upstream has `onDemand`. Blobs pulled through spool
    /// into anonymous files under `spool_dir`.
    pub fn new(
        upstreams: &[Arc<Upstream>],
        stores: Stores,
        spool_dir: PathBuf,
    ) -> Option<Arc<OnDemandSync>> {
        let upstreams: Vec<Arc<Upstream>> =
            upstreams.iter().filter(|u| u.on_demand).cloned().collect();
        (!upstreams.is_empty()).then(|| {
            Arc::new(OnDemandSync {
                upstreams,
                stores,
                fetches: Mutex::new(HashMap::new()),
                retrying: Mutex::new(HashSet::new()),
                pulls: Arc::new(Pulls::new(spool_dir)),
                pending: Pending::default(),
            })
        })
    }

    /// Runs `fetch` for `key` unless one ran since this call began (or,
    /// with `present`, within the check interval), coalescing callers: the
    /// fetch is a task holding the key's lock until it ends. The caller
    /// waits at most `syncTimeout`, or `responseHeaderTimeout` when the
    /// content is `present` here (it is then answered as it is, and the
    /// fetch goes on).
    async fn coalesced<F, Fut>(self: &Arc<Self>, key: String, present: bool, fetch: F)
    where
        F: FnOnce(Arc<Self>, Ready) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let arrived = Instant::now();
        let most = |f: fn(&Upstream) -> Duration| {
            self.upstreams
                .iter()
                .map(|u| f(u))
                .max()
                .unwrap_or_default()
        };
        let interval = most(|u| u.check_interval);
        let Some(cell) = self.cell(&key, interval) else {
            return;
        };
        let wait = if present {
            most(|u| u.response_header_timeout)
        } else {
            most(|u| u.timeout)
        };
        let this = self.clone();
        let (ready, mut pending) = watch::channel(false);
        let work = async move {
            let last = cell.lock_owned().await;
            let recent = last.is_some_and(|t| t >= arrived || (present && t.elapsed() < interval));
            if recent {
                return;
            }
            let mut task = tokio::spawn(async move {
                let mut last = last;
                fetch(this, Ready(ready)).await;
                *last = Some(Instant::now());
            });
            // Until the copy ends, or its manifest can be answered.
            tokio::select! {
                _ = &mut task => {}
                Ok(_) = pending.wait_for(|p| *p) => {}
            }
        };
        if tokio::time::timeout(wait, work).await.is_err() {
            tracing::info!(
                key,
                wait_ms = wait.as_millis() as u64,
                "sync: on-demand fetch still running; answering from local content"
            );
        }
        if let Ok(mut map) = self.fetches.lock()
            && interval.is_zero()
            && map.get(&key).is_some_and(|c| Arc::strong_count(c) == 1)
        {
            map.remove(&key);
        }
    }

    /// The bookkeeping cell of `key`, making room when the map is full.
    fn cell(&self, key: &str, interval: Duration) -> Option<Cell> {
        let mut map = self.fetches.lock().ok()?;
        if !map.contains_key(key) && map.len() >= MAX_TRACKED {
            let unused = |c: &Cell| Arc::strong_count(c) == 1 && c.try_lock().is_ok();
            map.retain(|_, c| {
                !unused(c)
                    || c.try_lock()
                        .is_ok_and(|t| t.is_some_and(|t| t.elapsed() < interval))
            });
            if map.len() >= MAX_TRACKED {
                map.retain(|_, c| !unused(c));
            }
        }
        Some(map.entry(key.to_owned()).or_default().clone())
    }

    /// References whose fetch is remembered now (bounded by
    /// [`MAX_TRACKED`] plus those in use).
    pub fn tracked(&self) -> usize {
        self.fetches.lock().map_or(0, |m| m.len())
    }

    /// Blobs being pulled through now.
    pub fn pulls_in_flight(&self) -> usize {
        self.pulls.in_flight()
    }

    /// Manifests answered ahead of their copy now.
    pub fn pending_manifests(&self) -> usize {
        self.pending.len()
    }

    /// Fetches `repo:reference` from the first upstream that has it (of
    /// those serving registry `ns`, when given: containerd's mirror
    /// requests). Returns the manifest when it was fetched but its image
    /// is still being copied (the request answers with it; its blobs
    /// are pulled through), `None` when the local store answers.
    pub async fn manifest(
        self: &Arc<Self>,
        repo: &RepoName,
        reference: &Reference,
        ns: Option<&str>,
    ) -> Option<Arc<Manifest>> {
        let ns_key = ns.unwrap_or_default();
        if let Some(m) = self.pending.get((repo, ns_key), &reference.to_string()) {
            return Some(m);
        }
        let present = self
            .stores
            .for_repo(repo)
            .manifest_record(repo, reference)
            .is_ok();
        let key = format!("m {repo}:{reference} {}", ns.unwrap_or_default());
        let (repo2, reference2) = (repo.clone(), reference.clone());
        let ns = ns.map(str::to_owned);
        self.coalesced(key, present, move |this, ready| async move {
            let (repo, reference) = (repo2, reference2);
            let serving = |up: &&Arc<Upstream>| ns.as_deref().is_none_or(|ns| up.serves(ns));
            for up in this.upstreams.iter().filter(serving) {
                let mut published = Vec::new();
                let mut publish = |f: &crate::copy::Fetched| {
                    let ns = ns.as_deref().unwrap_or_default();
                    published = this.publish((&repo, ns), &reference, f);
                    if !published.is_empty() {
                        ready.0.send_replace(true);
                    }
                };
                let fetched = up
                    .fetch_image(&this.stores, (&repo, &reference), &this.pulls, &mut publish)
                    .await;
                let ns = ns.as_deref().unwrap_or_default();
                for (refs, m) in published.drain(..) {
                    this.pending.retract((&repo, ns), &refs, &m);
                }
                up.counters
                    .on_demand(fetched.as_ref().is_err_and(|e| !e.skips_image()));
                match fetched {
                    Ok(false) => continue,
                    Ok(true) => return,
                    Err(e) if e.skips_image() => {
                        tracing::debug!(upstream = %up.name, %repo, %reference, reason = %e, "sync: not on this upstream");
                    }
                    Err(e) => {
                        tracing::warn!(upstream = %up.name, %repo, %reference, error = %e, "sync: on-demand fetch failed");
                        this.retry_later(up, &repo, &reference);
                    }
                }
            }
        })
        .await;
        self.pending.get((repo, ns_key), &reference.to_string())
    }

    /// Publishes what a fetch got (the manifest under the reference asked
    /// for and its digest, converted children under theirs) until it is
    /// stored; returns what to retract then (nothing when refused).
    fn publish(
        &self,
        repo: (&RepoName, &str),
        reference: &Reference,
        f: &crate::copy::Fetched,
    ) -> Vec<(Vec<String>, Arc<Manifest>)> {
        let copy = |m: &Manifest| {
            Arc::new(Manifest {
                bytes: m.bytes.clone(),
                media_type: m.media_type.clone(),
                digest: m.digest.clone(),
            })
        };
        let mut entries = vec![(
            vec![reference.to_string(), f.manifest.digest.to_string()],
            copy(&f.manifest),
        )];
        entries.extend(
            f.children
                .iter()
                .map(|c| (vec![c.digest.to_string()], copy(c))),
        );
        let mut done: Vec<(Vec<String>, Arc<Manifest>)> = Vec::new();
        for (refs, m) in entries {
            if !self.pending.publish(repo, &refs, &m) {
                for (refs, m) in &done {
                    self.pending.retract(repo, refs, m);
                }
                return Vec::new();
            }
            done.push((refs, m));
        }
        done
    }

    /// Blob `digest` of `repo`, not stored here: the pull in flight, or
    /// one started from the first upstream mapping `repo` that has it.
    /// Returns the pull and the blob's size (when known) once upstream
    /// answered; `None` when no upstream has it.
    pub async fn blob(
        self: &Arc<Self>,
        repo: &RepoName,
        digest: &Digest,
    ) -> Option<(Arc<Pull>, Option<u64>)> {
        let registry = self.stores.for_repo(repo);
        let (this, r, d) = (self.clone(), repo.clone(), digest.clone());
        let pull = self.pulls.pull(registry, repo, digest, move || {
            Box::pin(async move {
                let mut failure = None;
                for up in &this.upstreams {
                    match up.blob_stream(&r, &d).await {
                        Ok(Some(stream)) => return Ok(Some(stream)),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(upstream = %up.name, repo = %r, digest = %d, error = %e, "sync: pull-through failed");
                            failure = Some(e);
                        }
                    }
                }
                failure.map_or(Ok(None), Err)
            })
        })?;
        let size = pull.started().await.ok()?;
        Some((pull, size))
    }

    /// The size of blob `digest` of `repo`, not stored here, when it is
    /// arriving: a pull in flight (once upstream answered with its size),
    /// or a blob of an image being copied (its manifest pending). `None`
    /// otherwise; nothing is asked upstream.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Option<u64> {
        if let Some(pull) = self.pulls.find(repo, digest)
            && let Ok(Some(size)) = pull.started().await
        {
            return Some(size);
        }
        self.pending.blob_size(repo, digest)
    }

    /// After a failed fetch (not a "not here"): one background task per
    /// (upstream, repository, reference) tries again `maxRetries` times,
    /// waiting `retryDelay` doubling to `maxRetryDelay` (zot's background
    /// retry). A body cut off mid-blob is not retried by the client, so
    /// this is what heals it without another request.
    fn retry_later(self: &Arc<Self>, up: &Arc<Upstream>, repo: &RepoName, reference: &Reference) {
        let Some(policy) = up.background_retry else {
            return;
        };
        let key = format!("{} {repo}:{reference}", up.name);
        let fresh = self
            .retrying
            .lock()
            .is_ok_and(|mut set| set.insert(key.clone()));
        if !fresh {
            return;
        }
        let (this, up, repo, reference) =
            (self.clone(), up.clone(), repo.clone(), reference.clone());
        tokio::spawn(async move {
            for n in 0..policy.max_retries {
                tokio::time::sleep(zot_client::backoff(&policy, n)).await;
                let fetched = up
                    .fetch_image(&this.stores, (&repo, &reference), &this.pulls, &mut |_| {})
                    .await;
                up.counters
                    .on_demand(fetched.as_ref().is_err_and(|e| !e.skips_image()));
                match fetched {
                    Ok(_) => break,
                    Err(e) if e.skips_image() => break,
                    Err(e) => {
                        tracing::warn!(upstream = %up.name, %repo, %reference, retry = n + 1, error = %e, "sync: background retry failed");
                    }
                }
            }
            if let Ok(mut set) = this.retrying.lock() {
                set.remove(&key);
            }
        });
    }

    /// Fetches the referrers of `subject` from every mapped upstream until
    /// one answers.
    pub async fn referrers(self: &Arc<Self>, repo: &RepoName, subject: &Digest) {
        let key = format!("r {repo}@{subject}");
        let (repo, subject) = (repo.clone(), subject.clone());
        self.coalesced(key, false, move |this, _ready| async move {
            for up in &this.upstreams {
                let fetched = up.fetch_referrers(&this.stores, &repo, &subject).await;
                up.counters.on_demand(fetched.is_err());
                match fetched {
                    Ok(false) => continue,
                    Ok(true) => return,
                    Err(e) => {
                        tracing::warn!(upstream = %up.name, %repo, %subject, error = %e, "sync: on-demand referrers failed");
                    }
                }
            }
        })
        .await;
    }
}

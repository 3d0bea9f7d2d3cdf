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
//!   cut it short. The request waits for it at most `syncTimeout`, or, when
//!   the content is already here, at most `responseHeaderTimeout` (a slow
//!   or unreachable upstream then delays a client by that much, and it gets
//!   what is here).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zot_oci::{Digest, Reference, RepoName};
use zot_storage::Stores;

use crate::Upstream;

/// The upstreams with `onDemand`, and the state of their fetches.
pub struct OnDemandSync {
    upstreams: Vec<Arc<Upstream>>,
    stores: Stores,
    /// Per key: when its last fetch ended (the lock is held while it runs).
    fetches: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
    /// Background retries running, by upstream and reference.
    retrying: Mutex<HashSet<String>>,
}

impl OnDemandSync {
    /// `None` when no upstream has `onDemand`.
    pub fn new(upstreams: &[Arc<Upstream>], stores: Stores) -> Option<Arc<OnDemandSync>> {
        let upstreams: Vec<Arc<Upstream>> =
            upstreams.iter().filter(|u| u.on_demand).cloned().collect();
        (!upstreams.is_empty()).then(|| {
            Arc::new(OnDemandSync {
                upstreams,
                stores,
                fetches: Mutex::new(HashMap::new()),
                retrying: Mutex::new(HashSet::new()),
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
        F: FnOnce(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let arrived = Instant::now();
        let cell = match self.fetches.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(_) => return,
        };
        let most = |f: fn(&Upstream) -> Duration| {
            self.upstreams
                .iter()
                .map(|u| f(u))
                .max()
                .unwrap_or_default()
        };
        let interval = most(|u| u.check_interval);
        let wait = if present {
            most(|u| u.response_header_timeout)
        } else {
            most(|u| u.timeout)
        };
        let this = self.clone();
        let work = async move {
            let last = cell.lock_owned().await;
            let recent = last.is_some_and(|t| t >= arrived || (present && t.elapsed() < interval));
            if recent {
                return;
            }
            let task = tokio::spawn(async move {
                let mut last = last;
                fetch(this).await;
                *last = Some(Instant::now());
            });
            let _ = task.await;
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

    /// Fetches `repo:reference` from the first upstream that has it (of
    /// those serving registry `ns`, when given: containerd's mirror
    /// requests).
    pub async fn manifest(
        self: &Arc<Self>,
        repo: &RepoName,
        reference: &Reference,
        ns: Option<&str>,
    ) {
        let present = self
            .stores
            .for_repo(repo)
            .manifest_record(repo, reference)
            .is_ok();
        let key = format!("m {repo}:{reference} {}", ns.unwrap_or_default());
        let (repo, reference) = (repo.clone(), reference.clone());
        let ns = ns.map(str::to_owned);
        self.coalesced(key, present, move |this| async move {
            let serving = |up: &&Arc<Upstream>| ns.as_deref().is_none_or(|ns| up.serves(ns));
            for up in this.upstreams.iter().filter(serving) {
                let fetched = up.fetch_image(&this.stores, &repo, &reference).await;
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
                let fetched = up.fetch_image(&this.stores, &repo, &reference).await;
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
        self.coalesced(key, false, move |this| async move {
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

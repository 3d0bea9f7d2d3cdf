//! [`RegistryClient`]: one upstream registry (its URLs in order), and the
//! one place requests are sent: per-host admission, authentication,
//! retries, and falling over to the next URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::AuthState;
use crate::credentials::Credential;
use crate::options::{ClientOptions, RetryPolicy};
use crate::{ClientError, Result, names, retry, tls};

/// Admission to one host: `reqConcurrent` requests in flight, request
/// starts spaced by `1 / reqPerSec`.
struct HostGate {
    permits: Arc<Semaphore>,
    interval: Option<Duration>,
    next_start: Mutex<Instant>,
}

impl HostGate {
    async fn admit(&self) -> Result<OwnedSemaphorePermit> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClientError::NoUrl)?;
        if let Some(interval) = self.interval {
            let start = match self.next_start.lock() {
                Ok(mut next) => {
                    let start = (*next).max(Instant::now());
                    *next = start + interval;
                    start
                }
                Err(_) => Instant::now(),
            };
            tokio::time::sleep_until(start.into()).await;
        }
        Ok(permit)
    }
}

/// One of the upstream's URLs.
pub(crate) struct Endpoint {
    /// Where the registry API answers (Docker Hub: `registry-1.docker.io`).
    pub(crate) base: url::Url,
    /// `host[:port]` of `base`: the key of authentication state.
    pub(crate) api_host: String,
    pub(crate) docker_hub: bool,
    credential: Option<Credential>,
    gate: Arc<HostGate>,
}

impl Endpoint {
    /// `/v2/<repo>/<rest>` on this endpoint (Docker Hub's `library/` added).
    fn url(&self, call: &Call<'_>) -> Result<url::Url> {
        let path = match call.repo {
            Some(repo) => format!(
                "/v2/{}/{}",
                names::upstream_repo(self.docker_hub, repo),
                call.path
            ),
            None => format!("/v2/{}", call.path),
        };
        let mut url = self.base.join(&path).map_err(|e| ClientError::Url {
            url: path.clone(),
            why: e.to_string(),
        })?;
        if !call.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn scope(&self, call: &Call<'_>) -> String {
        match call.repo {
            Some(repo) => format!(
                "repository:{}:pull",
                names::upstream_repo(self.docker_hub, repo)
            ),
            None if call.path.starts_with("_catalog") => "registry:catalog:*".to_owned(),
            None => String::new(),
        }
    }
}

/// One request, before it is given a URL.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) repo: Option<&'a str>,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) accept: Option<&'a str>,
}

/// A response, with the admission it holds (dropped with the body).
pub(crate) struct Answer {
    pub(crate) resp: reqwest::Response,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) url: String,
}

/// A client of one upstream registry.
pub struct RegistryClient {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    auth: AuthState,
    retry: RetryPolicy,
    pub(crate) page_size: usize,
}

fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

impl RegistryClient {
    /// A client for `options.urls` (at least one), its TLS configuration
    /// built now (a broken `certDir` is an error here, not at first use).
    pub fn new(options: &ClientOptions) -> Result<RegistryClient> {
        if options.urls.is_empty() {
            return Err(ClientError::NoUrl);
        }
        let tls = tls::client_config(
            options.tls_verify,
            options.cert_dir.as_deref(),
            options.disable_http2,
        )?;
        let concurrency = options.concurrency.max(1);
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(options.timeout)
            .connect_timeout(options.response_header_timeout)
            .read_timeout(options.response_header_timeout)
            .pool_max_idle_per_host(options.max_idle_per_host.unwrap_or(concurrency))
            .user_agent(concat!("zot-rs-sync/", env!("CARGO_PKG_VERSION")));
        if options.disable_http2 {
            builder = builder.http1_only();
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let interval = options
            .requests_per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        let mut gates: HashMap<String, Arc<HostGate>> = HashMap::new();
        let mut endpoints = Vec::new();
        for raw in &options.urls {
            let written = url::Url::parse(raw).map_err(|e| ClientError::Url {
                url: raw.clone(),
                why: e.to_string(),
            })?;
            if !matches!(written.scheme(), "http" | "https") || written.host_str().is_none() {
                return Err(ClientError::Url {
                    url: raw.clone(),
                    why: "must be http:// or https:// with a host".to_owned(),
                });
            }
            let key = host_port(&written);
            let docker_hub = names::is_docker_hub(written.host_str().unwrap_or_default());
            let base = if docker_hub {
                url::Url::parse(names::DOCKER_HUB_API).map_err(|e| ClientError::Url {
                    url: raw.clone(),
                    why: e.to_string(),
                })?
            } else {
                written.clone()
            };
            let api_host = host_port(&base);
            let credential = options.credentials.get(&key).cloned().or_else(|| {
                docker_hub
                    .then(|| {
                        names::DOCKER_HUB_HOSTS
                            .iter()
                            .find_map(|h| options.credentials.get(h).cloned())
                    })
                    .flatten()
            });
            let gate = gates
                .entry(api_host.clone())
                .or_insert_with(|| {
                    Arc::new(HostGate {
                        permits: Arc::new(Semaphore::new(concurrency)),
                        interval,
                        next_start: Mutex::new(Instant::now()),
                    })
                })
                .clone();
            endpoints.push(Endpoint {
                base,
                api_host,
                docker_hub,
                credential,
                gate,
            });
        }
        Ok(RegistryClient {
            http,
            endpoints,
            auth: AuthState::default(),
            retry: options.retry,
            page_size: options.page_size.max(1),
        })
    }

    /// Sends `call` to each URL in turn until one answers with something
    /// other than a failure; each URL gets the configured retries.
    /// `404` and other final answers are returned as they are.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Answer> {
        let mut last = ClientError::NoUrl;
        for ep in &self.endpoints {
            match self.send_to(ep, call).await {
                Ok(answer) => return Ok(answer),
                Err(e @ (ClientError::Unauthorized { .. } | ClientError::Url { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(url = %ep.base, error = %e, "upstream failed; trying the next URL if any");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn send_to(&self, ep: &Endpoint, call: &Call<'_>) -> Result<Answer> {
        let url = ep.url(call)?;
        let scope = ep.scope(call);
        let cred = ep.credential.as_ref();
        let mut authorization = self.auth.header(&ep.api_host, &scope, cred);
        let mut challenged = false;
        let mut retries = 0u32;
        loop {
            let permit = ep.gate.admit().await?;
            let mut req = self.http.request(call.method.clone(), url.clone());
            if let Some(accept) = call.accept {
                req = req.header(ACCEPT, accept);
            }
            if let Some(a) = &authorization {
                req = req.header(AUTHORIZATION, a);
            }
            let wait = match req.send().await {
                Err(e) => {
                    let err = ClientError::Transport {
                        url: url.to_string(),
                        source: e,
                    };
                    if retries >= self.retry.max_retries {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, retry = retries + 1, "upstream request failed; retrying");
                    retry::backoff(&self.retry, retries)
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !challenged {
                        challenged = true;
                        let challenge = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        drop(resp);
                        drop(permit);
                        match self
                            .auth
                            .answer(&self.http, &ep.api_host, &scope, &challenge, cred)
                            .await?
                        {
                            Some(a) => {
                                authorization = Some(a);
                                continue;
                            }
                            None => {
                                return Err(ClientError::Unauthorized {
                                    url: url.to_string(),
                                });
                            }
                        }
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        return Err(ClientError::Unauthorized {
                            url: url.to_string(),
                        });
                    }
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED;
                    if !retryable {
                        return Ok(Answer {
                            resp,
                            permit,
                            url: url.to_string(),
                        });
                    }
                    if retries >= self.retry.max_retries {
                        return Err(ClientError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                        });
                    }
                    let after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::retry_after(v, SystemTime::now()));
                    tracing::debug!(%url, status = status.as_u16(), retry = retries + 1, ?after, "upstream busy or failing; retrying");
                    after.unwrap_or_else(|| retry::backoff(&self.retry, retries))
                }
            };
            drop(permit);
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

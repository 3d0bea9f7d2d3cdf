//! Workload identity (`http.auth.bearer.oidc`): ID tokens of configured
//! issuers accepted as bearer tokens, their keys found the OpenID way.
//!
//! Invariants:
//! - An issuer's key set comes from its discovery document
//!   (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), whose
//!   `issuer` must equal the configured one exactly (OpenID Connect
//!   Discovery §4.3). It is fetched on first use (start-up never waits for
//!   an issuer) and kept for [`KEYS_TTL`].
//! - A token naming a `kid` the cached set lacks refetches the set (key
//!   rotation), at most once per [`REFRESH_INTERVAL`] per issuer, so
//!   tokens with made-up `kid`s cannot make the registry hammer an issuer.
//! - Each issuer has its own HTTP client: the system's roots plus its
//!   `certificateAuthority`/`certificateAuthorityFile`, read at start-up.
//! - Fetches are serialized per issuer, time out after [`FETCH_TIMEOUT`],
//!   and read at most [`MAX_DOCUMENT`] bytes. A failed fetch keeps the old
//!   set.
//! - The token's `iss`, read before verification, only picks the issuer
//!   whose keys are tried; [`crate::oidc::verify`] then checks it for real.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use zot_config::{IssuerCa, OidcIssuerConfig};

use crate::oidc::{self, IssuerPolicy, KeySet, Rejection};
use crate::{AuthFailure, Identity, SetupError};

/// How long a fetched key set is used before it is fetched again.
pub(crate) const KEYS_TTL: Duration = Duration::from_secs(600);
/// The least time between two fetches of one issuer's keys.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_DOCUMENT: usize = 1 << 20;

struct Cached {
    keys: KeySet,
    /// The last successful fetch.
    fetched: Option<Instant>,
    /// The last attempt, successful or not (for the rate limit).
    attempted: Option<Instant>,
}

struct Issuer {
    policy: IssuerPolicy,
    /// The system's roots, plus the issuer's configured CA.
    client: reqwest::Client,
    cache: RwLock<Cached>,
    fetching: Mutex<()>,
}

pub(crate) struct Workload {
    issuers: Vec<Issuer>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The unverified `iss` of a compact JWS.
fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut response = client
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT {
            return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

impl Workload {
    pub(crate) fn new(issuers: &[OidcIssuerConfig]) -> Result<Workload, SetupError> {
        let issuers = issuers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(Issuer {
                    policy: IssuerPolicy {
                        issuer: c.issuer.clone(),
                        audiences: c.audiences.clone(),
                        username: c.username_claim.clone(),
                        groups: c.groups_claim.clone(),
                    },
                    client: client(i, c)?,
                    cache: RwLock::new(Cached {
                        keys: KeySet::default(),
                        fetched: None,
                        attempted: None,
                    }),
                    fetching: Mutex::new(()),
                })
            })
            .collect::<Result<_, SetupError>>()?;
        Ok(Workload { issuers })
    }

    /// Whether `token` claims to come from a configured issuer.
    pub(crate) fn claims_issuer(&self, token: &str) -> bool {
        peek_issuer(token).is_some_and(|iss| self.issuers.iter().any(|i| i.policy.issuer == iss))
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let bad = |why: String| AuthFailure::BadToken(why);
        let iss = peek_issuer(token).ok_or_else(|| bad("no issuer".into()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.policy.issuer == iss)
            .ok_or_else(|| bad("unknown issuer".into()))?;
        let stale = issuer
            .cache
            .read()
            .await
            .fetched
            .is_none_or(|t| t.elapsed() > KEYS_TTL);
        if stale {
            self.refresh(issuer).await;
        }
        let first = {
            let cache = issuer.cache.read().await;
            oidc::verify(token, &issuer.policy, &cache.keys, now())
        };
        let result = match first {
            Err(Rejection::UnknownKey(_)) => {
                self.refresh(issuer).await;
                let cache = issuer.cache.read().await;
                oidc::verify(token, &issuer.policy, &cache.keys, now())
            }
            other => other,
        };
        result.map_err(|e| bad(e.to_string()))
    }

    /// Fetches `issuer`'s keys unless that was tried less than
    /// [`REFRESH_INTERVAL`] ago; a failure keeps the keys it had.
    async fn refresh(&self, issuer: &Issuer) {
        let _one_at_a_time = issuer.fetching.lock().await;
        let recent = issuer
            .cache
            .read()
            .await
            .attempted
            .is_some_and(|t| t.elapsed() < REFRESH_INTERVAL);
        if recent {
            return;
        }
        let fetched = fetch(&issuer.client, &issuer.policy.issuer).await;
        let mut cache = issuer.cache.write().await;
        cache.attempted = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = cache.attempted;
            }
            Err(e) => {
                tracing::warn!(issuer = %issuer.policy.issuer, error = %e, "cannot fetch the issuer's keys");
            }
        }
    }
}

/// The HTTP client of issuer `i` (its CA, if configured, added to the
/// system's roots).
fn client(i: usize, config: &OidcIssuerConfig) -> Result<reqwest::Client, SetupError> {
    let fail = |why: String| SetupError(format!("http.auth.bearer.oidc[{i}]: {why}"));
    let mut builder = reqwest::Client::builder().connect_timeout(FETCH_TIMEOUT);
    let pem = match &config.certificate_authority {
        None => None,
        Some(IssuerCa::Pem(pem)) => Some(pem.as_bytes().to_vec()),
        Some(IssuerCa::File(path)) => Some(
            std::fs::read(path)
                .map_err(|e| fail(format!("certificateAuthorityFile {}: {e}", path.display())))?,
        ),
    };
    if let Some(pem) = pem {
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| fail(format!("certificate authority: {e}")))?;
        if certs.is_empty() {
            return Err(fail("certificate authority: no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| fail(format!("HTTP client: {e}")))
}

async fn fetch(client: &reqwest::Client, issuer: &str) -> Result<KeySet, String> {
    discover(client, issuer).await.map(|(_, keys)| keys)
}

/// An issuer's discovery document (checked to name `issuer` exactly) and
/// the key set of its `jwks_uri`.
pub(crate) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<(Value, KeySet), String> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document = get_json(client, &discovery).await?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("{discovery}: its issuer is not {issuer}"));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{discovery}: no jwks_uri"))?;
    let jwks = get_json(client, jwks_uri).await?;
    let keys = KeySet::from_json(jwks.to_string().as_bytes())?;
    Ok((document, keys))
}

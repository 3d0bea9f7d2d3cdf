//! Authentication state of one upstream: the scheme each host asked for
//! (learnt from its first `401`), and bearer tokens cached per host and
//! scope until shortly before they expire.
//!
//! Invariant: a credential is only ever sent to the host whose
//! `host[:port]` it is configured for, or to the token realm that host named
//! in its challenge (as Docker clients do).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::challenge;
use crate::credentials::Credential;
use crate::{ClientError, Result};

/// Tokens without `expires_in` live this long (the distribution spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is not used in the last seconds of its life.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

pub(crate) fn basic(cred: &Credential) -> String {
    let raw = format!("{}:{}", cred.username, cred.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl AuthState {
    /// The `Authorization` to send to `host` for `scope` before any
    /// challenge of this request: what worked there before, if still valid.
    pub(crate) fn header(
        &self,
        host: &str,
        scope: &str,
        cred: Option<&Credential>,
    ) -> Option<String> {
        let scheme = self.schemes.lock().ok()?.get(host).cloned()?;
        match scheme {
            Scheme::Basic => cred.map(basic),
            Scheme::Bearer { .. } => {
                let tokens = self.tokens.lock().ok()?;
                let (token, until) = tokens.get(&(host.to_owned(), scope.to_owned()))?;
                (Instant::now() < *until).then(|| format!("Bearer {token}"))
            }
        }
    }

    /// Answers `host`'s challenge for `scope`: the `Authorization` to send
    /// again, or `None` when this client has nothing to answer with.
    pub(crate) async fn answer(
        &self,
        http: &reqwest::Client,
        host: &str,
        scope: &str,
        www_authenticate: &str,
        cred: Option<&Credential>,
    ) -> Result<Option<String>> {
        let challenges = challenge::parse(www_authenticate);
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let scheme = match bearer.and_then(|c| c.param("realm").map(|r| (c, r))) {
            Some((c, realm)) => Scheme::Bearer {
                realm: realm.to_owned(),
                service: c.param("service").map(str::to_owned),
            },
            None if challenges.iter().any(|c| c.scheme == "basic") => Scheme::Basic,
            None => return Ok(None),
        };
        if let Ok(mut schemes) = self.schemes.lock() {
            schemes.insert(host.to_owned(), scheme.clone());
        }
        match scheme {
            Scheme::Basic => Ok(cred.map(basic)),
            Scheme::Bearer { realm, service } => {
                let (token, lifetime) =
                    fetch_token(http, &realm, service.as_deref(), scope, cred).await?;
                let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.retain(|_, (_, u)| Instant::now() < *u);
                    tokens.insert((host.to_owned(), scope.to_owned()), (token.clone(), until));
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }
}

/// A token from `realm` (Docker's token protocol, `GET` with Basic
/// credentials when there are any).
async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    cred: Option<&Credential>,
) -> Result<(String, Duration)> {
    let err = |why: String| ClientError::Token {
        realm: realm.to_owned(),
        why,
    };
    let mut url = url::Url::parse(realm).map_err(|e| err(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        if !scope.is_empty() {
            q.append_pair("scope", scope);
        }
    }
    let mut req = http.get(url);
    if let Some(c) = cred {
        req = req.header(reqwest::header::AUTHORIZATION, basic(c));
    }
    let resp = req.send().await.map_err(|e| err(e.to_string()))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(ClientError::Unauthorized {
            url: realm.to_owned(),
        });
    }
    if !status.is_success() {
        return Err(err(format!("HTTP {status}")));
    }
    let body = resp.bytes().await.map_err(|e| err(e.to_string()))?;
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| err(e.to_string()))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err("no token in the answer".to_owned()))?;
    let lifetime = answer
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token, lifetime))
}

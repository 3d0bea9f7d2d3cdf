//! OpenID Connect and OAuth2 login (`http.auth.openid`): the provider side
//! of the authorization code flow, without HTTP routing (the API crate's
//! `login.rs` drives it; the state and the session are `session`'s).
//!
//! Invariants:
//! - An OpenID Connect provider's endpoints and keys come from its
//!   discovery document, whose `issuer` must equal the configured one
//!   (fetched on first use, kept for [`crate::workload::KEYS_TTL`], fetched
//!   again on an unknown `kid`, at most once per
//!   [`crate::workload::REFRESH_INTERVAL`]).
//! - Every authorization request carries a PKCE S256 challenge (required
//!   when there is no client secret; harmless and recommended otherwise)
//!   and, for OpenID Connect, a nonce.
//! - An ID token is accepted only when its signature verifies against the
//!   issuer's keys (RS256/ES256), `iss` is the issuer, `aud` names the
//!   client id, it has not expired, and its `nonce` is the login's. The
//!   user info, when the provider has an endpoint for it, must be about the
//!   same `sub`; its claims complete the token's.
//! - The user is the `claimMapping.username` claim (default `email`,
//!   falling back to `email`); an empty user refuses the login. Groups are
//!   the `claimMapping.groups` claim (a string or a list of strings).
//! - GitHub (OAuth2): the user is the primary verified e-mail address; the
//!   groups are the user's organisations and `org/team` slugs.
//! - Secrets (client secret, codes, tokens) are never logged.

use std::time::Instant;

use base64::Engine;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use zot_config::{OpenIdConfig, ProviderConfig, ProviderKind};

use crate::SetupError;
use crate::oidc::{self, IssuerPolicy, KeySet, Rejection};
use crate::workload::{FETCH_TIMEOUT, KEYS_TTL, REFRESH_INTERVAL, discover};

/// Why a login could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("unknown provider")]
    UnknownProvider,
    /// The provider could not be reached or answered nonsense (502).
    #[error("provider: {0}")]
    Provider(String),
    /// The provider's answer does not prove who the user is (401).
    #[error("login refused: {0}")]
    Refused(String),
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub user: String,
    pub groups: Vec<String>,
}

struct Discovered {
    document: Value,
    keys: KeySet,
    fetched: Instant,
}

struct Issuer {
    issuer: String,
    cache: RwLock<Option<Discovered>>,
    attempted: RwLock<Option<Instant>>,
    fetching: Mutex<()>,
}

enum Flow {
    Oidc(Issuer),
    Github {
        auth_url: String,
        token_url: String,
        api_url: String,
    },
}

struct Provider {
    kind: ProviderKind,
    name: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    username_claim: String,
    groups_claim: String,
    flow: Flow,
}

/// The configured providers.
pub struct OpenId {
    providers: Vec<Provider>,
    allow_origins: Vec<String>,
    client: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct ClientCredentials {
    clientid: String,
    clientsecret: String,
}

fn credentials(config: &ProviderConfig) -> Result<(String, Option<String>), SetupError> {
    let key = config.kind.key();
    if let Some(path) = &config.credentials_file {
        let fail = |why: String| {
            SetupError(format!(
                "http.auth.openid.providers.{key}.credentialsFile {}: {why}",
                path.display()
            ))
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let c: ClientCredentials =
            serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
        if c.clientid.is_empty() || c.clientsecret.is_empty() {
            return Err(fail("clientid and clientsecret are both required".into()));
        }
        crate::warn_if_shared(path, "an OpenID credentials file");
        return Ok((c.clientid, Some(c.clientsecret)));
    }
    match &config.client_id {
        Some(id) => Ok((id.clone(), config.client_secret.clone())),
        None => Err(SetupError(format!(
            "http.auth.openid.providers.{key}: no clientid"
        ))),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", query.finish())
}

fn now() -> f64 {
    crate::session::now() as f64
}

impl OpenId {
    /// The providers of `config`, their client credentials read.
    pub fn new(config: &OpenIdConfig) -> Result<OpenId, SetupError> {
        let mut providers = Vec::new();
        for p in &config.providers {
            let (client_id, client_secret) = credentials(p)?;
            let flow = match p.kind {
                ProviderKind::Github => Flow::Github {
                    auth_url: p
                        .auth_url
                        .clone()
                        .unwrap_or_else(|| crate::github::AUTH.into()),
                    token_url: p
                        .token_url
                        .clone()
                        .unwrap_or_else(|| crate::github::TOKEN.into()),
                    api_url: p
                        .api_url
                        .clone()
                        .unwrap_or_else(|| crate::github::API.into())
                        .trim_end_matches('/')
                        .to_owned(),
                },
                _ => Flow::Oidc(Issuer {
                    issuer: p.issuer.clone().unwrap_or_default(),
                    cache: RwLock::new(None),
                    attempted: RwLock::new(None),
                    fetching: Mutex::new(()),
                }),
            };
            providers.push(Provider {
                kind: p.kind,
                name: p.name.clone(),
                client_id,
                client_secret,
                scopes: p.scopes.clone(),
                username_claim: p.username_claim.clone(),
                groups_claim: p.groups_claim.clone(),
                flow,
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(FETCH_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError(format!("http.auth.openid: HTTP client: {e}")))?;
        Ok(OpenId {
            providers,
            allow_origins: config.callback_allow_origins.clone(),
            client,
        })
    }

    fn provider(&self, key: &str) -> Result<&Provider, LoginError> {
        self.providers
            .iter()
            .find(|p| p.kind.key() == key)
            .ok_or(LoginError::UnknownProvider)
    }

    /// Whether `key` names a configured provider.
    pub fn has_provider(&self, key: &str) -> bool {
        self.provider(key).is_ok()
    }

    /// The configured providers: key and display name (for mgmt).
    pub fn providers(&self) -> impl Iterator<Item = (&'static str, Option<&str>)> {
        self.providers
            .iter()
            .map(|p| (p.kind.key(), p.name.as_deref()))
    }

    /// Whether `callback_ui` may be where a login sends the browser: a path
    /// on this registry (`/...`, not `//...`, no backslash or control
    /// character), or an absolute http(s) URL on `origin` (the registry's)
    /// or an origin of `callbackAllowOrigins`.
    pub fn callback_allowed(&self, callback_ui: &str, origin: &str) -> bool {
        if callback_ui.chars().any(|c| c.is_control() || c == '\\') {
            return false;
        }
        if callback_ui.starts_with('/') {
            return !callback_ui.starts_with("//");
        }
        let Some((scheme, rest)) = callback_ui.split_once("://") else {
            return false;
        };
        if scheme != "http" && scheme != "https" {
            return false;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return false;
        }
        let candidate = format!("{scheme}://{authority}");
        candidate.eq_ignore_ascii_case(origin.trim_end_matches('/'))
            || self
                .allow_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(&candidate))
    }

    /// The provider's authorization URL for a login with `state`, `nonce`
    /// and the PKCE `verifier`.
    pub async fn authorize_url(
        &self,
        key: &str,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, LoginError> {
        let p = self.provider(key)?;
        let challenge = pkce_challenge(verifier);
        let scope = p.scopes.join(" ");
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", p.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("state", state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let base = match &p.flow {
            Flow::Oidc(issuer) => {
                pairs.push(("nonce", nonce));
                let doc = self.discovered(issuer, false).await?;
                endpoint(&doc, "authorization_endpoint")?
            }
            Flow::Github { auth_url, .. } => auth_url.clone(),
        };
        Ok(with_query(&base, &pairs))
    }

    /// The discovery document of `issuer`, fetched when missing or stale
    /// (or, with `refresh`, to find a new key).
    async fn discovered(&self, issuer: &Issuer, refresh: bool) -> Result<Value, LoginError> {
        if !refresh
            && let Some(d) = issuer.cache.read().await.as_ref()
            && d.fetched.elapsed() < KEYS_TTL
        {
            return Ok(d.document.clone());
        }
        let _one_at_a_time = issuer.fetching.lock().await;
        // Fetched by another login meanwhile, or refetched too recently.
        let recent = issuer
            .attempted
            .read()
            .await
            .is_some_and(|t| t.elapsed() < REFRESH_INTERVAL);
        if recent && let Some(d) = issuer.cache.read().await.as_ref() {
            return Ok(d.document.clone());
        }
        *issuer.attempted.write().await = Some(Instant::now());
        match discover(&self.client, &issuer.issuer).await {
            Ok((document, keys)) => {
                *issuer.cache.write().await = Some(Discovered {
                    document: document.clone(),
                    keys,
                    fetched: Instant::now(),
                });
                Ok(document)
            }
            Err(e) => {
                tracing::warn!(issuer = %issuer.issuer, error = %e, "OpenID discovery failed");
                match issuer.cache.read().await.as_ref() {
                    Some(d) => Ok(d.document.clone()),
                    None => Err(LoginError::Provider(e)),
                }
            }
        }
    }

    /// Completes a login: exchanges `code` and proves the user.
    pub async fn finish(
        &self,
        key: &str,
        code: &str,
        redirect_uri: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<LoggedIn, LoginError> {
        let p = self.provider(key)?;
        match &p.flow {
            Flow::Oidc(issuer) => {
                let doc = self.discovered(issuer, false).await?;
                let token_url = endpoint(&doc, "token_endpoint")?;
                let tokens = self
                    .exchange(p, &token_url, code, redirect_uri, verifier)
                    .await?;
                let id_token = tokens
                    .get("id_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| LoginError::Refused("no id_token".into()))?;
                let mut claims = self.verify_id_token(p, issuer, id_token).await?;
                if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
                    return Err(LoginError::Refused("nonce mismatch".into()));
                }
                if let (Some(url), Some(access)) = (
                    doc.get("userinfo_endpoint").and_then(Value::as_str),
                    tokens.get("access_token").and_then(Value::as_str),
                ) {
                    let info = self.get_api(url, access).await?;
                    if info.get("sub") != claims.get("sub") {
                        return Err(LoginError::Refused("userinfo is about another sub".into()));
                    }
                    if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), info) {
                        for (k, v) in extra {
                            c.insert(k, v);
                        }
                    }
                }
                let user = oidc::claim_str(&claims, &p.username_claim)
                    .or_else(|| oidc::claim_str(&claims, "email"))
                    .ok_or_else(|| LoginError::Refused("no user name in the claims".into()))?
                    .to_owned();
                let groups = oidc::claim_strings(&claims, &p.groups_claim);
                Ok(LoggedIn { user, groups })
            }
            Flow::Github {
                token_url, api_url, ..
            } => {
                let tokens = self
                    .exchange(p, token_url, code, redirect_uri, verifier)
                    .await?;
                let access = tokens
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| LoginError::Refused("no access_token".into()))?;
                crate::github::identity(self, api_url, access).await
            }
        }
    }

    /// The code exchange at `token_url`: client secret by HTTP Basic when
    /// there is one, and the PKCE verifier.
    async fn exchange(
        &self,
        p: &Provider,
        token_url: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Value, LoginError> {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self
            .client
            .post(token_url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        match &p.client_secret {
            // GitHub takes the client's credentials in the form.
            Some(secret) if p.kind == ProviderKind::Github => {
                pairs.push(("client_id", &p.client_id));
                pairs.push(("client_secret", secret));
            }
            Some(secret) => {
                // RFC 6749 §2.3.1: both form-encoded inside Basic.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(enc(&p.client_id), Some(enc(secret)));
            }
            None => pairs.push(("client_id", &p.client_id)),
        }
        let body = with_query("", &pairs)[1..].to_owned();
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| LoginError::Provider(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = read_json(response)
            .await
            .map_err(|e| LoginError::Provider(format!("token endpoint: {e}")))?;
        if !status.is_success() || body.get("error").is_some() {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("refused");
            return Err(LoginError::Refused(format!(
                "token endpoint: HTTP {status}, {error}"
            )));
        }
        Ok(body)
    }

    async fn verify_id_token(
        &self,
        p: &Provider,
        issuer: &Issuer,
        token: &str,
    ) -> Result<Value, LoginError> {
        let policy = IssuerPolicy {
            issuer: issuer.issuer.clone(),
            audiences: vec![p.client_id.clone()],
            username: "sub".into(),
            groups: None,
        };
        let check = |cache: &Option<Discovered>| match cache {
            Some(d) => oidc::verify_claims(token, &policy, &d.keys, now()),
            None => Err(Rejection::Invalid("no keys")),
        };
        let first = check(&*issuer.cache.read().await);
        let result = match first {
            Err(Rejection::UnknownKey(_)) => {
                self.discovered(issuer, true).await?;
                check(&*issuer.cache.read().await)
            }
            other => other,
        };
        result.map_err(|e| LoginError::Refused(format!("ID token: {e}")))
    }

    /// GET a JSON API with a bearer access token.
    pub(crate) async fn get_api(&self, url: &str, access: &str) -> Result<Value, LoginError> {
        let response = self
            .client
            .get(url)
            .bearer_auth(access)
            .header("accept", "application/json")
            .header("user-agent", "zot")
            .send()
            .await
            .map_err(|e| LoginError::Provider(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(LoginError::Refused(format!(
                "{url}: HTTP {}",
                response.status()
            )));
        }
        read_json(response)
            .await
            .map_err(|e| LoginError::Provider(format!("{url}: {e}")))
    }

    /// The provider's end-session URL for a logout, when it advertises one
    /// (OpenID Connect RP-initiated logout), returning the browser to
    /// `<origin>/login`.
    pub async fn end_session_url(&self, key: &str, origin: &str) -> Option<String> {
        let p = self.provider(key).ok()?;
        let Flow::Oidc(issuer) = &p.flow else {
            return None;
        };
        let doc = self.discovered(issuer, false).await.ok()?;
        let base = doc.get("end_session_endpoint")?.as_str()?;
        let back = format!("{}/login", origin.trim_end_matches('/'));
        Some(with_query(
            base,
            &[
                ("client_id", p.client_id.as_str()),
                ("post_logout_redirect_uri", back.as_str()),
            ],
        ))
    }
}

/// A JSON body of at most 1 MiB.
async fn read_json(mut response: reqwest::Response) -> Result<Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > 1 << 20 {
            return Err("answer larger than 1 MiB".into());
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

fn endpoint(doc: &Value, name: &str) -> Result<String, LoginError> {
    doc.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| LoginError::Provider(format!("the discovery document has no {name}")))
}

#[cfg(test)]
#[path = "openid_tests.rs"]
mod tests;

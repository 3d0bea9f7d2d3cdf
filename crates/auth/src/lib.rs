//! Authentication and authorization of the registry, independent of HTTP.
//!
//! [`Security`] is built once from the `http` configuration and answers four
//! questions of the API layer, in this order for every request:
//! 1. [`Security::rate_limited`]: has this client address used up its budget?
//! 2. [`Security::authenticate`]: who is this (htpasswd, then LDAP, for Basic
//!    credentials; a verified JWT for Bearer; else the client certificate)?
//! 3. [`Security::allowed`]: may this identity (or an anonymous client) do
//!    this action on this repository?
//! 4. [`Security::audit`]: one JSON line per mutating request.
//!
//! # Invariants
//! - With no `http.auth` and no `http.accessControl`, [`Security::is_open`]
//!   is true and everything is allowed, as before this crate existed.
//! - A password or token is never logged nor kept: successful verifications
//!   are cached under a keyed hash of the credentials, for [`CACHE_TTL`] at
//!   most.
//! - A failed login is answered only after `failDelay`, whatever the reason
//!   (unknown user, wrong password, malformed header, LDAP down); an unknown
//!   htpasswd user costs a bcrypt verification like a known one, so timing
//!   does not tell which users exist (see `htpasswd`).
//! - bcrypt verifications are bounded in number at any moment; a login that
//!   cannot get a slot in time fails as [`AuthFailure::Busy`], without
//!   `failDelay`, for the API to answer 429.
//! - Nothing here panics on input from a client.

mod access;
mod apikey;
mod apikey_scope;
mod audit;
mod bearer;
mod cache;
mod credentials;
mod htpasswd;
mod ldap;
mod mtls;
mod oidc;
mod ratelimit;
pub mod tls;
mod token;
mod workload;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

pub use access::Action;
pub use apikey::{
    ApiKeys, CreatedKey, KEY_PREFIX, KeyError, KeyHash, KeyStore, KeyStoreError, KeyUse, NewKey,
    StoredKey, json_time,
};
pub use apikey_scope::{KeyScope, MAX_KEY_SCOPES};
pub use audit::AuditEntry;
pub use bearer::Grant;
pub use credentials::Credentials;
pub use ratelimit::client_key;
pub use token::{IssuedToken, MAX_SCOPES};

use zot_config::HttpConfig;

/// How long a successful password verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// How a client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Htpasswd,
    Ldap,
    Bearer,
    Certificate,
    /// A token of the built-in token service.
    Token,
    /// An API key (`http.auth.apikey`) as the Basic password.
    ApiKey,
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// Groups from the directory (LDAP); configured groups are added when
    /// deciding access.
    pub groups: Vec<String>,
    pub method: Method,
    /// What a bearer token grants; `None` for other methods.
    pub grants: Option<Vec<Grant>>,
    /// The API key this client logged in with (directly, or through a
    /// token of the built-in service made from it): its scope limits
    /// the owner's rights. `None` for other logins.
    pub key: Option<std::sync::Arc<KeyUse>>,
}

/// Why a client could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("malformed Authorization header")]
    Malformed,
    #[error("invalid credentials")]
    BadCredentials,
    #[error("invalid token: {0}")]
    BadToken(String),
    #[error("this authentication scheme is not accepted")]
    WrongScheme,
    /// Too many password verifications under way: try again shortly (429).
    #[error("too many logins being verified at once")]
    Busy,
}

/// A problem found while setting security up at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Everything the API layer needs to know about security.
pub struct Security {
    htpasswd: Option<htpasswd::Htpasswd>,
    ldap: Option<ldap::Ldap>,
    bearer: Option<bearer::Bearer>,
    /// `http.auth.bearer.oidc`: workload identity issuers.
    workload: Option<workload::Workload>,
    token: Option<token::TokenService>,
    /// `http.externalUrl`: the base of the token realm.
    external_url: Option<String>,
    /// Whether the listener serves TLS (the scheme of a realm built from `Host`).
    tls: bool,
    mtls: Option<mtls::CertificateMapping>,
    fail_delay: Duration,
    realm: String,
    access: Option<access::AccessControl>,
    auth_configured: bool,
    cache: cache::CredentialCache,
    ratelimit: Option<ratelimit::RateLimiter>,
    audit: Option<audit::AuditLog>,
    /// `http.auth.apikey`: keys are accepted as Basic passwords.
    apikey_enabled: bool,
    /// The keys, once the store holding them is attached
    /// ([`Security::with_api_keys`]).
    api_keys: Option<std::sync::Arc<ApiKeys>>,
}

impl Default for Security {
    fn default() -> Self {
        Self::open()
    }
}

impl Security {
    /// No authentication, no access control, no limits: everything allowed.
    pub fn open() -> Security {
        Security {
            htpasswd: None,
            ldap: None,
            bearer: None,
            workload: None,
            token: None,
            external_url: None,
            tls: false,
            mtls: None,
            fail_delay: Duration::ZERO,
            realm: String::new(),
            access: None,
            auth_configured: false,
            cache: cache::CredentialCache::default(),
            ratelimit: None,
            audit: None,
            apikey_enabled: false,
            api_keys: None,
        }
    }

    /// Builds security from `http` (and `log.audit`), opening and checking
    /// the files it names. Problems are returned, warnings logged.
    pub fn from_config(http: &HttpConfig, audit: Option<&Path>) -> Result<Security, SetupError> {
        let mut security = Security::open();
        security.realm = if http.realm.is_empty() {
            "zot".to_owned()
        } else {
            http.realm.clone()
        };
        if let Some(auth) = &http.auth {
            security.fail_delay = auth.fail_delay;
            if let Some(path) = &auth.htpasswd {
                security.htpasswd = Some(htpasswd::Htpasswd::open(path)?);
            }
            if let Some(ldap) = &auth.ldap {
                security.ldap = Some(ldap::Ldap::new(ldap)?);
            }
            if let Some(bearer) = &auth.bearer {
                security.bearer = Some(bearer::Bearer::new(bearer)?);
                if !bearer.oidc.is_empty() {
                    security.workload = Some(workload::Workload::new(&bearer.oidc)?);
                }
            }
            if let Some(mtls) = &auth.mtls {
                security.mtls = Some(mtls::CertificateMapping::new(mtls)?);
            }
            security.apikey_enabled = auth.apikey;
            security.auth_configured = security.htpasswd.is_some()
                || security.ldap.is_some()
                || security.bearer.is_some()
                || security.mtls.is_some();
        }
        if security.mtls.is_none() && http.tls.as_ref().is_some_and(|t| t.cacert.is_some()) {
            // Client certificates are verified: their CommonName is the user.
            security.mtls = Some(mtls::CertificateMapping::common_name());
            security.auth_configured = true;
        }
        if let Some(ac) = &http.access_control {
            security.access = Some(access::AccessControl::new(ac));
        }
        security.external_url = http.external_url.clone();
        security.tls = http.tls.is_some();
        if let Some(auth) = &http.auth
            && auth.token.enable
            && security.bearer.is_none()
            && security.has_passwords()
            && security.anonymous_allowed_anywhere()
        {
            security.token = Some(token::TokenService::new(&auth.token)?);
            let loopback = matches!(http.address.as_str(), "127.0.0.1" | "::1" | "localhost");
            if http.external_url.is_none() && http.tls.is_none() && !loopback {
                tracing::warn!(
                    "the built-in token service's realm is built from the request's Host \
                     with http:// (no http.tls): behind a TLS-terminating proxy set \
                     http.externalUrl, or clients send passwords to a plain-HTTP realm"
                );
            }
        }
        if let Some(rl) = &http.ratelimit {
            security.ratelimit = ratelimit::RateLimiter::new(rl);
        }
        if let Some(path) = audit {
            security.audit = Some(audit::AuditLog::open(path)?);
        }
        Ok(security)
    }

    /// True when anyone may do anything (no auth, no access control).
    pub fn is_open(&self) -> bool {
        !self.auth_configured && self.access.is_none()
    }

    /// Whether Basic credentials can be checked (htpasswd, LDAP or API keys).
    fn has_passwords(&self) -> bool {
        self.htpasswd.is_some() || self.ldap.is_some() || self.apikey_enabled
    }

    /// Attaches the store of API keys (`http.auth.apikey`); without it no
    /// key is accepted and none can be made.
    pub fn with_api_keys(mut self, store: std::sync::Arc<dyn KeyStore>) -> Security {
        if self.apikey_enabled {
            self.api_keys = Some(std::sync::Arc::new(ApiKeys::new(store)));
        }
        self
    }

    /// The API keys, when `http.auth.apikey` is on and a store attached.
    pub fn api_keys(&self) -> Option<&std::sync::Arc<ApiKeys>> {
        self.api_keys.as_ref()
    }

    /// Whether `who` may make, list and revoke API keys: a user who logged
    /// in themselves, not with a key or a token (a leaked key or a
    /// short-lived token must not mint long-lived keys).
    pub fn may_manage_keys(&self, who: &Identity) -> bool {
        !matches!(who.method, Method::ApiKey | Method::Token | Method::Bearer) && who.key.is_none()
    }

    /// The key scope of `who`, if it logged in with a key, allows `action`
    /// on `repo` (true for every other login).
    fn key_allows(who: Option<&Identity>, repo: &str, action: Action) -> bool {
        who.and_then(|w| w.key.as_ref())
            .is_none_or(|k| k.scope.allows(repo, action))
    }

    /// Who the client is: `Ok(None)` for an anonymous client. `cert_identity`
    /// is the verified client certificate's identity, if any (see [`tls`]).
    /// A failure has already waited `failDelay`.
    pub async fn authenticate(
        &self,
        credentials: Credentials,
        certificate: Option<&tls::PeerCertificate>,
    ) -> Result<Option<Identity>, AuthFailure> {
        let result = self.authenticate_now(credentials, certificate).await;
        // A login refused as busy was not checked: answered at once (429).
        if result.as_ref().is_err_and(|e| *e != AuthFailure::Busy) && !self.fail_delay.is_zero() {
            tokio::time::sleep(self.fail_delay).await;
        }
        result
    }

    async fn authenticate_now(
        &self,
        credentials: Credentials,
        certificate: Option<&tls::PeerCertificate>,
    ) -> Result<Option<Identity>, AuthFailure> {
        match credentials {
            Credentials::None => Ok(self.certificate_identity(certificate)),
            Credentials::Invalid => Err(AuthFailure::Malformed),
            Credentials::Bearer(token) => match (&self.bearer, &self.token) {
                (Some(_), _)
                    if let Some(w) = &self.workload
                        && w.claims_issuer(&token) =>
                {
                    w.verify(&token).await.map(Some)
                }
                (Some(b), _) => b.verify(&token).map(Some),
                (None, Some(t)) => {
                    let (mut identity, via) = t.verify_via(&token)?;
                    // A token made from an API key lives only as long as
                    // the key: revoked or expired, its tokens stop too.
                    let mut via = via.as_str();
                    if let (Some(who), Some(id)) = (&mut identity, via.strip_prefix("apikey:")) {
                        let key = self
                            .api_keys
                            .as_ref()
                            .and_then(|k| k.still_valid(&who.name, id))
                            .ok_or_else(|| AuthFailure::BadToken("API key revoked".into()))?;
                        via = if key.via == "htpasswd" {
                            "htpasswd"
                        } else {
                            ""
                        };
                        who.key = Some(std::sync::Arc::new(key));
                    }
                    // A user removed from the htpasswd file loses their
                    // tokens at once (the file is re-read when it changes).
                    if let (Some(who), "htpasswd", Some(htpasswd)) =
                        (&identity, via, self.current_htpasswd())
                        && !htpasswd.has_user(&who.name)
                    {
                        return Err(AuthFailure::BadToken("user no longer exists".into()));
                    }
                    Ok(identity)
                }
                (None, None) => Err(AuthFailure::WrongScheme),
            },
            Credentials::Basic { user, password } => {
                // `Basic Og==` (empty user and password), which
                // containers/image sends once it has seen a 200 from an
                // anonymous `/v2/`, is an anonymous client.
                if user.is_empty() && password.is_empty() && self.anonymous_allowed_anywhere() {
                    return Ok(self.certificate_identity(certificate));
                }
                if !self.has_passwords() {
                    return Err(AuthFailure::WrongScheme);
                }
                if user.is_empty() || password.is_empty() {
                    return Err(AuthFailure::BadCredentials);
                }
                if let Some(keys) = &self.api_keys {
                    match keys.check(&user, &password) {
                        apikey::KeyCheck::NotAKey => {}
                        apikey::KeyCheck::Valid(identity) => {
                            // The owner of a key made with an htpasswd
                            // login must still be in the file.
                            let gone = identity.key.as_ref().is_some_and(|k| k.via == "htpasswd")
                                && self
                                    .current_htpasswd()
                                    .is_none_or(|h| !h.has_user(&identity.name));
                            if gone {
                                return Err(AuthFailure::BadCredentials);
                            }
                            return Ok(Some(identity));
                        }
                        apikey::KeyCheck::Refused(why) => {
                            tracing::info!(user = %user, reason = why, "API key refused");
                            return Err(AuthFailure::BadCredentials);
                        }
                    }
                }
                let key = self.cache.key(&user, &password);
                self.current_htpasswd();
                if let Some(identity) = self.cache.get(&key) {
                    return Ok(Some(identity));
                }
                let mut identity = None;
                let verified = match &self.htpasswd {
                    Some(htpasswd) => htpasswd
                        .verify(&user, &password)
                        .await
                        .map_err(|htpasswd::Busy| AuthFailure::Busy)?,
                    None => false,
                };
                if verified {
                    identity = Some(Identity {
                        name: user.clone(),
                        groups: Vec::new(),
                        method: Method::Htpasswd,
                        grants: None,
                        key: None,
                    });
                }
                if identity.is_none()
                    && let Some(ldap) = &self.ldap
                {
                    identity = ldap.authenticate(&user, &password).await;
                }
                match identity {
                    Some(identity) => {
                        self.cache.insert(key, identity.clone());
                        Ok(Some(identity))
                    }
                    None => Err(AuthFailure::BadCredentials),
                }
            }
        }
    }

    /// The htpasswd users, re-read when the file changed (which empties the
    /// credential cache).
    fn current_htpasswd(&self) -> Option<&htpasswd::Htpasswd> {
        let htpasswd = self.htpasswd.as_ref()?;
        if htpasswd.reload_if_changed() {
            self.cache.clear();
        }
        Some(htpasswd)
    }

    fn certificate_identity(&self, certificate: Option<&tls::PeerCertificate>) -> Option<Identity> {
        let mapping = self.mtls.as_ref()?;
        let name = mapping.identity(&certificate?.0)?;
        Some(Identity {
            name,
            groups: Vec::new(),
            method: Method::Certificate,
            grants: None,
            key: None,
        })
    }

    /// May `who` (`None`: anonymous) do `action` on `repo`?
    pub fn allowed(&self, who: Option<&Identity>, repo: &str, action: Action) -> bool {
        if let Some(w) = who
            && let Some(grants) = &w.grants
        {
            let granted = bearer::grants_allow(grants, "repository", repo, action)
                && Self::key_allows(who, repo, action);
            // A built-in token is also held to today's policy for its subject.
            return granted && (w.method != Method::Token || self.policy_allows(who, repo, action));
        }
        self.policy_allows(who, repo, action)
    }

    /// Whether a refusal of a token-bearing request should send the client
    /// for a new token (401 `insufficient_scope`) rather than deny it (403):
    /// true for external tokens, and for built-in tokens whose subject the
    /// policy would allow.
    pub fn new_token_would_help(&self, who: &Identity, repo: &str, action: Action) -> bool {
        Self::key_allows(Some(who), repo, action)
            && (who.method != Method::Token || self.policy_allows(Some(who), repo, action))
    }

    /// The access-control decision, without token grants, within the
    /// scope of the key `who` logged in with (if any).
    fn policy_allows(&self, who: Option<&Identity>, repo: &str, action: Action) -> bool {
        if !Self::key_allows(who, repo, action) {
            return false;
        }
        match &self.access {
            Some(access) => access.allowed(who, repo, action),
            // Authentication without access control: any authenticated user
            // may do anything, anonymous clients nothing (as in zot).
            None => who.is_some() || !self.auth_configured,
        }
    }

    /// Whether the catalog shows `repo` to `who`: what `who` may read; for
    /// a built-in token, what its subject may read (the catalog's own
    /// scope, `registry:catalog:*`, names no repository).
    pub fn may_see_in_catalog(&self, who: Option<&Identity>, repo: &str) -> bool {
        self.may_in_listing(who, repo, Action::Read)
    }

    /// What a listing over many repositories (the catalog, search results
    /// and their `IsDeletable`) shows `who` may do on `repo`: for a built-in
    /// token, what its subject's policy allows (the token's grants are the
    /// scopes of single-repository requests, and a listing asks for none);
    /// otherwise [`Security::allowed`].
    pub fn may_in_listing(&self, who: Option<&Identity>, repo: &str, action: Action) -> bool {
        match who {
            Some(w) if w.method == Method::Token => self.policy_allows(who, repo, action),
            _ => self.allowed(who, repo, action),
        }
    }

    /// May `who` (`None`: anonymous) read the metrics endpoint? As zot: with
    /// no access control, any authenticated user (anyone when no
    /// authentication is configured either); with access control, see
    /// `accessControl.metrics` (`users`, `anonymousPolicy`).
    pub fn may_read_metrics(&self, who: Option<&Identity>) -> bool {
        match &self.access {
            Some(access) => access.may_read_metrics(who),
            None => who.is_some() || !self.auth_configured,
        }
    }

    /// May `who` list the catalog at all (each name is then filtered with
    /// [`Security::allowed`])?
    pub fn may_list_catalog(&self, who: Option<&Identity>) -> bool {
        match who.and_then(|w| w.grants.as_ref()) {
            Some(grants) => bearer::grants_allow(grants, "registry", "catalog", Action::Read),
            None => true,
        }
    }

    /// Whether an anonymous client may use `/v2/` at all: when anonymous
    /// access is allowed somewhere, or no authentication is configured.
    pub fn anonymous_allowed_anywhere(&self) -> bool {
        if !self.auth_configured {
            return true;
        }
        self.access.as_ref().is_some_and(|a| a.any_anonymous())
    }

    /// The `WWW-Authenticate` challenge for a request needing `scope`
    /// (`repository:<name>:<actions>` or `registry:catalog:*`). `host` is
    /// the request's `Host` (or `:authority`), used for the built-in token
    /// service's realm when `http.externalUrl` is not set.
    pub fn challenge(
        &self,
        host: Option<&str>,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> String {
        match (&self.bearer, &self.token) {
            (Some(b), _) => b.challenge(scope, error),
            (None, Some(t)) => t.challenge(&self.origin(host), scope, error),
            (None, None) => self.basic_challenge(),
        }
    }

    /// The `Basic` challenge (also the token endpoint's).
    pub fn basic_challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm.replace(['"', '\\'], ""))
    }

    /// `scheme://host` of the registry as the client sees it.
    fn origin(&self, host: Option<&str>) -> String {
        if let Some(url) = &self.external_url {
            return url.clone();
        }
        let scheme = if self.tls { "https" } else { "http" };
        // Only characters of a host and port: nothing a client sends can
        // break out of the quoted realm.
        let host = host
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }

    /// The token endpoint's path, when this registry issues tokens.
    pub fn token_path(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.path())
    }

    /// Whether this registry is its own token server.
    pub fn issues_tokens(&self) -> bool {
        self.token.is_some()
    }

    /// The built-in token service's name (`service=`), if any.
    pub fn token_service_name(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.service())
    }

    /// A token for `who` (`None`: anonymous) with, of `scopes`, what the
    /// access control allows. `None` when this registry issues no tokens or
    /// signing failed (logged).
    pub fn issue_token(&self, who: Option<&Identity>, scopes: &[String]) -> Option<IssuedToken> {
        let service = self.token.as_ref()?;
        let allowed = |kind: &str, name: &str, action: Action| match kind {
            // The service exists only with anonymous access somewhere, so
            // anonymous callers may list the catalog (filtered) as users may.
            "registry" => self.may_list_catalog(who),
            _ => self.policy_allows(who, name, action),
        };
        let grants = token::TokenService::grants(scopes, &allowed);
        let keep_group = |g: &str| self.access.as_ref().is_some_and(|a| a.names_group(g));
        match service.issue(who, &grants, &keep_group) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "issuing a token");
                None
            }
        }
    }

    /// True when the request must be refused with 429.
    pub fn rate_limited(&self, client: Option<IpAddr>, method: &str) -> bool {
        self.ratelimit
            .as_ref()
            .is_some_and(|r| !r.admit(client, method))
    }

    /// Writes one line to the audit log (when `log.audit` is set).
    pub fn audit(&self, entry: &AuditEntry<'_>) {
        if let Some(log) = &self.audit {
            log.write(entry);
        }
    }

    /// Whether an audit log is configured.
    pub fn audits(&self) -> bool {
        self.audit.is_some()
    }
}

/// Warns when a file holding secrets can be read by other users.
pub(crate) fn warn_if_shared(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "{what} is readable by every user of this machine; restrict it (chmod 600)"
        );
    }
}

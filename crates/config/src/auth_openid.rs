//! `http.auth.openid` (OpenID Connect and OAuth2 login) and the browser
//! session keys `http.auth.sessionKeysFile`, `secureSession` and
//! `sessionDriver`, in zot's key names.
//!
//! Invariants of what is returned:
//! - Provider keys are `oidc`, `google`, `gitlab` (OpenID Connect) or
//!   `github` (OAuth2); any other is a problem, as zot's "unsupported
//!   openid/oauth2 provider".
//! - An OpenID Connect provider has an `issuer` (`google` and `gitlab`
//!   default to `https://accounts.google.com` and `https://gitlab.com`);
//!   its scopes start with `openid` (prepended when missing, as zot).
//! - `scopes` is required (as zot); the client id comes from `clientid` or
//!   `credentialsFile` (the file is read by the server, which then requires
//!   it); the secret is never shown by `Debug`.
//! - URLs (`issuer`, `authurl`, `tokenurl`, `apiurl`, origins) are
//!   `http://` or `https://` without spaces or quotes; origins carry no
//!   path and no trailing `/`.
//! - `sessionDriver.name` is `local` or `redis`; redis needs `url`;
//!   `keyprefix` defaults to `zotsession`.

use std::path::PathBuf;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// The kinds of provider zot knows, by their key under `providers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    Google,
    Gitlab,
    Github,
}

impl ProviderKind {
    /// The key of this provider under `providers` (and in the routes).
    pub fn key(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Google => "google",
            ProviderKind::Gitlab => "gitlab",
            ProviderKind::Github => "github",
        }
    }

    fn from_key(key: &str) -> Option<ProviderKind> {
        [
            ProviderKind::Oidc,
            ProviderKind::Google,
            ProviderKind::Gitlab,
            ProviderKind::Github,
        ]
        .into_iter()
        .find(|k| k.key() == key)
    }
}

/// `http.auth.openid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenIdConfig {
    pub providers: Vec<ProviderConfig>,
    /// `callbackAllowOrigins`: origins (`scheme://host[:port]`) a login may
    /// send the browser back to, besides the registry's own.
    pub callback_allow_origins: Vec<String>,
}

/// One provider under `http.auth.openid.providers`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// `name`: the display name.
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `credentialsFile`: JSON or YAML `{"clientid", "clientsecret"}`,
    /// preferred over the inline keys.
    pub credentials_file: Option<PathBuf>,
    /// `issuer` (OpenID Connect providers).
    pub issuer: Option<String>,
    /// `authurl`, `tokenurl` (github; default github.com).
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    /// `apiurl` (github; default `https://api.github.com`): this build's
    /// addition, so a GitHub Enterprise server (or a test's) can be named.
    pub api_url: Option<String>,
    pub scopes: Vec<String>,
    /// `claimMapping.username` (default `email`).
    pub username_claim: String,
    /// `claimMapping.groups` (default `groups`).
    pub groups_claim: String,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("credentials_file", &self.credentials_file)
            .field("issuer", &self.issuer)
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .field("scopes", &self.scopes)
            .field("username_claim", &self.username_claim)
            .field("groups_claim", &self.groups_claim)
            .finish()
    }
}

/// Where sessions live (`http.auth.sessionDriver`).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum SessionDriver {
    /// In the registry's metadata store.
    #[default]
    Local,
    /// In Redis, shared by every instance using it.
    Redis { url: String, key_prefix: String },
}

impl std::fmt::Debug for SessionDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionDriver::Local => f.write_str("Local"),
            // The URL may carry a password: shown as the cache driver shows it.
            SessionDriver::Redis { url, key_prefix } => f
                .debug_struct("Redis")
                .field(
                    "url",
                    &crate::cache_driver::parse_url(url).map(|t| (t.addrs, t.db)),
                )
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

fn url_ok(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(['"', '\\', ' ', '<', '>'])
        && !url.chars().any(char::is_control)
        && url.len() <= 1024
        && url.split("://").nth(1).is_some_and(|h| !h.is_empty())
}

fn url(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<String> {
    let value = fields::string(section, name, problems)?;
    let value = value.trim().to_owned();
    if value.is_empty() {
        return None;
    }
    if url_ok(&value) {
        Some(value)
    } else {
        problems.push(Problem::new(
            section.child(name),
            "expected an http:// or https:// URL without quotes or spaces",
        ));
        None
    }
}

/// Reads `http.auth.openid`.
pub(crate) fn parse_openid(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> OpenIdConfig {
    let mut config = OpenIdConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    for (p, origin) in
        fields::string_list(&mut section, "callbackAllowOrigins", problems).unwrap_or_default()
    {
        let origin = origin.trim().trim_end_matches('/').to_owned();
        let no_path = origin
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.contains(['/', '?', '#']));
        if url_ok(&origin) && no_path {
            config.callback_allow_origins.push(origin);
        } else {
            problems.push(Problem::new(
                p,
                "expected an origin such as https://ui.example.com (scheme, host, port)",
            ));
        }
    }
    if let Some(v) = section.get("providers")
        && let Some(mut providers) = Section::new(section.child("providers"), v, problems)
    {
        for (key, value) in providers.take_rest() {
            let at = providers.child(key);
            match ProviderKind::from_key(&key.to_ascii_lowercase()) {
                Some(kind) => {
                    if let Some(p) = provider(at, kind, value, problems) {
                        config.providers.push(p);
                    }
                }
                None => problems.push(Problem::new(
                    at,
                    "unsupported openid/oauth2 provider (expected oidc, google, gitlab or github)",
                )),
            }
        }
        providers.finish(problems);
    }
    section.finish(problems);
    config
}

fn provider(
    path: String,
    kind: ProviderKind,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<ProviderConfig> {
    let mut section = Section::new(path, value, problems)?;
    let text = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let name = text(fields::string(&mut section, "name", problems));
    let client_id = text(fields::string(&mut section, "clientid", problems));
    let client_secret =
        fields::string(&mut section, "clientsecret", problems).filter(|s| !s.is_empty());
    let credentials_file =
        text(fields::string(&mut section, "credentialsFile", problems)).map(PathBuf::from);
    // zot's JWT-profile signer key; not used by this build's flows (an empty
    // value, as in zot's example, is common).
    if text(fields::string(&mut section, "keypath", problems)).is_some() {
        problems.push(Problem::new(
            section.child("keypath"),
            "not supported by this build (client authentication by signed JWT)",
        ));
    }
    let mut issuer = url(&mut section, "issuer", problems);
    let auth_url = url(&mut section, "authurl", problems);
    let token_url = url(&mut section, "tokenurl", problems);
    let api_url = url(&mut section, "apiurl", problems);
    let has_scopes = section.has("scopes");
    let mut scopes: Vec<String> = fields::string_list(&mut section, "scopes", problems)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, s)| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if !has_scopes {
        problems.push(Problem::new(section.child("scopes"), "required"));
    }
    let mut username_claim = "email".to_owned();
    let mut groups_claim = "groups".to_owned();
    if let Some(v) = section.get("claimMapping")
        && let Some(mut mapping) = Section::new(section.child("claimMapping"), v, problems)
    {
        if let Some(u) = text(fields::string(&mut mapping, "username", problems)) {
            username_claim = u;
        }
        if let Some(g) = text(fields::string(&mut mapping, "groups", problems)) {
            groups_claim = g;
        }
        mapping.finish(problems);
    }
    if client_id.is_none() && credentials_file.is_none() {
        problems.push(Problem::new(
            section.child("clientid"),
            "required (or credentialsFile)",
        ));
    }
    match kind {
        ProviderKind::Github => {
            if issuer.is_some() {
                problems.push(Problem::new(
                    section.child("issuer"),
                    "github is an OAuth2 provider: no issuer",
                ));
            }
        }
        _ => {
            issuer = issuer.or(match kind {
                ProviderKind::Google => Some("https://accounts.google.com".to_owned()),
                ProviderKind::Gitlab => Some("https://gitlab.com".to_owned()),
                _ => None,
            });
            if issuer.is_none() {
                problems.push(Problem::new(section.child("issuer"), "required"));
            }
            if !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".to_owned());
            }
        }
    }
    section.finish(problems);
    Some(ProviderConfig {
        kind,
        name,
        client_id,
        client_secret,
        credentials_file,
        issuer,
        auth_url,
        token_url,
        api_url,
        scopes,
        username_claim,
        groups_claim,
    })
}

/// Reads `http.auth.sessionDriver`.
pub(crate) fn parse_session_driver(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> SessionDriver {
    let Some(mut section) = Section::new(path, value, problems) else {
        return SessionDriver::Local;
    };
    let name = fields::string(&mut section, "name", problems).map(|n| n.to_ascii_lowercase());
    let driver = match name.as_deref() {
        None | Some("local") => SessionDriver::Local,
        Some("redis") => {
            // Read as the cache driver's URL (go-redis `ParseURL`), so both
            // accept and refuse the same URLs.
            let url = fields::string(&mut section, "url", problems);
            let target = url.as_deref().map(crate::cache_driver::parse_url);
            let key_prefix = fields::string(&mut section, "keyprefix", problems)
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "zotsession".to_owned());
            match (url, target) {
                (Some(url), Some(Ok(t))) if t.mode == crate::cache_driver::RedisMode::Single => {
                    SessionDriver::Redis { url, key_prefix }
                }
                (Some(_), Some(Ok(_))) => {
                    // The session store talks to one server: a sentinel's
                    // or a cluster node's address would be used as one.
                    problems.push(Problem::new(
                        section.child("url"),
                        "sessions are kept on one Redis server: sentinels (`master_name`) and Redis Cluster URLs (several addresses) are not supported here",
                    ));
                    SessionDriver::Local
                }
                _ => {
                    problems.push(Problem::new(
                        section.child("url"),
                        "required: a redis:// or rediss:// URL",
                    ));
                    SessionDriver::Local
                }
            }
        }
        Some(other) => {
            problems.push(Problem::new(
                section.child("name"),
                format!("unknown session driver {other:?} (expected local or redis)"),
            ));
            SessionDriver::Local
        }
    };
    section.finish(problems);
    driver
}

//! The security sections under `http`: `auth`, `accessControl` and
//! `ratelimit`, in the Go zot's key names.
//!
//! Invariants of what is returned:
//! - `auth.htpasswd.path`, `auth.bearer.{realm,service,cert}` and
//!   `auth.ldap.{address,baseDN,userAttribute}` are non-empty when their
//!   section is present. Files are not opened here (the server does that).
//! - `auth.failDelay` is an integer number of seconds as in zot (a Go duration
//!   string such as `"2s"` or `"500ms"` is accepted too), at most
//!   [`MAX_FAIL_DELAY`] (more is a problem, not silently capped).
//! - `accessControl.metrics` (`users`, `anonymousPolicy`) says who may read
//!   the metrics endpoint (zot's MetricsAuthzHandler); its actions are
//!   checked like a repository's.
//! - Every action of an access policy is one of `read`, `create`, `update`,
//!   `delete`; repository patterns keep the file's order and are valid globs
//!   (see [`crate::glob`]).
//! - `ratelimit` rates are requests per second, at least 1.
//! - `auth.apikey` (a boolean) turns API keys on; as in zot, the presence
//!   of `auth.openid` turns them on too.
//! - zot keys this build does not implement (`openid`, ...) are `not
//!   supported by this build` problems.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::{Section, kind};

/// The longest `http.auth.failDelay` accepted.
pub const MAX_FAIL_DELAY: Duration = Duration::from_secs(3600);

/// The access-control actions zot knows.
pub const ACTIONS: &[&str] = &["read", "create", "update", "delete"];

/// Authentication (`http.auth`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// bcrypt htpasswd file (`http.auth.htpasswd.path`).
    pub htpasswd: Option<PathBuf>,
    /// LDAP directory (`http.auth.ldap`).
    pub ldap: Option<LdapConfig>,
    /// Docker token authentication (`http.auth.bearer`).
    pub bearer: Option<BearerConfig>,
    /// Client certificate identity (`http.auth.mtls`).
    pub mtls: Option<MtlsConfig>,
    /// Pause after a failed login (`http.auth.failDelay`, seconds).
    pub fail_delay: Duration,
    /// The built-in token service (`http.auth.token`); defaults apply when
    /// the section is absent.
    pub token: TokenConfig,
    /// API keys (`http.auth.apikey`), made at `/zot/auth/apikey`.
    pub apikey: bool,
}

/// `http.auth.token`: the registry's own token service, used when password
/// users (htpasswd, LDAP) and anonymous access coexist and no external
/// `bearer` realm is configured (see the `zot-auth` crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `false` keeps Basic challenges even with anonymous access.
    pub enable: bool,
    /// Path of the token endpoint (`path`, default `/auth/token`).
    pub path: String,
    /// Audience of the tokens and `service` of the challenge (`service`,
    /// default `zot`).
    pub service: String,
    /// PKCS#8 PEM file of a P-256 private key (`signingKey`), so that
    /// several instances accept each other's tokens; without it a key is
    /// made at start-up.
    pub signing_key: Option<PathBuf>,
    /// How long a token is valid (`lifetime`, default 5 minutes, 1 minute
    /// to 1 hour).
    pub lifetime: Duration,
}

/// Default path of the built-in token endpoint.
pub const DEFAULT_TOKEN_PATH: &str = "/auth/token";

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            enable: true,
            path: DEFAULT_TOKEN_PATH.to_owned(),
            service: "zot".to_owned(),
            signing_key: None,
            lifetime: Duration::from_secs(300),
        }
    }
}

/// `http.auth.ldap`. Its `Debug` output shows whether `bindPassword` is set,
/// never the password itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LdapConfig {
    pub address: String,
    /// Default 389.
    pub port: u16,
    pub start_tls: bool,
    /// Plain LDAP without TLS (`insecure`); otherwise `ldaps://` unless `startTLS`.
    pub insecure: bool,
    pub skip_verify: bool,
    pub base_dn: String,
    pub user_attribute: String,
    pub user_group_attribute: Option<String>,
    pub user_filter: Option<String>,
    pub subtree_search: bool,
    /// JSON file with `bindDN` and `bindPassword`.
    pub credentials_file: Option<PathBuf>,
    /// Inline `bindDN` (deprecated in zot, still read).
    pub bind_dn: Option<String>,
    /// Inline `bindPassword` (deprecated in zot, still read).
    pub bind_password: Option<String>,
    /// CA certificate file for the LDAP server (`caCert`).
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a new field cannot be left out (or leak) unnoticed.
        let LdapConfig {
            address,
            port,
            start_tls,
            insecure,
            skip_verify,
            base_dn,
            user_attribute,
            user_group_attribute,
            user_filter,
            subtree_search,
            credentials_file,
            bind_dn,
            bind_password,
            ca_cert,
        } = self;
        f.debug_struct("LdapConfig")
            .field("address", address)
            .field("port", port)
            .field("start_tls", start_tls)
            .field("insecure", insecure)
            .field("skip_verify", skip_verify)
            .field("base_dn", base_dn)
            .field("user_attribute", user_attribute)
            .field("user_group_attribute", user_group_attribute)
            .field("user_filter", user_filter)
            .field("subtree_search", subtree_search)
            .field("credentials_file", credentials_file)
            .field("bind_dn", bind_dn)
            .field(
                "bind_password",
                &bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_cert", ca_cert)
            .finish()
    }
}

/// `http.auth.bearer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerConfig {
    pub realm: String,
    pub service: String,
    /// Certificate (or public key) PEM whose key signs the tokens (required
    /// unless `oidc` issuers are configured).
    pub cert: Option<PathBuf>,
    /// `oidc`: issuers of workload identity tokens.
    pub oidc: Vec<crate::auth_oidc::OidcIssuerConfig>,
}

/// `http.auth.mtls`: how a verified client certificate names its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsConfig {
    /// `identityAttributes`, tried in order: `CommonName`, `Subject`,
    /// `Email`, `URI`, `DNSName` (zot's aliases `CN`, `DN`, `rfc822name`,
    /// `URL`, `DNS` and any letter case are accepted and stored under these
    /// names; default `["CommonName"]`).
    pub identity_attributes: Vec<String>,
    /// `uriSanPattern`: a regular expression searched (unanchored, as Go's
    /// `FindStringSubmatch`) in the URI SAN; its first capture group is the
    /// user. Checked to compile and to have a capture group.
    pub uri_san_pattern: Option<String>,
    /// `uriSanIndex`: which URI SAN (0-based) is used.
    pub uri_san_index: usize,
    /// `dnsSanIndex`: which DNS SAN (0-based) is used.
    pub dns_san_index: usize,
    /// `emailSanIndex`: which email SAN (0-based) is used.
    pub email_san_index: usize,
}

/// `http.accessControl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessControlConfig {
    /// `groups`: group name → its users.
    pub groups: Vec<(String, Vec<String>)>,
    /// `repositories`: glob pattern → policy, in file order.
    pub repositories: Vec<(String, RepositoryPolicy)>,
    /// `adminPolicy`: applies to every repository.
    pub admin_policy: Option<Policy>,
    /// `metrics`: who may read the metrics endpoint (absent: any
    /// authenticated user, as zot).
    pub metrics: Option<MetricsPolicy>,
}

/// `http.accessControl.metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsPolicy {
    /// Authenticated users who may read the metrics (empty: none).
    pub users: Vec<String>,
    /// Actions of anonymous clients (`read` lets them scrape).
    pub anonymous_policy: Vec<String>,
}

/// Policies of one repository pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryPolicy {
    pub policies: Vec<Policy>,
    /// Actions of any authenticated user.
    pub default_policy: Vec<String>,
    /// Actions of anonymous clients.
    pub anonymous_policy: Vec<String>,
}

/// Users and groups allowed some actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub actions: Vec<String>,
}

/// `http.ratelimit`: requests per second per client address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Every request (`rate`).
    pub rate: Option<u32>,
    /// Per HTTP method (`methods[{method, rate}]`), method upper-cased.
    pub methods: Vec<(String, u32)>,
}

const AUTH_UNSUPPORTED: &[&str] = &[
    "openid",
    "sessionKeysFile",
    "sessionDriver",
    "sessionHashKey",
    "sessionEncryptKey",
    "secureSession",
];

pub(crate) fn parse_auth(path: String, value: &Value, problems: &mut Vec<Problem>) -> AuthConfig {
    let mut config = AuthConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    if let Some(v) = section.get("htpasswd") {
        config.htpasswd = htpasswd(section.child("htpasswd"), v, problems);
    }
    if let Some(v) = section.get("ldap") {
        config.ldap = ldap(section.child("ldap"), v, problems);
    }
    if let Some(v) = section.get("bearer") {
        config.bearer = bearer(section.child("bearer"), v, problems);
    }
    if let Some(v) = section.get("mtls") {
        config.mtls = mtls(section.child("mtls"), v, problems);
    }
    if let Some(v) = section.get("token") {
        config.token = token(section.child("token"), v, problems);
    }
    if let Some(v) = section.get("failDelay") {
        let delay = match v {
            Value::Number(n) => match n.as_u64() {
                Some(secs) => Some(Duration::from_secs(secs)),
                None => {
                    problems.push(Problem::new(
                        section.child("failDelay"),
                        "expected a non-negative number of seconds",
                    ));
                    None
                }
            },
            _ => fields::duration(&mut section, "failDelay", problems),
        };
        match delay {
            Some(d) if d > MAX_FAIL_DELAY => problems.push(Problem::new(
                section.child("failDelay"),
                format!(
                    "at most {} seconds (one hour); a longer pause only ties up connections",
                    MAX_FAIL_DELAY.as_secs()
                ),
            )),
            Some(d) => config.fail_delay = d,
            None => {}
        }
    }
    // zot forces API keys on whenever OpenID is configured.
    config.apikey =
        fields::boolean(&mut section, "apikey", problems).unwrap_or(false) || section.has("openid");
    section.unsupported(AUTH_UNSUPPORTED, problems);
    section.finish(problems);
    config
}

fn required(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<String> {
    let present = section.has(name);
    match fields::string(section, name, problems) {
        Some(s) if !s.trim().is_empty() => Some(s),
        Some(_) => {
            problems.push(Problem::new(section.child(name), "must not be empty"));
            None
        }
        None if !present => {
            problems.push(Problem::new(section.child(name), "required"));
            None
        }
        None => None,
    }
}

fn htpasswd(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    let mut section = Section::new(path, value, problems)?;
    let file = required(&mut section, "path", problems);
    section.finish(problems);
    file.map(PathBuf::from)
}

fn bearer(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<BearerConfig> {
    let mut section = Section::new(path, value, problems)?;
    let realm = required(&mut section, "realm", problems);
    let service = required(&mut section, "service", problems);
    let has_oidc = section.has("oidc");
    let oidc = match section.get("oidc") {
        Some(v) => crate::auth_oidc::parse(section.child("oidc"), v, problems),
        None => Vec::new(),
    };
    let cert = if section.has("cert") || !has_oidc {
        Some(required(&mut section, "cert", problems).map(PathBuf::from))
    } else {
        None
    };
    section.finish(problems);
    Some(BearerConfig {
        realm: realm?,
        service: service?,
        cert: cert.map_or(Ok(None), |c| c.map(Some).ok_or(())).ok()?,
        oidc,
    })
}

fn token(path: String, value: &Value, problems: &mut Vec<Problem>) -> TokenConfig {
    let mut config = TokenConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    if let Some(enable) = fields::boolean(&mut section, "enable", problems) {
        config.enable = enable;
    }
    if let Some(p) = fields::string(&mut section, "path", problems) {
        let valid = p.starts_with('/')
            && p.len() <= 256
            && !p.starts_with("/v2/")
            && p != "/v2"
            && !matches!(p.as_str(), "/livez" | "/readyz" | "/startupz")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if valid {
            config.path = p;
        } else {
            problems.push(Problem::new(
                section.child("path"),
                "expected an absolute path of letters, digits and /-._~ outside /v2/",
            ));
        }
    }
    if let Some(s) = fields::string(&mut section, "service", problems) {
        if s.is_empty()
            || s.len() > 256
            || s.contains(['"', '\\'])
            || s.chars().any(char::is_control)
        {
            problems.push(Problem::new(
                section.child("service"),
                "expected a non-empty name without quotes or control characters",
            ));
        } else {
            config.service = s;
        }
    }
    if let Some(key) = fields::string(&mut section, "signingKey", problems) {
        config.signing_key = Some(PathBuf::from(key));
    }
    if let Some(lifetime) = fields::duration(&mut section, "lifetime", problems) {
        // The Docker token specification: never less than 60 s to live.
        if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(3600) {
            problems.push(Problem::new(
                section.child("lifetime"),
                "expected a duration from 1m to 1h",
            ));
        } else {
            config.lifetime = lifetime;
        }
    }
    section.finish(problems);
    config
}

fn mtls(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<MtlsConfig> {
    // zot's names (lower-cased) and the canonical name each stands for.
    const KNOWN: &[(&str, &str)] = &[
        ("commonname", "CommonName"),
        ("cn", "CommonName"),
        ("subject", "Subject"),
        ("dn", "Subject"),
        ("email", "Email"),
        ("rfc822name", "Email"),
        ("uri", "URI"),
        ("url", "URI"),
        ("dnsname", "DNSName"),
        ("dns", "DNSName"),
    ];
    let mut section = Section::new(path, value, problems)?;
    let mut attributes = Vec::new();
    for (p, name) in
        fields::string_list(&mut section, "identityAttributes", problems).unwrap_or_default()
    {
        let lower = name.trim().to_ascii_lowercase();
        match KNOWN.iter().find(|(alias, _)| *alias == lower) {
            Some((_, canonical)) => attributes.push((*canonical).to_owned()),
            None => problems.push(Problem::new(
                p,
                format!(
                    "unknown identity attribute {name:?} (expected CommonName, Subject, Email, URI or DNSName)"
                ),
            )),
        }
    }
    if attributes.is_empty() {
        attributes.push("CommonName".to_owned());
    }
    let uri_san_pattern = fields::string(&mut section, "uriSanPattern", problems)
        .filter(|p| !p.is_empty())
        .filter(|p| match regex::Regex::new(p) {
            Ok(re) if re.captures_len() >= 2 => true,
            Ok(_) => {
                problems.push(Problem::new(
                    section.child("uriSanPattern"),
                    "needs a capture group: its first group is the user name",
                ));
                false
            }
            Err(e) => {
                problems.push(Problem::new(
                    section.child("uriSanPattern"),
                    format!("not a valid regular expression: {e}"),
                ));
                false
            }
        });
    let mut index = |name: &str| {
        fields::unsigned(&mut section, name, problems)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(0)
    };
    let (uri_san_index, dns_san_index, email_san_index) = (
        index("uriSanIndex"),
        index("dnsSanIndex"),
        index("emailSanIndex"),
    );
    section.finish(problems);
    Some(MtlsConfig {
        identity_attributes: attributes,
        uri_san_pattern,
        uri_san_index,
        dns_san_index,
        email_san_index,
    })
}

fn ldap(path: String, value: &Value, problems: &mut Vec<Problem>) -> Option<LdapConfig> {
    let mut section = Section::new(path, value, problems)?;
    let address = required(&mut section, "address", problems);
    let base_dn = required(&mut section, "baseDN", problems);
    let user_attribute = required(&mut section, "userAttribute", problems);
    let mut config = LdapConfig {
        port: 389,
        ..LdapConfig::default()
    };
    if let Some(port) = fields::unsigned(&mut section, "port", problems) {
        match u16::try_from(port) {
            Ok(p) if p > 0 => config.port = p,
            _ => problems.push(Problem::new(
                section.child("port"),
                "expected a port number from 1 to 65535",
            )),
        }
    }
    let flag = |s: &mut Section<'_>, n: &str, p: &mut Vec<Problem>| {
        fields::boolean(s, n, p).unwrap_or(false)
    };
    config.start_tls = flag(&mut section, "startTLS", problems);
    config.insecure = flag(&mut section, "insecure", problems);
    config.skip_verify = flag(&mut section, "skipVerify", problems);
    config.subtree_search = flag(&mut section, "subtreeSearch", problems);
    let text = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    config.user_group_attribute =
        text(fields::string(&mut section, "userGroupAttribute", problems));
    config.user_filter = text(fields::string(&mut section, "userFilter", problems));
    config.credentials_file =
        text(fields::string(&mut section, "credentialsFile", problems)).map(PathBuf::from);
    config.bind_dn = text(fields::string(&mut section, "bindDN", problems));
    config.bind_password = fields::string(&mut section, "bindPassword", problems);
    config.ca_cert = text(fields::string(&mut section, "caCert", problems)).map(PathBuf::from);
    section.unsupported(&["clientCert", "clientKey"], problems);
    section.finish(problems);
    config.address = address?;
    config.base_dn = base_dn?;
    config.user_attribute = user_attribute?;
    Some(config)
}

/// Reads `http.accessControl`.
pub(crate) fn parse_access(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> AccessControlConfig {
    let mut config = AccessControlConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    if let Some(v) = section.get("groups")
        && let Some(mut groups) = Section::new(section.child("groups"), v, problems)
    {
        for (name, group) in groups.take_rest() {
            let Some(mut g) = Section::new(groups.child(name), group, problems) else {
                continue;
            };
            let users = names(&mut g, "users", problems);
            g.finish(problems);
            config.groups.push((name.to_owned(), users));
        }
        groups.finish(problems);
    }
    if let Some(v) = section.get("repositories")
        && let Some(mut repos) = Section::new(section.child("repositories"), v, problems)
    {
        for (pattern, repo) in repos.take_rest() {
            let Some(mut r) = Section::new(repos.child(pattern), repo, problems) else {
                continue;
            };
            if let Err(e) = crate::glob::Glob::new(pattern) {
                problems.push(Problem::new(repos.child(pattern), e.to_string()));
            }
            let mut policy = RepositoryPolicy::default();
            if let Some(list) = r.get("policies") {
                policy.policies = policies(r.child("policies"), list, problems);
            }
            policy.default_policy = actions(&mut r, "defaultPolicy", problems);
            policy.anonymous_policy = actions(&mut r, "anonymousPolicy", problems);
            r.finish(problems);
            config.repositories.push((pattern.to_owned(), policy));
        }
        repos.finish(problems);
    }
    if let Some(v) = section.get("adminPolicy")
        && let Some(mut admin) = Section::new(section.child("adminPolicy"), v, problems)
    {
        config.admin_policy = Some(policy(&mut admin, problems));
        admin.finish(problems);
    }
    if let Some(v) = section.get("metrics")
        && let Some(mut m) = Section::new(section.child("metrics"), v, problems)
    {
        config.metrics = Some(MetricsPolicy {
            users: names(&mut m, "users", problems),
            anonymous_policy: actions(&mut m, "anonymousPolicy", problems),
        });
        m.finish(problems);
    }
    section.finish(problems);
    config
}

fn names(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    fields::string_list(section, name, problems)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

fn actions(section: &mut Section<'_>, name: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, action) in fields::string_list(section, name, problems).unwrap_or_default() {
        let lower = action.to_ascii_lowercase();
        if ACTIONS.contains(&lower.as_str()) {
            out.push(lower);
        } else {
            problems.push(Problem::new(
                p,
                format!("unknown action {action:?} (expected read, create, update or delete)"),
            ));
        }
    }
    out
}

fn policy(section: &mut Section<'_>, problems: &mut Vec<Problem>) -> Policy {
    Policy {
        users: names(section, "users", problems),
        groups: names(section, "groups", problems),
        actions: actions(section, "actions", problems),
    }
}

fn policies(path: String, value: &Value, problems: &mut Vec<Problem>) -> Vec<Policy> {
    let Value::Array(items) = value else {
        problems.push(Problem::new(
            path,
            format!("expected a list of policies, found {}", kind(value)),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(mut s) = Section::new(format!("{path}[{i}]"), item, problems) {
            out.push(policy(&mut s, problems));
            s.finish(problems);
        }
    }
    out
}

/// Reads `http.ratelimit`.
pub(crate) fn parse_ratelimit(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> RateLimitConfig {
    let mut config = RateLimitConfig::default();
    let Some(mut section) = Section::new(path, value, problems) else {
        return config;
    };
    config.rate = rate(&mut section, problems);
    if let Some(v) = section.get("methods") {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{}[{i}]", section.child("methods"));
                    let Some(mut m) = Section::new(p, item, problems) else {
                        continue;
                    };
                    let method = required(&mut m, "method", problems);
                    let r = rate(&mut m, problems);
                    if let (Some(method), Some(r)) = (method, r) {
                        config.methods.push((method.to_ascii_uppercase(), r));
                    }
                    m.finish(problems);
                }
            }
            other => problems.push(Problem::new(
                section.child("methods"),
                format!("expected a list, found {}", kind(other)),
            )),
        }
    }
    section.finish(problems);
    config
}

fn rate(section: &mut Section<'_>, problems: &mut Vec<Problem>) -> Option<u32> {
    let n = fields::unsigned(section, "rate", problems)?;
    match u32::try_from(n) {
        Ok(r) if r > 0 => Some(r),
        _ => {
            problems.push(Problem::new(
                section.child("rate"),
                "expected a number of requests per second from 1 to 4294967295",
            ));
            None
        }
    }
}

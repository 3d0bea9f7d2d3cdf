//! The built-in token service (`http.auth.token`): the registry is its own
//! Docker token server when password users and anonymous access coexist and
//! no external `bearer` realm is configured.
//!
//! Why: with anonymous access, `GET /v2/` succeeds without credentials, so
//! docker and containers/image conclude that credentials are never needed
//! and never send them. A `Bearer` challenge makes every client ask the
//! token endpoint, with credentials when it has them and without when it
//! has none; the token then carries exactly what that client may do.
//!
//! Invariants:
//! - A token grants, per requested scope, only the actions the access
//!   control allows the caller (an anonymous caller: what anonymous users
//!   may do); `*` is granted only when every action is allowed.
//! - Tokens are ES256 JWTs with `aud` = the service, `exp` = now + lifetime,
//!   signed with a P-256 key made at start-up or read from `signingKey`
//!   (PKCS#8 PEM), and are checked by the same verifier as external tokens.
//! - A request carrying a built-in token is allowed only when the token
//!   grants the action *and* the access control still allows the token's
//!   subject (a token never outlives a policy change by more than its check).
//! - Requested scopes are bounded in number and length; malformed scopes are
//!   ignored (they grant nothing), never an error.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;
use zot_config::TokenConfig;

use crate::access::Action;
use crate::bearer::{self, Bearer, Grant};
use crate::{AuthFailure, Identity, Method, SetupError};

/// Scopes read from one token request; the rest are ignored.
pub const MAX_SCOPES: usize = 32;
/// Longest scope string considered (`repository:` + a 255-byte name +
/// actions).
const MAX_SCOPE_LEN: usize = 320;
/// Longest resource name considered (repository names stop at 255).
const MAX_NAME_LEN: usize = 255;

pub(crate) struct TokenService {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    verifier: Bearer,
    service: String,
    path: String,
    lifetime: Duration,
}

/// What the token endpoint answers (Docker's and OAuth2's field names).
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: &'a [Grant],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    /// How the subject logged in (`htpasswd`, `ldap`, `certificate`, or
    /// `apikey:<id>`), so that a user removed from the htpasswd file, or a
    /// revoked key, loses its tokens.
    #[serde(skip_serializing_if = "str::is_empty")]
    via: &'a str,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a PKCS#8 PEM ("PRIVATE KEY") P-256 key.
fn read_key(path: &Path, rng: &SystemRandom) -> Result<EcdsaKeyPair, SetupError> {
    let fail = |why: String| {
        SetupError(format!(
            "http.auth.token.signingKey {}: {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    crate::warn_if_shared(path, "the token signing key");
    // The PEM reader `bearer.rs` uses for certificates reads any label.
    let der = match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) if pem.label == "PRIVATE KEY" => pem.contents,
        _ => {
            return Err(fail(
                "expected a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----), e.g. from \
                 `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
                    .to_owned(),
            ));
        }
    };
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, rng)
        .map_err(|e| fail(format!("not a P-256 PKCS#8 key: {e}")))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A scope `type:name:actions` (the name may itself hold `:` only in
/// theory; the type is before the first `:` and the actions after the last).
fn parse_scope(scope: &str) -> Option<(&str, &str, Vec<&str>)> {
    if scope.len() > MAX_SCOPE_LEN {
        return None;
    }
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() || name.len() > MAX_NAME_LEN {
        return None;
    }
    // Each known action once, in the order asked: at most four policy
    // checks per scope, however the scope repeats itself.
    let mut known: Vec<&str> = Vec::new();
    for a in actions.split(',') {
        if matches!(a, "pull" | "push" | "delete" | "*") && !known.contains(&a) {
            known.push(a);
        }
    }
    Some((kind, name, known))
}

impl TokenService {
    pub(crate) fn new(config: &TokenConfig) -> Result<TokenService, SetupError> {
        let rng = SystemRandom::new();
        let key = match &config.signing_key {
            Some(path) => read_key(path, &rng)?,
            None => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| SetupError("cannot make a token signing key".to_owned()))?;
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .map_err(|_| SetupError("cannot load the token signing key".to_owned()))?
            }
        };
        Ok(Self::with_key(config, key, rng))
    }

    fn with_key(config: &TokenConfig, key: EcdsaKeyPair, rng: SystemRandom) -> TokenService {
        let verifier = Bearer::es256(
            config.path.clone(),
            config.service.clone(),
            key.public_key().as_ref().to_vec(),
        );
        TokenService {
            key,
            rng,
            verifier,
            service: config.service.clone(),
            path: config.path.clone(),
            lifetime: config.lifetime,
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// The `Bearer` challenge pointing at `origin` + the token path.
    pub(crate) fn challenge(
        &self,
        origin: &str,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> String {
        let realm = format!("{origin}{}", self.path);
        bearer::challenge(&realm, &self.service, scope, error)
    }

    #[cfg(test)]
    pub(crate) fn verify(&self, token: &str) -> Result<Option<Identity>, AuthFailure> {
        self.verify_via(token).map(|(identity, _)| identity)
    }

    /// Checks a token this service issued, and says how its subject logged
    /// in (`via`). An anonymous token (empty subject) is `None`: its grants
    /// never exceed anonymous rights.
    pub(crate) fn verify_via(
        &self,
        token: &str,
    ) -> Result<(Option<Identity>, String), AuthFailure> {
        let (mut identity, via) = self.verifier.verify_via(token)?;
        if identity.name.is_empty() {
            return Ok((None, via));
        }
        identity.method = Method::Token;
        Ok((Some(identity), via))
    }

    /// The grants for `scopes`, each limited to what `allowed` says the
    /// caller may do.
    pub(crate) fn grants(
        scopes: &[String],
        allowed: &dyn Fn(&str, &str, Action) -> bool,
    ) -> Vec<Grant> {
        let mut grants: Vec<Grant> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for scope in scopes.iter().take(MAX_SCOPES) {
            if seen.contains(&scope.as_str()) {
                continue;
            }
            seen.push(scope);
            let Some((kind, name, actions)) = parse_scope(scope) else {
                continue;
            };
            let mut granted: Vec<String> = Vec::new();
            for action in actions {
                let ok = match (kind, action) {
                    ("repository", "pull") => allowed(kind, name, Action::Read),
                    ("repository", "push") => {
                        allowed(kind, name, Action::Create) || allowed(kind, name, Action::Update)
                    }
                    ("repository", "delete") => allowed(kind, name, Action::Delete),
                    ("repository", "*") => {
                        [Action::Read, Action::Create, Action::Update, Action::Delete]
                            .into_iter()
                            .all(|a| allowed(kind, name, a))
                    }
                    ("registry", "*") if name == "catalog" => allowed(kind, name, Action::Read),
                    _ => false,
                };
                if ok && !granted.iter().any(|g| g == action) {
                    granted.push(action.to_owned());
                }
            }
            if granted.is_empty() {
                continue;
            }
            match grants.iter_mut().find(|g| g.kind == kind && g.name == name) {
                Some(existing) => {
                    for a in granted {
                        if !existing.actions.contains(&a) {
                            existing.actions.push(a);
                        }
                    }
                }
                None => grants.push(Grant {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    actions: granted,
                }),
            }
        }
        grants
    }

    /// Signs a token for `who` (`None`: anonymous) carrying `grants` and,
    /// of the subject's directory groups, those `keep_group` keeps (the
    /// ones a policy names: a user in hundreds of groups still gets a
    /// token that fits in a header).
    pub(crate) fn issue(
        &self,
        who: Option<&Identity>,
        grants: &[Grant],
        keep_group: &dyn Fn(&str) -> bool,
    ) -> Result<IssuedToken, SetupError> {
        let groups: Vec<String> = who
            .map(|w| w.groups.iter().filter(|g| keep_group(g)).cloned().collect())
            .unwrap_or_default();
        let via = match who.map(|w| (w.method, &w.key)) {
            Some((_, Some(key))) => format!("apikey:{}", key.id),
            Some((Method::Htpasswd, _)) => "htpasswd".to_owned(),
            Some((Method::Ldap, _)) => "ldap".to_owned(),
            Some((Method::Certificate, _)) => "certificate".to_owned(),
            _ => String::new(),
        };
        let iat = now();
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| SetupError("no randomness".to_owned()))?;
        let claims = Claims {
            iss: &self.service,
            sub: who.map_or("", |w| w.name.as_str()),
            aud: &self.service,
            exp: iat + self.lifetime.as_secs(),
            nbf: iat.saturating_sub(1),
            iat,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access: grants,
            groups: &groups,
            via: &via,
        };
        let header = b64(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| SetupError(format!("cannot encode token claims: {e}")))?;
        let signing_input = format!("{header}.{}", b64(&payload));
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| SetupError("cannot sign a token".to_owned()))?;
        let token = format!("{signing_input}.{}", b64(signature.as_ref()));
        Ok(IssuedToken {
            access_token: token.clone(),
            token,
            expires_in: self.lifetime.as_secs(),
            issued_at: crate::audit::rfc3339(UNIX_EPOCH + Duration::from_secs(iat)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(&TokenConfig::default()).unwrap()
    }

    fn user(name: &str) -> Identity {
        Identity {
            name: name.to_owned(),
            groups: vec!["devs".to_owned()],
            method: Method::Htpasswd,
            grants: None,
            key: None,
        }
    }

    #[test]
    fn grants_only_what_is_allowed() {
        let allowed = |_: &str, name: &str, a: Action| match name {
            "pub/app" => a == Action::Read,
            "team/app" => matches!(a, Action::Read | Action::Create),
            "all" => true,
            _ => false,
        };
        let scopes: Vec<String> = [
            "repository:pub/app:pull,push",
            "repository:team/app:push,pull,delete",
            "repository:secret:pull",
            "repository:all:*",
            "repository:team/app:pull",
            "registry:catalog:*",
            "garbage",
            "repository::pull",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let g = TokenService::grants(&scopes, &allowed);
        let find = |n: &str| g.iter().find(|g| g.name == n).map(|g| g.actions.clone());
        assert_eq!(find("pub/app"), Some(vec!["pull".to_owned()]));
        assert_eq!(
            find("team/app"),
            Some(vec!["push".to_owned(), "pull".to_owned()])
        );
        assert_eq!(find("secret"), None);
        assert_eq!(find("all"), Some(vec!["*".to_owned()]));
        assert_eq!(find("catalog"), None, "catalog only when allowed");
        assert_eq!(g.len(), 3);
    }

    /// Repeated actions and scopes cost one policy check each, however
    /// often they are repeated.
    #[test]
    fn repetitions_cost_nothing() {
        let checks = std::cell::Cell::new(0);
        let allowed = |_: &str, _: &str, _: Action| {
            checks.set(checks.get() + 1);
            true
        };
        let scope = format!("repository:{}:{}", "a".repeat(200), ["pull"; 20].join(","));
        let scopes = vec![scope; MAX_SCOPES];
        let g = TokenService::grants(&scopes, &allowed);
        assert_eq!(g.len(), 1);
        assert_eq!(checks.get(), 1);
        let unknown = vec!["repository:x:pull,nope,PULL,push,pull,*,*".to_owned()];
        checks.set(0);
        let g = TokenService::grants(&unknown, &allowed);
        assert_eq!(g[0].actions, ["pull", "push", "*"]);
        // pull: read; push: create (update not asked once create is); *: all four.
        assert_eq!(checks.get(), 1 + 1 + 4);
    }

    #[test]
    fn scope_count_and_length_are_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("repository:r{i}:pull")).collect();
        let g = TokenService::grants(&many, &|_, _, _| true);
        assert_eq!(g.len(), MAX_SCOPES);
        let long = vec![format!("repository:{}:pull", "a".repeat(MAX_SCOPE_LEN))];
        assert!(TokenService::grants(&long, &|_, _, _| true).is_empty());
    }

    #[test]
    fn issued_tokens_verify_and_carry_subject_groups_and_grants() {
        let s = service();
        let grants = vec![Grant {
            kind: "repository".into(),
            name: "team/app".into(),
            actions: vec!["pull".into()],
        }];
        let t = s.issue(Some(&user("alice")), &grants, &|_| true).unwrap();
        assert_eq!(t.token, t.access_token);
        assert_eq!(t.expires_in, 300);
        let id = s.verify(&t.token).unwrap().unwrap();
        assert_eq!(id.name, "alice");
        assert_eq!(id.groups, vec!["devs".to_owned()]);
        assert_eq!(id.method, Method::Token);
        assert_eq!(id.grants, Some(grants.clone()));
        // Anonymous tokens are anonymous.
        let anon = s.issue(None, &grants, &|_| true).unwrap();
        // Groups no policy names are left out.
        let lean = s.issue(Some(&user("alice")), &grants, &|_| false).unwrap();
        assert!(s.verify(&lean.token).unwrap().unwrap().groups.is_empty());
        assert_eq!(s.verify(&anon.token).unwrap(), None);
        // Another instance's key (or a tampered token) is refused.
        let other = service();
        assert!(other.verify(&t.token).is_err());
        let mut parts: Vec<&str> = t.token.split('.').collect();
        let forged = b64(br#"{"sub":"root","aud":"zot","exp":99999999999,"access":[]}"#);
        parts[1] = &forged;
        assert!(s.verify(&parts.join(".")).is_err());
    }

    /// Two services sharing one key file: tokens of one verify on the
    /// other only when the service (audience) matches.
    #[test]
    fn shared_key_file_and_audience() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        std::fs::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
        )
        .unwrap();
        let config = TokenConfig {
            signing_key: Some(path.clone()),
            ..TokenConfig::default()
        };
        let a = TokenService::new(&config).unwrap();
        let b = TokenService::new(&config).unwrap();
        let t = a.issue(Some(&user("alice")), &[], &|_| true).unwrap();
        assert_eq!(b.verify(&t.token).unwrap().unwrap().name, "alice");
        let elsewhere = TokenService::new(&TokenConfig {
            service: "elsewhere".into(),
            ..config.clone()
        })
        .unwrap();
        let t = elsewhere
            .issue(Some(&user("alice")), &[], &|_| true)
            .unwrap();
        assert!(a.verify(&t.token).is_err(), "audience must match");
        std::fs::write(&path, "not a key").unwrap();
        assert!(TokenService::new(&config).is_err());
    }
}

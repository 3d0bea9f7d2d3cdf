//! Docker token authentication (`http.auth.bearer`): JSON Web Tokens signed
//! by the key of `cert` (a PEM certificate or public key), RS256 for an RSA
//! key and ES256 for a P-256 key; any other `alg` (`none`, `HS256`, ...) is
//! refused, so a public key can never be used as an HMAC secret.
//!
//! Checked: the signature, `exp` (required), `nbf` (both with [`LEEWAY`]
//! seconds of clock skew, integer or fractional as RFC 7519 allows), and
//! that `aud` names `service`. Header fields other than `alg` (`kid`, `jku`,
//! `jwk`, `x5c`, ...) are ignored: the key is always the configured one.
//! The `access` claim (`[{type, name, actions}]`) is what the token allows;
//! `pull` is read, `push` is create and update, `delete` is delete, `*` is
//! everything. Types and names match exactly: a name is never a pattern
//! (repository names cannot contain `*`, so a token naming `team/*` was
//! issued for a name no repository has, and grants nothing).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use zot_config::BearerConfig;

use crate::{Action, AuthFailure, Identity, Method, SetupError};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY: f64 = 30.0;

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

pub(crate) struct Bearer {
    realm: String,
    service: String,
    alg: Alg,
    key: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    exp: Option<f64>,
    nbf: Option<f64>,
    #[serde(default)]
    aud: Audience,
    #[serde(default)]
    access: Vec<Grant>,
    /// Directory groups of the subject (tokens of the built-in service).
    #[serde(default)]
    groups: Vec<String>,
    /// How the subject logged in (tokens of the built-in service).
    #[serde(default)]
    via: String,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

fn b64(part: &str) -> Result<Vec<u8>, AuthFailure> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthFailure::BadToken("not base64url".into()))
}

/// The algorithm and raw key (PKCS#1 for RSA, an uncompressed point for EC)
/// of a PEM certificate or public key.
fn public_key(path: &Path) -> Result<(Alg, Vec<u8>), SetupError> {
    let fail = |why: String| SetupError(format!("http.auth.bearer.cert {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| fail(format!("not PEM: {e}")))?;
    let spki_der;
    let cert;
    let spki = match pem.label.as_str() {
        "CERTIFICATE" => {
            cert = pem
                .parse_x509()
                .map_err(|e| fail(format!("invalid certificate: {e}")))?;
            cert.public_key()
        }
        "PUBLIC KEY" => {
            use x509_parser::prelude::FromDer;
            let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&pem.contents)
                .map_err(|e| fail(format!("invalid public key: {e}")))?;
            spki_der = spki;
            &spki_der
        }
        other => {
            return Err(fail(format!(
                "expected a CERTIFICATE or PUBLIC KEY, found {other}"
            )));
        }
    };
    let oid = spki.algorithm.algorithm.to_id_string();
    let alg = match oid.as_str() {
        "1.2.840.113549.1.1.1" => Alg::Rs256,
        "1.2.840.10045.2.1" => Alg::Es256,
        other => {
            return Err(fail(format!(
                "unsupported key algorithm {other} (RSA or P-256 expected)"
            )));
        }
    };
    Ok((alg, spki.subject_public_key.data.to_vec()))
}

impl Bearer {
    /// Without `cert` (only workload identity issuers) the challenge is
    /// the same and no token verifies here (`key` is empty).
    pub(crate) fn new(config: &BearerConfig) -> Result<Bearer, SetupError> {
        let (alg, key) = match &config.cert {
            Some(cert) => public_key(cert)?,
            None => (Alg::Es256, Vec::new()),
        };
        Ok(Bearer {
            realm: config.realm.clone(),
            service: config.service.clone(),
            alg,
            key,
        })
    }

    /// A verifier of ES256 tokens signed by the built-in token service.
    pub(crate) fn es256(realm: String, service: String, public_key: Vec<u8>) -> Bearer {
        Bearer {
            realm,
            service,
            alg: Alg::Es256,
            key: public_key,
        }
    }

    pub(crate) fn challenge(&self, scope: Option<&str>, error: Option<&str>) -> String {
        challenge(&self.realm, &self.service, scope, error)
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        self.verify_via(token).map(|(identity, _)| identity)
    }

    /// [`Bearer::verify`], with the `via` claim (how the subject logged in).
    pub(crate) fn verify_via(&self, token: &str) -> Result<(Identity, String), AuthFailure> {
        let bad = |why: &str| AuthFailure::BadToken(why.to_owned());
        if self.key.is_empty() {
            return Err(bad("no http.auth.bearer.cert to verify it"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a JWT"));
        };
        let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| bad("invalid header"))?;
        let alg = match header.alg.as_str() {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            _ => return Err(bad("unsupported alg")),
        };
        if alg != self.alg {
            return Err(bad("alg does not match the key"));
        }
        let algorithm: &dyn signature::VerificationAlgorithm = match alg {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        let signed = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(algorithm, &self.key)
            .verify(signed.as_bytes(), &b64(s)?)
            .map_err(|_| bad("bad signature"))?;
        let claims: Claims = serde_json::from_slice(&b64(p)?).map_err(|_| bad("invalid claims"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        match claims.exp {
            Some(exp) if exp + LEEWAY >= now => {}
            Some(_) => return Err(bad("expired")),
            None => return Err(bad("no exp")),
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY) {
            return Err(bad("not yet valid"));
        }
        let audience_ok = match &claims.aud {
            Audience::One(a) => *a == self.service,
            Audience::Many(list) => list.contains(&self.service),
            Audience::None => false,
        };
        if !audience_ok {
            return Err(bad("wrong audience"));
        }
        Ok((
            Identity {
                name: claims.sub,
                groups: claims.groups,
                method: Method::Bearer,
                grants: Some(claims.access),
                key: None,
            },
            claims.via,
        ))
    }
}

/// A `Bearer` challenge; quotes and backslashes are dropped from the values.
pub(crate) fn challenge(
    realm: &str,
    service: &str,
    scope: Option<&str>,
    error: Option<&str>,
) -> String {
    let clean = |s: &str| s.replace(['"', '\\'], "");
    let mut c = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        clean(realm),
        clean(service)
    );
    if let Some(scope) = scope {
        c.push_str(&format!(",scope=\"{}\"", clean(scope)));
    }
    if let Some(error) = error {
        c.push_str(&format!(",error=\"{error}\""));
    }
    c
}

/// Whether `grants` allow `action` on the resource `kind`/`name`.
pub(crate) fn grants_allow(grants: &[Grant], kind: &str, name: &str, action: Action) -> bool {
    let wanted: &[&str] = match action {
        Action::Read => &["pull", "*"],
        Action::Create | Action::Update => &["push", "*"],
        Action::Delete => &["delete", "*"],
    };
    grants.iter().any(|g| {
        g.kind == kind && g.name == name && g.actions.iter().any(|a| wanted.contains(&a.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(kind: &str, name: &str, actions: &[&str]) -> Grant {
        Grant {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn grants_match_type_and_name_exactly() {
        let g = [grant("repository", "apps/web", &["pull"])];
        assert!(grants_allow(&g, "repository", "apps/web", Action::Read));
        assert!(!grants_allow(&g, "repository", "apps/web", Action::Create));
        assert!(!grants_allow(&g, "repository", "apps/web2", Action::Read));
        assert!(!grants_allow(&g, "registry", "apps/web", Action::Read));
        for pattern in ["*", "**", "apps/*", "apps/**", "apps/we?"] {
            let g = [grant("repository", pattern, &["*"])];
            assert!(
                !grants_allow(&g, "repository", "apps/web", Action::Read),
                "{pattern} is not a pattern"
            );
        }
        let star = [grant("repository", "apps/web", &["*"])];
        assert!(grants_allow(
            &star,
            "repository",
            "apps/web",
            Action::Delete
        ));
        let wrong_case = [grant("Repository", "apps/web", &["PULL"])];
        assert!(!grants_allow(
            &wrong_case,
            "repository",
            "apps/web",
            Action::Read
        ));
    }
}

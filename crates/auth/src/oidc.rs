//! Workload identity (`http.auth.bearer.oidc`), the verifying half: an ID
//! token checked against an issuer's JSON Web Key Set and mapped to a user
//! and groups.
//!
//! Fetching and caching the key set is `workload`'s.
//!
//! Invariants of [`verify`]:
//! - The key is chosen by the header's `kid` among the set's keys usable for
//!   signatures (`use` absent or `sig`) of the header's `alg`; only RS256 (RSA
//!   keys of 2048 bits or more) and ES256 (P-256) are accepted, never `none`
//!   or an HMAC. A `kid` the set does not have is [`Rejection::UnknownKey`],
//!   so the caller can refresh the set (rotation) before refusing; a token
//!   without `kid` is tried with every key of its `alg`.
//! - `iss` equals the issuer exactly; `aud` (a string or a list) names one
//!   of the configured audiences; `exp` is required; `exp` and `nbf` are
//!   checked with [`LEEWAY`] seconds of clock skew.
//! - The user is the claim named by the username mapping (zot writes CEL
//!   such as `claims.sub`; the dotted paths `claims.a.b` are understood);
//!   an empty or missing user refuses the token. Groups come from the
//!   groups mapping: a string or a list of strings (other values ignored).

use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use crate::{Identity, Method};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub(crate) const LEEWAY: f64 = 30.0;

/// One issuer's rules: who it is, which audiences count, how claims map.
#[derive(Debug, Clone)]
pub(crate) struct IssuerPolicy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    /// Claim path of the user name (`claims.sub` by default).
    pub(crate) username: String,
    /// Claim path of the groups, if any.
    pub(crate) groups: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed P-256 point.
    P256(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

/// The usable keys of a JSON Web Key Set.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<Value>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

impl KeySet {
    /// Parses a JWKS document; keys of other types, curves or uses are left
    /// out (an issuer may publish encryption keys too).
    pub(crate) fn from_json(bytes: &[u8]) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
        let field = |k: &Value, name: &str| k.get(name).and_then(Value::as_str).and_then(b64);
        let keys = raw
            .keys
            .iter()
            .filter(|k| {
                k.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
            })
            .filter_map(|k| {
                let key = match (
                    k.get("kty")?.as_str()?,
                    k.get("crv").and_then(Value::as_str),
                ) {
                    ("RSA", _) => Key::Rsa {
                        n: field(k, "n")?,
                        e: field(k, "e")?,
                    },
                    ("EC", Some("P-256")) => {
                        let (x, y) = (field(k, "x")?, field(k, "y")?);
                        if x.len() != 32 || y.len() != 32 {
                            return None;
                        }
                        let mut point = vec![4];
                        point.extend(x);
                        point.extend(y);
                        Key::P256(point)
                    }
                    _ => return None,
                };
                Some(Jwk {
                    kid: k.get("kid").and_then(Value::as_str).map(str::to_owned),
                    key,
                })
            })
            .collect();
        Ok(KeySet { keys })
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// The set has no key of this `kid`: refresh the set and try again.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("{0}")]
    Invalid(&'static str),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// The value at a claim path: `claims.a.b`, or `a.b`.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path.strip_prefix("claims.").unwrap_or(path);
    path.split('.').try_fold(claims, |v, part| v.get(part))
}

/// Verifies `token` (a compact JWS) against `keys` and `policy` at `now`
/// (seconds since the epoch).
pub(crate) fn verify(
    token: &str,
    policy: &IssuerPolicy,
    keys: &KeySet,
    now: f64,
) -> Result<Identity, Rejection> {
    let bad = Rejection::Invalid;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT"));
    };
    let header: Header = b64(h)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(bad("invalid header"))?;
    let signature = b64(s).ok_or(bad("invalid signature encoding"))?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .filter(|k| {
            matches!(
                (header.alg.as_str(), &k.key),
                ("RS256", Key::Rsa { .. }) | ("ES256", Key::P256(_))
            )
        })
        .collect();
    if !matches!(header.alg.as_str(), "RS256" | "ES256") {
        return Err(bad("unsupported alg"));
    }
    if candidates.is_empty() {
        return match header.kid {
            Some(kid) if !keys.has_kid(&kid) => Err(Rejection::UnknownKey(kid)),
            _ => Err(bad("no key for this alg")),
        };
    }
    let verified = candidates.iter().any(|k| match &k.key {
        Key::Rsa { n, e } => RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .is_ok(),
        Key::P256(point) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(signed, &signature)
            .is_ok(),
    });
    if !verified {
        return Err(bad("bad signature"));
    }
    let claims: Value = b64(p)
        .and_then(|p| serde_json::from_slice(&p).ok())
        .filter(Value::is_object)
        .ok_or(bad("invalid claims"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(policy.issuer.as_str()) {
        return Err(bad("wrong issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => policy.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| policy.audiences.iter().any(|p| p == a)),
        _ => false,
    };
    if !audience_ok {
        return Err(bad("wrong audience"));
    }
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp + LEEWAY >= now => {}
        Some(_) => return Err(bad("expired")),
        None => return Err(bad("no exp")),
    }
    if claims
        .get("nbf")
        .and_then(Value::as_f64)
        .is_some_and(|nbf| nbf > now + LEEWAY)
    {
        return Err(bad("not yet valid"));
    }
    let name = claim(&claims, &policy.username)
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(bad("no user name in the token"))?
        .to_owned();
    let mut groups: Vec<String> = match policy.groups.as_deref().and_then(|g| claim(&claims, g)) {
        Some(Value::String(g)) => vec![g.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    groups.sort();
    groups.dedup();
    Ok(Identity {
        name,
        groups,
        method: Method::Bearer,
        grants: None,
        key: None,
    })
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;

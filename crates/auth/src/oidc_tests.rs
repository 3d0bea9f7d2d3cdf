//! Tokens signed by keys made here (ES256 by ring, RS256 by an openssl
//! key), checked against a key set published as JWKS JSON.

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::*;

const NOW: f64 = 1_800_000_000.0;

fn enc(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Es(EcdsaKeyPair),
    Rs(RsaKeyPair),
}

impl Signer {
    fn es256() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate");
        Signer::Es(
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .expect("key"),
        )
    }

    fn rs256() -> Signer {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
            ])
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl genpkey failed");
        Signer::Rs(RsaKeyPair::from_der(&out.stdout).expect("RSA key (PKCS#1 DER)"))
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Es(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": enc(&point[1..33]), "y": enc(&point[33..65])})
            }
            Signer::Rs(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "n": enc(&c.n), "e": enc(&c.e)})
            }
        }
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        let alg = match self {
            Signer::Es(_) => "ES256",
            Signer::Rs(_) => "RS256",
        };
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Es(k) => k
                .sign(&rng, input.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
            Signer::Rs(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("sign");
                sig
            }
        };
        format!("{input}.{}", enc(&sig))
    }
}

fn policy() -> IssuerPolicy {
    IssuerPolicy {
        issuer: "https://issuer.example".into(),
        audiences: vec!["zot".into(), "https://zot.example.com".into()],
        username: "claims.sub".into(),
        groups: Some("claims.groups".into()),
    }
}

fn claims() -> Value {
    json!({"iss": "https://issuer.example", "aud": ["other", "zot"], "sub": "system:serviceaccount:ci:builder",
           "exp": NOW + 600.0, "nbf": NOW - 10.0, "iat": NOW - 10.0, "groups": ["pushers", "ci", "ci"]})
}

fn set(jwks: &[Value]) -> KeySet {
    KeySet::from_json(json!({ "keys": jwks }).to_string().as_bytes()).expect("JWKS")
}

#[test]
fn valid_tokens_of_both_algorithms_map_user_and_groups() {
    for signer in [Signer::es256(), Signer::rs256()] {
        let keys = set(&[signer.jwk("k1")]);
        let who = verify(&signer.sign("k1", &claims()), &policy(), &keys, NOW).expect("valid");
        assert_eq!(who.name, "system:serviceaccount:ci:builder");
        assert_eq!(who.groups, ["ci", "pushers"]);
        assert_eq!(who.method, Method::Bearer);
        assert_eq!(who.grants, None);
    }
}

#[test]
fn each_claim_check_refuses() {
    let signer = Signer::es256();
    let keys = set(&[signer.jwk("k1")]);
    let refused = |c: Value| verify(&signer.sign("k1", &c), &policy(), &keys, NOW);
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        c
    };
    assert_eq!(
        refused(with("aud", json!("elsewhere"))),
        Err(Rejection::Invalid("wrong audience"))
    );
    assert_eq!(
        refused(with("aud", json!("zot"))).map(|i| i.name),
        Ok("system:serviceaccount:ci:builder".into())
    );
    assert_eq!(
        refused(with("iss", json!("https://issuer.example/"))),
        Err(Rejection::Invalid("wrong issuer"))
    );
    assert_eq!(
        refused(with("exp", json!(NOW - 31.0))),
        Err(Rejection::Invalid("expired"))
    );
    assert!(
        refused(with("exp", json!(NOW - 29.0))).is_ok(),
        "within the leeway"
    );
    assert_eq!(
        refused(with("nbf", json!(NOW + 60.0))),
        Err(Rejection::Invalid("not yet valid"))
    );
    assert_eq!(
        refused(with("sub", json!(""))),
        Err(Rejection::Invalid("no user name in the token"))
    );
    let mut no_exp = claims();
    no_exp.as_object_mut().map(|o| o.remove("exp"));
    assert_eq!(refused(no_exp), Err(Rejection::Invalid("no exp")));
}

#[test]
fn unknown_kid_asks_for_a_refresh_and_a_foreign_key_is_refused() {
    let old = Signer::es256();
    let new = Signer::rs256();
    let keys = set(&[old.jwk("old")]);
    let token = new.sign("new", &claims());
    assert_eq!(
        verify(&token, &policy(), &keys, NOW),
        Err(Rejection::UnknownKey("new".into()))
    );
    // After rotation the set has both keys.
    let rotated = set(&[old.jwk("old"), new.jwk("new")]);
    assert!(verify(&token, &policy(), &rotated, NOW).is_ok());
    // A token claiming a known kid but signed by another key.
    let impostor = Signer::es256().sign("old", &claims());
    assert_eq!(
        verify(&impostor, &policy(), &rotated, NOW),
        Err(Rejection::Invalid("bad signature"))
    );
}

#[test]
fn none_and_hmac_are_refused_and_encryption_keys_left_out() {
    let signer = Signer::es256();
    let keys = set(&[signer.jwk("k1")]);
    let payload = enc(claims().to_string().as_bytes());
    for alg in ["none", "HS256"] {
        let header = enc(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
        assert_eq!(
            verify(&format!("{header}.{payload}.c2ln"), &policy(), &keys, NOW),
            Err(Rejection::Invalid("unsupported alg"))
        );
    }
    let mut enc_key = signer.jwk("k1");
    enc_key["use"] = json!("enc");
    assert!(!set(&[enc_key]).has_kid("k1"));
}

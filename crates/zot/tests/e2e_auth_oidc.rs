//! Workload identity (`http.auth.bearer.oidc`) through the real binary: a
//! small HTTP server started here publishes an issuer's discovery document
//! and key set (keys made here: ES256 by ring, RS256 by openssl), and
//! tokens signed with them are sent as `Authorization: Bearer` — by the
//! test's HTTP client on the registry API, and by skopeo
//! (`--dest-registry-token` / `--registry-token`) for a push and a pull.

mod auth_common;
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth_common::{call, start_secure};
use base64::Engine;
use common::{run, run_fails, skopeo};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

const BUILDER: &str = "system:serviceaccount:ci:builder";

fn enc(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A static HTTP/1.1 server: path → JSON body, changeable while it runs.
struct Issuer {
    url: String,
    files: Arc<Mutex<HashMap<String, String>>>,
}

impl Issuer {
    fn start() -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let files: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                // Read the headers up to the empty line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let body = served.lock().map(|f| f.get(&path).cloned()).ok().flatten();
                let response = match body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                        b.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = (&stream).write_all(response.as_bytes());
            }
        });
        let issuer = Issuer { url, files };
        issuer.publish(
            "/.well-known/openid-configuration",
            json!({ "issuer": issuer.url, "jwks_uri": format!("{}/keys", issuer.url),
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"] }),
        );
        issuer
    }

    fn publish(&self, path: &str, body: Value) {
        self.files
            .lock()
            .expect("files")
            .insert(path.to_owned(), body.to_string());
    }

    fn publish_keys(&self, keys: &[Value]) {
        self.publish("/keys", json!({ "keys": keys }));
    }
}

enum Key {
    Es(EcdsaKeyPair, &'static str),
    Rs(RsaKeyPair, &'static str),
}

impl Key {
    fn es256(kid: &'static str) -> Key {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        Key::Es(
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key"),
            kid,
        )
    }

    fn rs256(kid: &'static str) -> Key {
        let out = common::tools::output(common::tool("openssl").args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
        ]))
        .0;
        assert!(out.status.success(), "openssl genpkey");
        Key::Rs(RsaKeyPair::from_der(&out.stdout).expect("RSA key"), kid)
    }

    fn jwk(&self) -> Value {
        match self {
            Key::Es(k, kid) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                       "x": enc(&p[1..33]), "y": enc(&p[33..65])})
            }
            Key::Rs(k, kid) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "use": "sig", "kid": kid, "n": enc(&c.n), "e": enc(&c.e)})
            }
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let (alg, kid) = match self {
            Key::Es(_, kid) => ("ES256", kid),
            Key::Rs(_, kid) => ("RS256", kid),
        };
        let input = format!(
            "{}.{}",
            enc(json!({"alg": alg, "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Key::Es(k, _) => k
                .sign(&rng, input.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
            Key::Rs(k, _) => {
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

fn claims(issuer: &str, sub: &str) -> Value {
    json!({"iss": issuer, "aud": "zot", "sub": sub, "iat": now(), "nbf": now() - 5,
           "exp": now() + 600, "groups": []})
}

#[test]
fn workload_tokens_from_a_discovered_issuer_with_rotation_and_groups() {
    let issuer = Issuer::start();
    let first = Key::es256("first");
    issuer.publish_keys(&[first.jwk()]);
    let registry = start_secure(
        json!({
            "auth": { "bearer": { "realm": "zot", "service": "zot-service", "oidc": [{
                "issuer": issuer.url,
                "audiences": ["zot", "https://zot.example.com"],
                "claimMapping": { "username": "claims.sub", "groups": "claims.groups" } }] } },
            "accessControl": { "repositories": {
                "**": { "policies": [{ "users": [BUILDER], "actions": ["read", "create", "update", "delete"] }] },
                "team/**": { "policies": [{ "groups": ["pushers"], "actions": ["read", "create"] }] }
            } }
        }),
        json!({}),
    );
    let client = registry.client();
    let upload = |token: &str, repo: &str| {
        call(
            &client,
            Some(&format!("Bearer {token}")),
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            None,
        )
        .status
    };
    let with = |k: &str, v: Value| {
        let mut c = claims(&issuer.url, BUILDER);
        c[k] = v;
        c
    };
    assert_eq!(
        upload(&first.sign(&claims(&issuer.url, BUILDER)), "ci/app"),
        202
    );
    assert_eq!(
        upload(&first.sign(&with("aud", json!("elsewhere"))), "ci/app"),
        401,
        "wrong audience"
    );
    assert_eq!(
        upload(
            &first.sign(&with("aud", json!(["x", "https://zot.example.com"]))),
            "ci/app"
        ),
        202,
        "a second audience"
    );
    assert_eq!(
        upload(
            &first.sign(&with("iss", json!(format!("{}/other", issuer.url)))),
            "ci/app"
        ),
        401,
        "wrong issuer"
    );
    assert_eq!(
        upload(&first.sign(&with("exp", json!(now() - 120))), "ci/app"),
        401,
        "expired"
    );
    assert_eq!(
        upload(&first.sign(&with("nbf", json!(now() + 600))), "ci/app"),
        401,
        "not yet valid"
    );
    assert_eq!(upload("not.a.token", "ci/app"), 401);

    // A group claim grants access through accessControl.
    let mut member = claims(&issuer.url, "someone");
    member["groups"] = json!(["pushers"]);
    assert_eq!(upload(&first.sign(&member), "team/app"), 202);
    assert_eq!(upload(&first.sign(&member), "ci/app"), 403);

    // Rotation: a token of a key not published yet is refused; once the
    // issuer publishes it, the registry refetches (at most every 10 s) and
    // accepts it.
    let second = Key::rs256("second");
    let rotated = second.sign(&claims(&issuer.url, BUILDER));
    assert_eq!(upload(&rotated, "ci/app"), 401, "unknown kid");
    issuer.publish_keys(&[first.jwk(), second.jwk()]);
    let deadline = Instant::now() + Duration::from_secs(40);
    while upload(&rotated, "ci/app") != 202 {
        assert!(
            Instant::now() < deadline,
            "the rotated key was never fetched"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A key removed from the set on rotation stops working at the next fetch
    // only; tokens of the new key keep working.
    assert_eq!(upload(&rotated, "ci/app"), 202);

    // A real client: skopeo pushes and pulls with the workload token.
    let work = registry.work_dir();
    let layout = common::OciLayout::create(&work.join("src"));
    layout.add_image(&common::fixtures::multi_layer_image("oidc-workload"), "v1");
    let token = second.sign(&claims(&issuer.url, BUILDER));
    let dest = format!("docker://{}/ci/app:v1", registry.addr());
    run(skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-registry-token",
        &token,
        &layout.reference("v1"),
        &dest,
    ]));
    run(skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--registry-token",
        &token,
        &dest,
    ]));
    let member_token = first.sign(&member);
    run_fails(skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--registry-token",
        &member_token,
        &dest,
    ]));
    run_fails(skopeo().args(["inspect", "--tls-verify=false", &dest]));
}

/// `openssl s_server -WWW` serving a folder over HTTPS; killed on drop.
struct HttpsFolder(std::process::Child);

impl Drop for HttpsFolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_https_issuer_is_trusted_through_its_certificate_authority_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = auth_common::pki::Pki::new(dir.path());
    let (cert, key) = pki.issue("issuer", "localhost", true);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join(".well-known")).expect("mkdir");
    std::fs::write(
        site.join(".well-known/openid-configuration"),
        json!({ "issuer": url, "jwks_uri": format!("{url}/keys.json") }).to_string(),
    )
    .expect("write discovery");
    let signer = Key::es256("tls-key");
    std::fs::write(
        site.join("keys.json"),
        json!({ "keys": [signer.jwk()] }).to_string(),
    )
    .expect("write JWKS");
    let _server = HttpsFolder(
        common::tool("openssl")
            .current_dir(&site)
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let registry = start_secure(
        json!({
            "auth": { "bearer": { "realm": "zot", "service": "zot-service", "oidc": [{
                "issuer": url, "audiences": ["zot"],
                "certificateAuthorityFile": pki.path("ca.crt") }] } },
            "accessControl": { "repositories": { "**": {
                "policies": [{ "users": [BUILDER], "actions": ["read", "create"] }] } } }
        }),
        json!({}),
    );
    let client = registry.client();
    let status = |token: &str| {
        call(
            &client,
            Some(&format!("Bearer {token}")),
            "POST",
            "/v2/tls/app/blobs/uploads/",
            &[],
            None,
        )
        .status
    };
    assert_eq!(status(&signer.sign(&claims(&url, BUILDER))), 202);
    assert_eq!(
        status(&Key::es256("tls-key").sign(&claims(&url, BUILDER))),
        401,
        "another key, same kid"
    );
}

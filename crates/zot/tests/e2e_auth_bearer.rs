//! Bearer tokens (the Docker token protocol) against the real binary: a JWT
//! issuer written here (RS256 and ES256 keys made with openssl, tokens
//! signed with ring), a small token server for skopeo, and every way a
//! token can be wrong.

mod auth_common;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_common::{call, push_image, small_image, start_secure};
use base64::Engine;
use common::{Registry, run, skopeo};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

const SERVICE: &str = "zot-test-service";

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

struct Issuer {
    key: Key,
    cert: std::path::PathBuf,
}

fn openssl(args: &[&str]) {
    run(common::tool("openssl").args(args));
}

impl Issuer {
    fn new(dir: &Path, name: &str, ec: bool) -> Issuer {
        let key = dir.join(format!("{name}.key"));
        let cert = dir.join(format!("{name}.crt"));
        let der = dir.join(format!("{name}.der"));
        let (k, c, d) = (
            key.to_str().unwrap_or(""),
            cert.to_str().unwrap_or(""),
            der.to_str().unwrap_or(""),
        );
        let subj = format!("/CN={name}");
        if ec {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                k,
                "-out",
                c,
                "-days",
                "1",
                "-subj",
                &subj,
            ]);
        } else {
            openssl(&[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k, "-out", c, "-days",
                "1", "-subj", &subj,
            ]);
        }
        openssl(&[
            "pkcs8", "-topk8", "-nocrypt", "-in", k, "-outform", "DER", "-out", d,
        ]);
        let pkcs8 = std::fs::read(&der).expect("read key");
        let key = if ec {
            Key::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                    &SystemRandom::new(),
                )
                .expect("EC key"),
            )
        } else {
            Key::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).expect("RSA key"))
        };
        Issuer { key, cert }
    }

    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let signed = format!("{}.{}", b64(header), b64(claims));
        let rng = SystemRandom::new();
        let sig = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
                    .expect("sign");
                sig
            }
            Key::Ec(k) => k
                .sign(&rng, signed.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
        };
        format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
        )
    }

    fn alg(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }

    /// A token for `access`, valid from `nbf` offset to `exp` offset (seconds from now).
    fn token(&self, aud: &str, access: Value, exp_in: i64) -> String {
        let now = now();
        let claims = json!({
            "iss": "test-issuer", "sub": "tokenuser", "aud": aud,
            "iat": now, "nbf": now - 5, "exp": now + exp_in, "access": access,
        });
        self.sign_raw(&json!({ "alg": self.alg(), "typ": "JWT" }), &claims)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn repo_access(name: &str, actions: &[&str]) -> Value {
    json!([{ "type": "repository", "name": name, "actions": actions }])
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn start(issuer: &Issuer, realm: &str) -> Registry {
    start_secure(
        json!({ "auth": { "bearer": { "realm": realm, "service": SERVICE, "cert": issuer.cert } } }),
        json!({}),
    )
}

#[test]
fn tokens_valid_expired_wrong_audience_scope_and_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new(dir.path(), "issuer", false);
    let other = Issuer::new(dir.path(), "other", false);
    let registry = start(&issuer, "https://auth.example/token");
    let client = registry.client();
    let img = small_image("bearer");
    let all = issuer.token(
        SERVICE,
        repo_access("apps/web", &["pull", "push", "delete"]),
        300,
    );
    push_image(&client, Some(&bearer(&all)), "apps/web", &img, "v1");

    // No token: a challenge naming realm, service and scope.
    let r = call(&client, None, "GET", "/v2/apps/web/manifests/v1", &[], None);
    r.expect_oci_error(401, "UNAUTHORIZED", "no token");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"https://auth.example/token\",service=\"zot-test-service\",scope=\"repository:apps/web:pull\""
        ),
    );
    let r = call(
        &client,
        None,
        "POST",
        "/v2/apps/web/blobs/uploads/",
        &[],
        Some(b""),
    );
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .contains("scope=\"repository:apps/web:pull,push\""),
        "{r}"
    );

    let pull_only = issuer.token(SERVICE, repo_access("apps/web", &["pull"]), 300);
    let cases: Vec<(&str, String, &str, u16)> = vec![
        ("valid pull", pull_only.clone(), "GET", 200),
        ("valid token, push not granted", pull_only.clone(), "PUT", 401),
        ("expired", issuer.token(SERVICE, repo_access("apps/web", &["pull"]), -600), "GET", 401),
        ("wrong audience", issuer.token("another-service", repo_access("apps/web", &["pull"]), 300), "GET", 401),
        ("other repository", issuer.token(SERVICE, repo_access("apps/api", &["pull"]), 300), "GET", 401),
        ("signed by another key", other.token(SERVICE, repo_access("apps/web", &["pull"]), 300), "GET", 401),
        ("alg none", {
            let t = issuer.token(SERVICE, repo_access("apps/web", &["pull"]), 300);
            let parts: Vec<&str> = t.split('.').collect();
            let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
            format!("{h}.{}.", parts[1])
        }, "GET", 401),
        ("not yet valid", issuer.sign_raw(&json!({"alg": "RS256"}), &json!({"aud": SERVICE, "nbf": now() + 3600, "exp": now() + 7200, "access": repo_access("apps/web", &["pull"])})), "GET", 401),
        ("no exp", issuer.sign_raw(&json!({"alg": "RS256"}), &json!({"aud": SERVICE, "access": repo_access("apps/web", &["pull"])})), "GET", 401),
        ("garbage", "x.y.z".to_owned(), "GET", 401),
    ];
    for (name, token, method, want) in cases {
        let r = if method == "GET" {
            call(
                &client,
                Some(&bearer(&token)),
                "GET",
                "/v2/apps/web/manifests/v1",
                &[("accept", &img.manifest.media_type)],
                None,
            )
        } else {
            auth_common::put_manifest(&client, Some(&bearer(&token)), "apps/web", &img, "v2")
        };
        assert_eq!(r.status, want, "{name}: {r}");
        if want == 401 {
            let challenge = r.header("www-authenticate").unwrap_or("");
            assert!(
                challenge.starts_with("Bearer realm="),
                "{name}: {challenge}"
            );
            let error = if name.contains("not granted") || name == "other repository" {
                "insufficient_scope"
            } else {
                "invalid_token"
            };
            assert!(
                challenge.contains(&format!("error=\"{error}\"")),
                "{name}: {challenge}"
            );
        }
    }
    // Catalog needs registry:catalog:*.
    assert_eq!(
        call(
            &client,
            Some(&bearer(&all)),
            "GET",
            "/v2/_catalog",
            &[],
            None
        )
        .status,
        401
    );
    let catalog = issuer.token(
        SERVICE,
        json!([{ "type": "registry", "name": "catalog", "actions": ["*"] }]),
        300,
    );
    assert_eq!(
        call(
            &client,
            Some(&bearer(&catalog)),
            "GET",
            "/v2/_catalog",
            &[],
            None
        )
        .status,
        200
    );
    // Delete with a delete grant.
    assert_eq!(
        call(
            &client,
            Some(&bearer(&all)),
            "DELETE",
            "/v2/apps/web/manifests/v1",
            &[],
            None
        )
        .status,
        202
    );
    assert!(
        !registry.logs().contains(&pull_only),
        "a token reached the log"
    );
}

/// Header and claim tricks: `alg` confusion (HS256 keyed with the public
/// certificate, ES256 on an RSA key, `none` in any case), keys named by the
/// token itself (`kid`, `jku`, `jwk`), grants of the wrong type or with
/// wildcard names, malformed claims, and clock skew within and beyond the
/// 30 s leeway.
#[test]
fn token_headers_claims_and_clock_skew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new(dir.path(), "issuer", false);
    let attacker = Issuer::new(dir.path(), "attacker", false);
    let registry = start(&issuer, "https://auth.example/token");
    let client = registry.client();
    let img = small_image("claims");
    let all = issuer.token(SERVICE, repo_access("apps/web", &["*"]), 300);
    push_image(&client, Some(&bearer(&all)), "apps/web", &img, "v1");
    let t = now();
    let claims = |extra: Value| {
        let mut c = json!({
            "sub": "tokenuser", "aud": SERVICE, "nbf": t - 5, "exp": t + 300,
            "access": repo_access("apps/web", &["pull"]),
        });
        if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
            c.extend(extra);
        }
        c
    };
    let rs = |header: Value, claims: Value| issuer.sign_raw(&header, &claims);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let hs256 = |secret: &[u8]| {
        let signed = format!(
            "{}.{}",
            b64(&json!({"alg": "HS256", "typ": "JWT"})),
            b64(&claims(json!({})))
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let sig = ring::hmac::sign(&key, signed.as_bytes());
        format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref())
        )
    };
    let cert_pem = std::fs::read(&issuer.cert).expect("cert");
    let grant = |kind: &str, name: &str| json!({ "access": [{ "type": kind, "name": name, "actions": ["pull"] }] });
    let ok_header = json!({ "alg": "RS256", "typ": "JWT" });
    let cases: Vec<(&str, String, u16)> = vec![
        ("valid", rs(ok_header.clone(), claims(json!({}))), 200),
        ("HS256 keyed with the PEM certificate", hs256(&cert_pem), 401),
        ("HS256 keyed with nothing", hs256(b""), 401),
        ("alg none, lower and upper case", {
            let h = b64(&json!({"alg": "none"}));
            format!("{h}.{}.", b64(&claims(json!({}))))
        }, 401),
        ("alg NONE", {
            let h = b64(&json!({"alg": "NONE"}));
            format!("{h}.{}.", b64(&claims(json!({}))))
        }, 401),
        ("alg rs256 (case)", rs(json!({"alg": "rs256"}), claims(json!({}))), 401),
        ("ES256 header on an RSA signature", rs(json!({"alg": "ES256"}), claims(json!({}))), 401),
        ("kid naming a file is ignored", rs(json!({"alg": "RS256", "kid": "../../../../etc/passwd"}), claims(json!({}))), 200),
        ("jku/jwk of the attacker's key", attacker.sign_raw(&json!({"alg": "RS256", "jku": "https://evil.example/keys", "jwk": {"kty": "RSA"}, "x5u": "https://evil.example/c.pem"}), &claims(json!({}))), 401),
        ("two alg fields", {
            let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"none"}"#);
            let c = b64(&claims(json!({})));
            let real = rs(ok_header.clone(), claims(json!({})));
            let sig = real.rsplit('.').next().unwrap_or("").to_owned();
            format!("{h}.{c}.{sig}")
        }, 401),
        ("grant of type registry", rs(ok_header.clone(), claims(grant("registry", "apps/web"))), 401),
        ("grant of type Repository", rs(ok_header.clone(), claims(grant("Repository", "apps/web"))), 401),
        ("wildcard name *", rs(ok_header.clone(), claims(grant("repository", "*"))), 401),
        ("wildcard name **", rs(ok_header.clone(), claims(grant("repository", "**"))), 401),
        ("wildcard name apps/*", rs(ok_header.clone(), claims(grant("repository", "apps/*"))), 401),
        ("actions as a string", rs(ok_header.clone(), claims(json!({"access": [{"type": "repository", "name": "apps/web", "actions": "pull"}]}))), 401),
        ("access as an object", rs(ok_header.clone(), claims(json!({"access": {"type": "repository", "name": "apps/web", "actions": ["pull"]}}))), 401),
        ("no access claim", rs(ok_header.clone(), claims(json!({"access": null}))), 401),
        ("audience list naming the service", rs(ok_header.clone(), claims(json!({"aud": ["other", SERVICE]}))), 200),
        ("audience list without it", rs(ok_header.clone(), claims(json!({"aud": ["other"]}))), 401),
        ("no audience", rs(ok_header.clone(), claims(json!({"aud": null}))), 401),
        ("exp as a string", rs(ok_header.clone(), claims(json!({"exp": (t + 300).to_string()}))), 401),
        ("fractional exp", rs(ok_header.clone(), claims(json!({"exp": t as f64 + 300.5}))), 200),
        ("expired 10 s ago (within leeway)", rs(ok_header.clone(), claims(json!({"exp": t - 10}))), 200),
        ("expired 120 s ago", rs(ok_header.clone(), claims(json!({"exp": t - 120}))), 401),
        ("negative exp", rs(ok_header.clone(), claims(json!({"exp": -1}))), 401),
        ("nbf 10 s ahead (within leeway)", rs(ok_header.clone(), claims(json!({"nbf": t + 10}))), 200),
        ("nbf 120 s ahead", rs(ok_header.clone(), claims(json!({"nbf": t + 120}))), 401),
        ("signature of another token", {
            let other = rs(ok_header.clone(), claims(json!({"sub": "someone-else"})));
            let forged = rs(ok_header.clone(), claims(json!({"access": repo_access("apps/web", &["*"])})));
            let (body, _) = forged.rsplit_once('.').unwrap_or_default();
            let (_, sig) = other.rsplit_once('.').unwrap_or_default();
            format!("{body}.{sig}")
        }, 401),
    ];
    for (name, token, want) in cases {
        let r = call(
            &client,
            Some(&bearer(&token)),
            "GET",
            "/v2/apps/web/manifests/v1",
            &[("accept", &img.manifest.media_type)],
            None,
        );
        assert_eq!(r.status, want, "{name}: {r}");
        if want == 401 {
            assert!(
                r.header("www-authenticate")
                    .unwrap_or("")
                    .starts_with("Bearer realm="),
                "{name}: {r}"
            );
        }
    }
}

#[test]
fn es256_tokens_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new(dir.path(), "ec-issuer", true);
    let registry = start(&issuer, "https://auth.example/token");
    let token = issuer.token(SERVICE, repo_access("ec/repo", &["pull", "push"]), 300);
    push_image(
        &registry.client(),
        Some(&bearer(&token)),
        "ec/repo",
        &small_image("ec"),
        "v1",
    );
    let rsa_alg = issuer.sign_raw(
        &json!({"alg": "RS256"}),
        &json!({"aud": SERVICE, "exp": now() + 60}),
    );
    assert_eq!(
        call(
            &registry.client(),
            Some(&bearer(&rsa_alg)),
            "GET",
            "/v2/",
            &[],
            None
        )
        .status,
        401
    );
}

/// A token server: `GET /token?service=..&scope=..` with Basic
/// `tokenuser:tokenpw` gets every scope asked for; others get 401.
fn token_server(issuer: Issuer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                    break;
                }
                if h.to_ascii_lowercase().starts_with("authorization:") {
                    authorized = h
                        .trim_end()
                        .ends_with(&auth_common::basic("tokenuser", "tokenpw")[6..]);
                }
            }
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let mut access = Vec::new();
            for pair in query.split('&') {
                if let Some(scope) = pair.strip_prefix("scope=") {
                    let scope = percent_decode(scope);
                    for one in scope.split(' ') {
                        let parts: Vec<&str> = one.split(':').collect();
                        if let [kind, name, actions] = parts[..] {
                            access.push(json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }));
                        }
                    }
                }
            }
            let (status, body) = if authorized {
                let t = issuer.token(SERVICE, Value::Array(access), 300);
                (
                    "200 OK",
                    json!({ "token": t, "access_token": t, "expires_in": 300 }).to_string(),
                )
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn skopeo_with_creds_gets_tokens_from_the_realm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new(dir.path(), "issuer", false);
    let cert = issuer.cert.clone();
    let token_addr = token_server(issuer);
    let registry = start_secure(
        json!({ "auth": { "bearer": { "realm": format!("http://{token_addr}/token"), "service": SERVICE, "cert": cert } } }),
        json!({}),
    );
    let work = registry.work_dir();
    let layout = common::OciLayout::create(&work.join("src"));
    layout.add_image(&common::fixtures::multi_layer_image("skopeo-bearer"), "v1");
    let dest = registry.docker_ref("bearer/app:v1");
    common::tools::skopeo_copy(
        &[
            "--dest-tls-verify=false",
            "--dest-creds",
            "tokenuser:tokenpw",
        ],
        &layout.reference("v1"),
        &dest,
        &work,
    );
    let out = run(skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "tokenuser:tokenpw",
        &dest,
    ]));
    assert!(out.status.success());
    let denied = common::run_fails(skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "tokenuser:wrong",
        &dest,
    ]));
    let text = String::from_utf8_lossy(&denied.stderr);
    assert!(
        text.contains("401") || text.to_lowercase().contains("unauthorized"),
        "{text}"
    );
}

/// `skopeo login` and `podman login` against a Bearer registry: the login
/// gets a token from the realm with the stored password, the auth file then
/// serves `skopeo copy` (push) and `podman pull` without `--creds`, and a
/// wrong password makes both logins fail.
#[test]
fn podman_and_skopeo_log_in_against_bearer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new(dir.path(), "issuer", false);
    let cert = issuer.cert.clone();
    let token_addr = token_server(issuer);
    let registry = start_secure(
        json!({ "auth": { "bearer": { "realm": format!("http://{token_addr}/token"), "service": SERVICE, "cert": cert } } }),
        json!({}),
    );
    let addr = registry.addr().to_owned();
    let work = registry.work_dir();
    let layout = common::OciLayout::create(&work.join("src"));
    layout.add_image(&common::fixtures::multi_layer_image("bearer-login"), "v1");
    let dest = registry.docker_ref("bearer/login:v1");

    // skopeo login stores the credentials; copy pushes with them alone.
    let authfile = work.join("skopeo-auth.json");
    let authfile_arg = authfile.to_str().unwrap_or("").to_owned();
    let skopeo_login = |password: &str| {
        let mut cmd = skopeo();
        cmd.args([
            "login",
            "--tls-verify=false",
            "--authfile",
            &authfile_arg,
            "-u",
            "tokenuser",
            "-p",
            password,
            &addr,
        ]);
        cmd
    };
    run(&mut skopeo_login("tokenpw"));
    let stored = std::fs::read_to_string(&authfile).expect("skopeo wrote the auth file");
    assert!(stored.contains(&addr), "{stored}");
    // Without credentials the push is refused: the auth file is what works.
    common::run_fails(skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &layout.reference("v1"),
        &registry.docker_ref("bearer/anon:v1"),
    ]));
    common::tools::skopeo_copy(
        &["--authfile", &authfile_arg],
        &layout.reference("v1"),
        &dest,
        &work,
    );
    run(skopeo().args([
        "inspect",
        "--tls-verify=false",
        "--authfile",
        &authfile_arg,
        &dest,
    ]));

    // podman login (sandboxed storage as in e2e_auth_tls), then pull.
    let podman_auth = work.join("podman-auth.json");
    let podman_auth_arg = podman_auth.to_str().unwrap_or("").to_owned();
    let podman = |args: &[&str]| {
        let mut cmd = common::tool("podman");
        cmd.env("HOME", &work).args([
            "--root",
            work.join("podman-root").to_str().unwrap_or(""),
            "--runroot",
            work.join("podman-run").to_str().unwrap_or(""),
            "--storage-driver",
            "vfs",
        ]);
        cmd.args(args);
        cmd
    };
    let podman_login = |password: &str| {
        podman(&[
            "login",
            "--tls-verify=false",
            "--authfile",
            &podman_auth_arg,
            "-u",
            "tokenuser",
            "-p",
            password,
            &addr,
        ])
    };
    run(&mut podman_login("tokenpw"));
    run(&mut podman(&[
        "pull",
        "--tls-verify=false",
        "--authfile",
        &podman_auth_arg,
        &format!("{addr}/bearer/login:v1"),
    ]));

    // A wrong password: the realm refuses it, so both logins fail.
    let refused = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            text.contains("invalid username/password")
                || text.contains("401")
                || text.contains("unauthorized"),
            "{text}"
        );
    };
    refused(common::run_fails(&mut skopeo_login("wrong")));
    refused(common::run_fails(&mut podman_login("wrong")));
    assert!(
        !registry.logs().contains("tokenpw"),
        "a password reached the log"
    );
}

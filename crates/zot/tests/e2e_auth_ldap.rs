//! LDAP login and group-based access against a real OpenLDAP `slapd` that
//! the test starts itself (Debian packages `slapd` and `ldap-utils`, which
//! `scripts/test` installs): a tiny directory loaded with `slapadd` into a
//! temporary directory, served on free ports of 127.0.0.1 (plain `ldap://`,
//! and with TLS also `ldaps://`, with a certificate from a CA the test makes
//! with openssl), killed at the end. No system service is involved.
//!
//! TLS: `startTLS` and `ldaps` with the CA trusted through
//! `http.auth.ldap.caCert`, `skipVerify` with no CA, and every way the
//! handshake can fail (untrusted CA, TLS to a plain port, plain to a TLS
//! port, a server that never answers) being a failed login (401), promptly.

mod auth_common;
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_common::pki::Pki;
use auth_common::{basic, call, push_image, small_image, start_secure};
use serde_json::json;

const BASE: &str = "dc=example,dc=org";

struct Slapd {
    child: Child,
    port: u16,
    /// The `ldaps://` port, when started with TLS.
    tls_port: Option<u16>,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ldif() -> String {
    let user = |uid: &str, password: &str, ou: &str, extra: &str| {
        format!(
            "dn: uid={uid},ou=Users,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
             userPassword: {password}\nou: {ou}\n{extra}\n"
        )
    };
    [
        format!("dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n"),
        format!("dn: ou=Users,{BASE}\nobjectClass: organizationalUnit\nou: Users\n\n"),
        user("alice", "alice-ldap-pw", "developers", ""),
        user("bob", "bob-ldap-pw", "testers", ""),
        user("carol", "carol-ldap-pw", "developers", "description: locked\n"),
    ]
    .concat()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "slapd did not start listening");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_slapd(dir: &Path) -> Slapd {
    start_slapd_with(dir, None)
}

/// slapd on a plain port, and with `pki` also on an `ldaps://` port (both
/// offering StartTLS) with a server certificate for 127.0.0.1.
fn start_slapd_with(dir: &Path, pki: Option<&Pki>) -> Slapd {
    for tool in ["slapd", "slapadd"] {
        assert!(
            Path::new("/usr/sbin").join(tool).exists(),
            "`{tool}` is not installed; `scripts/test` installs the Debian packages slapd and ldap-utils"
        );
    }
    let db = dir.join("db");
    std::fs::create_dir_all(&db).expect("mkdir db");
    let conf = dir.join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             pidfile {pid}\n\
             {tls}\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             rootpw admin-ldap-pw\n\
             directory {db}\n",
            pid = dir.join("slapd.pid").display(),
            db = db.display(),
            tls = pki.map(tls_directives).unwrap_or_default(),
        ),
    )
    .expect("write slapd.conf");
    let data = dir.join("data.ldif");
    std::fs::write(&data, ldif()).expect("write ldif");
    common::run(
        Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&data),
    );
    let port = free_port();
    let tls_port = pki.map(|_| free_port());
    let mut urls = format!("ldap://127.0.0.1:{port}/");
    if let Some(q) = tls_port {
        urls.push_str(&format!(" ldaps://127.0.0.1:{q}/"));
    }
    let child = Command::new("/usr/sbin/slapd")
        .arg("-h")
        .arg(urls)
        .arg("-f")
        .arg(&conf)
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slapd");
    let slapd = Slapd {
        child,
        port,
        tls_port,
    };
    wait_listening(port);
    if let Some(q) = tls_port {
        wait_listening(q);
    }
    slapd
}

/// slapd.conf lines for TLS (global: they come before `database`).
fn tls_directives(pki: &Pki) -> String {
    let (cert, key) = pki.issue("ldap-server", "127.0.0.1", true);
    format!(
        "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
        pki.path("ca.crt").display(),
        cert.display(),
        key.display()
    )
}

#[test]
fn ldap_login_and_group_based_access() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slapd = start_slapd(dir.path());
    let creds = dir.path().join("ldap-credentials.json");
    std::fs::write(
        &creds,
        json!({ "bindDN": format!("cn=admin,{BASE}"), "bindPassword": "admin-ldap-pw" })
            .to_string(),
    )
    .expect("write credentials");
    let registry = start_secure(
        json!({
            "auth": {
                "ldap": {
                    "address": "127.0.0.1", "port": slapd.port, "insecure": true,
                    "startTLS": false, "skipVerify": true,
                    "baseDN": format!("ou=Users,{BASE}"), "userAttribute": "uid",
                    "userGroupAttribute": "ou", "userFilter": "(!(description=locked))",
                    "subtreeSearch": true, "credentialsFile": creds
                },
                "apikey": true
            },
            "accessControl": { "repositories": {
                "**": {
                    "policies": [{ "groups": ["developers"], "actions": ["read", "create"] }],
                    "defaultPolicy": ["read"] },
                "alice-only/**": {
                    "policies": [{ "users": ["alice"], "actions": ["read", "create"] }] } } }
        }),
        json!({}),
    );
    let client = registry.client();
    let alice = basic("alice", "alice-ldap-pw");
    let img = small_image("ldap");
    push_image(&client, Some(&alice), "ldap/app", &img, "v1");
    let get = |auth: Option<&str>| {
        call(
            &client,
            auth,
            "GET",
            "/v2/ldap/app/manifests/v1",
            &[("accept", &img.manifest.media_type)],
            None,
        )
        .status
    };
    let put = |auth: Option<&str>| {
        auth_common::put_manifest(&client, auth, "ldap/app", &img, "v2").status
    };
    let bob = basic("bob", "bob-ldap-pw");
    assert_eq!(
        (get(Some(&bob)), put(Some(&bob))),
        (200, 403),
        "bob is not a developer"
    );
    let cases = [
        ("alice, wrong password", basic("alice", "nope")),
        ("alice, empty password", basic("alice", "")),
        (
            "carol, filtered out by userFilter",
            basic("carol", "carol-ldap-pw"),
        ),
        ("unknown user", basic("mallory", "x")),
        ("filter injection", basic("*", "alice-ldap-pw")),
        ("filter injection 2", basic("alice)(uid=*", "alice-ldap-pw")),
    ];
    for (name, auth) in cases {
        assert_eq!(get(Some(&auth)), 401, "{name}");
    }
    assert_eq!(get(None), 401, "anonymous");
    assert_eq!(put(Some(&alice)), 201, "alice again (cached)");
    // The directory matches uid without regard to case: "ALICE" is alice,
    // under her own name, so rules naming "alice" apply (and the audit and
    // access logs show one user, not two).
    let shouting = basic("ALICE", "alice-ldap-pw");
    push_image(&client, Some(&shouting), "alice-only/app", &img, "v1");
    assert_eq!(
        auth_common::put_manifest(&client, Some(&bob), "alice-only/app", &img, "v2").status,
        403
    );
    assert!(!registry.logs().contains("alice-ldap-pw"));
    assert!(!registry.logs().contains("admin-ldap-pw"));

    // An API key carries its owner's directory groups: alice's key may
    // create where "developers" may, bob's may not.
    let key_of = |auth: &str| {
        let r = call(
            &client,
            Some(auth),
            "POST",
            "/zot/auth/apikey",
            &[],
            Some(b"{}"),
        );
        r.expect_status(201, "make a key");
        r.json()["apiKey"].as_str().expect("apiKey").to_owned()
    };
    let alice_key = basic("alice", &key_of(&alice));
    push_image(&client, Some(&alice_key), "ldap/keyed", &img, "v1");
    let bob_key = basic("bob", &key_of(&bob));
    assert_eq!(
        auth_common::put_manifest(&client, Some(&bob_key), "ldap/keyed", &img, "v2").status,
        403
    );
}

#[test]
fn unreachable_ldap_server_is_a_failed_login_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let registry = start_secure(
        json!({ "auth": { "ldap": {
            "address": "127.0.0.1", "port": port, "insecure": true,
            "baseDN": format!("ou=Users,{BASE}"), "userAttribute": "uid",
            "bindDN": "cn=x", "bindPassword": "y" } } }),
        json!({}),
    );
    let _ = dir;
    let start = Instant::now();
    let r = call(
        &registry.client(),
        Some(&basic("alice", "pw")),
        "GET",
        "/v2/",
        &[],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(start.elapsed() < Duration::from_secs(15));
}

/// A registry whose only users are in the directory at `port`, reached
/// with `tls` settings (`startTLS`, `insecure`, `skipVerify`, `caCert`).
fn ldap_registry(dir: &Path, port: u16, tls: serde_json::Value) -> common::Registry {
    let creds = dir.join("ldap-credentials.json");
    std::fs::write(
        &creds,
        json!({ "bindDN": format!("cn=admin,{BASE}"), "bindPassword": "admin-ldap-pw" })
            .to_string(),
    )
    .expect("write credentials");
    let mut ldap = json!({
        "address": "127.0.0.1", "port": port,
        "baseDN": format!("ou=Users,{BASE}"), "userAttribute": "uid",
        "userGroupAttribute": "ou", "subtreeSearch": true, "credentialsFile": creds
    });
    if let (Some(l), serde_json::Value::Object(tls)) = (ldap.as_object_mut(), tls) {
        l.extend(tls);
    }
    start_secure(json!({ "auth": { "ldap": ldap } }), json!({}))
}

/// `GET /v2/` as alice: the status and how long it took.
fn login(registry: &common::Registry, password: &str) -> (u16, Duration) {
    let start = Instant::now();
    let r = call(
        &registry.client(),
        Some(&basic("alice", password)),
        "GET",
        "/v2/",
        &[],
        None,
    );
    (r.status, start.elapsed())
}

#[test]
fn ldap_over_tls_start_tls_ldaps_and_failed_handshakes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let slapd = start_slapd_with(dir.path(), Some(&pki));
    let (plain, ldaps) = (slapd.port, slapd.tls_port.expect("ldaps port"));
    let ca = pki.path("ca.crt");
    let rogue_dir = dir.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).expect("mkdir");
    let rogue = Pki::new(&rogue_dir);

    // Trusted: the CA through caCert, with StartTLS on the plain port and
    // with ldaps; or no verification at all with skipVerify.
    let trusted = [
        (
            "startTLS, caCert",
            plain,
            json!({ "startTLS": true, "caCert": ca }),
        ),
        ("ldaps, caCert", ldaps, json!({ "caCert": ca })),
        ("ldaps, skipVerify", ldaps, json!({ "skipVerify": true })),
        (
            "startTLS, skipVerify",
            plain,
            json!({ "startTLS": true, "skipVerify": true }),
        ),
    ];
    for (name, port, tls) in trusted {
        let registry = ldap_registry(dir.path(), port, tls);
        assert_eq!(login(&registry, "alice-ldap-pw").0, 200, "{name}");
        assert_eq!(login(&registry, "wrong").0, 401, "{name}: wrong password");
        assert!(!registry.logs().contains("alice-ldap-pw"), "{name}");
    }

    // Every failed handshake is a failed login, answered promptly.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let failing = [
        ("ldaps, CA not trusted (system roots)", ldaps, json!({}), 5),
        (
            "startTLS, CA not trusted",
            plain,
            json!({ "startTLS": true }),
            5,
        ),
        (
            "ldaps, caCert of another CA",
            ldaps,
            json!({ "caCert": rogue.path("ca.crt") }),
            5,
        ),
        (
            "ldaps to the plain port",
            plain,
            json!({ "caCert": ca }),
            12,
        ),
        (
            "plain LDAP to the ldaps port",
            ldaps,
            json!({ "insecure": true }),
            12,
        ),
        (
            "ldaps to a server that never answers",
            silent_port,
            json!({ "skipVerify": true }),
            14,
        ),
    ];
    for (name, port, tls, within) in failing {
        let registry = ldap_registry(dir.path(), port, tls);
        let (status, took) = login(&registry, "alice-ldap-pw");
        assert_eq!(status, 401, "{name}");
        assert!(took < Duration::from_secs(within), "{name}: took {took:?}");
        assert!(registry.logs().contains("LDAP"), "{name}: not logged");
    }
    drop(silent);
}

#[test]
fn an_unusable_ca_cert_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").expect("write");
    for (name, path) in [
        ("no certificate in it", not_pem),
        ("missing", dir.path().join("missing.pem")),
    ] {
        let config = auth_common::config_with(
            dir.path(),
            json!({ "auth": { "ldap": {
                "address": "127.0.0.1", "port": 636, "caCert": path,
                "baseDN": format!("ou=Users,{BASE}"), "userAttribute": "uid" } } }),
        );
        let out = Command::new(common::registry::binary())
            .arg("serve")
            .arg(&config)
            .output()
            .expect("run zot");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name}: {text}");
        assert!(text.contains("http.auth.ldap.caCert"), "{name}: {text}");
    }
}

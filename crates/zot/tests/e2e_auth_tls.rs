//! TLS with credentials: skopeo and podman logging in over HTTPS with Basic
//! auth, mutual TLS (the client certificate's CommonName is the user), and
//! the certificate reloaded when its files change, without a restart.

mod auth_common;
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_common::pki::Pki;
use auth_common::{start_secure, write_htpasswd};
use common::{run, run_fails, run_stdout, skopeo, tool};
use serde_json::json;

fn curl(args: &[&str]) -> String {
    let out = common::tools::output(
        tool("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args),
    )
    .0;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_and_podman_log_in_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "zot-server", true);
    let htpasswd = dir.path().join("htpasswd");
    write_htpasswd(&htpasswd, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let registry = start_secure(
        json!({
            "tls": { "cert": cert, "key": key },
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": { "**": {
                "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }],
                "defaultPolicy": ["read"] } } }
        }),
        json!({}),
    );
    let addr = registry.addr().to_owned();
    let work = registry.work_dir();
    // A cert dir trusting our CA (containers/image reads *.crt as CAs).
    let certs = work.join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.path("ca.crt"), certs.join("ca.crt")).expect("copy CA");
    let certs_arg = certs.to_str().unwrap_or("").to_owned();

    let layout = common::OciLayout::create(&work.join("src"));
    layout.add_image(&common::fixtures::multi_layer_image("tls-login"), "v1");
    let dest = format!("docker://{addr}/secure/app:v1");
    let mut copy = skopeo();
    copy.args([
        "copy",
        "--dest-cert-dir",
        &certs_arg,
        "--dest-creds",
        "alice:alice-pw",
        &layout.reference("v1"),
        &dest,
    ]);
    run(&mut copy);
    // bob may read, not write; nobody without credentials.
    run(skopeo().args([
        "inspect",
        "--cert-dir",
        &certs_arg,
        "--creds",
        "bob:bob-pw",
        &dest,
    ]));
    run_fails(skopeo().args([
        "copy",
        "--dest-cert-dir",
        &certs_arg,
        "--dest-creds",
        "bob:bob-pw",
        &layout.reference("v1"),
        &format!("docker://{addr}/secure/bob:v1"),
    ]));
    run_fails(skopeo().args(["inspect", "--cert-dir", &certs_arg, &dest]));

    // skopeo login / podman login store credentials in an auth file.
    let authfile = work.join("auth.json");
    let authfile_arg = authfile.to_str().unwrap_or("").to_owned();
    run(skopeo().args([
        "login",
        "--authfile",
        &authfile_arg,
        "--cert-dir",
        &certs_arg,
        "-u",
        "alice",
        "-p",
        "alice-pw",
        &addr,
    ]));
    run(skopeo().args([
        "inspect",
        "--authfile",
        &authfile_arg,
        "--cert-dir",
        &certs_arg,
        &dest,
    ]));
    run_fails(skopeo().args([
        "login",
        "--authfile",
        &authfile_arg,
        "--cert-dir",
        &certs_arg,
        "-u",
        "alice",
        "-p",
        "wrong",
        &addr,
    ]));

    let podman_auth = work.join("podman-auth.json");
    let podman_auth_arg = podman_auth.to_str().unwrap_or("").to_owned();
    let podman = |args: &[&str]| {
        let mut cmd = tool("podman");
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
    run(&mut podman(&[
        "login",
        "--authfile",
        &podman_auth_arg,
        "--cert-dir",
        &certs_arg,
        "-u",
        "alice",
        "-p",
        "alice-pw",
        &addr,
    ]));
    run(&mut podman(&[
        "pull",
        "--authfile",
        &podman_auth_arg,
        "--cert-dir",
        &certs_arg,
        &format!("{addr}/secure/app:v1"),
    ]));
    run_fails(&mut podman(&[
        "login",
        "--authfile",
        &podman_auth_arg,
        "--cert-dir",
        &certs_arg,
        "-u",
        "alice",
        "-p",
        "nope",
        &addr,
    ]));
    assert!(!registry.logs().contains("alice-pw"));
}

#[test]
fn client_certificates_identify_users_and_certificates_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "zot-one", true);
    let (client_crt, client_key) = pki.issue("client", "clientuser", false);
    let (other_crt, other_key) = pki.issue("other", "someone-else", false);
    // A client certificate from a CA the server does not trust.
    let rogue = Pki::new(&dir.path().join("rogue").tap_mkdir());
    let (rogue_crt, rogue_key) = rogue.issue("client", "clientuser", false);
    let registry = start_secure(
        json!({
            "tls": { "cert": cert, "key": key, "cacert": pki.path("ca.crt") },
            "auth": { "mtls": { "identityAttributes": ["CommonName"] } },
            "accessControl": { "repositories": { "**": {
                "policies": [{ "users": ["clientuser"], "actions": ["read", "create"] }] } } }
        }),
        json!({}),
    );
    let url = format!("https://{}/v2/_catalog", registry.addr());
    let ca = pki.path("ca.crt");
    let ca = ca.to_str().unwrap_or("");
    let s = |p: &Path| p.to_str().unwrap_or("").to_owned();
    assert_eq!(
        curl(&[
            "--cacert",
            ca,
            "--cert",
            &s(&client_crt),
            "--key",
            &s(&client_key),
            &url
        ]),
        "200"
    );
    assert_eq!(
        curl(&[
            "--cacert",
            ca,
            "--cert",
            &s(&other_crt),
            "--key",
            &s(&other_key),
            &url
        ]),
        "200",
        "authenticated, catalog filtered"
    );
    let upload = format!("https://{}/v2/mtls/app/blobs/uploads/", registry.addr());
    assert_eq!(
        curl(&[
            "--cacert",
            ca,
            "--cert",
            &s(&client_crt),
            "--key",
            &s(&client_key),
            "-X",
            "POST",
            &upload
        ]),
        "202"
    );
    assert_eq!(
        curl(&[
            "--cacert",
            ca,
            "--cert",
            &s(&other_crt),
            "--key",
            &s(&other_key),
            "-X",
            "POST",
            &upload
        ]),
        "403"
    );
    assert_eq!(
        curl(&["--cacert", ca, "-X", "POST", &upload]),
        "401",
        "no certificate"
    );
    let rogue_status = curl(&[
        "--cacert",
        ca,
        "--cert",
        &s(&rogue_crt),
        "--key",
        &s(&rogue_key),
        &url,
    ]);
    assert!(
        rogue_status == "000",
        "an untrusted client certificate must end the handshake, got {rogue_status}"
    );

    // Replace the server certificate: new connections get the new one.
    let (new_cert, new_key) = pki.issue("server2", "zot-two", true);
    std::fs::copy(&new_key, &key).expect("replace key");
    std::fs::copy(&new_cert, &cert).expect("replace cert");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = run_stdout(tool("sh").args(["-c", &format!("openssl s_client -connect {} -CAfile {ca} </dev/null 2>/dev/null | openssl x509 -noout -subject", registry.addr())]));
        if out.contains("zot-two") {
            break;
        }
        assert!(Instant::now() < deadline, "certificate not reloaded: {out}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        curl(&[
            "--cacert",
            ca,
            "--cert",
            &s(&client_crt),
            "--key",
            &s(&client_key),
            &url
        ]),
        "200"
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}

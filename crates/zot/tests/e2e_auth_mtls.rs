//! `http.auth.mtls` identity options through the real binary: the user is
//! taken from a URI SAN through `uriSanPattern` (a SPIFFE ID), from the
//! n-th DNS or email SAN, or from the whole subject as zot (Go) prints it,
//! with zot's fallback from one attribute to the next. Certificates are
//! made by the test with openssl; skopeo pushes with a client certificate
//! from its `--cert-dir`, curl checks who may start an upload.

mod auth_common;
mod common;

use std::path::Path;

use auth_common::pki::Pki;
use auth_common::start_secure;
use common::{run, run_fails, skopeo, tool};
use serde_json::json;

const CLIENT: &str = "extendedKeyUsage=clientAuth\n";

/// The HTTP status of `POST /v2/<repo>/blobs/uploads/` with a client
/// certificate (`None`: without one).
fn upload_status(addr: &str, ca: &Path, cert: Option<(&Path, &Path)>, repo: &str) -> String {
    let mut cmd = tool("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg("--cacert")
        .arg(ca);
    if let Some((crt, key)) = cert {
        cmd.arg("--cert").arg(crt).arg("--key").arg(key);
    }
    cmd.arg(format!("https://{addr}/v2/{repo}/blobs/uploads/"));
    let out = common::tools::output(&mut cmd).0;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A containers/image cert dir: the CA and one client certificate.
fn cert_dir(dir: &Path, ca: &Path, crt: &Path, key: &Path) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::copy(ca, dir.join("ca.crt")).expect("copy CA");
    std::fs::copy(crt, dir.join("client.cert")).expect("copy cert");
    std::fs::copy(key, dir.join("client.key")).expect("copy key");
    dir.to_str().unwrap_or("").to_owned()
}

#[test]
fn a_spiffe_uri_san_names_the_user_and_skopeo_pushes_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "zot", true);
    // The second URI SAN is the SPIFFE ID (uriSanIndex 1).
    let (builder_crt, builder_key) = pki.issue_with(
        "builder",
        "/CN=not-this-name",
        &format!("subjectAltName=URI:https://ci.example.org/job/7,URI:spiffe://example.org/workload/builder\n{CLIENT}"),
    );
    // A SPIFFE ID of another trust domain does not match the pattern: the
    // CommonName is next in the chain.
    let (foreign_crt, foreign_key) = pki.issue_with(
        "foreign",
        "/CN=reader",
        &format!("subjectAltName=URI:https://ci.example.org/job/8,URI:spiffe://evil.example/workload/builder\n{CLIENT}"),
    );
    // Only one URI SAN: index 1 is out of range, and there is no CN.
    let (short_crt, short_key) = pki.issue_with(
        "short",
        "/O=Acme",
        &format!("subjectAltName=URI:spiffe://example.org/workload/builder\n{CLIENT}"),
    );
    let registry = start_secure(
        json!({
            "tls": { "cert": cert, "key": key, "cacert": pki.path("ca.crt") },
            "auth": { "mtls": {
                "identityAttributes": ["URI", "CommonName"],
                "uriSanPattern": "spiffe://example.org/workload/(.*)",
                "uriSanIndex": 1 } },
            "accessControl": { "repositories": { "**": {
                "policies": [
                    { "users": ["builder"], "actions": ["read", "create"] },
                    { "users": ["reader"], "actions": ["read"] }
                ] } } }
        }),
        json!({}),
    );
    let addr = registry.addr().to_owned();
    let ca = pki.path("ca.crt");
    assert_eq!(
        upload_status(&addr, &ca, Some((&builder_crt, &builder_key)), "spiffe/app"),
        "202",
        "the SPIFFE workload may push"
    );
    assert_eq!(
        upload_status(&addr, &ca, Some((&foreign_crt, &foreign_key)), "spiffe/app"),
        "403",
        "a foreign trust domain falls back to its CommonName, a reader"
    );
    assert_eq!(
        upload_status(&addr, &ca, Some((&short_crt, &short_key)), "spiffe/app"),
        "401",
        "no attribute names a user"
    );
    assert_eq!(upload_status(&addr, &ca, None, "spiffe/app"), "401");

    let work = registry.work_dir();
    let builder_dir = cert_dir(&work.join("builder-certs"), &ca, &builder_crt, &builder_key);
    let reader_dir = cert_dir(&work.join("reader-certs"), &ca, &foreign_crt, &foreign_key);
    let layout = common::OciLayout::create(&work.join("src"));
    layout.add_image(&common::fixtures::multi_layer_image("mtls-spiffe"), "v1");
    let dest = format!("docker://{addr}/spiffe/app:v1");
    run(skopeo().args([
        "copy",
        "--dest-cert-dir",
        &builder_dir,
        &layout.reference("v1"),
        &dest,
    ]));
    run(skopeo().args(["inspect", "--cert-dir", &reader_dir, &dest]));
    run_fails(skopeo().args([
        "copy",
        "--dest-cert-dir",
        &reader_dir,
        &layout.reference("v1"),
        &format!("docker://{addr}/spiffe/reader:v1"),
    ]));
}

#[test]
fn dns_and_email_sans_by_index_and_the_go_subject_name_identify_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (cert, key) = pki.issue("server", "zot", true);
    let (dns_crt, dns_key) = pki.issue_with(
        "dns",
        "/CN=dns-cn",
        &format!("subjectAltName=DNS:first.example,DNS:second.example\n{CLIENT}"),
    );
    let (mail_crt, mail_key) = pki.issue_with(
        "mail",
        "/CN=mail-cn",
        &format!("subjectAltName=DNS:only.example,email:ci@example.org\n{CLIENT}"),
    );
    // No SAN at all: the subject, printed as Go's pkix.Name.String() does
    // (most specific first, a comma escaped).
    let (subject_crt, subject_key) =
        pki.issue_with("subject", "/C=US/O=Acme, Inc./OU=Build/CN=robot", CLIENT);
    let (other_crt, other_key) = pki.issue_with("other", "/C=US/O=Acme/CN=robot", CLIENT);
    let registry = start_secure(
        json!({
            "tls": { "cert": cert, "key": key, "cacert": pki.path("ca.crt") },
            "auth": { "mtls": {
                "identityAttributes": ["DNS", "Email", "Subject"],
                "dnsSanIndex": 1,
                "emailSanIndex": 0 } },
            "accessControl": { "repositories": {
                "dns/**": { "policies": [{ "users": ["second.example"], "actions": ["read", "create"] }] },
                "mail/**": { "policies": [{ "users": ["ci@example.org"], "actions": ["read", "create"] }] },
                "subject/**": { "policies": [{
                    "users": ["CN=robot,OU=Build,O=Acme\\, Inc.,C=US"],
                    "actions": ["read", "create"] }] }
            } }
        }),
        json!({}),
    );
    let addr = registry.addr().to_owned();
    let ca = pki.path("ca.crt");
    let status = |c: (&Path, &Path), repo: &str| upload_status(&addr, &ca, Some(c), repo);
    let dns = (dns_crt.as_path(), dns_key.as_path());
    let mail = (mail_crt.as_path(), mail_key.as_path());
    let subject = (subject_crt.as_path(), subject_key.as_path());
    let other = (other_crt.as_path(), other_key.as_path());
    assert_eq!(status(dns, "dns/app"), "202", "the second DNS SAN");
    assert_eq!(status(dns, "mail/app"), "403");
    // One DNS SAN only (index 1 out of range): the email SAN is next.
    assert_eq!(status(mail, "mail/app"), "202");
    assert_eq!(status(mail, "dns/app"), "403");
    assert_eq!(
        status(subject, "subject/app"),
        "202",
        "the Go subject string"
    );
    assert_eq!(status(other, "subject/app"), "403", "another subject");
}

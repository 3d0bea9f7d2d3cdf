//! LDAP login and group-based access against a real OpenLDAP `slapd` that
//! the test starts itself (Debian packages `slapd` and `ldap-utils`, which
//! `scripts/test` installs): a tiny directory loaded with `slapadd` into a
//! temporary directory, served on a free port of 127.0.0.1, killed at the
//! end. No system service is involved.

mod auth_common;
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_common::{basic, call, push_image, small_image, start_secure};
use serde_json::json;

const BASE: &str = "dc=example,dc=org";

struct Slapd {
    child: Child,
    port: u16,
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

fn start_slapd(dir: &Path) -> Slapd {
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
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             rootpw admin-ldap-pw\n\
             directory {db}\n",
            pid = dir.join("slapd.pid").display(),
            db = db.display()
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
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new("/usr/sbin/slapd")
        .arg("-h")
        .arg(format!("ldap://127.0.0.1:{port}/"))
        .arg("-f")
        .arg(&conf)
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slapd");
    let slapd = Slapd { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "slapd did not start listening");
        std::thread::sleep(Duration::from_millis(100));
    }
    slapd
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
                }
            },
            "accessControl": { "repositories": { "**": {
                "policies": [{ "groups": ["developers"], "actions": ["read", "create"] }],
                "defaultPolicy": ["read"] } } }
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
    assert!(!registry.logs().contains("alice-ldap-pw"));
    assert!(!registry.logs().contains("admin-ldap-pw"));
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

//! The common secured setup with every client, over plain HTTP and TLS:
//! anonymous read on `**`, a closed `private/**`, a push user (alice) and a
//! user without write rights (bob), htpasswd, no external token realm — so
//! the registry is its own token server. For docker, podman, buildah,
//! skopeo, oras (Python) and curl:
//! - login with a wrong password fails;
//! - with alice's login: push, cross-repository mount (checked in the audit
//!   log: the mount `POST` answered 201 and no upload followed), and a push
//!   to `private/…`;
//! - without credentials: pull of `team/…` works, pull of `private/…` is
//!   refused;
//! - bob, logged in, is denied (403 `DENIED`) what he may not do.

mod auth_common;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auth_common::pki::Pki;
use auth_common::{start_secure, write_htpasswd};
use common::docker::Dockerd;
use common::{OciLayout, Registry, run, run_fails, run_stdout, tool};
use serde_json::{Value, json};

/// A secured registry on plain HTTP or TLS, with its audit log.
struct Setup {
    registry: Registry,
    /// The CA certificate, for TLS.
    ca: Option<PathBuf>,
    /// A folder holding `ca.crt` (containers/image's `--cert-dir`).
    certs: Option<PathBuf>,
    audit: PathBuf,
    work: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new(tls: bool) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let htpasswd = dir.path().join("htpasswd");
        write_htpasswd(&htpasswd, &[("alice", "alice-pw"), ("bob", "bob-pw")]);
        let audit = dir.path().join("audit.log");
        let mut http = json!({
            "compat": ["docker2s2"],
            "auth": { "htpasswd": { "path": htpasswd } },
            "accessControl": { "repositories": {
                "**": { "anonymousPolicy": ["read"], "defaultPolicy": ["read"] },
                "team/**": {
                    "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }],
                    "anonymousPolicy": ["read"],
                    "defaultPolicy": ["read"]
                },
                "private/**": {
                    "policies": [{ "users": ["alice"], "actions": ["read", "create", "update", "delete"] }]
                }
            } }
        });
        let (mut ca, mut certs) = (None, None);
        if tls {
            let pki = Pki::new(dir.path());
            let (cert, key) = pki.issue("server", "zot-server", true);
            http["tls"] = json!({ "cert": cert, "key": key });
            let certs_dir = dir.path().join("certs");
            std::fs::create_dir_all(&certs_dir).expect("mkdir");
            std::fs::copy(pki.path("ca.crt"), certs_dir.join("ca.crt")).expect("copy CA");
            ca = Some(pki.path("ca.crt"));
            certs = Some(certs_dir);
        }
        let registry = start_secure(http, json!({ "audit": audit }));
        let work = registry.work_dir();
        Setup {
            registry,
            ca,
            certs,
            audit,
            work,
            _dir: dir,
        }
    }

    fn addr(&self) -> &str {
        self.registry.addr()
    }

    fn scheme(&self) -> &str {
        if self.ca.is_some() { "https" } else { "http" }
    }

    /// `--tls-verify=false` on plain HTTP, `--cert-dir <CA>` on TLS, with
    /// `prefix` (`src-`, `dest-` or empty) for skopeo copy.
    fn tls_args(&self, prefix: &str) -> Vec<String> {
        match &self.certs {
            None => vec![format!("--{prefix}tls-verify=false")],
            Some(c) => vec![
                format!("--{prefix}cert-dir"),
                c.to_string_lossy().into_owned(),
            ],
        }
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Layers of `repo` came by cross-repository mount: a `POST` to its
    /// uploads answered 201 (docker still uploads the image config).
    fn assert_mounted(&self, repo: &str) {
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let lines = self.audit_lines();
        let mounted = lines
            .iter()
            .any(|l| l["method"] == "POST" && l["path"] == uploads.as_str() && l["status"] == 201);
        assert!(mounted, "{repo}: expected a mount, audit log:\n{lines:#?}");
    }

    /// `repo:tag` is served to alice (checked with curl, over either transport).
    fn assert_stored(&self, repo: &str, tag: &str) {
        let mut cmd = tool("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            "alice:alice-pw",
        ]);
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        cmd.arg(format!(
            "{}://{}/v2/{repo}/manifests/{tag}",
            self.scheme(),
            self.addr()
        ));
        assert_eq!(run_stdout(&mut cmd), "200", "{repo}:{tag} stored");
    }
}

/// A command's stderr and stdout, lower-cased, for refusal reasons.
fn said(out: &Output) -> String {
    (String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
        .to_lowercase()
}

fn assert_refused(out: &Output, what: &str) {
    let text = said(out);
    assert!(
        [
            "unauthorized",
            "401",
            "denied",
            "authentication required",
            "invalid username"
        ]
        .iter()
        .any(|w| text.contains(w)),
        "{what}: {text}"
    );
}

fn assert_denied(out: &Output, what: &str) {
    let text = said(out);
    assert!(
        text.contains("denied") || text.contains("403"),
        "{what}: {text}"
    );
}

/// A containers/image tool (podman, buildah, skopeo) with private storage,
/// auth file and home.
fn containers_tool(name: &str, work: &Path, storage: bool) -> Command {
    let auth = work.join(format!("{name}-auth.json"));
    if !auth.exists() {
        std::fs::write(&auth, "{\"auths\":{}}").expect("write auth file");
    }
    let mut cmd = tool(name);
    cmd.env("HOME", work)
        .env("REGISTRY_AUTH_FILE", work.join(format!("{name}-auth.json")))
        .env("XDG_RUNTIME_DIR", work.join("xdg"));
    if storage {
        cmd.args([
            "--root",
            &work.join(format!("{name}-root")).to_string_lossy(),
            "--runroot",
            &work.join(format!("{name}-run")).to_string_lossy(),
            "--storage-driver",
            "vfs",
        ]);
    }
    if name == "skopeo" {
        cmd.args(["--insecure-policy", "--command-timeout", "120s"]);
    }
    cmd
}

fn login(s: &Setup, name: &str, user: &str, password: &str) -> Command {
    let mut cmd = containers_tool(name, &s.work, name != "skopeo");
    cmd.arg("login")
        .args(s.tls_args(""))
        .args(["-u", user, "-p", password, s.addr()]);
    cmd
}

fn logout(s: &Setup, name: &str) {
    run(containers_tool(name, &s.work, name != "skopeo").args(["logout", "--all"]));
}

/// The containers/image scenario, for podman and buildah (`local` is an
/// image in the tool's storage).
fn storage_tool_scenario(s: &Setup, name: &str, local: &str) {
    let t = |args: &[&str]| {
        let mut cmd = containers_tool(name, &s.work, true);
        cmd.args(args);
        cmd
    };
    let tls = s.tls_args("");
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let reference = |repo: &str| format!("docker://{}/{repo}:v1", s.addr());
    let push = |repo: &str| {
        let mut cmd = t(&["push"]);
        cmd.args(&tls).args([local, &reference(repo)]);
        cmd
    };
    let pull = |repo: &str| {
        let mut cmd = t(&["pull"]);
        cmd.args(&tls).arg(reference(repo));
        cmd
    };
    assert_refused(
        &run_fails(&mut login(s, name, "alice", "wrong")),
        "wrong password",
    );
    run(&mut login(s, name, "alice", "alice-pw"));
    let (app, copy, private) = (
        format!("team/{name}/app"),
        format!("team/{name}/copy"),
        format!("private/{name}"),
    );
    run(&mut push(&app));
    // Copied registry to registry, the layers are mounted.
    run(containers_tool("skopeo", &s.work, false)
        .env(
            "REGISTRY_AUTH_FILE",
            s.work.join(format!("{name}-auth.json")),
        )
        .arg("copy")
        .args(s.tls_args("src-"))
        .args(s.tls_args("dest-"))
        .args([reference(&app), reference(&copy)]));
    s.assert_mounted(&copy);
    run(&mut push(&private));
    s.assert_stored(&private, "v1");
    logout(s, name);
    run(&mut pull(&app));
    assert_refused(&run_fails(&mut pull(&private)), "anonymous private pull");
    run(&mut login(s, name, "bob", "bob-pw"));
    assert_denied(
        &run_fails(&mut push(&format!("team/{name}/bob"))),
        "bob's push",
    );
    assert_denied(&run_fails(&mut pull(&private)), "bob's private pull");
}

fn both_transports(mut scenario: impl FnMut(&Setup)) {
    for tls in [false, true] {
        let s = Setup::new(tls);
        scenario(&s);
        assert!(
            !s.registry.logs().contains("alice-pw"),
            "a password reached the log"
        );
    }
}

#[test]
fn podman_secured() {
    both_transports(|s| {
        let tar = common::docker::seed_tarball(&s.work, &format!("podman {}", s.scheme()));
        let local = "localhost/podman-secured:v1";
        run(containers_tool("podman", &s.work, true)
            .arg("import")
            .arg(&tar)
            .arg(local));
        storage_tool_scenario(s, "podman", local);
    });
}

#[test]
fn buildah_secured() {
    both_transports(|s| {
        let b = |args: &[&str]| {
            let mut cmd = containers_tool("buildah", &s.work, true);
            cmd.args(args);
            run_stdout(&mut cmd).trim().to_owned()
        };
        let ctr = b(&["from", "scratch"]);
        let file = s.work.join("buildah.txt");
        std::fs::write(&file, "built by buildah").expect("write");
        b(&["copy", &ctr, &file.to_string_lossy(), "/buildah.txt"]);
        b(&["commit", &ctr, "localhost/buildah-secured:v1"]);
        storage_tool_scenario(s, "buildah", "localhost/buildah-secured:v1");
    });
}

#[test]
fn skopeo_secured() {
    both_transports(|s| {
        let layout = OciLayout::create(&s.work.join("skopeo-src"));
        layout.add_image(&common::fixtures::multi_layer_image("skopeo-secured"), "v1");
        let skopeo = || containers_tool("skopeo", &s.work, false);
        let reference = |repo: &str| format!("docker://{}/{repo}:v1", s.addr());
        let push = |repo: &str| {
            let mut cmd = skopeo();
            cmd.arg("copy")
                .args(s.tls_args("dest-"))
                .args([layout.reference("v1"), reference(repo)]);
            cmd
        };
        let pull = |repo: &str| {
            let mut cmd = skopeo();
            cmd.arg("inspect").args(s.tls_args("")).arg(reference(repo));
            cmd
        };
        assert_refused(
            &run_fails(&mut login(s, "skopeo", "alice", "wrong")),
            "wrong password",
        );
        run(&mut login(s, "skopeo", "alice", "alice-pw"));
        run(&mut push("team/skopeo/app"));
        run(skopeo()
            .arg("copy")
            .args(s.tls_args("src-"))
            .args(s.tls_args("dest-"))
            .args([reference("team/skopeo/app"), reference("team/skopeo/copy")]));
        s.assert_mounted("team/skopeo/copy");
        run(&mut push("private/skopeo"));
        logout(s, "skopeo");
        run(&mut pull("team/skopeo/app"));
        assert_refused(
            &run_fails(&mut pull("private/skopeo")),
            "anonymous private pull",
        );
        // --creds on the command line, without login.
        let mut bob = push("team/skopeo/bob");
        bob.args(["--dest-creds", "bob:bob-pw"]);
        assert_denied(&run_fails(&mut bob), "bob's push");
    });
}

#[test]
fn docker_secured() {
    let mut engine = Dockerd::start();
    both_transports(|s| {
        if let Some(ca) = &s.ca {
            engine.trust(s.addr(), ca);
        }
        let cfg = s.work.join("docker-config");
        let docker = |args: &[&str]| {
            let mut cmd = engine.docker(&cfg);
            cmd.args(args);
            cmd
        };
        let login = |user: &str, password: &str| {
            let mut cmd = docker(&["login", "-u", user, "-p", password, s.addr()]);
            cmd.env("DOCKER_CLI_HINTS", "false");
            cmd
        };
        let at = |repo: &str| format!("{}/{repo}:v1", s.addr());
        engine.import(
            &cfg,
            &at("team/docker/app"),
            &format!("docker-secured-{}", s.scheme()),
        );
        assert_refused(&run_fails(&mut login("alice", "wrong")), "wrong password");
        run(&mut login("alice", "alice-pw"));
        run(&mut docker(&["push", &at("team/docker/app")]));
        run(&mut docker(&[
            "tag",
            &at("team/docker/app"),
            &at("team/docker/copy"),
        ]));
        let out = run_stdout(&mut docker(&["push", &at("team/docker/copy")]));
        assert!(out.contains("Mounted from team/docker/app"), "{out}");
        s.assert_mounted("team/docker/copy");
        run(&mut docker(&[
            "tag",
            &at("team/docker/app"),
            &at("private/docker"),
        ]));
        run(&mut docker(&["push", &at("private/docker")]));
        run(&mut docker(&["logout", s.addr()]));
        run(&mut docker(&[
            "rmi",
            "-f",
            &at("team/docker/app"),
            &at("team/docker/copy"),
            &at("private/docker"),
        ]));
        run(&mut docker(&["pull", &at("team/docker/app")]));
        assert_refused(
            &run_fails(&mut docker(&["pull", &at("private/docker")])),
            "anonymous private pull",
        );
        run(&mut login("bob", "bob-pw"));
        assert_denied(
            &run_fails(&mut docker(&["pull", &at("private/docker")])),
            "bob's private pull",
        );
        run(&mut docker(&["logout", s.addr()]));
        run(&mut docker(&["rmi", "-f", &at("team/docker/app")]));
    });
}

#[test]
fn oras_secured() {
    let python = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("oras-venv/bin/python");
    let python = std::env::var_os("ZOT_E2E_ORAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or(python);
    assert!(
        python.is_file(),
        "no oras-py at {}: `scripts/test` installs it",
        python.display()
    );
    both_transports(|s| {
        std::fs::write(s.work.join("artifact.txt"), "pushed by oras").expect("write");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oras_secured.py");
        let mut cmd = Command::new(&python);
        cmd.arg(script).arg(s.addr()).arg(&s.work);
        if let Some(ca) = &s.ca {
            cmd.env("REQUESTS_CA_BUNDLE", ca).env("ORAS_TLS", "1");
        }
        let out = run_stdout(&mut cmd);
        let report: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("oras_secured.py output is not JSON ({e}):\n{out}"));
        let ok = |step: &str| report[step]["ok"] == true;
        let err = |step: &str| report[step]["error"].as_str().unwrap_or("").to_lowercase();
        assert!(!ok("login_wrong"), "{report}");
        for step in ["login", "push", "push_private", "pull_anonymous"] {
            assert!(ok(step), "{step}: {report}");
        }
        assert!(!ok("pull_private_anonymous"), "{report}");
        assert!(!ok("push_bob"), "{report}");
        assert!(
            err("push_bob").contains("403") || err("push_bob").contains("denied"),
            "{report}"
        );
        s.assert_stored("team/oras/app", "v1");
        s.assert_stored("private/oras", "v1");
    });
}

/// curl speaking the token protocol by hand, as a script would.
#[test]
fn curl_secured() {
    both_transports(|s| {
        let base = format!("{}://{}", s.scheme(), s.addr());
        let curl = |args: &[&str]| -> (u16, Value, String) {
            let mut cmd = tool("curl");
            cmd.args(["-s", "-w", "\n%{http_code}", "-D", "-"]);
            if let Some(ca) = &s.ca {
                cmd.arg("--cacert").arg(ca);
            }
            let out = run_stdout(cmd.args(args));
            let (rest, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
            let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
            (
                code.trim().parse().unwrap_or(0),
                serde_json::from_str(body).unwrap_or(Value::Null),
                head.to_lowercase(),
            )
        };
        let token = |creds: Option<&str>, scope: &str| -> (u16, String) {
            let url = format!("{base}/auth/token?service=zot&scope={scope}");
            let (code, body, _) = match creds {
                Some(c) => curl(&["-u", c, &url]),
                None => curl(&[&url]),
            };
            (code, body["token"].as_str().unwrap_or("").to_owned())
        };
        // The challenge names the realm the client must use.
        let (code, _, head) = curl(&[&format!("{base}/v2/")]);
        assert_eq!(code, 401);
        assert!(
            head.contains(&format!(
                "www-authenticate: bearer realm=\"{base}/auth/token\""
            )),
            "{head}"
        );
        assert_eq!(token(Some("alice:wrong"), "").0, 401);
        let (code, alice) = token(Some("alice:alice-pw"), "repository:team/curl/app:pull,push");
        assert_eq!(code, 200);
        let auth = format!("Authorization: Bearer {alice}");
        let blob = s.work.join("blob");
        std::fs::write(&blob, "curl blob").expect("write");
        let digest = common::sha256_digest(b"curl blob");
        let (code, _, _) = curl(&[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", blob.display()),
            &format!("{base}/v2/team/curl/app/blobs/uploads/?digest={digest}"),
        ]);
        assert_eq!(code, 201, "monolithic push with a token");
        let (_, copy) = token(
            Some("alice:alice-pw"),
            "repository:team/curl/copy:pull,push&scope=repository:team/curl/app:pull",
        );
        let (code, _, _) = curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {copy}"),
            &format!("{base}/v2/team/curl/copy/blobs/uploads/?mount={digest}&from=team/curl/app"),
        ]);
        assert_eq!(code, 201, "cross-repository mount");
        s.assert_mounted("team/curl/copy");
        // Basic straight on the API works too (scripts).
        let (code, body, _) = curl(&[
            "-u",
            "alice:alice-pw",
            &format!("{base}/v2/private/curl/tags/list"),
        ]);
        assert_eq!(
            code, 404,
            "alice may read private/** (nothing there yet): {body}"
        );
        // Anonymous: an anonymous token pulls team/**, not private/**.
        let (code, anon) = token(None, "repository:team/curl/app:pull");
        assert_eq!(code, 200);
        let (code, _, _) = curl(&[
            "-H",
            &format!("Authorization: Bearer {anon}"),
            &format!("{base}/v2/team/curl/app/blobs/{digest}"),
        ]);
        assert_eq!(code, 200);
        let (code, _, _) = curl(&[&format!("{base}/v2/private/curl/tags/list")]);
        assert_eq!(code, 401);
        // bob: a token without push, and 403 on the push.
        let (_, bob) = token(Some("bob:bob-pw"), "repository:team/curl/bob:pull,push");
        let (code, body, _) = curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {bob}"),
            &format!("{base}/v2/team/curl/bob/blobs/uploads/"),
        ]);
        assert_eq!(code, 403, "{body}");
        assert_eq!(body["errors"][0]["code"], "DENIED");
    });
}

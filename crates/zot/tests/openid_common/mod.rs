//! Helpers of the login tests (`e2e_auth_openid*.rs`): a real OpenID
//! provider (`oidc-provider` from npm, run by Node, installed by
//! scripts/test into `<target>/tmp/oidc-provider`), a browser-like client
//! with a cookie jar, the session keys file and the cookie sealing the
//! registry uses (to forge an expired state cookie), and a Redis server.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::common::{Client, Response};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where scripts/test installed the `oidc-provider` package.
fn provider_module_dir() -> PathBuf {
    let dir = std::env::var_os("OIDC_PROVIDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("oidc-provider"));
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "the npm package oidc-provider is missing from {}: run scripts/test (it installs it), \
         or `npm install --prefix {} oidc-provider@8.8.1`",
        dir.display(),
        dir.display()
    );
    dir
}

/// A child process killed when dropped.
pub struct Process {
    child: Child,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, waiting until a line of its stdout contains `ready`.
fn start_until(mut cmd: Command, ready: &str) -> Process {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    if let Some(err) = child.stderr.take() {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                log.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
    }
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    let out_log = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(&ready) {
                let _ = tx.send(());
            }
            out_log.lock().expect("log").push_str(&format!("{line}\n"));
        }
    });
    let process = Process { child, log };
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        panic!(
            "{cmd:?} did not start: {}",
            process.log.lock().expect("log")
        );
    }
    process
}

/// The OpenID provider: its issuer URL and process.
pub struct Provider {
    pub issuer: String,
    _process: Process,
}

impl Provider {
    /// Starts `oidc-provider` on `port` with `clients` (oidc-provider client
    /// metadata) and `users` (`{"login": {"groups": [...]}}`).
    pub fn start(port: u16, clients: Value, users: Value) -> Provider {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openid_common/provider.mjs");
        let setup = serde_json::json!({ "clients": clients, "users": users });
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .arg(provider_module_dir())
            .arg(port.to_string())
            .arg(setup.to_string());
        let process = start_until(cmd, "listening");
        Provider {
            issuer: format!("http://127.0.0.1:{port}"),
            _process: process,
        }
    }
}

/// A Redis server on a free port, without persistence.
pub struct Redis {
    pub url: String,
    _process: Process,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir);
        let process = start_until(cmd, "Ready to accept connections");
        Redis {
            url: format!("redis://127.0.0.1:{port}"),
            _process: process,
        }
    }
}

/// `scheme://host:port` of a URL.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("absolute URL");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// A client that keeps cookies per origin, as a browser would (paths and
/// expiry dates are not modelled; `Max-Age=0` removes a cookie).
pub struct Browser {
    client: Client,
    pub jar: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            client: Client::new("http://127.0.0.1"),
            jar: BTreeMap::new(),
        }
    }
}

impl Browser {
    /// The cookie `name` kept for `origin`.
    pub fn cookie(&self, origin: &str, name: &str) -> Option<String> {
        self.jar.get(origin).and_then(|c| c.get(name)).cloned()
    }

    pub fn set_cookie(&mut self, origin: &str, name: &str, value: &str) {
        self.jar
            .entry(origin.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Sends a request with the jar's cookies for its origin, keeping the
    /// cookies the answer sets.
    pub fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let origin = origin_of(url);
        let cookies = self
            .jar
            .get(&origin)
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let mut all = headers.to_vec();
        if !cookies.is_empty() {
            all.push(("cookie", &cookies));
        }
        let response = self.client.request(method, url, &all, body);
        for (name, value) in &response.headers {
            if name != "set-cookie" {
                continue;
            }
            let first = value.split(';').next().unwrap_or("");
            let Some((k, v)) = first.split_once('=') else {
                continue;
            };
            let gone = value.to_ascii_lowercase().contains("max-age=0") || v.is_empty();
            let jar = self.jar.entry(origin.clone()).or_default();
            if gone {
                jar.remove(k.trim());
            } else {
                jar.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        response
    }

    pub fn get(&mut self, url: &str) -> Response {
        self.send("GET", url, &[], None)
    }

    /// Follows the provider's pages from `url` (its authorization URL):
    /// redirects, the login form (as `user`) and the consent form, until
    /// it is sent to the registry's callback, whose URL is returned
    /// (not requested, so that tests can tamper with it).
    pub fn through_provider(&mut self, url: &str, user: &str, registry: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..12 {
            if next.starts_with(registry) {
                return next;
            }
            let response = self.get(&next);
            if let Some(location) = response.header("location") {
                next = if location.starts_with('/') {
                    format!("{}{location}", origin_of(&next))
                } else {
                    location.to_owned()
                };
                continue;
            }
            let page = response.text();
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|a| a.split('"').next())
                .unwrap_or_else(|| panic!("no form at {next}: {response}"))
                .to_owned();
            let form = if page.contains("value=\"login\"") {
                format!("prompt=login&login={user}&password=any")
            } else if page.contains("value=\"consent\"") {
                "prompt=consent".to_owned()
            } else {
                panic!("unexpected provider page at {next}: {response}");
            };
            let posted = self.send(
                "POST",
                &action,
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(form.as_bytes()),
            );
            next = posted
                .header("location")
                .unwrap_or_else(|| panic!("the form at {action} did not redirect: {posted}"))
                .to_owned();
        }
        panic!("the provider never sent the browser back to {registry}");
    }
}

/// Writes `sessionKeysFile` (mode 600) and returns its two keys.
pub fn write_session_keys(path: &Path) -> (String, String) {
    use std::os::unix::fs::PermissionsExt;
    let hash = "h".repeat(32) + "0123456789abcdef0123456789abcdef";
    let encrypt = "e".repeat(32);
    let text = serde_json::json!({ "hashKey": hash, "encryptKey": encrypt });
    std::fs::write(path, text.to_string()).expect("write keys");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (hash, encrypt)
}

/// A cookie value sealed as the registry seals them (see
/// `zot_auth::session::CookieKeys`): AES-256-GCM under
/// HMAC-SHA256(hashKey, "zot session cookie" || encryptKey), the cookie's
/// name as additional data, the expiry sealed before the value.
pub fn seal(keys: &(String, String), name: &str, value: &str, expires: u64) -> String {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, keys.0.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&mac);
    ctx.update(b"zot session cookie");
    ctx.update(keys.1.as_bytes());
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, ctx.sign().as_ref()).expect("key"));
    let nonce = [9u8; 12];
    let mut data = expires.to_be_bytes().to_vec();
    data.extend_from_slice(value.as_bytes());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(name.as_bytes()),
        &mut data,
    )
    .expect("seal");
    let mut out = nonce.to_vec();
    out.extend(data);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of query parameter `key` in `url` (percent-decoded).
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// `a=b&c=d`, percent- and plus-decoded.
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until `f` holds (polling), for start-up races.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within 20 s");
}

//! The `zot` binary under test, one process per test.
//!
//! A [`Registry`] owns a temporary directory holding its config file and (by
//! default) its storage root. It asks the OS for a port (`"port": "0"`) and
//! learns the bound address from the `"listening"` log line on stdout. The
//! process is killed when the `Registry` is dropped, so a failing test never
//! leaks a server.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// How long the binary may take to print its `listening` line.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Path of the binary cargo built for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_zot")
}

/// Registry configuration, in the Go-zot key names.
#[derive(Clone, Debug)]
pub struct Config {
    /// `http.compat`, e.g. `["docker2s2"]`.
    pub compat: Vec<String>,
    pub dedupe: bool,
    pub gc: bool,
    pub commit: bool,
    /// Storage root; `None` means `<tempdir>/data/root` (so that its parent
    /// holds nothing else, for escape checks).
    pub root: Option<PathBuf>,
    /// More keys of the `storage` section (`gcDelay`, `subPaths`, ...).
    pub storage: serde_json::Map<String, Value>,
    /// The `extensions` section, if any.
    pub extensions: Option<Value>,
    /// More keys of the `http` section (`port`, `auth`, ...).
    pub http: serde_json::Map<String, Value>,
    /// More top-level sections (`cluster`, ...).
    pub top: serde_json::Map<String, Value>,
    /// Environment variables of the process (added to the test's own).
    pub env: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            compat: Vec::new(),
            dedupe: true,
            gc: false,
            commit: false,
            root: None,
            storage: serde_json::Map::new(),
            extensions: None,
            http: serde_json::Map::new(),
            top: serde_json::Map::new(),
            env: Vec::new(),
        }
    }
}

impl Config {
    pub fn with_compat(mut self, compat: &[&str]) -> Self {
        self.compat = compat.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    pub fn with_root(mut self, root: &Path) -> Self {
        self.root = Some(root.to_owned());
        self
    }

    pub fn with_commit(mut self, commit: bool) -> Self {
        self.commit = commit;
        self
    }

    pub fn with_gc(mut self, gc: bool) -> Self {
        self.gc = gc;
        self
    }

    /// Sets one more key of the `storage` section, e.g. `("gcDelay", "1s")`.
    pub fn with_storage(mut self, key: &str, value: Value) -> Self {
        self.storage.insert(key.to_owned(), value);
        self
    }

    pub fn with_extensions(mut self, extensions: Value) -> Self {
        self.extensions = Some(extensions);
        self
    }

    /// Sets one more key of the `http` section, e.g. `("port", "5000")`.
    pub fn with_http(mut self, key: &str, value: Value) -> Self {
        self.http.insert(key.to_owned(), value);
        self
    }

    /// Sets an environment variable of the process.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets a top-level section, e.g. `("cluster", {...})`.
    pub fn with_section(mut self, key: &str, value: Value) -> Self {
        self.top.insert(key.to_owned(), value);
        self
    }

    fn to_json(&self, root: &Path) -> Value {
        let mut config = json!({
            "distSpecVersion": "1.1.1",
            "storage": {
                "rootDirectory": root,
                "dedupe": self.dedupe,
                "gc": self.gc,
                "commit": self.commit,
            },
            "http": { "address": "127.0.0.1", "port": "0", "compat": self.compat },
            "log": { "level": "debug" },
        });
        for (k, v) in &self.storage {
            config["storage"][k] = v.clone();
        }
        if let Some(extensions) = &self.extensions {
            config["extensions"] = extensions.clone();
        }
        for (k, v) in &self.http {
            config["http"][k] = v.clone();
        }
        for (k, v) in &self.top {
            config[k] = v.clone();
        }
        config
    }
}

/// A running `zot serve` process.
pub struct Registry {
    dir: TempDir,
    config_path: PathBuf,
    root: PathBuf,
    child: Option<Child>,
    addr: String,
    /// Everything the current process printed, stdout and stderr interleaved
    /// by line, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
}

impl Registry {
    /// Start a registry with the default config (no compat, dedupe on).
    pub fn start() -> Registry {
        Registry::start_with(Config::default())
    }

    pub fn start_with(config: Config) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("zot-e2e-")
            .tempdir()
            .expect("create tempdir");
        let root = config
            .root
            .clone()
            .unwrap_or_else(|| dir.path().join("data/root"));
        let config_path = dir.path().join("config.json");
        let text = serde_json::to_vec_pretty(&config.to_json(&root)).expect("serialize config");
        std::fs::write(&config_path, text).expect("write config");
        let mut registry = Registry {
            dir,
            config_path,
            root,
            child: None,
            addr: String::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            env: config.env.clone(),
        };
        registry.spawn();
        registry
    }

    /// Start the binary on the existing config and wait for `listening`.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "registry already running");
        self.log = Arc::new(Mutex::new(Vec::new()));
        let mut child = Command::new(binary())
            .arg("serve")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary()));

        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout is piped");
        let log = Arc::clone(&self.log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut log) = log.lock() {
                    log.push(line.clone());
                }
                // The receiver is gone once startup is over; keep draining so
                // the server never blocks on a full pipe.
                let _ = tx.send(line);
            }
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::clone(&self.log);
        thread::spawn(move || {
            let mut reader = BufReader::new(&mut stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Ok(mut log) = log.lock() {
                    log.push(format!("[stderr] {}", line.trim_end()));
                }
                line.clear();
            }
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        self.child = Some(child);

        let start = Instant::now();
        loop {
            let left = STARTUP_DEADLINE.saturating_sub(start.elapsed());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(addr) = listening_address(&line) {
                        self.addr = addr;
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting.
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    thread::sleep(Duration::from_millis(100));
                    panic!(
                        "zot exited ({status:?}) before logging \"listening\"; output:\n{}",
                        self.logs()
                    );
                }
            }
            if start.elapsed() >= STARTUP_DEADLINE {
                let _ = self.kill9();
                panic!(
                    "zot did not log {{\"message\":\"listening\",\"address\":...}} within {:?}; output:\n{}",
                    STARTUP_DEADLINE,
                    self.logs()
                );
            }
        }
    }

    /// `127.0.0.1:PORT`, as clients write it in image references.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `docker://127.0.0.1:PORT/<repo_and_ref>` for skopeo.
    pub fn docker_ref(&self, repo_and_ref: &str) -> String {
        format!("docker://{}/{repo_and_ref}", self.addr)
    }

    /// The storage root (`storage.rootDirectory`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory that lives as long as this registry.
    pub fn work_dir(&self) -> PathBuf {
        let work = self.dir.path().join("work");
        std::fs::create_dir_all(&work).expect("create work dir");
        work
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// A plain-HTTP client for this registry.
    pub fn client(&self) -> super::Client {
        super::Client::new(&self.url())
    }

    /// Process id of the running binary.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak resident memory (`VmHWM`, KiB) of the running binary so far.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.pid().expect("registry is running");
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Everything the current process printed so far, including what it
    /// logged just before: its log writer gathers lines for up to 2 ms
    /// before writing them (`log_queue.rs`), so this first gives it time.
    pub fn logs(&self) -> String {
        std::thread::sleep(Duration::from_millis(20));
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Crash: SIGKILL the process and reap it.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Graceful stop: SIGTERM, then wait up to `deadline` for the exit.
    /// Returns `None` if it did not exit in time (it is then SIGKILLed).
    pub fn terminate(&mut self, deadline: Duration) -> Option<ExitStatus> {
        self.stop_with("-TERM", deadline)
    }

    /// Like [`Registry::terminate`] with SIGINT (Ctrl-C).
    pub fn interrupt(&mut self, deadline: Duration) -> Option<ExitStatus> {
        self.stop_with("-INT", deadline)
    }

    /// Send a signal (`-TERM`, `-INT`, ...) without waiting.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("registry is running").to_string();
        let sent = Command::new("kill").args([signal, &pid]).status();
        assert!(
            sent.map(|s| s.success()).unwrap_or(false),
            "could not send {signal} to {pid}"
        );
    }

    /// Wait up to `deadline` for the process to exit by itself. Returns
    /// `None` if it did not (it is then SIGKILLed).
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn stop_with(&mut self, signal: &str, deadline: Duration) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.signal(signal);
        self.wait_exit(deadline)
    }

    /// Start the binary again on the same config and storage root (after
    /// [`Registry::kill9`] or [`Registry::terminate`]). The port may change.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- zot output ({}) ---\n{}\n--- end of zot output ---",
                self.addr,
                self.logs()
            );
        }
    }
}

/// The bound address from a `{"message":"listening","address":"..."}` log
/// line. Accepts the fields at the top level or under `fields` (the
/// `tracing-subscriber` JSON layout).
fn listening_address(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let scopes = [Some(&value), value.get("fields")];
    let message = scopes
        .iter()
        .flatten()
        .find_map(|v| v.get("message")?.as_str())?;
    if message != "listening" {
        return None;
    }
    scopes
        .iter()
        .flatten()
        .find_map(|v| Some(v.get("address")?.as_str()?.to_owned()))
}

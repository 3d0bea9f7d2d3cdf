//! A Redis server for tests (`redis-server` from Debian, which
//! `scripts/test` installs): a free loopback port, no persistence, stopped
//! when dropped or when the test process is gone (a shell watchdog, as for
//! SeaweedFS).

#![allow(dead_code, reason = "each test binary including this uses part of it")]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    dir: PathBuf,
    watchdog: Child,
}

impl Redis {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"))
            .keep();
        let script = r#"
            redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
            r=$!
            while kill -0 "$OWNER" 2>/dev/null && kill -0 "$r" 2>/dev/null && [ ! -e "$DIR/stop" ]; do
                sleep 0.3
            done
            { kill "$r"; wait "$r"; } 2>/dev/null
            rm -rf "$DIR"
        "#;
        let watchdog = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PORT", port.to_string())
            .env("DIR", &dir)
            .env("OWNER", std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("bash: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            dir,
            watchdog,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let _ = self.watchdog.wait();
    }
}

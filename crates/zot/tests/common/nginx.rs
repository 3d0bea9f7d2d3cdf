//! nginx (Debian's, which `scripts/test` installs) as a round robin load
//! balancer in front of registry instances: request and response bodies
//! streamed both ways, no stickiness, stopped (with its workers) on drop.

use std::time::{Duration, Instant};

/// nginx in front of `upstreams`, round robin, bodies streamed both ways.
pub struct Nginx {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(upstreams: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path().display();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let servers: String = upstreams
            .iter()
            .map(|addr| format!("server {addr};"))
            .collect();
        // As root, nginx's workers would switch to `nobody`; stay this user.
        let user = if user_id() == "0" { "user root;" } else { "" };
        let conf = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n upstream zot {{ {servers} }}\n\
             server {{\n  listen 127.0.0.1:{port};\n  client_max_body_size 0;\n\
               proxy_request_buffering off;\n  proxy_buffering off;\n  proxy_http_version 1.1;\n\
               location / {{ proxy_pass http://zot; proxy_set_header Host $http_host; }}\n }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap_or_else(|e| panic!("{e}"));
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("nginx (scripts/test installs it): {e}"));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would orphan them).
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn user_id() -> String {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

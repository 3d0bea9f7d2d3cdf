//! A real NATS server (Debian's `nats-server`) on a free port, for the
//! test's lifetime, and a subscriber that collects what it receives.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct NatsServer {
    child: Child,
    pub port: u16,
}

fn binary() -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = format!("{dir}/nats-server");
        if std::path::Path::new(&p).is_file() {
            return p;
        }
    }
    panic!("nats-server is not installed (scripts/test installs Debian's nats-server)");
}

impl NatsServer {
    /// Starts `nats-server` requiring `user`/`pass`.
    pub fn start(user: &str, pass: &str) -> NatsServer {
        NatsServer::start_with(&["--user", user, "--pass", pass])
    }

    /// Starts `nats-server` with more arguments (TLS, users).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NatsServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages received on a subject, parsed as JSON.
pub struct Subscriber {
    got: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Subscriber {
    /// Subscribed once this returns.
    pub fn start(url: &str, user: &str, pass: &str, subject: &str) -> Subscriber {
        let options = async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into());
        Subscriber::start_with(url, options, subject)
    }

    /// [`Subscriber::start`] with its own connection options (TLS).
    pub fn start_with(url: &str, options: async_nats::ConnectOptions, subject: &str) -> Subscriber {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let got = Arc::new(Mutex::new(Vec::new()));
        let (url, subject) = (url.to_owned(), subject.to_owned());
        let mut sub = runtime.block_on(async {
            let client = options.connect(url).await.expect("subscriber connects");
            let sub = client.subscribe(subject).await.expect("subscribe");
            client.flush().await.expect("flush the subscription");
            // The server has the subscription once a round trip returns.
            let _ = client.request(client.new_inbox(), "".into()).await;
            (client, sub)
        });
        let g = got.clone();
        runtime.spawn(async move {
            use futures_util::StreamExt;
            let _client = &sub.0;
            while let Some(msg) = sub.1.next().await {
                let v = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
                g.lock().expect("received").push(v);
            }
        });
        Subscriber {
            got,
            _runtime: runtime,
        }
    }

    /// Waits (at most 60 s) until `done` holds for what was received.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.got.lock().expect("received").clone();
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waiting for {what}; got {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

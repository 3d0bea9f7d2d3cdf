//! A Redis Cluster for tests: `redis-server --cluster-enabled yes` nodes on
//! free ports of 127.0.0.1 (client and bus ports both chosen free), joined
//! as masters by `redis-cli --cluster create`; replicas added on demand,
//! and the two ways a slot changes hands mid-run: a migration to another
//! master ([`RedisCluster::move_slot`], `CLUSTER SETSLOT` and `MIGRATE`,
//! key by key as `redis-cli --cluster reshard` does, with pauses so that
//! clients meet the slot half moved) and a failover to a replica
//! ([`RedisCluster::failover`], `CLUSTER FAILOVER`). Stopped with the value.
//! Included by the tests that use it (`#[path]`), beside `mod.rs`.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ClusterNode {
    pub port: u16,
    pub bus: u16,
    /// `requirepass` (and `masterauth`) when set.
    password: Option<String>,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

impl ClusterNode {
    fn start(password: Option<&str>) -> ClusterNode {
        let (port, bus) = (free_port(), free_port());
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut cmd = Command::new("redis-server");
        if let Some(p) = password {
            cmd.args(["--requirepass", p, "--masterauth", p]);
        }
        let mut child = cmd
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .arg("--cluster-config-file")
            .arg(dir.path().join("nodes.conf"))
            .args(["--cluster-node-timeout", "5000", "--save", ""])
            .args(["--appendonly", "no", "--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(dir.path())
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
                _ => panic!("redis-server (cluster node) did not start"),
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in time"
            );
        }
        std::thread::spawn(move || for _ in lines {});
        ClusterNode {
            port,
            bus,
            password: password.map(str::to_owned),
            child,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://[:password@]127.0.0.1:<port>`
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@{}", self.addr()),
            None => format!("redis://{}", self.addr()),
        }
    }

    pub fn conn(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("client");
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("a connection to a cluster node")
    }

    /// A command's answer.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        cmd.query(&mut self.conn())
            .unwrap_or_else(|e| panic!("a command on node {}: {e}", self.port))
    }

    pub fn id(&self) -> String {
        self.query(redis::cmd("CLUSTER").arg("MYID"))
    }

    /// The node's keys (all of them: test clusters are small).
    pub fn keys(&self) -> Vec<String> {
        let keys: Vec<Vec<u8>> = self.query(redis::cmd("KEYS").arg("*"));
        keys.iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    pub fn is_master(&self) -> bool {
        let role: redis::Value = self.query(&redis::cmd("ROLE"));
        matches!(role, redis::Value::Array(ref v) if matches!(
            v.first(),
            Some(redis::Value::BulkString(b)) if b == b"master"
        ))
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (polling) until `f` holds, or panics after `limit`.
fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
}

impl RedisCluster {
    /// `masters` nodes sharing the 16384 slots, no replicas.
    pub fn start(masters: usize) -> RedisCluster {
        RedisCluster::start_with(masters, None)
    }

    /// [`RedisCluster::start`], every node requiring `password` (of
    /// clients and of each other).
    pub fn start_with(masters: usize, password: Option<&str>) -> RedisCluster {
        let nodes: Vec<ClusterNode> = (0..masters).map(|_| ClusterNode::start(password)).collect();
        let mut cli = Command::new("redis-cli");
        if let Some(p) = password {
            cli.args(["-a", p, "--no-auth-warning"]);
        }
        let out = cli
            .args(["--cluster", "create"])
            .args(nodes.iter().map(ClusterNode::addr))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Every node sees the cluster as healthy.
    fn wait_ok(&self) {
        for n in &self.nodes {
            wait_for(Duration::from_secs(30), "cluster_state:ok", || {
                let info: String = n.query(redis::cmd("CLUSTER").arg("INFO"));
                info.contains("cluster_state:ok")
            });
        }
    }

    /// zot's cluster URL: the first node, the others as `addr=` keys.
    pub fn url(&self) -> String {
        let rest: Vec<String> = self.nodes[1..]
            .iter()
            .map(|n| format!("addr={}", n.addr()))
            .collect();
        format!("redis://{}?{}", self.nodes[0].addr(), rest.join("&"))
    }

    /// The index of the node serving `slot` as master.
    pub fn owner(&self, slot: u16) -> usize {
        let ask = &self.nodes[0];
        let reply: redis::Value = ask.query(redis::cmd("CLUSTER").arg("SLOTS"));
        let redis::Value::Array(ranges) = reply else {
            panic!("CLUSTER SLOTS: {reply:?}");
        };
        for range in ranges {
            let redis::Value::Array(parts) = range else {
                continue;
            };
            let (Some(redis::Value::Int(lo)), Some(redis::Value::Int(hi))) =
                (parts.first(), parts.get(1))
            else {
                continue;
            };
            if (*lo..=*hi).contains(&i64::from(slot)) {
                let Some(redis::Value::Array(master)) = parts.get(2) else {
                    panic!("no master in {parts:?}");
                };
                let Some(redis::Value::Int(port)) = master.get(1) else {
                    panic!("no port in {master:?}");
                };
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port) == *port)
                    .unwrap_or_else(|| panic!("port {port} is no node of the test"));
            }
        }
        panic!("slot {slot} is not served");
    }

    /// Moves `slot` from its master to master `to`, a few keys at a time
    /// with a pause in between (clients meet the slot half moved).
    pub fn move_slot(&self, slot: u16, to: usize) {
        let from = self.owner(slot);
        assert_ne!(from, to, "slot {slot} already on node {to}");
        let (src, dst) = (&self.nodes[from], &self.nodes[to]);
        let (src_id, dst_id) = (src.id(), dst.id());
        let setslot = |node: &ClusterNode, state: &str, id: &str| {
            let _: () = node.query(
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg(state)
                    .arg(id),
            );
        };
        setslot(dst, "IMPORTING", &src_id);
        setslot(src, "MIGRATING", &dst_id);
        let mut moved = 0;
        loop {
            let keys: Vec<Vec<u8>> =
                src.query(redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(20));
            if keys.is_empty() {
                break;
            }
            moved += keys.len();
            let _: () = src.query(
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(dst.port)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(keys),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The destination first, then the source, then the other masters.
        setslot(dst, "NODE", &dst_id);
        setslot(src, "NODE", &dst_id);
        for (i, n) in self.nodes.iter().enumerate() {
            if i != from && i != to && n.is_master() {
                setslot(n, "NODE", &dst_id);
            }
        }
        eprintln!("slot {slot}: {moved} keys moved from node {from} to node {to}");
        self.wait_ok();
    }

    /// A new node, a replica of node `master`, in sync with it.
    pub fn add_replica(&mut self, master: usize) -> usize {
        let node = ClusterNode::start(self.nodes[0].password.as_deref());
        let first = &self.nodes[0];
        let _: () = node.query(
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(first.port)
                .arg(first.bus),
        );
        let id = self.nodes[master].id();
        wait_for(
            Duration::from_secs(30),
            "the new node knows the master",
            || {
                let nodes: String = node.query(redis::cmd("CLUSTER").arg("NODES"));
                nodes.contains(&id)
            },
        );
        let _: () = node.query(redis::cmd("CLUSTER").arg("REPLICATE").arg(&id));
        wait_for(Duration::from_secs(30), "the replica is in sync", || {
            let info: String = node.query(redis::cmd("INFO").arg("replication"));
            info.contains("master_link_status:up")
        });
        self.nodes.push(node);
        self.wait_ok();
        self.nodes.len() - 1
    }

    /// `CLUSTER FAILOVER` on `replica`: it becomes the master of its
    /// master's slots, which turns into its replica. Asked again when a
    /// try did not complete (a manual failover gives up after 5 s, which a
    /// busy machine can need).
    pub fn failover(&self, replica: usize) {
        let node = &self.nodes[replica];
        let start = Instant::now();
        while !node.is_master() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the replica did not become the master"
            );
            let _: () = node.query(redis::cmd("CLUSTER").arg("FAILOVER"));
            let asked = Instant::now();
            while !node.is_master() && asked.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.wait_ok();
    }
}

/// Sets a flag when dropped, also by a panic: the threads a test stops
/// with it end before `std::thread::scope` waits for them.
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

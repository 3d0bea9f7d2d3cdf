//! A private Docker engine for the tests: Debian's `dockerd` started as root
//! with its own data root, exec root, pid file and socket in a temporary
//! folder, no iptables and no bridge (no container ever runs: images come
//! from `docker import` of a tarball the test makes), the `vfs` storage
//! driver (works on any file system, including overlays), and stopped when
//! dropped. The client gets `DOCKER_HOST` and a `DOCKER_CONFIG` of its own,
//! so logins never touch the machine's.
//!
//! Needs root and the `docker.io` package (`scripts/test` installs it); a
//! missing engine is a failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::{output, run, tool};

/// How long the engine may take to answer after starting.
const START_DEADLINE: Duration = Duration::from_secs(90);

pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    host: String,
    /// `/etc/docker/certs.d/<addr>` folders made by [`Dockerd::trust`].
    trusted: Vec<PathBuf>,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        let euid = super::tools::run_stdout(tool("id").arg("-u"));
        assert_eq!(
            euid.trim(),
            "0",
            "the Docker engine tests run dockerd, which needs root (CI runs as root)"
        );
        // Short paths: the sockets under the exec root must fit sun_path.
        let dir = tempfile::Builder::new()
            .prefix("zd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let host = format!("unix://{}", p("d.sock"));
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log file");
        let child = tool("dockerd")
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                "--data-root",
                &p("data"),
                "--exec-root",
                &p("x"),
                "--pidfile",
                &p("d.pid"),
                "--host",
                &host,
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut engine = Dockerd {
            child,
            dir,
            host,
            trusted: Vec::new(),
        };
        let start = Instant::now();
        loop {
            let (out, _) = output(engine.docker(&engine.dir.path().join("cfg")).arg("info"));
            if out.status.success() {
                break;
            }
            if let Ok(Some(status)) = engine.child.try_wait() {
                panic!("dockerd exited ({status}):\n{}", engine.log());
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "dockerd did not answer within {START_DEADLINE:?}:\n{}",
                engine.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        engine
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The docker client for this engine, with `config` as its config
    /// folder (logins are stored there).
    pub fn docker(&self, config: &Path) -> Command {
        let mut cmd = tool("docker");
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY");
        cmd
    }

    /// Makes an image `reference` with one file whose content is `seed`,
    /// by `docker import` of a tarball.
    pub fn import(&self, config: &Path, reference: &str, seed: &str) {
        let tar = seed_tarball(self.dir.path(), seed);
        run(self.docker(config).arg("import").arg(&tar).arg(reference));
    }

    /// Trusts `ca` for a registry at `addr` (docker reads
    /// `/etc/docker/certs.d/<addr>/ca.crt` on every connection); undone
    /// when the engine is dropped.
    pub fn trust(&mut self, addr: &str, ca: &Path) {
        let dir = PathBuf::from("/etc/docker/certs.d").join(addr);
        std::fs::create_dir_all(&dir).expect("mkdir certs.d");
        std::fs::copy(ca, dir.join("ca.crt")).expect("copy CA");
        self.trusted.push(dir);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.trusted {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A tarball under `dir` holding one file, `seed.txt`, whose content is
/// `seed`: the root file system of a one-layer image for `docker import`
/// or `podman import`.
pub fn seed_tarball(dir: &Path, seed: &str) -> PathBuf {
    let src = dir.join(format!(
        "src-{}",
        &super::sha256_digest(seed.as_bytes())[7..19]
    ));
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("seed.txt"), seed).expect("write");
    let tar = src.with_extension("tar");
    run(tool("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

//! A podman whose state lives in a temporary directory: the `vfs` storage
//! driver (no overlay mounts needed), `cgroupfs`, and a file events
//! backend, so nothing touches the machine's container storage and no
//! daemon or systemd is needed.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use super::{run_stdout, tool};

/// A podman whose storage lives in its own temporary directory.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("zot-e2e-podman-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        let storage_conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            root.display(),
            runroot.display()
        );
        std::fs::write(dir.path().join("storage.conf"), storage_conf).expect("write storage.conf");
        // No unqualified-search registries: every reference here is fully
        // qualified, and nothing may reach out to the network.
        std::fs::write(
            dir.path().join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .expect("write registries.conf");
        Podman { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = tool("podman");
        cmd.env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        cmd
    }

    pub fn image_digest(&self, reference: &str) -> String {
        run_stdout(
            self.cmd()
                .args(["image", "inspect", "--format", "{{.Digest}}", reference]),
        )
        .trim()
        .to_owned()
    }
}

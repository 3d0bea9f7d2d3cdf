//! Shared by the integration tests: building layers (tar, gzip, zstd) from
//! real files of this machine and from bytes, running the scanner over them
//! as async streams, and running the real tools used as oracles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use zot_scan::{Inventory, Limits, ScanError, Scanner};

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A layer being built.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(1_700_000_000);
    header
}

impl Layer {
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    pub fn file_mode(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder
            .append_data(&mut h, path, data)
            .expect("append file");
        self
    }

    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_mode(path, data, 0o644)
    }

    pub fn exec(self, path: &str, data: &[u8]) -> Self {
        self.file_mode(path, data, 0o755)
    }

    /// A file of this machine, at `path` in the layer, with its mode.
    pub fn host_file(self, path: &str, host: impl AsRef<Path>) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let host = host.as_ref();
        let data = std::fs::read(host).unwrap_or_else(|e| panic!("read {}: {e}", host.display()));
        let mode = std::fs::metadata(host).expect("stat").permissions().mode() & 0o7777;
        self.file_mode(path, &data, mode)
    }

    /// Every file under `host` accepted by `keep`, at `prefix` + its relative path.
    pub fn host_tree(mut self, prefix: &str, host: &Path, keep: &dyn Fn(&Path) -> bool) -> Self {
        for file in walk(host) {
            if keep(&file) {
                let rel = file.strip_prefix(host).expect("under root");
                self = self.host_file(&format!("{prefix}/{}", rel.display()), &file);
            }
        }
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.builder
            .append_data(&mut h, path, &[][..])
            .expect("append dir");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append symlink");
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append hard link");
        self
    }

    /// Removes `path` of lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"")
    }

    /// Hides everything lower layers had under `dir`.
    pub fn opaque(self, dir: &str) -> Self {
        let marker = if dir.is_empty() {
            "./.wh..wh..opq".to_string()
        } else {
            format!("{dir}/.wh..wh..opq")
        };
        self.file(&marker, b"")
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }

    pub fn gzip(self) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&self.tar()).expect("gzip");
        encoder.finish().expect("gzip")
    }

    pub fn zstd(self) -> Vec<u8> {
        zstd::stream::encode_all(&self.tar()[..], 3).expect("zstd")
    }
}

/// Files (not links) under `root`, sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Scans layers (media type, bytes) as async streams, bottom first.
pub fn try_scan_with(layers: Vec<(&str, Vec<u8>)>, limits: Limits) -> Result<Inventory, ScanError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut scanner = Scanner::new(limits);
        for (media_type, bytes) in layers {
            scanner
                .add_layer(media_type, std::io::Cursor::new(bytes))
                .await?;
        }
        Ok(scanner.finish())
    })
}

pub fn scan(layers: Vec<(&str, Vec<u8>)>) -> Inventory {
    try_scan_with(layers, Limits::default()).expect("scan")
}

/// Runs a command and returns its standard output; panics on failure.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Whether a tool is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Requires a tool that scripts/test installs; a clear failure otherwise.
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "`{tool}` is needed by this test; scripts/test installs it"
    );
}

/// (name, version) pairs of an ecosystem, sorted.
pub fn pairs(inventory: &Inventory, ecosystem: zot_scan::Ecosystem) -> Vec<(String, String)> {
    let mut out: Vec<_> = inventory
        .of(ecosystem)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A command's standard output whatever its exit status (`npm ls` exits 1
/// when optional development packages are absent, and still lists).
pub fn stdout_of(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

impl Layer {
    /// A regular file whose stored name is `name` verbatim (`..` and all),
    /// which the tar crate's checked setters refuse to write.
    pub fn raw_file(mut self, name: &[u8], data: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.builder.append(&h, data).expect("append raw");
        self
    }
}

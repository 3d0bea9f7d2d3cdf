//! Debian-like images for the `cve-*` workloads: gzip layers of real tar
//! streams, as a Debian image's layers look to a scanner.
//!
//! - [`big_image`]: five layers whose *compressed* sizes add up to the
//!   size asked for (40%, 25%, 15%, 12%, 8%): executables (ELF magic, mode
//!   0755, so the scanner reads them looking for Go and Rust build
//!   information), shared libraries, documentation (compressible text),
//!   locale files; layer 0 holds `etc/os-release` (Debian 12) and a dpkg
//!   status database of [`PACKAGES`] packages, one of them `libssl3` from
//!   source `openssl` at [`OPENSSL_VULNERABLE`]; layer 3 Python
//!   `*.dist-info/METADATA` files, layer 4 npm `package.json` files and a
//!   whiteout of a layer-1 executable.
//! - [`small_layer`]: one small layer of a dpkg status database (the same
//!   packages, one version depending on a number), for the 10,000
//!   inventories of the re-match workload.
//!
//! The same arguments give the same bytes (seeded generators), so digests
//! are stable from run to run and nothing is pushed twice.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::data::Blob;

/// Packages in the dpkg status database of every generated image.
pub const PACKAGES: usize = 180;
/// The installed `libssl3` (source `openssl`): below the fixed version of
/// the record [`openssl_record`] writes.
pub const OPENSSL_VULNERABLE: &str = "3.0.11-1~deb12u2";
/// Shares of the big image's size per layer, in percent.
const SHARES: [u64; 5] = [40, 25, 15, 12, 8];
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
    VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// One gzip layer: its blob and the digest of its uncompressed tar.
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
}

/// Writes to `inner` and hashes what passes (the uncompressed tar).
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type TarGz = tar::Builder<Hashing<GzEncoder<Vec<u8>>>>;

fn new_layer() -> TarGz {
    let gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut b = tar::Builder::new(Hashing {
        inner: gz,
        hash: Sha256::new(),
    });
    b.mode(tar::HeaderMode::Deterministic);
    b
}

fn add(b: &mut TarGz, path: &str, mode: u32, content: &[u8]) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, content)?;
    Ok(())
}

fn compressed_len(b: &TarGz) -> u64 {
    b.get_ref().inner.get_ref().len() as u64
}

fn finish(b: TarGz) -> anyhow::Result<Layer> {
    let hashing = b.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(hashing.hash.finalize()));
    let bytes = hashing.inner.finish()?;
    Ok(Layer {
        blob: Blob::from_bytes(Bytes::from(bytes)),
        diff_id,
    })
}

/// A seeded 64-bit generator (splitmix64).
struct Rng {
    state: u64,
    /// The largest [`Rng::bytes`] returns.
    room: u64,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            room: u64::MAX,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    /// Between `lo` and `hi` random bytes (at most `room`).
    fn bytes(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let len = self.range(lo, hi).min(self.room) as usize;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The dpkg status database: [`PACKAGES`] packages; `libssl3` (source
/// `openssl`) at [`OPENSSL_VULNERABLE`], `zlib1g` (source `zlib`) at
/// `1:1.2.13.dfsg-1`, and `pkg-0007` at a version depending on `variant`.
pub fn dpkg_status(variant: u64) -> String {
    let mut s = String::new();
    let entry = |s: &mut String, name: &str, source: Option<&str>, version: &str| {
        s.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
             Installed-Size: 1024\nMaintainer: Debian <debian@example.org>\nArchitecture: amd64\n"
        ));
        if let Some(src) = source {
            s.push_str(&format!("Source: {src}\n"));
        }
        s.push_str(&format!(
            "Version: {version}\nDepends: libc6 (>= 2.34)\nDescription: {name} for the benchmark\n \
             A package of a generated Debian-like image.\n\n"
        ));
    };
    entry(&mut s, "libssl3", Some("openssl"), OPENSSL_VULNERABLE);
    entry(&mut s, "zlib1g", Some("zlib"), "1:1.2.13.dfsg-1");
    for k in 2..PACKAGES {
        let version = if k == 7 {
            format!("1.{variant}-1")
        } else {
            format!("{}.{}-{}", k % 5 + 1, k % 17, k % 3 + 1)
        };
        let name = format!("pkg-{k:04}");
        let source = format!("src-{:04}", k / 2);
        entry(&mut s, &name, Some(&source), &version);
    }
    s
}

/// Adds generated files until the compressed layer reaches `target` bytes.
fn fill(b: &mut TarGz, layer: usize, target: u64, rng: &mut Rng) -> anyhow::Result<()> {
    let text = "Permission is hereby granted, free of charge, to any person obtaining a copy \
                of this software and associated documentation files.\n";
    let mut k = 0u64;
    while compressed_len(b) < target {
        // Random files no larger than the room left (so the layer ends near its target).
        rng.room = (target - compressed_len(b)).max(4096);
        match k % 10 {
            0..=2 => {
                let mut body = b"\x7fELF\x02\x01\x01\0".to_vec();
                body.extend(rng.bytes(8 << 10, 512 << 10));
                add(b, &format!("usr/bin/tool-{layer}-{k}"), 0o755, &body)?;
            }
            3..=5 => {
                let body = rng.bytes(16 << 10, 1 << 20);
                let path = format!("usr/lib/x86_64-linux-gnu/libzb{layer}_{k}.so.1");
                add(b, &path, 0o644, &body)?;
            }
            6..=8 => {
                let body = text.repeat(rng.range(8, 128) as usize);
                add(
                    b,
                    &format!("usr/share/doc/pkg-{layer}-{k}/copyright"),
                    0o644,
                    body.as_bytes(),
                )?;
            }
            _ => {
                let body = rng.bytes(4 << 10, 64 << 10);
                let path = format!("usr/share/locale/de/LC_MESSAGES/pkg-{layer}-{k}.mo");
                add(b, &path, 0o644, &body)?;
            }
        }
        k += 1;
    }
    Ok(())
}

/// The five layers of a Debian-like image of about `size` compressed bytes.
pub fn big_image(size: u64) -> anyhow::Result<Vec<Layer>> {
    let mut rng = Rng::new(0x7a62_6465_6269_616e);
    let mut layers = Vec::new();
    for (i, share) in SHARES.iter().enumerate() {
        let mut b = new_layer();
        match i {
            0 => {
                add(&mut b, "etc/os-release", 0o644, OS_RELEASE.as_bytes())?;
                add(
                    &mut b,
                    "var/lib/dpkg/status",
                    0o644,
                    dpkg_status(0).as_bytes(),
                )?;
            }
            3 => {
                for p in 0..40 {
                    let meta = format!("Metadata-Version: 2.1\nName: zbpy{p}\nVersion: 1.{p}.0\n");
                    let path =
                        format!("usr/lib/python3/dist-packages/zbpy{p}-1.{p}.0.dist-info/METADATA");
                    add(&mut b, &path, 0o644, meta.as_bytes())?;
                }
            }
            4 => {
                for p in 0..60 {
                    let json = format!("{{\"name\": \"zbnode{p}\", \"version\": \"2.{p}.1\"}}");
                    let path = format!("app/node_modules/zbnode{p}/package.json");
                    add(&mut b, &path, 0o644, json.as_bytes())?;
                }
                add(&mut b, "usr/bin/.wh.tool-1-0", 0o644, b"")?;
            }
            _ => {}
        }
        fill(&mut b, i, size * share / 100, &mut rng)?;
        layers.push(finish(b)?);
    }
    Ok(layers)
}

/// The os-release layer every small image shares.
pub fn os_layer() -> anyhow::Result<Layer> {
    let mut b = new_layer();
    add(&mut b, "etc/os-release", 0o644, OS_RELEASE.as_bytes())?;
    finish(b)
}

/// A layer holding only the dpkg status database of `variant`.
pub fn small_layer(variant: u64) -> anyhow::Result<Layer> {
    let mut b = new_layer();
    add(
        &mut b,
        "var/lib/dpkg/status",
        0o644,
        dpkg_status(variant).as_bytes(),
    )?;
    finish(b)
}

/// A Debian 12 OSV record: `id` (aliased to `cve`) affects source package
/// `source` before `fixed`, with a CVSS v3.1 vector of 7.5 (HIGH).
pub fn record(id: &str, cve: &str, source: &str, fixed: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "modified": "2026-12-01T00:00:00Z",
        "aliases": [cve],
        "summary": format!("{source}: benchmark flaw {cve}"),
        "details": format!("A flaw in {source} for the benchmark ({cve})."),
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" }],
        "affected": [{
            "package": { "ecosystem": "Debian:12", "name": source },
            "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }],
        }],
    })
}

/// The record every generated image is affected by (through `libssl3`).
pub fn openssl_record() -> serde_json::Value {
    record(
        "ZB-BENCH-OPENSSL",
        "CVE-2099-9001",
        "openssl",
        "3.0.13-1~deb12u1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_gzip_tars_of_the_asked_size() -> anyhow::Result<()> {
        let layers = big_image(4 << 20)?;
        assert_eq!(layers.len(), 5);
        let total: u64 = layers.iter().map(|l| l.blob.size()).sum();
        assert!(
            (4 << 20..(4 << 20) + (400 << 10)).contains(&total),
            "{total}"
        );
        let again = big_image(4 << 20)?;
        assert_eq!(layers[0].blob.digest, again[0].blob.digest, "seeded");
        let bytes: Vec<u8> = layers[0].blob.body().concat();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut names = Vec::new();
        for e in tar.entries()? {
            names.push(e?.path()?.to_string_lossy().into_owned());
        }
        assert_eq!(names[..2], ["etc/os-release", "var/lib/dpkg/status"]);
        assert!(names.len() > 4, "{names:?}");
        let status = dpkg_status(3);
        assert_eq!(status.matches("Package: ").count(), PACKAGES);
        assert!(status.contains("Package: pkg-0007\n") && status.contains("Version: 1.3-1\n"));
        assert_ne!(small_layer(1)?.blob.digest, small_layer(2)?.blob.digest);
        Ok(())
    }
}

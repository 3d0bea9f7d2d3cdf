//! `zb seed-layouts`: a large search data set written straight to disk as
//! one OCI image layout per repository, for a registry to pick up at
//! start-up (a layout dropped into the storage root is served after a
//! restart, and its metadata rebuilt from it).
//!
//! Invariants of what is written:
//! - every blob file is named by the sha256 of its bytes, and every
//!   descriptor's size is the file's length;
//! - `index.json` lists each tag once, with `org.opencontainers.image.ref.name`;
//!   a multi-arch tag points to an image index whose two children
//!   (linux/amd64, linux/arm64) are in the same layout;
//! - layers are real uncompressed tar archives (one file of seeded random
//!   bytes), so the config's `diff_ids` are the layer digests;
//! - configs carry os, architecture, created, author, labels and one
//!   history entry per layer plus one `empty_layer` entry; manifests carry
//!   the OCI annotations (created, title, description, vendor, licenses,
//!   source, version);
//! - the same arguments give the same bytes (names, digests, times), so
//!   every run and every server sees the same data set.
//!
//! Layer sharing mimics real images: layer 0 is one of [`BASES`] base
//! layers (per architecture) shared across repositories, layer 1 is shared
//! by every tag of a repository, later layers are the tag's own. Names come
//! from [`names`] so that the search workloads can find them.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::names;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Base layers shared across repositories (per architecture).
pub const BASES: usize = 8;
/// Every image's `created` is this instant plus an offset (2024-01-01).
const EPOCH: u64 = 1_704_067_200;
const ARCHES: [&str; 2] = ["amd64", "arm64"];

/// What to write.
#[derive(Clone, Debug)]
pub struct Plan {
    pub root: PathBuf,
    pub prefix: String,
    pub repos: usize,
    pub tags: usize,
    pub layers: usize,
    /// Share of tags (0..=1) that are two-platform image indexes.
    pub index_share: f64,
    /// Bytes of the file in each layer (about; ±50%).
    pub layer_size: usize,
    pub big_repo: Option<String>,
    pub big_tags: usize,
    pub threads: usize,
}

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    pub repos: usize,
    pub tags: u64,
    pub indexes: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Writes every layout of the plan; existing repository directories are
/// replaced.
pub fn write(plan: &Plan) -> anyhow::Result<Written> {
    anyhow::ensure!(plan.tags > 0 && plan.layers > 0, "need tags and layers");
    anyhow::ensure!(
        (0.0..=1.0).contains(&plan.index_share),
        "--index-share is a fraction between 0 and 1"
    );
    std::fs::create_dir_all(&plan.root)
        .with_context(|| format!("creating {}", plan.root.display()))?;
    let mut jobs: Vec<(String, usize, usize)> = (0..plan.repos)
        .map(|i| (names::repo(&plan.prefix, i), i, plan.tags))
        .collect();
    if let Some(big) = &plan.big_repo {
        jobs.push((big.clone(), plan.repos, plan.big_tags));
    }
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let (tags, indexes, blobs, bytes) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let result: anyhow::Result<()> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..plan.threads.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some((name, i, n)) = jobs.get(j) else {
                            return Ok(());
                        };
                        let w = write_repo(plan, name, *i, *n)
                            .with_context(|| format!("writing {name}"))?;
                        tags.fetch_add(w.tags, Ordering::Relaxed);
                        indexes.fetch_add(w.indexes, Ordering::Relaxed);
                        blobs.fetch_add(w.blobs, Ordering::Relaxed);
                        bytes.fetch_add(w.bytes, Ordering::Relaxed);
                        if (j + 1).is_multiple_of(1000) {
                            eprintln!("zb: seed-layouts: {} repositories", j + 1);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    });
    result?;
    Ok(Written {
        repos: jobs.len(),
        tags: tags.into_inner(),
        indexes: indexes.into_inner(),
        blobs: blobs.into_inner(),
        bytes: bytes.into_inner(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A blob about to be written.
struct Blob {
    bytes: Vec<u8>,
    digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Blob { bytes, digest }
    }

    fn json(v: &Value) -> Self {
        Blob::new(v.to_string().into_bytes())
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.bytes.len() })
    }
}

/// One repository's layout being written.
struct Layout {
    blobs_dir: PathBuf,
    seen: HashSet<String>,
    written: Written,
}

impl Layout {
    fn put(&mut self, blob: &Blob) -> anyhow::Result<()> {
        if self.seen.insert(blob.digest.clone()) {
            let hex = blob.digest.trim_start_matches("sha256:");
            std::fs::write(self.blobs_dir.join(hex), &blob.bytes)?;
            self.written.blobs += 1;
            self.written.bytes += blob.bytes.len() as u64;
        }
        Ok(())
    }
}

fn write_repo(plan: &Plan, name: &str, i: usize, tags: usize) -> anyhow::Result<Written> {
    let dir = plan.root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir)?;
    let mut layout = Layout {
        blobs_dir,
        seen: HashSet::new(),
        written: Written::default(),
    };
    let mut descriptors = Vec::with_capacity(tags);
    for t in 0..tags {
        let tag = names::tag(t, tags);
        let created = rfc3339(EPOCH + (i as u64 % 1000) * 60 + t as u64 * 86_400);
        let annotations = json!({
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.title": name.rsplit('/').next().unwrap_or(name),
            "org.opencontainers.image.description": format!("{name} {tag}, seeded by zb"),
            "org.opencontainers.image.vendor": format!("vendor{:02}", i % 20),
            "org.opencontainers.image.licenses": if i.is_multiple_of(2) { "Apache-2.0" } else { "MIT" },
            "org.opencontainers.image.source": format!("https://example.com/{name}"),
            "org.opencontainers.image.version": tag,
        });
        let mut d = if is_index(i, t, plan.index_share) {
            let mut children = Vec::new();
            for arch in ARCHES {
                let m = image(plan, &mut layout, name, i, t, arch, &created, None)?;
                let mut cd = m.descriptor(MANIFEST);
                cd["platform"] = json!({ "os": "linux", "architecture": arch });
                children.push(cd);
            }
            let index = Blob::json(&json!({
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": children,
                "annotations": annotations,
            }));
            layout.put(&index)?;
            layout.written.indexes += 1;
            index.descriptor(INDEX)
        } else {
            let arch = ARCHES[0];
            let m = image(
                plan,
                &mut layout,
                name,
                i,
                t,
                arch,
                &created,
                Some(annotations),
            )?;
            m.descriptor(MANIFEST)
        };
        d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        descriptors.push(d);
        layout.written.tags += 1;
    }
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors });
    std::fs::write(dir.join("index.json"), index.to_string())?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(layout.written)
}

/// Writes one platform image (layers, config, manifest); returns the
/// manifest blob.
#[expect(clippy::too_many_arguments, reason = "one image's coordinates")]
fn image(
    plan: &Plan,
    layout: &mut Layout,
    name: &str,
    i: usize,
    t: usize,
    arch: &str,
    created: &str,
    annotations: Option<Value>,
) -> anyhow::Result<Blob> {
    let mut layers = Vec::with_capacity(plan.layers);
    let mut history = Vec::with_capacity(plan.layers + 1);
    for k in 0..plan.layers {
        let label = match k {
            0 => format!("base/{}/{arch}", i % BASES),
            1 => format!("repo/{name}/{arch}"),
            _ => format!("tag/{name}/{t}/{arch}/{k}"),
        };
        let size = plan.layer_size / 2 + (mix(&label) as usize % plan.layer_size.max(1));
        let layer = Blob::new(tar_one_file(
            &format!("seed/layer-{k}.bin"),
            &noise(&label, size),
        ));
        layout.put(&layer)?;
        history.push(json!({
            "created": created,
            "created_by": format!("/bin/sh -c #(nop) ADD file:{} in /", &layer.digest[7..19]),
        }));
        layers.push(layer);
    }
    history.push(json!({
        "created": created,
        "created_by": "/bin/sh -c #(nop) CMD [\"/bin/sh\"]",
        "empty_layer": true,
    }));
    let config = Blob::json(&json!({
        "created": created,
        "author": "zb seed-layouts",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {
                "org.label-schema.name": name,
                "org.label-schema.vendor": format!("vendor{:02}", i % 20),
            },
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
        "history": history,
    }));
    layout.put(&config)?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(CONFIG),
        "layers": layers.iter().map(|l| l.descriptor(LAYER)).collect::<Vec<_>>(),
    });
    if let Some(a) = annotations {
        manifest["annotations"] = a;
    }
    let manifest = Blob::json(&manifest);
    layout.put(&manifest)?;
    Ok(manifest)
}

/// Whether tag `t` of repository `i` is a multi-arch index.
pub fn is_index(i: usize, t: usize, share: f64) -> bool {
    let h = mix(&format!("index/{i}/{t}")) % 10_000;
    (h as f64) < share * 10_000.0
}

/// A 64-bit hash of a label (FNV-1a then a splitmix finaliser).
fn mix(label: &str) -> u64 {
    let mut h = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `len` seeded pseudo-random bytes (xorshift64).
fn noise(label: &str, len: usize) -> Vec<u8> {
    let mut state = mix(label) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A ustar archive holding one regular file.
fn tar_one_file(path: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    put(&mut header, 0, &path.as_bytes()[..path.len().min(99)]);
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(
        &mut header,
        136,
        format!("{:011o}\0", 1_700_000_000u64).as_bytes(),
    );
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let padded = content.len().div_ceil(512) * 512;
    let mut out = Vec::with_capacity(512 + padded + 1024);
    out.extend_from_slice(&header);
    out.extend_from_slice(content);
    out.resize(512 + padded + 1024, 0);
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (proleptic Gregorian, UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The default writer threads: twice the cores (writing is mostly I/O).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Reads back a layout and checks every blob's digest and every
    /// descriptor's size.
    fn verify(dir: &Path) -> anyhow::Result<usize> {
        let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json"))?)?;
        let mut checked = 0;
        let mut todo: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
        while let Some(d) = todo.pop() {
            let digest = d["digest"].as_str().context("descriptor without digest")?;
            let bytes = std::fs::read(dir.join("blobs/sha256").join(&digest[7..]))?;
            let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            anyhow::ensure!(actual == digest, "{digest} holds {actual}");
            anyhow::ensure!(d["size"] == bytes.len(), "{digest}: size mismatch");
            checked += 1;
            let media = d["mediaType"].as_str().unwrap_or_default();
            if media == INDEX || media == MANIFEST {
                let doc: Value = serde_json::from_slice(&bytes)?;
                todo.extend(doc["manifests"].as_array().cloned().unwrap_or_default());
                todo.extend(doc["layers"].as_array().cloned().unwrap_or_default());
                if doc.get("config").is_some() {
                    todo.push(doc["config"].clone());
                }
            }
        }
        Ok(checked)
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(EPOCH), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(EPOCH + 59 * 86_400 + 3661), "2024-02-29T01:01:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn tar_headers_are_valid() {
        let t = tar_one_file("a/b.bin", b"hello");
        assert_eq!(t.len(), 512 + 512 + 1024);
        assert_eq!(&t[257..263], b"ustar\0");
        let mut h = t[..512].to_vec();
        let stored = std::str::from_utf8(&h[148..154]).map(|s| u32::from_str_radix(s, 8));
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(stored, Ok(Ok(sum)));
        assert_eq!(&t[512..517], b"hello");
    }

    #[test]
    fn index_share_is_about_right() {
        let n = (0..1000)
            .flat_map(|i| (0..5).map(move |t| (i, t)))
            .filter(|&(i, t)| is_index(i, t, 0.1))
            .count();
        assert!((400..600).contains(&n), "{n} of 5000");
        assert!(!(0..100).any(|i| is_index(i, 0, 0.0)));
        assert!((0..100).all(|i| is_index(i, 0, 1.0)));
    }

    #[test]
    fn writes_valid_layouts() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("zb-seed-test-{}", std::process::id()));
        let plan = Plan {
            root: dir.clone(),
            prefix: "seed".into(),
            repos: 20,
            tags: 5,
            layers: 3,
            index_share: 0.3,
            layer_size: 256,
            big_repo: Some("seed/big".into()),
            big_tags: 30,
            threads: 3,
        };
        let w = write(&plan)?;
        assert_eq!((w.repos, w.tags), (21, 20 * 5 + 30));
        assert!(w.indexes > 0 && w.indexes < w.tags);
        let again = write(&plan)?;
        assert_eq!(
            (again.blobs, again.bytes),
            (w.blobs, w.bytes),
            "deterministic"
        );
        let mut checked = 0;
        for i in 0..plan.repos {
            checked += verify(&dir.join(names::repo("seed", i)))?;
        }
        let big = dir.join("seed/big");
        checked += verify(&big)?;
        assert!(checked as u64 >= w.blobs, "{checked} < {}", w.blobs);
        let index: Value = serde_json::from_slice(&std::fs::read(big.join("index.json"))?)?;
        let tags: Vec<_> = index["manifests"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(tags.len(), 30);
        assert_eq!(tags.last(), Some(&"latest"));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}

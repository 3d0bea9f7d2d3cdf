//! Test images made from bytes the test creates: no network, no base image.
//!
//! Layers are real gzip-compressed tar archives (deterministic: fixed mtime,
//! owner and mode), configs carry the matching `diff_ids`, and every digest is
//! the sha256 of the exact bytes, so any client (skopeo, podman, umoci) accepts
//! them. [`OciLayout`] writes them as an OCI image layout on disk; the `Image`
//! and `ImageIndex` values keep the bytes for comparisons.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Deterministic incompressible bytes (xorshift64), so a layer of `len`
/// bytes really is about `len` bytes on the wire.
pub fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut state = seed.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |s, b| {
        (s ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
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

/// A content-addressed blob and its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    pub fn json(media_type: &str, value: &Value) -> Blob {
        Blob::new(
            media_type,
            serde_json::to_vec(value).expect("serialize JSON"),
        )
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    /// An OCI descriptor for this blob.
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size() })
    }
}

/// A gzip-compressed tar layer holding `files` (paths relative to `/`).
/// Returns the compressed blob and the layer's diff_id (digest of the tar).
pub fn layer(media_type: &str, files: &[(&str, Vec<u8>)]) -> (Blob, String) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, content) in files {
        // Parent directories first, as image tools expect.
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if !dirs.contains(&dir) {
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_mtime(1_700_000_000);
                header.set_size(0);
                builder
                    .append_data(&mut header, &dir, std::io::empty())
                    .expect("tar dir");
                dirs.push(dir);
            }
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_size(content.len() as u64);
        builder
            .append_data(&mut header, path, content.as_slice())
            .expect("tar file");
    }
    let tar = builder.into_inner().expect("finish tar");
    let diff_id = sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    (
        Blob::new(media_type, gz.finish().expect("finish gzip")),
        diff_id,
    )
}

/// An image manifest with its config and layers, all bytes in memory.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

impl Image {
    /// Config and layers (not the manifest).
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }

    /// Push over plain HTTP: blobs, then the manifest under `reference`.
    pub fn push(&self, client: &super::Client, repo: &str, reference: &str) {
        for blob in self.blobs() {
            client.push_blob(repo, &blob.bytes);
        }
        client
            .put_manifest(
                repo,
                reference,
                &self.manifest.media_type,
                &self.manifest.bytes,
            )
            .expect_status(201, &format!("PUT manifest {repo}:{reference}"));
    }
}

/// An image built from `layers` (each a list of files) for one platform.
/// `docker` selects Docker schema2 media types instead of OCI ones.
pub fn image(platform: (&str, &str), layers: &[Vec<(&str, Vec<u8>)>], docker: bool) -> Image {
    let (manifest_type, config_type, layer_type) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let (os, arch) = platform;
    let built: Vec<(Blob, String)> = layers
        .iter()
        .map(|files| layer(layer_type, files))
        .collect();
    let config = Blob::json(
        config_type,
        &json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": os,
            "config": { "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/true"] },
            "rootfs": { "type": "layers", "diff_ids": built.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>() },
            "history": built.iter().map(|_| json!({ "created": "2024-01-01T00:00:00Z", "created_by": "zot e2e fixture" })).collect::<Vec<_>>(),
        }),
    );
    let layers: Vec<Blob> = built.into_iter().map(|(b, _)| b).collect();
    let manifest = Blob::json(
        manifest_type,
        &json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        }),
    );
    Image {
        manifest,
        config,
        layers,
    }
}

/// A linux/amd64 OCI image of three layers: a small text file, a 1.5 MiB
/// incompressible file, and a nested directory. `seed` makes the content
/// (and so every digest) unique to the caller.
pub fn multi_layer_image(seed: &str) -> Image {
    multi_layer_image_for(seed, ("linux", "amd64"), false)
}

pub fn multi_layer_image_for(seed: &str, platform: (&str, &str), docker: bool) -> Image {
    let arch = platform.1;
    image(
        platform,
        &[
            vec![(
                "etc/motd",
                format!("hello from {seed} on {arch}\n").into_bytes(),
            )],
            vec![(
                "opt/data/blob.bin",
                noise(&format!("{seed}-{arch}"), 1536 * 1024),
            )],
            vec![
                ("usr/share/e2e/a.txt", format!("a {seed}\n").into_bytes()),
                (
                    "usr/share/e2e/deep/b.txt",
                    format!("b {seed}\n").into_bytes(),
                ),
            ],
        ],
        docker,
    )
}

/// An image index over two platform images (linux/amd64, linux/arm64).
#[derive(Clone, Debug)]
pub struct ImageIndex {
    pub index: Blob,
    pub images: Vec<Image>,
}

pub fn multi_platform_index(seed: &str) -> ImageIndex {
    let platforms = [("linux", "amd64"), ("linux", "arm64")];
    let images: Vec<Image> = platforms
        .iter()
        .map(|p| multi_layer_image_for(seed, *p, false))
        .collect();
    let manifests: Vec<Value> = images
        .iter()
        .zip(platforms)
        .map(|(image, (os, arch))| {
            let mut d = image.manifest.descriptor();
            d["platform"] = json!({ "os": os, "architecture": arch });
            d
        })
        .collect();
    let index = Blob::json(
        OCI_INDEX,
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }),
    );
    ImageIndex { index, images }
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
#[derive(Clone, Debug)]
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    /// Create an empty layout at `dir`.
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout dirs");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let layout = OciLayout {
            dir: dir.to_owned(),
        };
        layout.write_index(&[]);
        layout
    }

    /// An existing layout (for reading).
    pub fn open(dir: &Path) -> OciLayout {
        OciLayout {
            dir: dir.to_owned(),
        }
    }

    /// `oci:<dir>:<tag>` for skopeo.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    pub fn write_blob(&self, blob: &Blob) {
        std::fs::write(self.dir.join("blobs/sha256").join(blob.hex()), &blob.bytes)
            .expect("write blob");
    }

    fn write_index(&self, manifests: &[Value]) {
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("serialize index"),
        )
        .expect("write index.json");
    }

    /// Add `blob` to index.json under `tag`.
    pub fn tag(&self, blob: &Blob, tag: &str) {
        let mut manifests = self.index()["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut d = blob.descriptor();
        d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        manifests.push(d);
        self.write_index(&manifests);
    }

    /// Write an image's blobs and manifest and tag it.
    pub fn add_image(&self, image: &Image, tag: &str) {
        for blob in image.blobs() {
            self.write_blob(blob);
        }
        self.write_blob(&image.manifest);
        self.tag(&image.manifest, tag);
    }

    /// Write every image of an index, the index itself, and tag the index.
    pub fn add_index(&self, index: &ImageIndex, tag: &str) {
        for image in &index.images {
            for blob in image.blobs() {
                self.write_blob(blob);
            }
            self.write_blob(&image.manifest);
        }
        self.write_blob(&index.index);
        self.tag(&index.index, tag);
    }

    /// The parsed index.json (panics if it is missing or not JSON).
    pub fn index(&self) -> Value {
        let path = self.dir.join("index.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// The descriptor tagged `tag` in index.json, if any.
    pub fn tagged(&self, tag: &str) -> Option<Value> {
        self.index()["manifests"]
            .as_array()?
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
    }

    /// Every blob in `blobs/sha256`, by digest. Panics if a file's content
    /// does not hash to its name (a torn or corrupt blob).
    pub fn blobs(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let dir = self.dir.join("blobs/sha256");
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            assert!(
                is_file && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "{} holds `{name}`, which is not a blob: an OCI layout's blobs/sha256 holds only files named by their digest",
                dir.display()
            );
            let bytes = std::fs::read(entry.path()).expect("read blob");
            let digest = format!("sha256:{name}");
            assert_eq!(
                sha256_digest(&bytes),
                digest,
                "blob file {} does not match its name",
                entry.path().display()
            );
            out.insert(digest, bytes);
        }
        out
    }
}

/// The blobs of `image` (manifest included) by digest, to compare with
/// [`OciLayout::blobs`].
pub fn blob_map<'a>(images: impl IntoIterator<Item = &'a Image>) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for image in images {
        for blob in image
            .blobs()
            .into_iter()
            .chain(std::iter::once(&image.manifest))
        {
            out.insert(blob.digest.clone(), blob.bytes.clone());
        }
    }
    out
}

/// A `dir:` layout (skopeo's directory transport) holding a Docker schema2
/// image, written by hand.
pub fn write_docker_dir(dir: &Path, image: &Image) {
    std::fs::create_dir_all(dir).expect("create dir layout");
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n")
        .expect("write version");
    std::fs::write(dir.join("manifest.json"), &image.manifest.bytes).expect("write manifest");
    for blob in image.blobs() {
        std::fs::write(dir.join(blob.hex()), &blob.bytes).expect("write blob");
    }
}

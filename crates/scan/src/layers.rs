//! Reading an image's layers in order into an inventory.
//!
//! Invariants:
//! - A layer is read once, as a stream: decompressed (gzip, zstd or none,
//!   sniffed from its first bytes) and walked entry by entry; only files the
//!   matcher picks are read, each into memory up to its limit (or spooled
//!   to a temporary file when it is an archive or an rpm database).
//! - Findings are kept per path. Before a layer's findings are added, its
//!   whiteouts (`.wh.<name>`, `.wh..wh..opq`) and every non-directory entry
//!   remove what lower layers had at that path and below; entries of the
//!   same layer are never hidden by that layer's whiteouts (OCI image spec).
//! - Every quantity an attacker controls is bounded by [`Limits`]; the
//!   decompressors' own memory is bounded by their formats (gzip's 32 KiB
//!   window, libzstd's default window limit of 128 MiB).
//! - A hard link carries what its target yielded. When the target's name
//!   was not one the matcher reads (a content store's hash) the content
//!   has gone by; the link is then reported as a problem, not read.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;

use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use crate::error::{ParseError, ScanError};
use crate::inventory::{Inventory, OsRelease, Package, Problem};
use crate::limits::Limits;
use crate::matcher;
use crate::tar::{Kind, TarReader};
use crate::{binary, parse};

/// Layer media types that can be scanned (zot's four, and the
/// non-distributable and foreign variants of the same formats).
pub const SCANNABLE_LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Whether layers of this media type can be scanned.
pub fn is_scannable_layer(media_type: &str) -> bool {
    SCANNABLE_LAYER_TYPES.contains(&media_type)
}

/// What one file contributed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Finding {
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    /// Parts of the file that could not be read (nested archives); moved
    /// to the scan's problems when the file is read.
    pub problems: Vec<Problem>,
}

impl Finding {
    pub fn packages(packages: Vec<Package>) -> Self {
        Self {
            packages,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.os.is_none() && self.packages.is_empty()
    }

    /// The same finding for a hard link at `path` to the file it came from.
    fn relinked(&self, from: &str, path: &str) -> Self {
        let mut copy = self.clone();
        for package in &mut copy.packages {
            if let Some(rest) = package.path.strip_prefix(from) {
                package.path = format!("{path}{rest}");
            }
        }
        copy
    }
}

/// Builds an inventory from layers added bottom first.
pub struct Scanner {
    limits: Limits,
    layer: usize,
    found: BTreeMap<String, Finding>,
    problems: Vec<Problem>,
    problems_dropped: u64,
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            layer: 0,
            found: BTreeMap::new(),
            problems: Vec::new(),
            problems_dropped: 0,
        }
    }

    /// Reads the next layer from an async stream (the storage's blob
    /// reader), on tokio's blocking pool.
    pub async fn add_layer<R>(&mut self, media_type: &str, reader: R) -> Result<(), ScanError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        if !is_scannable_layer(media_type) {
            return Err(ScanError::UnsupportedMediaType(media_type.to_string()));
        }
        let layer = self.layer;
        let mut this = std::mem::replace(self, Scanner::new(self.limits.clone()));
        let media_type = media_type.to_string();
        let bridge = SyncIoBridge::new(reader);
        let task = tokio::task::spawn_blocking(move || {
            let result = this.add_layer_sync(&media_type, bridge);
            (this, result)
        });
        match task.await {
            Ok((this, result)) => {
                *self = this;
                result
            }
            Err(e) => Err(ScanError::Task {
                layer,
                message: e.to_string(),
            }),
        }
    }

    /// Reads the next layer from a blocking reader.
    pub fn add_layer_sync(&mut self, media_type: &str, reader: impl Read) -> Result<(), ScanError> {
        if !is_scannable_layer(media_type) {
            return Err(ScanError::UnsupportedMediaType(media_type.to_string()));
        }
        let layer = self.layer;
        self.layer += 1;
        let exceeded = Rc::new(Cell::new(false));
        let counted = Counted {
            inner: decompress(reader).map_err(|source| ScanError::Io { layer, source })?,
            left: self.limits.layer_bytes,
            exceeded: exceeded.clone(),
        };
        let mut lower = std::mem::take(&mut self.found);
        let mut upper = BTreeMap::new();
        let result = self.walk(TarReader::new(counted), &mut lower, &mut upper);
        // A failed layer's findings so far are kept; the caller fails the scan.
        lower.extend(upper);
        self.found = lower;
        result.map_err(|e| match e {
            WalkError::Io(_) if exceeded.get() => ScanError::Limit {
                layer,
                what: "uncompressed size",
                limit: self.limits.layer_bytes,
            },
            WalkError::Io(source) if source.kind() == io::ErrorKind::InvalidData => {
                ScanError::Tar {
                    layer,
                    message: source.to_string(),
                }
            }
            WalkError::Io(source) => ScanError::Io { layer, source },
            WalkError::Entries(limit) => ScanError::Limit {
                layer,
                what: "entry count",
                limit,
            },
        })
    }

    fn walk<R: Read>(
        &mut self,
        mut tar: TarReader<R>,
        lower: &mut BTreeMap<String, Finding>,
        upper: &mut BTreeMap<String, Finding>,
    ) -> Result<(), WalkError> {
        let mut entries: u64 = 0;
        // Packages held, counting every addition and no removal, so memory
        // is bounded while the layer is read.
        let mut held: usize = lower.values().map(|f| f.packages.len()).sum();
        while let Some(header) = tar.next_header()? {
            entries += 1;
            if entries > self.limits.layer_entries {
                return Err(WalkError::Entries(self.limits.layer_entries));
            }
            let Some(path) = matcher::normalize(&header.path) else {
                if !header.path.iter().all(|b| *b == b'.' || *b == b'/') {
                    let shown = String::from_utf8_lossy(&header.path).into_owned();
                    self.problem(shown, "path climbs above the root; entry ignored".into());
                }
                continue;
            };
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == ".wh..wh..opq" {
                remove_children(lower, dir);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                if !hidden.starts_with(".wh.") && !hidden.is_empty() {
                    let target = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    remove_tree(lower, &target);
                }
                continue;
            }
            if header.kind == Kind::Directory {
                // A directory replaces a lower file of that name, never merges with it.
                lower.remove(&path);
                continue;
            }
            remove_tree(lower, &path);
            remove_tree(upper, &path);
            let finding = match header.kind {
                Kind::File => self.read_file(&path, header.size, header.mode, &mut tar.data()),
                Kind::HardLink => matcher::normalize(&header.link).and_then(|target| {
                    if let Some(from) = upper.get(&target).or_else(|| lower.get(&target)) {
                        return Some(from.relinked(&target, &path));
                    }
                    // The content went by under a name not read; it cannot be read again.
                    if matcher::classify(&path).is_some() && matcher::classify(&target).is_none() {
                        self.problem(
                            path.clone(),
                            format!("hard link to {target}, which was not read"),
                        );
                    }
                    None
                }),
                _ => None,
            };
            if let Some(mut finding) = finding.filter(|f| !f.is_empty()) {
                held += finding.packages.len();
                if held > self.limits.packages {
                    held -= finding.packages.len();
                    let message = format!(
                        "more than {} packages; these are not listed",
                        self.limits.packages
                    );
                    self.problem(path.clone(), message);
                    finding.packages.clear();
                }
                if !finding.is_empty() {
                    upper.insert(path, finding);
                }
            }
        }
        Ok(())
    }

    /// Reads a regular file if it matters; problems are recorded, not returned.
    fn read_file(
        &mut self,
        path: &str,
        size: u64,
        mode: u32,
        data: &mut impl Read,
    ) -> Option<Finding> {
        let result = match matcher::classify(path) {
            Some(kind) => parse::read(kind, path, size, data, &self.limits),
            None if mode & 0o111 != 0 && size >= 64 => {
                binary::scan(path, size, data, &self.limits).map(Finding::packages)
            }
            None => return None,
        };
        match result {
            Ok(mut finding) => {
                for problem in std::mem::take(&mut finding.problems) {
                    self.problem(problem.path, problem.message);
                }
                Some(finding)
            }
            Err(e) => {
                // When the layer stream itself failed, the walk meets the
                // error again at its next read and fails the layer.
                let message = match e {
                    ParseError::Io(e) => format!("read failed: {e}"),
                    e => e.to_string(),
                };
                self.problem(path.to_string(), message);
                None
            }
        }
    }

    fn problem(&mut self, path: String, message: String) {
        tracing::debug!(path, message, "scan: file skipped");
        if self.problems.len() < self.limits.problems {
            self.problems.push(Problem { path, message });
        } else {
            self.problems_dropped += 1;
        }
    }

    /// The inventory of the layers added so far.
    pub fn finish(self) -> Inventory {
        let mut os = None;
        for candidate in ["etc/os-release", "usr/lib/os-release"] {
            if let Some(found) = self.found.get(candidate).and_then(|f| f.os.clone()) {
                os = Some(found);
                break;
            }
        }
        let mut packages: Vec<Package> =
            self.found.into_values().flat_map(|f| f.packages).collect();
        packages.sort();
        packages.dedup();
        Inventory {
            scanner: Inventory::SCANNER,
            os,
            packages,
            problems: self.problems,
            problems_dropped: self.problems_dropped,
        }
    }
}

enum WalkError {
    Io(io::Error),
    Entries(u64),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Removes `path` and everything below it.
fn remove_tree(map: &mut BTreeMap<String, Finding>, path: &str) {
    map.remove(path);
    remove_children(map, path);
}

/// Removes everything below `dir` (`""` is the root).
fn remove_children(map: &mut BTreeMap<String, Finding>, dir: &str) {
    if dir.is_empty() {
        map.clear();
        return;
    }
    let prefix = format!("{dir}/");
    let below: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(key, _)| key.clone())
        .collect();
    for key in below {
        map.remove(&key);
    }
}

/// The layer's tar stream: gzip and zstd are recognised by their magic
/// numbers (media types are not always truthful), anything else is tar.
fn decompress<'a>(mut reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 4];
    let mut filled = 0;
    while filled < head.len() {
        let got = reader.read(&mut head[filled..])?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    let stream = io::Cursor::new(head[..filled].to_vec()).chain(reader);
    Ok(match head {
        [0x1f, 0x8b, _, _] => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(stream)?),
        _ => Box::new(stream),
    })
}

/// Counts uncompressed bytes and fails past the limit (tar bombs).
struct Counted<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        if got as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other(
                "layer exceeds its uncompressed size limit",
            ));
        }
        self.left -= got as u64;
        Ok(got)
    }
}

//! Derivation of an [`ImageMeta`] from a manifest's (or index's) bytes and,
//! for an image, its config blob: zot's rules (`convert/metadb.go`,
//! `convert/annotations.go`, `common/oci.go`).
//!
//! Invariant: derivation never fails. Content that is not what it should
//! be (a config that is absent, not JSON, or of another shape; fields of
//! the wrong type) gives empty values, never an error, so every stored
//! manifest has a record.

use serde_json::{Map, Value};

use super::{
    Annotated, BlobRef, HistoryEntry, ImageMeta, IndexChild, ManifestMeta, MetaKind, Platform,
};
use crate::{Digest, media_types};

/// An annotation key and its label-schema fallback.
struct Key {
    oci: &'static str,
    label_schema: Option<&'static str>,
}

const TITLE: Key = Key {
    oci: "org.opencontainers.image.title",
    label_schema: Some("org.label-schema.name"),
};
const DESCRIPTION: Key = Key {
    oci: "org.opencontainers.image.description",
    label_schema: Some("org.label-schema.description"),
};
const DOCUMENTATION: Key = Key {
    oci: "org.opencontainers.image.documentation",
    label_schema: Some("org.label-schema.usage"),
};
const SOURCE: Key = Key {
    oci: "org.opencontainers.image.source",
    label_schema: Some("org.label-schema.vcs-url"),
};
const LICENSES: Key = Key {
    oci: "org.opencontainers.image.licenses",
    label_schema: Some("org.label-schema.license"),
};
const VENDOR: Key = Key {
    oci: "org.opencontainers.image.vendor",
    label_schema: Some("org.label-schema.vendor"),
};
const LABELS: Key = Key {
    oci: "org.label-schema.labels",
    label_schema: None,
};
const AUTHORS: Key = Key {
    oci: "org.opencontainers.image.authors",
    label_schema: None,
};
const CREATED: Key = Key {
    oci: "org.opencontainers.image.created",
    label_schema: Some("org.label-schema.build-date"),
};

/// A string-to-string map read from JSON, ignoring values of other types.
type Strings = Map<String, Value>;

fn strings(v: Option<&Value>) -> Strings {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// The value of `key` in one map: the OCI key, then the label-schema key
/// (first non-empty).
fn lookup<'a>(map: &'a Strings, key: &Key) -> &'a str {
    let oci = text(map.get(key.oci));
    if !oci.is_empty() {
        return oci;
    }
    key.label_schema.map_or("", |k| text(map.get(k)))
}

/// zot's lookup order: manifest annotations, then config labels.
fn resolve<'a>(annotations: &'a Strings, labels: &'a Strings, key: &Key) -> &'a str {
    let v = lookup(annotations, key);
    if v.is_empty() { lookup(labels, key) } else { v }
}

fn blob_ref(v: &Value) -> Option<BlobRef> {
    Some(BlobRef {
        digest: text(v.get("digest")).parse().ok()?,
        size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
    })
}

fn platform_of(os: &str, arch: &str, variant: &str) -> Option<Platform> {
    if os.is_empty() && arch.is_empty() {
        return None;
    }
    let arch = if variant.is_empty() || arch.is_empty() {
        arch.to_owned()
    } else {
        format!("{arch}/{variant}")
    };
    Some(Platform {
        os: os.to_owned(),
        arch,
    })
}

/// Parses an RFC 3339 time into Unix nanoseconds; `None` when it is not
/// one, or is Go's zero time (`0001-01-01T00:00:00Z`), which zot treats as
/// unset.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 9)];
        let mut n: i128 = 0;
        for d in digits {
            n = n * 10 + i128::from(d - b'0');
        }
        nanos = n * 10i128.pow(9 - u32::try_from(digits.len()).ok()?);
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let d = |x: &u8| x.is_ascii_digit().then(|| i64::from(x - b'0'));
            let off = (d(h1)? * 10 + d(h2)?) * 3600 + (d(m1)? * 10 + d(m2)?) * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    let ns = i128::from(secs) * 1_000_000_000 + nanos;
    // Go's zero time: unset.
    const GO_ZERO_NS: i128 = -62_135_596_800 * 1_000_000_000;
    (ns != GO_ZERO_NS).then_some(ns)
}

fn annotated(annotations: &Strings, labels: &Strings) -> Annotated {
    let get = |k: &Key| resolve(annotations, labels, k).to_owned();
    Annotated {
        title: get(&TITLE),
        description: get(&DESCRIPTION),
        vendor: get(&VENDOR),
        licenses: get(&LICENSES),
        source: get(&SOURCE),
        documentation: get(&DOCUMENTATION),
        authors: get(&AUTHORS),
        labels: get(&LABELS),
        vendor_in_manifest: !lookup(annotations, &VENDOR).is_empty(),
    }
}

fn history(config: &Value) -> Vec<HistoryEntry> {
    let Some(Value::Array(items)) = config.get("history") else {
        return Vec::new();
    };
    items
        .iter()
        .map(|h| {
            let created = text(h.get("created"));
            HistoryEntry {
                created: parse_rfc3339(created).map(|_| created.to_owned()),
                created_by: text(h.get("created_by")).to_owned(),
                author: text(h.get("author")).to_owned(),
                comment: text(h.get("comment")).to_owned(),
                empty_layer: h.get("empty_layer").and_then(Value::as_bool) == Some(true),
            }
        })
        .collect()
}

fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

impl ImageMeta {
    /// Derives the record of an image (or artifact) manifest. `config` is
    /// the config blob's content when it could be read; without it (or when
    /// it is not an image config) the config-derived fields are empty.
    pub fn from_manifest(digest: Digest, manifest: &[u8], config: Option<&[u8]>) -> ImageMeta {
        let doc = parse_json(manifest);
        let cfg = config.map_or(Value::Null, parse_json);
        let annotations = strings(doc.get("annotations"));
        let labels = strings(cfg.get("config").and_then(|c| c.get("Labels")));
        let mut annotated = annotated(&annotations, &labels);
        if annotated.authors.is_empty() {
            text(cfg.get("author")).clone_into(&mut annotated.authors);
        }
        let config_desc = doc.get("config");
        let config_media_type = text(config_desc.and_then(|c| c.get("mediaType"))).to_owned();
        let layers = match doc.get("layers") {
            Some(Value::Array(ls)) => ls.iter().filter_map(blob_ref).collect(),
            _ => Vec::new(),
        };
        let history = history(&cfg);
        let created_ns = parse_rfc3339(resolve(&annotations, &labels, &CREATED))
            .or_else(|| parse_rfc3339(text(cfg.get("created"))))
            .or_else(|| {
                let last = cfg.get("history")?.as_array()?.last()?;
                parse_rfc3339(text(last.get("created")))
            });
        let platform = platform_of(
            text(cfg.get("os")),
            text(cfg.get("architecture")),
            text(cfg.get("variant")),
        );
        let artifact_type = match text(doc.get("artifactType")) {
            "" => config_media_type.clone(),
            t => t.to_owned(),
        };
        ImageMeta {
            digest,
            media_type: text(doc.get("mediaType")).to_owned(),
            size: manifest.len() as u64,
            artifact_type,
            subject: subject(&doc),
            annotated,
            kind: MetaKind::Manifest(ManifestMeta {
                config: config_desc.and_then(blob_ref),
                config_media_type,
                layers,
                platform,
                history,
                created_ns,
            }),
        }
    }

    /// Derives the record of an index (OCI image index or Docker manifest
    /// list): its children as its descriptors list them, and its own
    /// annotations only (a child's values are the resolvers' fallback).
    pub fn from_index(digest: Digest, index: &[u8]) -> ImageMeta {
        let doc = parse_json(index);
        let annotations = strings(doc.get("annotations"));
        let none = Map::new();
        let children = match doc.get("manifests") {
            Some(Value::Array(ms)) => ms
                .iter()
                .filter_map(|m| {
                    let blob = blob_ref(m)?;
                    let p = m.get("platform");
                    let field = |k: &str| text(p.and_then(|p| p.get(k)));
                    Some(IndexChild {
                        digest: blob.digest,
                        media_type: text(m.get("mediaType")).to_owned(),
                        size: blob.size,
                        platform: platform_of(field("os"), field("architecture"), field("variant")),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        ImageMeta {
            digest,
            media_type: media_types::OCI_INDEX.to_owned(),
            size: index.len() as u64,
            artifact_type: text(doc.get("artifactType")).to_owned(),
            subject: subject(&doc),
            annotated: annotated(&annotations, &none),
            kind: MetaKind::Index {
                children,
                created_ns: parse_rfc3339(lookup(&annotations, &CREATED)),
            },
        }
    }

    /// [`ImageMeta::from_index`] for an index or manifest list media type,
    /// else [`ImageMeta::from_manifest`].
    pub fn derive(
        digest: Digest,
        media_type: &str,
        bytes: &[u8],
        config: Option<&[u8]>,
    ) -> ImageMeta {
        if matches!(
            media_type,
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST
        ) {
            ImageMeta::from_index(digest, bytes)
        } else {
            ImageMeta::from_manifest(digest, bytes, config)
        }
    }

    /// Whether this is a signature that zot does not count downloads of
    /// nor list as an image: a notation or cosign (OCI 1.1) signature with a
    /// subject. (Cosign's tag scheme, `sha256-<hex>.sig`, is told by its tag.)
    pub fn is_signature(&self) -> bool {
        self.subject.is_some()
            && matches!(
                self.artifact_type.as_str(),
                NOTATION_SIGNATURE | COSIGN_SIGNATURE
            )
    }
}

/// Whether `tag` is one of cosign's tags for content about an image
/// (`sha256-<hex>.sig`, `.att`, `.sbom`): pulls of it are not downloads.
pub fn is_cosign_tag(tag: &str) -> bool {
    tag.starts_with("sha256-")
}

/// The artifact type of a notation signature.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// The artifact type of a cosign signature stored as a referrer.
pub const COSIGN_SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn subject(doc: &Value) -> Option<Digest> {
    text(doc.get("subject").and_then(|s| s.get("digest")))
        .parse()
        .ok()
}

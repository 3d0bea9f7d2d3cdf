//! The stored form of an image record: a compact binary encoding of
//! [`ImageMeta`], read for every repository a query shows and for every
//! summary built at start-up, so it is decoded often and must be cheap
//! (JSON decoding was most of a query's cost).
//!
//! Format: a version byte ([`VERSION`]), then the fields in declaration
//! order. Integers are LEB128 varints, strings a varint length and UTF-8
//! bytes, options a 0/1 byte before the value, lists a varint count, `i128`
//! sixteen little-endian bytes. Encoding destructures every struct, so a
//! field added to [`ImageMeta`] fails to compile here until it is encoded.
//!
//! Invariant: [`decode`] also reads the JSON records of stores written
//! before this encoding (they start with `{`, never a version byte), so an
//! old store is read as it is and its records are rewritten only when
//! their manifest is stored again.

use zot_oci::Digest;
use zot_oci::image_meta::{
    Annotated, BlobRef, HistoryEntry, ImageMeta, IndexChild, ManifestMeta, MetaKind, Platform,
};

use crate::{MetaError, Result};

/// The first byte of a binary record.
const VERSION: u8 = 1;

/// Encodes a record for the `images` table.
pub(crate) fn encode(meta: &ImageMeta) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(512));
    w.byte(VERSION);
    let ImageMeta {
        digest,
        media_type,
        size,
        artifact_type,
        subject,
        annotated,
        kind,
    } = meta;
    w.digest(digest);
    w.str(media_type);
    w.uint(*size);
    w.str(artifact_type);
    w.opt(subject.as_ref(), Writer::digest);
    w.annotated(annotated);
    match kind {
        MetaKind::Manifest(m) => {
            w.0.push(0);
            w.manifest(m);
        }
        MetaKind::Index {
            children,
            created_ns,
        } => {
            w.0.push(1);
            w.uint(children.len() as u64);
            for c in children {
                let IndexChild {
                    digest,
                    media_type,
                    size,
                    platform,
                } = c;
                w.digest(digest);
                w.str(media_type);
                w.uint(*size);
                w.opt(platform.as_ref(), Writer::platform);
            }
            w.opt(created_ns.as_ref(), |w, v| w.0.extend(v.to_le_bytes()));
        }
    }
    w.0
}

/// Decodes a record of the `images` table (binary, or JSON from an older
/// store).
pub(crate) fn decode(bytes: &[u8]) -> Result<ImageMeta> {
    match bytes.first() {
        Some(&VERSION) => {
            let mut r = Reader(&bytes[1..]);
            let meta = r.image()?;
            r.end()?;
            Ok(meta)
        }
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        _ => Err(corrupt("unknown encoding")),
    }
}

fn corrupt(what: &str) -> MetaError {
    MetaError::Encoding(format!("binary record: {what}"))
}

/// Writes the encoding's primitives (search encodes its saved summaries
/// with them too).
#[derive(Debug, Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    /// A writer whose output starts with `version`.
    pub fn new(version: u8) -> Writer {
        Writer(vec![version])
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }

    pub fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    /// Eight little-endian bytes (hashes, which varints would not shorten).
    pub fn fixed(&mut self, v: u64) {
        self.0.extend(v.to_le_bytes());
    }

    pub fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    pub fn bool(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }

    pub fn opt<T>(&mut self, v: Option<&T>, put: impl FnOnce(&mut Writer, &T)) {
        match v {
            Some(v) => {
                self.0.push(1);
                put(self, v);
            }
            None => self.0.push(0),
        }
    }

    fn digest(&mut self, d: &Digest) {
        self.str(d.algorithm().as_str());
        self.str(d.hex());
    }

    fn platform(&mut self, p: &Platform) {
        let Platform { os, arch } = p;
        self.str(os);
        self.str(arch);
    }

    fn blob(&mut self, b: &BlobRef) {
        let BlobRef { digest, size } = b;
        self.digest(digest);
        self.uint(*size);
    }

    fn annotated(&mut self, a: &Annotated) {
        let Annotated {
            title,
            description,
            vendor,
            licenses,
            source,
            documentation,
            authors,
            labels,
            vendor_in_manifest,
        } = a;
        for s in [
            title,
            description,
            vendor,
            licenses,
            source,
            documentation,
            authors,
            labels,
        ] {
            self.str(s);
        }
        self.bool(*vendor_in_manifest);
    }

    fn manifest(&mut self, m: &ManifestMeta) {
        let ManifestMeta {
            config,
            config_media_type,
            layers,
            platform,
            history,
            created_ns,
        } = m;
        self.opt(config.as_ref(), Writer::blob);
        self.str(config_media_type);
        self.uint(layers.len() as u64);
        for l in layers {
            self.blob(l);
        }
        self.opt(platform.as_ref(), Writer::platform);
        self.uint(history.len() as u64);
        for h in history {
            let HistoryEntry {
                created,
                created_by,
                author,
                comment,
                empty_layer,
            } = h;
            self.opt(created.as_ref(), |w, s| w.str(s));
            self.str(created_by);
            self.str(author);
            self.str(comment);
            self.bool(*empty_layer);
        }
        self.opt(created_ns.as_ref(), |w, v| w.0.extend(v.to_le_bytes()));
    }
}

/// Reads what [`Writer`] wrote; every read checks the bounds, so a
/// damaged record is an error, never a panic or a huge allocation.
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader(bytes)
    }

    /// Ok when everything was read.
    pub fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(corrupt("trailing bytes"))
        }
    }

    pub fn fixed(&mut self) -> Result<u64> {
        let raw: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt("truncated"))?;
        Ok(u64::from_le_bytes(raw))
    }

    pub fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.0.split_first().ok_or_else(|| corrupt("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn uint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    /// A count of items, each at least one byte long (so a corrupt count
    /// cannot ask for more memory than the record holds).
    pub fn count(&mut self) -> Result<usize> {
        let n = usize::try_from(self.uint()?).map_err(|_| corrupt("count"))?;
        if n > self.0.len() {
            return Err(corrupt("count"));
        }
        Ok(n)
    }

    pub fn str_ref(&mut self) -> Result<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| corrupt("UTF-8"))
    }

    pub fn string(&mut self) -> Result<String> {
        self.str_ref().map(str::to_owned)
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bool")),
        }
    }

    pub fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        if self.bool()? {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }

    fn i128(&mut self) -> Result<i128> {
        let raw: [u8; 16] = self
            .take(16)?
            .try_into()
            .map_err(|_| corrupt("truncated"))?;
        Ok(i128::from_le_bytes(raw))
    }

    fn digest(&mut self) -> Result<Digest> {
        let alg = self.str_ref()?;
        let hex = self.str_ref()?;
        let mut s = String::with_capacity(alg.len() + 1 + hex.len());
        s.push_str(alg);
        s.push(':');
        s.push_str(hex);
        s.parse().map_err(|_| corrupt("digest"))
    }

    fn platform(&mut self) -> Result<Platform> {
        Ok(Platform {
            os: self.string()?,
            arch: self.string()?,
        })
    }

    fn blob(&mut self) -> Result<BlobRef> {
        Ok(BlobRef {
            digest: self.digest()?,
            size: self.uint()?,
        })
    }

    fn annotated(&mut self) -> Result<Annotated> {
        Ok(Annotated {
            title: self.string()?,
            description: self.string()?,
            vendor: self.string()?,
            licenses: self.string()?,
            source: self.string()?,
            documentation: self.string()?,
            authors: self.string()?,
            labels: self.string()?,
            vendor_in_manifest: self.bool()?,
        })
    }

    fn manifest(&mut self) -> Result<ManifestMeta> {
        let config = self.opt(Self::blob)?;
        let config_media_type = self.string()?;
        let n = self.count()?;
        let mut layers = Vec::with_capacity(n);
        for _ in 0..n {
            layers.push(self.blob()?);
        }
        let platform = self.opt(Self::platform)?;
        let n = self.count()?;
        let mut history = Vec::with_capacity(n);
        for _ in 0..n {
            history.push(HistoryEntry {
                created: self.opt(Self::string)?,
                created_by: self.string()?,
                author: self.string()?,
                comment: self.string()?,
                empty_layer: self.bool()?,
            });
        }
        Ok(ManifestMeta {
            config,
            config_media_type,
            layers,
            platform,
            history,
            created_ns: self.opt(Self::i128)?,
        })
    }

    fn image(&mut self) -> Result<ImageMeta> {
        let digest = self.digest()?;
        let media_type = self.string()?;
        let size = self.uint()?;
        let artifact_type = self.string()?;
        let subject = self.opt(Self::digest)?;
        let annotated = self.annotated()?;
        let kind = match self.byte()? {
            0 => MetaKind::Manifest(self.manifest()?),
            1 => {
                let n = self.count()?;
                let mut children = Vec::with_capacity(n);
                for _ in 0..n {
                    children.push(IndexChild {
                        digest: self.digest()?,
                        media_type: self.string()?,
                        size: self.uint()?,
                        platform: self.opt(Self::platform)?,
                    });
                }
                MetaKind::Index {
                    children,
                    created_ns: self.opt(Self::i128)?,
                }
            }
            _ => return Err(corrupt("kind")),
        };
        Ok(ImageMeta {
            digest,
            media_type,
            size,
            artifact_type,
            subject,
            annotated,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn image() -> ImageMeta {
        ImageMeta {
            digest: d('a'),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1234,
            artifact_type: "application/vnd.oci.image.config.v1+json".into(),
            subject: Some(d('b')),
            annotated: Annotated {
                title: "t".into(),
                description: "dé".into(),
                vendor: "v".into(),
                licenses: "MIT".into(),
                source: "s".into(),
                documentation: "doc".into(),
                authors: "me".into(),
                labels: "l".into(),
                vendor_in_manifest: true,
            },
            kind: MetaKind::Manifest(ManifestMeta {
                config: Some(BlobRef {
                    digest: d('c'),
                    size: u64::MAX,
                }),
                config_media_type: "cfg".into(),
                layers: vec![
                    BlobRef {
                        digest: d('e'),
                        size: 0,
                    },
                    BlobRef {
                        digest: d('f'),
                        size: 300,
                    },
                ],
                platform: Some(Platform {
                    os: "linux".into(),
                    arch: "arm/v7".into(),
                }),
                history: vec![
                    HistoryEntry {
                        created: Some("2026-01-01T00:00:00Z".into()),
                        created_by: "RUN x".into(),
                        author: "a".into(),
                        comment: "c".into(),
                        empty_layer: true,
                    },
                    HistoryEntry::default(),
                ],
                created_ns: Some(-5),
            }),
        }
    }

    fn index() -> ImageMeta {
        ImageMeta {
            digest: d('1'),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 7,
            artifact_type: String::new(),
            subject: None,
            annotated: Annotated::default(),
            kind: MetaKind::Index {
                children: vec![
                    IndexChild {
                        digest: d('2'),
                        media_type: "m".into(),
                        size: 99,
                        platform: None,
                    },
                    IndexChild {
                        digest: d('3'),
                        media_type: "m".into(),
                        size: 1 << 40,
                        platform: Some(Platform::default()),
                    },
                ],
                created_ns: Some(i128::MAX),
            },
        }
    }

    #[test]
    fn round_trips() {
        for meta in [image(), index()] {
            let bytes = encode(&meta);
            assert_eq!(bytes[0], VERSION);
            assert_eq!(decode(&bytes).unwrap_or_else(|e| panic!("{e}")), meta);
        }
    }

    #[test]
    fn reads_json_records_of_older_stores() {
        let meta = image();
        let json = serde_json::to_vec(&meta).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode(&json).unwrap_or_else(|e| panic!("{e}")), meta);
    }

    #[test]
    fn refuses_damaged_records() {
        let bytes = encode(&index());
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 9]).is_err());
    }
}

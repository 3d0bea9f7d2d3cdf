//! An rpm header blob as the database stores it: `il` and `dl` (big-endian
//! counts of index entries and data bytes), `il` 16-byte entries (tag,
//! type, offset, count), then the data store. Only the tags an inventory
//! needs are read; each offset is checked against the data store, so a
//! corrupt header yields an error, never a read out of bounds.

use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package, SourcePackage};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own bounds (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX`).
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, ParseError> {
        let bad = |m: &str| ParseError::malformed(format!("rpm header: {m}"));
        let il = be32(blob, 0).ok_or_else(|| bad("truncated"))? as usize;
        let dl = be32(blob, 4).ok_or_else(|| bad("truncated"))? as usize;
        if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
            return Err(bad("counts out of range"));
        }
        let index_end = 8 + il * 16;
        let end = index_end + dl;
        if end > blob.len() {
            return Err(bad("shorter than its counts"));
        }
        Ok(Self {
            index: &blob[8..index_end],
            data: &blob[index_end..end],
        })
    }

    /// (type, offset, count) of the first entry of `tag`.
    fn entry(&self, tag: u32) -> Option<(u32, usize, u32)> {
        self.index.chunks_exact(16).find_map(|e| {
            (be32(e, 0)? == tag).then(|| Some((be32(e, 4)?, be32(e, 8)? as usize, be32(e, 12)?)))?
        })
    }

    fn string(&self, tag: u32) -> Option<String> {
        let (kind, offset, _) = self.entry(tag)?;
        if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return None;
        }
        let rest = self.data.get(offset..)?;
        let end = memchr::memchr(0, rest)?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        (!text.is_empty()).then_some(text)
    }

    fn int32(&self, tag: u32) -> Option<u32> {
        let (kind, offset, count) = self.entry(tag)?;
        (kind == TYPE_INT32 && count >= 1).then(|| be32(self.data, offset))?
    }
}

/// `name-version-release.src.rpm` → (name, version-release).
fn source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    Some((name, &stem[name.len() + 1..]))
}

/// The package a header describes; `None` for rpm's `gpg-pubkey` entries.
pub(crate) fn package(blob: &[u8], path: &str) -> Result<Option<Package>, ParseError> {
    let header = Header::parse(blob)?;
    let (Some(name), Some(version)) = (header.string(TAG_NAME), header.string(TAG_VERSION)) else {
        return Err(ParseError::malformed("rpm header: no name or version"));
    };
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let epoch = header
        .int32(TAG_EPOCH)
        .map(|e| format!("{e}:"))
        .unwrap_or_default();
    let full = match header.string(TAG_RELEASE) {
        Some(release) => format!("{epoch}{version}-{release}"),
        None => format!("{epoch}{version}"),
    };
    let source = header.string(TAG_SOURCERPM).and_then(|file| {
        source_rpm(&file).map(|(name, version)| SourcePackage {
            name: name.to_string(),
            version: format!("{epoch}{version}"),
        })
    });
    Ok(Some(Package {
        ecosystem: Ecosystem::Rpm,
        name,
        version: full,
        source,
        arch: header.string(TAG_ARCH),
        path: path.to_string(),
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header blob with string and int32 entries, as rpm lays it out.
    pub(crate) fn blob(strings: &[(u32, &str)], ints: &[(u32, u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in ints {
            index.extend_from_slice(
                &[
                    tag.to_be_bytes(),
                    TYPE_INT32.to_be_bytes(),
                    (data.len() as u32).to_be_bytes(),
                    1u32.to_be_bytes(),
                ]
                .concat(),
            );
            data.extend_from_slice(&value.to_be_bytes());
        }
        for (tag, value) in strings {
            index.extend_from_slice(
                &[
                    tag.to_be_bytes(),
                    TYPE_STRING.to_be_bytes(),
                    (data.len() as u32).to_be_bytes(),
                    1u32.to_be_bytes(),
                ]
                .concat(),
            );
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
        let mut out = ((index.len() / 16) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn reads_tags() {
        let b = blob(
            &[
                (TAG_NAME, "openssl-libs"),
                (TAG_VERSION, "3.0.7"),
                (TAG_RELEASE, "27.el9"),
                (TAG_ARCH, "x86_64"),
                (TAG_SOURCERPM, "openssl-3.0.7-27.el9.src.rpm"),
            ],
            &[(TAG_EPOCH, 1)],
        );
        let p = package(&b, "var/lib/rpm/rpmdb.sqlite").unwrap().unwrap();
        assert_eq!(p.version, "1:3.0.7-27.el9");
        let source = p.source.unwrap();
        assert_eq!(
            (source.name.as_str(), source.version.as_str()),
            ("openssl", "1:3.0.7-27.el9")
        );
        assert!(package(&b[..b.len() - 3], "x").is_err());
        let mut huge = b.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(package(&huge, "x").is_err());
    }
}

//! The Berkeley DB hash file of older rpm (`var/lib/rpm/Packages`), read
//! without Berkeley DB: page 0 is the hash metadata page (magic `0x061561`
//! at byte 12, in either byte order, page size at byte 20); every page of
//! type hash (2 or 13) holds key/data item pairs through an index of
//! offsets after the 26-byte page header. A data item is stored on the
//! page (`H_KEYDATA`) or, like nearly every rpm header, on a chain of
//! overflow pages (`H_OFFPAGE`: first page, total length), each holding
//! `hf_offset` bytes after its header. Every value is a header blob.
//!
//! Pages are read one at a time through the spool; a chain is followed for
//! at most the file's page count and never past its declared length, so a
//! cycle or a lie ends, and memory is one page plus one header.

use std::io::{Read, Seek, SeekFrom};

use crate::error::ParseError;
use crate::inventory::Package;
use crate::limits::Limits;
use crate::spool::Spool;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
/// The largest header rpm writes (`HEADER_DATA_MAX` plus its index).
const MAX_VALUE: u64 = 256 << 20;

struct Db<R> {
    reader: R,
    page_size: usize,
    pages: u32,
    big_endian: bool,
}

impl<R: Read + Seek> Db<R> {
    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let b = b.get(at..at + 2)?;
        Some(if self.big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let b = b.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn page(&mut self, number: u32, buf: &mut [u8]) -> Result<(), ParseError> {
        if number >= self.pages {
            return Err(ParseError::malformed(
                "Berkeley DB: page number out of range",
            ));
        }
        self.reader
            .seek(SeekFrom::Start(u64::from(number) * self.page_size as u64))?;
        self.reader.read_exact(buf)?;
        Ok(())
    }

    /// The value on the overflow chain starting at `first`.
    fn overflow(&mut self, first: u32, len: u32) -> Result<Vec<u8>, ParseError> {
        if u64::from(len) > MAX_VALUE {
            return Err(ParseError::malformed("Berkeley DB: value too large"));
        }
        let mut value = Vec::with_capacity((len as usize).min(1 << 20));
        let mut page = vec![0u8; self.page_size];
        let mut next = first;
        let mut visited = 0u32;
        while next != 0 && value.len() < len as usize {
            visited += 1;
            if visited > self.pages {
                return Err(ParseError::malformed("Berkeley DB: overflow chain loops"));
            }
            self.page(next, &mut page)?;
            if page[25] != P_OVERFLOW {
                return Err(ParseError::malformed("Berkeley DB: broken overflow chain"));
            }
            let used = usize::from(self.u16(&page, 22).unwrap_or(0));
            let data = page
                .get(PAGE_HEADER..PAGE_HEADER + used)
                .ok_or_else(|| ParseError::malformed("Berkeley DB: overflow page overruns"))?;
            value.extend_from_slice(data);
            next = self.u32(&page, 16).unwrap_or(0);
        }
        value.truncate(len as usize);
        Ok(value)
    }
}

pub(crate) fn read(spool: &Spool, path: &str, limits: &Limits) -> Result<Vec<Package>, ParseError> {
    let mut reader = spool.reader();
    let len = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut meta = [0u8; 512];
    reader
        .read_exact(&mut meta)
        .map_err(|_| ParseError::malformed("Berkeley DB: too short"))?;
    let magic = [meta[12], meta[13], meta[14], meta[15]];
    let big_endian = if u32::from_le_bytes(magic) == HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == HASH_MAGIC {
        true
    } else {
        return Err(ParseError::malformed("not a Berkeley DB hash database"));
    };
    if meta[24] != 0 {
        return Err(ParseError::malformed(
            "Berkeley DB: encrypted databases are not supported",
        ));
    }
    let mut db = Db {
        reader,
        page_size: 0,
        pages: 0,
        big_endian,
    };
    let page_size = db.u32(&meta, 20).unwrap_or(0);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(ParseError::malformed("Berkeley DB: bad page size"));
    }
    db.page_size = page_size as usize;
    db.pages = u32::try_from(len / u64::from(page_size)).unwrap_or(u32::MAX);
    let mut packages = Vec::new();
    let mut page = vec![0u8; db.page_size];
    let mut problems = 0usize;
    for number in 1..db.pages {
        db.page(number, &mut page)?;
        if page[25] != P_HASH && page[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = usize::from(db.u16(&page, 20).unwrap_or(0));
        // Items alternate key, data; data items are the odd ones.
        for item in (1..entries).step_by(2) {
            let Some(offset) = db.u16(&page, PAGE_HEADER + 2 * item).map(usize::from) else {
                break;
            };
            let value = match page.get(offset) {
                Some(&H_OFFPAGE) => {
                    let (Some(first), Some(len)) =
                        (db.u32(&page, offset + 4), db.u32(&page, offset + 8))
                    else {
                        continue;
                    };
                    db.overflow(first, len)
                }
                Some(&H_KEYDATA) => {
                    // Items fill the page from its end: this one ends where the previous begins.
                    let end = db
                        .u16(&page, PAGE_HEADER + 2 * (item - 1))
                        .map_or(db.page_size, usize::from);
                    match page.get(offset + 1..end) {
                        Some(data) => Ok(data.to_vec()),
                        None => continue,
                    }
                }
                _ => continue,
            };
            match value.and_then(|blob| super::header::package(&blob, path)) {
                Ok(Some(package)) => packages.push(package),
                Ok(None) => {}
                Err(_) => problems += 1,
            }
            if packages.len() > limits.packages {
                return Err(ParseError::malformed("too many packages"));
            }
        }
    }
    if packages.is_empty() && problems > 0 {
        return Err(ParseError::malformed(format!(
            "Berkeley DB: {problems} unreadable headers"
        )));
    }
    Ok(packages)
}

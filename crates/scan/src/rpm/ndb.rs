//! rpm's own "ndb" format (`Packages.db`, SUSE since 15): a 32-byte
//! little-endian header (`RpmP`, version 0, generation, number of slot
//! pages), slot pages of 4096 bytes holding 16-byte slots (`Slot`, package
//! index, offset and count in 16-byte blocks; offset 0 is a free slot),
//! each pointing at a blob (`BlbS`, package index, timestamp, length) whose
//! data is the header blob. Every offset and length is checked against the
//! file before it is read; memory is one page plus one header.

use std::io::{Read, Seek, SeekFrom};

use crate::error::ParseError;
use crate::inventory::Package;
use crate::limits::Limits;
use crate::spool::Spool;

const MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_MAGIC: &[u8; 4] = b"BlbS";
const PAGE: u64 = 4096;
const SLOT: usize = 16;
const BLOCK: u64 = 16;
const HEADER: usize = 32;
/// The largest header rpm writes (`HEADER_DATA_MAX` plus its index).
const MAX_BLOB: u32 = 256 << 20;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn read(spool: &Spool, path: &str, limits: &Limits) -> Result<Vec<Package>, ParseError> {
    let bad = |m: &str| ParseError::malformed(format!("rpm ndb: {m}"));
    let mut reader = spool.reader();
    let len = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut header = [0u8; HEADER];
    reader
        .read_exact(&mut header)
        .map_err(|_| bad("too short"))?;
    if &header[..4] != MAGIC || le32(&header, 4) != 0 {
        return Err(bad("not an ndb package database"));
    }
    let slot_pages = u64::from(le32(&header, 12));
    if slot_pages == 0 || slot_pages * PAGE > len {
        return Err(bad("slot pages beyond the file"));
    }
    let first_blob_block = slot_pages * PAGE / BLOCK;
    let mut packages = Vec::new();
    let mut page = vec![0u8; PAGE as usize];
    let mut failed = 0usize;
    for number in 0..slot_pages {
        reader.seek(SeekFrom::Start(number * PAGE))?;
        reader.read_exact(&mut page)?;
        let start = if number == 0 { HEADER } else { 0 };
        let mut slots = Vec::new();
        for slot in page[start..].chunks_exact(SLOT) {
            if &slot[..4] != SLOT_MAGIC {
                return Err(bad("bad slot"));
            }
            let (index, offset, count) = (
                le32(slot, 4),
                u64::from(le32(slot, 8)),
                u64::from(le32(slot, 12)),
            );
            if offset == 0 {
                continue;
            }
            if index == 0
                || count == 0
                || offset < first_blob_block
                || (offset + count) * BLOCK > len
            {
                return Err(bad("slot out of range"));
            }
            slots.push((index, offset, count));
        }
        for (index, offset, count) in slots {
            let mut head = [0u8; 16];
            reader.seek(SeekFrom::Start(offset * BLOCK))?;
            reader.read_exact(&mut head)?;
            let blob_len = le32(&head, 12);
            if &head[..4] != BLOB_MAGIC
                || le32(&head, 4) != index
                || blob_len > MAX_BLOB
                || u64::from(blob_len) + 16 > count * BLOCK
            {
                failed += 1;
                continue;
            }
            let mut blob = vec![0u8; blob_len as usize];
            reader.read_exact(&mut blob)?;
            match super::header::package(&blob, path) {
                Ok(Some(package)) => packages.push(package),
                Ok(None) => {}
                Err(_) => failed += 1,
            }
            if packages.len() > limits.packages {
                return Err(bad("too many packages"));
            }
        }
    }
    if packages.is_empty() && failed > 0 {
        return Err(bad(&format!("{failed} unreadable headers")));
    }
    Ok(packages)
}

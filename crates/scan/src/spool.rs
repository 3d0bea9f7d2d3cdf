//! Content that must be read with random access (a jar, an rpm database):
//! kept in memory up to `Limits::spool_memory_bytes`, else written to an
//! anonymous temporary file, never more than `Limits::archive_bytes`. The
//! temporary file disappears when the spool is dropped.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use crate::error::ParseError;
use crate::limits::Limits;

pub(crate) enum Spool {
    Memory(Vec<u8>),
    File(File),
}

impl Spool {
    /// Copies exactly `size` bytes of `data`.
    pub fn read_from(data: &mut impl Read, size: u64, limits: &Limits) -> Result<Self, ParseError> {
        if size > limits.archive_bytes {
            return Err(ParseError::TooLarge(limits.archive_bytes));
        }
        if size <= limits.spool_memory_bytes {
            return Ok(Self::Memory(read_exact(data, size)?));
        }
        let mut file = tempfile::tempfile()?;
        let copied = io::copy(&mut data.take(size), &mut file)?;
        if copied != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "content ends early").into());
        }
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Self::File(file))
    }

    pub fn reader(&self) -> SpoolReader<'_> {
        match self {
            Self::Memory(bytes) => SpoolReader::Memory(Cursor::new(bytes)),
            Self::File(file) => SpoolReader::File(file),
        }
    }
}

/// Reads exactly `size` bytes into memory (the caller checked the limit).
pub(crate) fn read_exact(data: &mut impl Read, size: u64) -> Result<Vec<u8>, ParseError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 << 20));
    data.take(size).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "content ends early").into());
    }
    Ok(bytes)
}

/// Reads a file of `size` bytes whole, refusing one over `cap`.
pub(crate) fn read_capped(
    data: &mut impl Read,
    size: u64,
    cap: u64,
) -> Result<Vec<u8>, ParseError> {
    if size > cap {
        return Err(ParseError::TooLarge(cap));
    }
    read_exact(data, size)
}

/// Reads at most the first `cap` bytes (for files whose head is enough).
pub(crate) fn read_head(data: &mut impl Read, size: u64, cap: u64) -> Result<Vec<u8>, ParseError> {
    read_exact(data, size.min(cap))
}

pub(crate) enum SpoolReader<'a> {
    Memory(Cursor<&'a Vec<u8>>),
    File(&'a File),
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Memory(c) => c.read(buf),
            Self::File(f) => f.read(buf),
        }
    }
}

impl Seek for SpoolReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Self::Memory(c) => c.seek(pos),
            Self::File(f) => f.seek(pos),
        }
    }
}

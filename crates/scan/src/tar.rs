//! A streaming tar reader for untrusted layers: ustar, GNU (long names and
//! links, base-256 sizes) and PAX (`path`, `linkpath`, `size`) headers.
//! Nothing is buffered but one header block and the extension records,
//! which are capped (`MAX_EXTENSION`); an entry's data is handed out as a
//! bounded reader and whatever the consumer leaves unread is skipped.
//! Checksums are verified, so random bytes are an error, not entries.

use std::io::{self, Read};

const BLOCK: usize = 512;
/// Largest GNU long name or PAX extension kept (real ones are < 4 KiB).
const MAX_EXTENSION: u64 = 1 << 20;

/// What a tar entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Directory,
    /// Devices, FIFOs, sparse files: no content the scanner reads.
    Other,
}

/// One entry's header, extensions applied.
#[derive(Debug, Clone)]
pub struct Header {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
}

/// Reads entries one by one from a tar stream.
pub struct TarReader<R> {
    inner: R,
    /// Data bytes of the current entry not yet consumed.
    left: u64,
    /// Padding after the current entry's data.
    padding: u64,
    done: bool,
}

fn malformed(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn octal(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256: big-endian, the first byte's high bit set.
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| malformed("numeric field overflows"))?;
        }
        return Ok(value);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return Err(malformed("bad octal field"));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| malformed("numeric field overflows"))?;
    }
    Ok(value)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    &field[..end]
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Parses PAX records (`<len> <key>=<value>\n`) into the overrides.
fn apply_pax(
    records: &[u8],
    path: &mut Option<Vec<u8>>,
    link: &mut Option<Vec<u8>>,
    size: &mut Option<u64>,
) {
    let mut rest = records;
    while !rest.is_empty() {
        let Some(space) = memchr::memchr(b' ', rest) else {
            return;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return;
        };
        if len <= space + 1 || len > rest.len() {
            return;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = memchr::memchr(b'=', record) {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => *path = Some(value.to_vec()),
                b"linkpath" => *link = Some(value.to_vec()),
                b"size" => {
                    *size = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            left: 0,
            padding: 0,
            done: false,
        }
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar stream ends inside an entry",
                ));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Reads a whole block; `Ok(false)` at a clean end of stream.
    fn block(&mut self, buf: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            let got = self.inner.read(&mut buf[filled..])?;
            if got == 0 {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar stream ends inside a header",
                ));
            }
            filled += got;
        }
        Ok(true)
    }

    /// Skips old GNU sparse extension blocks (each says whether another follows).
    fn skip_sparse_extensions(&mut self) -> io::Result<()> {
        let mut block = [0u8; BLOCK];
        for _ in 0..MAX_EXTENSION / BLOCK as u64 {
            if !self.block(&mut block)? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar stream ends inside a sparse map",
                ));
            }
            if block[504] == 0 {
                return Ok(());
            }
        }
        Err(malformed("tar sparse map is too large"))
    }

    /// Reads an extension entry's data (a long name, PAX records).
    fn extension(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_EXTENSION {
            return Err(malformed("tar extension header is too large"));
        }
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        self.skip(padded(size) - size)?;
        Ok(data)
    }

    /// The next entry's header; its data is then read with [`Self::data`].
    /// `None` at the end of the archive.
    pub fn next_header(&mut self) -> io::Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let pending = std::mem::take(&mut self.left) + std::mem::take(&mut self.padding);
        self.skip(pending)?;
        let (mut long_path, mut long_link, mut pax_size) = (None, None, None);
        let mut block = [0u8; BLOCK];
        loop {
            if !self.block(&mut block)? || block.iter().all(|b| *b == 0) {
                // End-of-archive marker (or a stream cut right after an entry).
                self.done = true;
                return Ok(None);
            }
            let stored = octal(&block[148..156])?;
            let unsigned: u64 = block
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        u64::from(*b)
                    }
                })
                .sum();
            let signed: i64 = block
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        i64::from(*b as i8)
                    }
                })
                .sum();
            if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
                return Err(malformed("tar header checksum mismatch"));
            }
            let size = octal(&block[124..136])?;
            let typeflag = block[156];
            match typeflag {
                b'L' => long_path = Some(cstr(&self.extension(size)?).to_vec()),
                b'K' => long_link = Some(cstr(&self.extension(size)?).to_vec()),
                b'x' => {
                    let records = self.extension(size)?;
                    apply_pax(&records, &mut long_path, &mut long_link, &mut pax_size);
                }
                b'g' => {
                    self.extension(size)?;
                }
                _ => {
                    let ustar = &block[257..263] == b"ustar\0";
                    let mut path = cstr(&block[0..100]).to_vec();
                    if ustar {
                        let prefix = cstr(&block[345..500]);
                        if !prefix.is_empty() {
                            let mut full = prefix.to_vec();
                            full.push(b'/');
                            full.extend_from_slice(&path);
                            path = full;
                        }
                    }
                    if typeflag == b'S' && block[482] != 0 {
                        // Old GNU sparse: extension blocks of the sparse map follow
                        // the header, outside the entry's size.
                        self.skip_sparse_extensions()?;
                    }
                    let kind = match typeflag {
                        b'0' | 0 | b'7' => Kind::File,
                        b'1' => Kind::HardLink,
                        b'2' => Kind::Symlink,
                        b'5' => Kind::Directory,
                        _ => Kind::Other,
                    };
                    let size = pax_size.unwrap_or(size);
                    // Links and directories carry no data whatever the field says
                    // (GNU tar writes 0; a hostile one might not).
                    let size = if matches!(kind, Kind::HardLink | Kind::Symlink | Kind::Directory) {
                        0
                    } else {
                        size
                    };
                    self.left = size;
                    self.padding = padded(size) - size;
                    return Ok(Some(Header {
                        path: long_path.unwrap_or(path),
                        link: long_link.unwrap_or_else(|| cstr(&block[157..257]).to_vec()),
                        kind,
                        size,
                        mode: octal(&block[100..108]).unwrap_or(0) as u32,
                    }));
                }
            }
        }
    }

    /// A reader of the current entry's data. Whatever is not read is
    /// skipped by the next [`Self::next_header`].
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { tar: self }
    }
}

/// The data of one entry.
pub struct EntryData<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.tar.left) as usize;
        let got = self.tar.inner.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside an entry",
            ));
        }
        self.tar.left -= got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], typeflag: u8, size_field: &[u8]) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..107].copy_from_slice(b"0000644");
        block[124..124 + size_field.len()].copy_from_slice(size_field);
        block[156] = typeflag;
        block[257..263].copy_from_slice(b"ustar\0");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block
    }

    #[test]
    fn pax_path_and_base256_size() {
        let records = b"30 path=a/very/long/name.json\n";
        let mut stream = header(
            b"PaxHeaders/x",
            b'x',
            format!("{:011o}", records.len()).as_bytes(),
        )
        .to_vec();
        stream.extend_from_slice(records);
        stream.resize(1024, 0);
        // Size 5 written in GNU base-256.
        let mut size = [0u8; 12];
        size[0] = 0x80;
        size[11] = 5;
        stream.extend_from_slice(&header(b"short", b'0', &size));
        stream.extend_from_slice(b"hello");
        stream.resize(stream.len() + 507, 0);
        stream.extend_from_slice(&[0u8; 1024]);
        let mut tar = TarReader::new(stream.as_slice());
        let entry = tar.next_header().unwrap().unwrap();
        assert_eq!(entry.path, b"a/very/long/name.json");
        assert_eq!((entry.kind, entry.size), (Kind::File, 5));
        let mut data = String::new();
        tar.data().read_to_string(&mut data).unwrap();
        assert_eq!(data, "hello");
        assert!(tar.next_header().unwrap().is_none());
    }

    #[test]
    fn bad_checksum_is_an_error() {
        let mut block = header(b"f", b'0', b"00000000000");
        block[0] = b'g';
        assert!(TarReader::new(&block[..]).next_header().is_err());
    }
}

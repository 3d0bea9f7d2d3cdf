//! Executables (regular files with an execute bit) that are ELF: Go build
//! information and cargo-auditable's section. A binary up to
//! `Limits::binary_bytes` is read into memory and its sections parsed
//! (both formats of Go's build information, Rust's `.dep-v0`); a larger
//! one is searched as it streams by for Go's inline build information
//! (Go ≥ 1.18), keeping only a 16-byte carry-over and, once the header
//! is found, its strings (at most `Limits::build_info_bytes` each); the
//! rest of the file is then left unread.

use std::io::{self, Read};

use crate::auditable;
use crate::error::ParseError;
use crate::gobuild::{self, Inline};
use crate::inventory::Package;
use crate::limits::Limits;

const CHUNK: usize = 256 * 1024;

pub(crate) fn scan(
    path: &str,
    size: u64,
    data: &mut impl Read,
    limits: &Limits,
) -> Result<Vec<Package>, ParseError> {
    let mut head = [0u8; 4];
    data.read_exact(&mut head)?;
    if &head != b"\x7fELF" {
        return Ok(Vec::new());
    }
    if size <= limits.binary_bytes {
        // One buffer for the whole binary (the caller's size is at most the limit).
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        bytes.extend_from_slice(&head);
        data.take(size.saturating_sub(4)).read_to_end(&mut bytes)?;
        if (bytes.len() as u64) < size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "content ends early").into());
        }
        let mut packages =
            gobuild::from_memory(&bytes, path, limits.build_info_bytes).unwrap_or_default();
        if let Some(crates) = auditable::from_memory(&bytes, path, limits.build_info_bytes)? {
            packages.extend(crates);
        }
        return Ok(packages);
    }
    Ok(stream_go(&head, data, path, limits.build_info_bytes)?.unwrap_or_default())
}

/// Searches a stream for Go's inline build information.
fn stream_go(
    head: &[u8],
    data: &mut impl Read,
    path: &str,
    cap: u64,
) -> io::Result<Option<Vec<Package>>> {
    let finder = memchr::memmem::Finder::new(gobuild::MAGIC);
    // `window` holds the bytes from `base` on: the carry-over and a chunk,
    // or, once the header is found, everything from the header on.
    let mut window: Vec<u8> = head.to_vec();
    let mut base: u64 = 0;
    let mut found = false;
    let most = gobuild::HEADER as u64 + 2 * (10 + cap);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if !found
            && let Some(at) = finder
                .find_iter(&window)
                .find(|at| (base + *at as u64).is_multiple_of(16))
        {
            window.drain(..at);
            base += at as u64;
            found = true;
        }
        if found {
            match gobuild::inline(&window, cap) {
                Inline::Strings { version, modinfo } => {
                    return Ok(Some(gobuild::packages(version, modinfo, path)));
                }
                Inline::Invalid | Inline::Pointers => return Ok(None),
                Inline::Incomplete if window.len() as u64 > most => return Ok(None),
                Inline::Incomplete => {}
            }
        } else {
            // Keep the tail that could start a header split by the chunk end.
            let keep = window.len().min(gobuild::MAGIC.len() - 1);
            let drop = window.len() - keep;
            window.drain(..drop);
            base += drop as u64;
        }
        let got = data.read(&mut chunk)?;
        if got == 0 {
            return Ok(None);
        }
        window.extend_from_slice(&chunk[..got]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_past_the_memory_limit() {
        let modinfo = "mod\texample.com/big\tv1.0.0\t\ndep\tgithub.com/x/y\tv0.3.0\th1:q=\n";
        let mut binary = b"\x7fELF".to_vec();
        // Put the header across a chunk boundary, aligned.
        binary.resize(CHUNK - 16, 0xaa);
        binary.extend(crate::gobuild::tests_support::inline_blob(
            "go1.20.1", modinfo,
        ));
        binary.resize(3 * CHUNK, 0);
        let limits = Limits {
            binary_bytes: 1024,
            ..Limits::default()
        };
        let packages = scan("big", binary.len() as u64, &mut binary.as_slice(), &limits).unwrap();
        let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["example.com/big", "github.com/x/y", "stdlib"]);
        // Not ELF: nothing read past the magic.
        assert!(
            scan("t", 100, &mut [0u8; 100].as_slice(), &limits)
                .unwrap()
                .is_empty()
        );
    }
}

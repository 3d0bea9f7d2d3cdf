//! Go's build information in a binary (what `go version -m` prints): a
//! 32-byte header starting with `\xff Go buildinf:` at a 16-byte aligned
//! offset, then (Go ≥ 1.18, flag bit 2) the toolchain version and the
//! module list as two varint-prefixed strings; older binaries hold two
//! pointers to Go strings instead, resolved through the ELF sections.
//! The module list names the main module (`mod`), dependencies (`dep`)
//! and replacements (`=>`, applying to the line before). The toolchain
//! is reported as the module `stdlib`.

use object::{Object, ObjectSection};

use crate::inventory::{Ecosystem, Package};

pub(crate) const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
pub(crate) const HEADER: usize = 32;
const FLAG_INLINE: u8 = 2;
const FLAG_BIG_ENDIAN: u8 = 1;

/// The result of reading the header and what follows it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inline<'a> {
    /// More bytes are needed.
    Incomplete,
    /// Not build information (or strings over the limit).
    Invalid,
    /// Go < 1.18: pointers, resolved only with the whole binary.
    Pointers,
    Strings {
        version: &'a [u8],
        modinfo: &'a [u8],
    },
}

fn uvarint(buf: &[u8]) -> Option<Option<(u64, usize)>> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(Some((value, i + 1)));
        }
    }
    if buf.len() >= 10 { None } else { Some(None) }
}

/// Reads `buf`, which starts at the magic.
pub(crate) fn inline(buf: &[u8], cap: u64) -> Inline<'_> {
    if buf.len() < HEADER {
        return Inline::Incomplete;
    }
    if buf[15] & FLAG_INLINE == 0 {
        return Inline::Pointers;
    }
    let mut pos = HEADER;
    let mut strings = [&buf[..0], &buf[..0]];
    for slot in &mut strings {
        let (len, used) = match uvarint(&buf[pos..]) {
            None => return Inline::Invalid,
            Some(None) => return Inline::Incomplete,
            Some(Some(v)) => v,
        };
        if len > cap {
            return Inline::Invalid;
        }
        pos += used;
        let end = pos + len as usize;
        if end > buf.len() {
            return Inline::Incomplete;
        }
        *slot = &buf[pos..end];
        pos = end;
    }
    Inline::Strings {
        version: strings[0],
        modinfo: strings[1],
    }
}

/// Finds the header in a whole binary and reads it, either format.
pub(crate) fn from_memory(bytes: &[u8], path: &str, cap: u64) -> Option<Vec<Package>> {
    let finder = memchr::memmem::Finder::new(MAGIC);
    let at = finder.find_iter(bytes).find(|at| at.is_multiple_of(16))?;
    match inline(&bytes[at..], cap) {
        Inline::Strings { version, modinfo } => Some(packages(version, modinfo, path)),
        Inline::Pointers => {
            let header = &bytes[at..at + HEADER];
            let (version, modinfo) = pointers(bytes, header, cap)?;
            Some(packages(&version, &modinfo, path))
        }
        Inline::Incomplete | Inline::Invalid => None,
    }
}

/// Go < 1.18: the header holds the addresses of two Go strings.
fn pointers(bytes: &[u8], header: &[u8], cap: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    let file = object::File::parse(bytes).ok()?;
    let ptr_size = usize::from(header[14]);
    if ptr_size != 4 && ptr_size != 8 {
        return None;
    }
    let big = header[15] & FLAG_BIG_ENDIAN != 0;
    let word = |b: &[u8]| -> u64 {
        let mut v: u64 = 0;
        for i in 0..ptr_size {
            let byte = if big { b[i] } else { b[ptr_size - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        v
    };
    let read_at = |addr: u64, len: u64| -> Option<Vec<u8>> {
        file.sections().find_map(|section| {
            let start = section.address();
            let end = start.checked_add(section.size())?;
            if addr < start || addr.checked_add(len)? > end {
                return None;
            }
            let data = section.data().ok()?;
            let from = usize::try_from(addr - start).ok()?;
            data.get(from..from.checked_add(usize::try_from(len).ok()?)?)
                .map(<[u8]>::to_vec)
        })
    };
    let read_string = |addr: u64| -> Option<Vec<u8>> {
        let string_header = read_at(addr, 2 * ptr_size as u64)?;
        let data = word(&string_header[..ptr_size]);
        let len = word(&string_header[ptr_size..]);
        if len > cap {
            return None;
        }
        read_at(data, len)
    };
    let version = read_string(word(&header[16..16 + ptr_size]))?;
    let modinfo = read_string(word(&header[16 + ptr_size..16 + 2 * ptr_size]))?;
    Some((version, modinfo))
}

/// The packages of a toolchain version and a module list.
pub(crate) fn packages(version: &[u8], modinfo: &[u8], path: &str) -> Vec<Package> {
    let mut modinfo = modinfo;
    // The runtime wraps the text in 16-byte sentinels.
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let text = String::from_utf8_lossy(modinfo);
    let package = |name: &str, version: &str| Package {
        ecosystem: Ecosystem::Golang,
        name: name.to_string(),
        version: version.to_string(),
        source: None,
        arch: None,
        path: path.to_string(),
    };
    let mut packages: Vec<Package> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", module, version, ..] if !module.is_empty() => {
                packages.push(package(module, version))
            }
            // A replacement by a directory (`./x`, `/x`) keeps the module's own path and version.
            ["=>", module, version, ..]
                if !module.is_empty() && !version.is_empty() && !module.starts_with(['.', '/']) =>
            {
                if let Some(last) = packages.last_mut() {
                    *last = package(module, version);
                }
            }
            _ => {}
        }
    }
    let toolchain = String::from_utf8_lossy(version);
    if let Some(release) = toolchain
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("go"))
        && release.starts_with(|c: char| c.is_ascii_digit())
    {
        packages.push(package("stdlib", &format!("v{release}")));
    }
    packages
}

/// Builds inline build information, for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    pub(crate) fn inline_blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[8, FLAG_INLINE]);
        blob.resize(HEADER, 0);
        varint(version.len(), &mut blob);
        blob.extend_from_slice(version.as_bytes());
        varint(modinfo.len(), &mut blob);
        blob.extend_from_slice(modinfo.as_bytes());
        blob
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::inline_blob;
    use super::*;

    #[test]
    fn reads_inline_build_info_with_replacements() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.1.0\th1:x=\n=>\tgithub.com/fork/net\tv0.2.0\th1:y=\ndep\tgithub.com/a/b\tv1.2.3\th1:z=\nbuild\t-compiler=gc\n";
        let mut binary = vec![0u8; 48];
        binary.extend(inline_blob("go1.22.5", modinfo));
        let packages = from_memory(&binary, "app", 1 << 20).unwrap();
        let names: Vec<_> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("example.com/app", "(devel)"),
                ("github.com/fork/net", "v0.2.0"),
                ("github.com/a/b", "v1.2.3"),
                ("stdlib", "v1.22.5")
            ]
        );
        // Unaligned magic is not a header.
        let mut shifted = vec![0u8; 3];
        shifted.extend(inline_blob("go1.22.5", modinfo));
        assert!(from_memory(&shifted, "app", 1 << 20).is_none());
    }

    #[test]
    fn incomplete_and_oversized() {
        let blob = inline_blob("go1.21.0", "mod\tx\tv1\t\n");
        assert_eq!(inline(&blob[..blob.len() - 1], 1 << 20), Inline::Incomplete);
        assert_eq!(inline(&blob, 4), Inline::Invalid);
    }
}

/// Go < 1.18's pointer format, in a hand-built ELF executable whose
/// `.go.buildinfo` points at Go string headers in `.rodata`.
#[cfg(test)]
mod pointer_tests {
    use super::*;

    const RODATA: u64 = 0x40_0000;

    fn section_header(name: u32, kind: u32, addr: u64, offset: u64, size: u64) -> Vec<u8> {
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(&name.to_le_bytes());
        h.extend_from_slice(&kind.to_le_bytes());
        h.extend_from_slice(&(if addr != 0 { 2u64 } else { 0 }).to_le_bytes()); // SHF_ALLOC
        h.extend_from_slice(&addr.to_le_bytes());
        h.extend_from_slice(&offset.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&[0u8; 8]); // link, info
        h.extend_from_slice(&1u64.to_le_bytes()); // align
        h.extend_from_slice(&0u64.to_le_bytes()); // entsize
        h
    }

    pub(super) fn elf(version: &str, modinfo: &str) -> Vec<u8> {
        let mut wrapped = vec![0x30u8; 16];
        wrapped.extend_from_slice(modinfo.as_bytes());
        wrapped.extend_from_slice(&[0xf9u8; 16]);
        // .rodata: two string headers, then the strings.
        let mut rodata = Vec::new();
        rodata.extend_from_slice(&(RODATA + 64).to_le_bytes());
        rodata.extend_from_slice(&(version.len() as u64).to_le_bytes());
        rodata.extend_from_slice(&(RODATA + 64 + version.len() as u64).to_le_bytes());
        rodata.extend_from_slice(&(wrapped.len() as u64).to_le_bytes());
        rodata.resize(64, 0);
        rodata.extend_from_slice(version.as_bytes());
        rodata.extend_from_slice(&wrapped);
        let mut buildinfo = MAGIC.to_vec();
        buildinfo.extend_from_slice(&[8, 0]);
        buildinfo.extend_from_slice(&RODATA.to_le_bytes());
        buildinfo.extend_from_slice(&(RODATA + 16).to_le_bytes());
        let names = b"\0.go.buildinfo\0.rodata\0.shstrtab\0".to_vec();
        // Layout: header, .go.buildinfo at 64 (aligned), .rodata, names, section headers.
        let buildinfo_at = 64u64;
        let rodata_at = buildinfo_at + buildinfo.len() as u64;
        let names_at = rodata_at + rodata.len() as u64;
        let sh_at = (names_at + names.len() as u64).next_multiple_of(8);
        let mut file = b"\x7fELF\x02\x01\x01".to_vec();
        file.resize(16, 0);
        file.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        file.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&0u64.to_le_bytes()); // entry
        file.extend_from_slice(&0u64.to_le_bytes()); // phoff
        file.extend_from_slice(&sh_at.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes()); // flags
        file.extend_from_slice(&64u16.to_le_bytes());
        file.extend_from_slice(&56u16.to_le_bytes());
        file.extend_from_slice(&0u16.to_le_bytes()); // phnum
        file.extend_from_slice(&64u16.to_le_bytes());
        file.extend_from_slice(&4u16.to_le_bytes()); // shnum
        file.extend_from_slice(&3u16.to_le_bytes()); // shstrndx
        file.extend_from_slice(&buildinfo);
        file.extend_from_slice(&rodata);
        file.extend_from_slice(&names);
        file.resize(sh_at as usize, 0);
        file.extend(section_header(0, 0, 0, 0, 0));
        file.extend(section_header(
            1,
            1,
            0x50_0000,
            buildinfo_at,
            buildinfo.len() as u64,
        ));
        file.extend(section_header(
            15,
            1,
            RODATA,
            rodata_at,
            rodata.len() as u64,
        ));
        file.extend(section_header(23, 3, 0, names_at, names.len() as u64));
        file
    }

    #[test]
    fn reads_pointer_format_through_sections() {
        let modinfo = "path\texample.com/old\nmod\texample.com/old\tv0.1.0\t\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:x=\n";
        let file = elf("go1.16.15", modinfo);
        let packages = from_memory(&file, "old", 1 << 20).expect("build info");
        let found: Vec<_> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("example.com/old", "v0.1.0"),
                ("github.com/pkg/errors", "v0.9.1"),
                ("stdlib", "v1.16.15")
            ]
        );
        // Pointers to nowhere: nothing, no panic.
        let mut broken = file.clone();
        broken[64 + 16..64 + 24].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        assert!(from_memory(&broken, "old", 1 << 20).is_none());
    }
}

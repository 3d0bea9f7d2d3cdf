//! Property tests: every parser of untrusted bytes, fed random and
//! mutated input, returns (a value or an error) without panicking.

use std::io::Read;

use proptest::prelude::*;

use crate::limits::Limits;
use crate::spool::Spool;

fn small_limits() -> Limits {
    Limits {
        build_info_bytes: 1 << 16,
        metadata_bytes: 1 << 16,
        ..Limits::default()
    }
}

/// Random bytes, or a valid-looking input with random bytes spliced in.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (
            0..seed.len().max(1),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(move |(at, noise)| {
                let mut bytes = seed.to_vec();
                let at = at.min(bytes.len());
                bytes.splice(at..(at + noise.len()).min(bytes.len()), noise);
                bytes
            }),
    ]
}

const DPKG: &[u8] =
    b"Package: libc6\nStatus: install ok installed\nSource: glibc (2.36-9)\nVersion: 2.36-9\n\n";
const JSON: &[u8] = br#"{"name":"x","version":"1.0.0","packages":[{"name":"a/b","version":"1"}]}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn text_parsers(bytes in mutated(DPKG)) {
        let _ = crate::parse::dpkg::parse(&bytes, "p");
        let _ = crate::parse::apk::parse(&bytes, "p");
        let _ = crate::parse::os_release::parse(&bytes);
        let _ = crate::parse::python::parse(&bytes, "p");
        let _ = crate::parse::gem::parse(&bytes, "p/specifications/x-1.gemspec");
        let _ = crate::parse::cargo_lock::parse(&bytes, "p");
    }

    #[test]
    fn json_parsers(bytes in mutated(JSON)) {
        let _ = crate::parse::npm::parse(&bytes, "p");
        let _ = crate::parse::composer::parse(&bytes, "p");
    }

    #[test]
    fn rpm_headers(bytes in mutated(&[0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 3, 232, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 0, 0, 0, 0, 0])) {
        let _ = crate::rpm::header::package(&bytes, "p");
    }

    #[test]
    fn rpm_databases(bytes in proptest::collection::vec(any::<u8>(), 0..8192), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 512 {
            bytes[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
            bytes[20..24].copy_from_slice(&512u32.to_le_bytes());
            bytes[24] = 0;
        }
        let _ = crate::rpm::bdb::read(&Spool::Memory(bytes.clone()), "p", &small_limits());
        let mut ndb = bytes;
        if magic && ndb.len() >= 4096 {
            ndb[..4].copy_from_slice(b"RpmP");
            ndb[4..16].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        }
        let _ = crate::rpm::ndb::read(&Spool::Memory(ndb), "p", &small_limits());
    }

    #[test]
    fn go_build_info(bytes in proptest::collection::vec(any::<u8>(), 0..512), inline in any::<bool>()) {
        let mut blob = b"\x7fELF".to_vec();
        blob.resize(16, 0);
        blob.extend_from_slice(crate::gobuild::MAGIC);
        blob.extend_from_slice(&[8, if inline { 2 } else { 0 }]);
        blob.extend_from_slice(&bytes);
        let _ = crate::gobuild::from_memory(&blob, "p", 1 << 16);
        let _ = crate::binary::scan("p", blob.len() as u64, &mut blob.as_slice(), &Limits { binary_bytes: 8, ..small_limits() });
        let _ = crate::binary::scan("p", blob.len() as u64, &mut blob.as_slice(), &small_limits());
    }

    #[test]
    fn auditable_sections(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = crate::auditable::from_section(&bytes, "p", 1 << 16);
        let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
        elf.extend_from_slice(&bytes);
        let _ = crate::auditable::from_memory(&elf, "p", 1 << 16);
    }

    #[test]
    fn java_archives(bytes in proptest::collection::vec(any::<u8>(), 0..2048), eocd in any::<bool>()) {
        let mut bytes = bytes;
        if eocd {
            bytes.extend_from_slice(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0");
        }
        let _ = crate::java::scan(&Spool::Memory(bytes), "p", &small_limits());
    }

    #[test]
    fn tar_reader(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut tar = crate::tar::TarReader::new(bytes.as_slice());
        for _ in 0..64 {
            match tar.next_header() {
                Ok(Some(_)) => {
                    let mut sink = Vec::new();
                    if tar.data().read_to_end(&mut sink).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    }

    #[test]
    fn path_normalisation(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Some(path) = crate::matcher::normalize(&bytes) {
            prop_assert!(!path.starts_with('/') && !path.split('/').any(|p| p == ".." || p == "." || p.is_empty()));
            let _ = crate::matcher::classify(&path);
        }
    }
}

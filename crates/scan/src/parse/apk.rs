//! apk's database, `lib/apk/db/installed`: stanzas of `K:value` lines
//! (`P` name, `V` version, `A` architecture, `o` origin, the source
//! package, built at the same version), separated by an empty line.

use super::text::decode;
use crate::inventory::{Ecosystem, Package, SourcePackage};

pub(crate) fn parse(bytes: &[u8], path: &str) -> Vec<Package> {
    let text = decode(bytes);
    let mut packages = Vec::new();
    let (mut name, mut version, mut arch, mut origin) = (None, None, None, None);
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let (Some(name), Some(version)) = (name.take(), version.take()) {
                let source = origin.take().map(|origin: &str| SourcePackage {
                    name: origin.to_string(),
                    version: String::from(version),
                });
                packages.push(Package {
                    ecosystem: Ecosystem::Apk,
                    name: String::from(name),
                    version: String::from(version),
                    source,
                    arch: arch.take().map(String::from),
                    path: path.to_string(),
                });
            }
            (name, version, arch, origin) = (None, None, None, None);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        match key {
            "P" => name = Some(value),
            "V" => version = Some(value),
            "A" => arch = Some(value),
            "o" => origin = Some(value),
            _ => {}
        }
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed() {
        let db = b"C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:libcrypto3\nV:3.3.1-r0\nA:x86_64\no:openssl\n";
        let packages = parse(db, "lib/apk/db/installed");
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[1].name, "libcrypto3");
        assert_eq!(packages[1].source.as_ref().unwrap().name, "openssl");
        assert_eq!(packages[1].arch.as_deref(), Some("x86_64"));
    }
}

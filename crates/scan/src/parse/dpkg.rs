//! dpkg's database: `var/lib/dpkg/status` (every package, each with a
//! `Status:`), or one file per package under `var/lib/dpkg/status.d/` as in
//! distroless images (no `Status:`). A package counts when it is installed
//! (`Status: <want> <flag> installed`, or no status at all); its source
//! package is `Source: name [(version)]`, else the package itself.

use super::text::{decode, field, stanzas};
use crate::inventory::{Ecosystem, Package, SourcePackage};

pub(crate) fn parse(bytes: &[u8], path: &str) -> Vec<Package> {
    let text = decode(bytes);
    let mut packages = Vec::new();
    for stanza in stanzas(&text) {
        let (Some(name), Some(version)) = (field(&stanza, "Package"), field(&stanza, "Version"))
        else {
            continue;
        };
        if let Some(status) = field(&stanza, "Status")
            && status.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        let source = match field(&stanza, "Source") {
            Some(source) => match source.split_once('(') {
                Some((name, rest)) => SourcePackage {
                    name: name.trim().to_string(),
                    version: rest.trim_end().trim_end_matches(')').trim().to_string(),
                },
                None => SourcePackage {
                    name: source.to_string(),
                    version: version.to_string(),
                },
            },
            None => SourcePackage {
                name: name.to_string(),
                version: version.to_string(),
            },
        };
        packages.push(Package {
            ecosystem: Ecosystem::Deb,
            name: name.to_string(),
            version: version.to_string(),
            source: Some(source),
            arch: field(&stanza, "Architecture").map(str::to_string),
            path: path.to_string(),
        });
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_source() {
        let status = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nVersion: 5.2.15-2+b2\nSource: bash\n";
        let packages = parse(status, "var/lib/dpkg/status");
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "libc6");
        let source = packages[0].source.as_ref().unwrap();
        assert_eq!(
            (source.name.as_str(), source.version.as_str()),
            ("glibc", "2.36-9")
        );
        let source = packages[1].source.as_ref().unwrap();
        assert_eq!(
            (source.name.as_str(), source.version.as_str()),
            ("bash", "5.2.15-2+b2")
        );
    }
}

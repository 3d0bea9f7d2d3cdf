//! Java archives (jar, war, ear, ...): every
//! `META-INF/maven/<group>/<artifact>/pom.properties` (`groupId`,
//! `artifactId`, `version`), and the same inside archives nested in the
//! archive, down to `Limits::archive_depth`. A nested archive is spooled
//! (memory or temporary file, at most `Limits::archive_bytes`) before it
//! is opened; entries read across all levels are capped by
//! `Limits::archive_entries`, checked against the central directory before
//! it is parsed, and every entry is inflated through a bounded reader. A
//! nested archive that cannot be read is skipped, the outer one goes on.

use std::io::{Read, Seek, SeekFrom};

use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package, Problem};
use crate::limits::Limits;
use crate::matcher::is_java_archive;
use crate::spool::{self, Spool};

/// What the archives yielded: packages, and the nested archives skipped.
#[derive(Default)]
pub(crate) struct Found {
    pub packages: Vec<Package>,
    pub problems: Vec<Problem>,
}

pub(crate) fn scan(spool: &Spool, path: &str, limits: &Limits) -> Result<Found, ParseError> {
    let mut found = Found::default();
    let mut entries = limits.archive_entries;
    archive(spool.reader(), path, limits, 1, &mut entries, &mut found)?;
    Ok(found)
}

fn archive<R: Read + Seek>(
    mut reader: R,
    path: &str,
    limits: &Limits,
    depth: u32,
    entries: &mut u64,
    found: &mut Found,
) -> Result<(), ParseError> {
    let declared = declared_entries(&mut reader)?;
    if declared > *entries {
        return Err(ParseError::malformed(format!(
            "{declared} entries exceed the limit of {}",
            *entries
        )));
    }
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| ParseError::malformed(format!("zip: {e}")))?;
    for index in 0..zip.len() {
        if *entries == 0 {
            return Err(ParseError::malformed("too many archive entries"));
        }
        *entries -= 1;
        let Ok(mut entry) = zip.by_index(index) else {
            continue;
        };
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            continue;
        };
        if is_pom_properties(&name) {
            let size = entry.size();
            let Ok(bytes) = spool::read_head(&mut entry, size, limits.metadata_bytes) else {
                continue;
            };
            if let Some(package) = pom_properties(&bytes, path) {
                found.packages.push(package);
            }
        } else if is_java_archive(&name) {
            let inner_path = format!("{path}!/{name}");
            if depth >= limits.archive_depth {
                let message = format!(
                    "archive nested deeper than {}; not read",
                    limits.archive_depth
                );
                found.problems.push(Problem {
                    path: inner_path,
                    message,
                });
                continue;
            }
            let size = entry.size();
            let inner = Spool::read_from(&mut entry, size, limits);
            drop(entry);
            let result = inner.and_then(|inner| {
                archive(
                    inner.reader(),
                    &inner_path,
                    limits,
                    depth + 1,
                    entries,
                    found,
                )
            });
            if let Err(e) = result {
                found.problems.push(Problem {
                    path: inner_path,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn is_pom_properties(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("META-INF/maven/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 3 && parts[2] == "pom.properties" && !parts[0].is_empty() && !parts[1].is_empty()
}

fn pom_properties(bytes: &[u8], path: &str) -> Option<Package> {
    let text = String::from_utf8_lossy(bytes);
    let (mut group, mut artifact, mut version) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        match key {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    let (group, artifact, version) = (group?, artifact?, version?);
    if group.is_empty() || artifact.is_empty() || version.is_empty() {
        return None;
    }
    Some(Package {
        ecosystem: Ecosystem::Maven,
        name: format!("{group}:{artifact}"),
        version: version.to_string(),
        source: None,
        arch: None,
        path: path.to_string(),
    })
}

/// The entry count the end of central directory declares (zip64 too), so
/// a huge central directory is refused before it is parsed.
fn declared_entries<R: Read + Seek>(reader: &mut R) -> Result<u64, ParseError> {
    let len = reader.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65535);
    reader.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    reader.read_exact(&mut tail)?;
    reader.seek(SeekFrom::Start(0))?;
    let Some(eocd) = memchr::memmem::rfind(&tail, b"PK\x05\x06") else {
        return Err(ParseError::malformed("not a zip archive"));
    };
    let u16_at = |i: usize| {
        tail.get(i..i + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let entries =
        u16_at(eocd + 10).ok_or_else(|| ParseError::malformed("truncated zip directory"))?;
    if entries != 0xffff {
        return Ok(entries);
    }
    // Zip64: the locator just before the end record points at the zip64 record.
    let locator = eocd.checked_sub(20).and_then(|at| tail.get(at..at + 20));
    let Some(locator) = locator.filter(|l| l.starts_with(b"PK\x06\x07")) else {
        return Ok(entries);
    };
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&locator[8..16]);
    let offset = u64::from_le_bytes(offset);
    let mut record = [0u8; 56];
    reader.seek(SeekFrom::Start(offset))?;
    let read = reader.read_exact(&mut record);
    reader.seek(SeekFrom::Start(0))?;
    if read.is_err() || !record.starts_with(b"PK\x06\x06") {
        return Err(ParseError::malformed("bad zip64 directory"));
    }
    let mut total = [0u8; 8];
    total.copy_from_slice(&record[32..40]);
    Ok(u64::from_le_bytes(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_properties_lines() {
        let p = pom_properties(
            b"#Generated\nversion=2.11.0\ngroupId=commons-io\nartifactId=commons-io\n",
            "a.jar",
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("commons-io:commons-io", "2.11.0")
        );
        assert!(pom_properties(b"groupId=x\n", "a.jar").is_none());
        assert!(is_pom_properties("META-INF/maven/g/a/pom.properties"));
        assert!(!is_pom_properties("META-INF/maven/g/pom.properties"));
    }
}

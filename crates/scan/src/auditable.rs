//! Rust binaries built with cargo-auditable: the `.dep-v0` section holds
//! zlib-compressed JSON, `{"packages": [{"name", "version", "source",
//! "kind", ...}]}`. Build-time dependencies (`"kind": "build"`) are not in
//! the binary and are not reported. Inflating stops at the limit.

use std::io::Read;

use object::{Object, ObjectSection};

use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package};

#[derive(serde::Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(serde::Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The packages in `bytes`' `.dep-v0` section, if it has one.
pub(crate) fn from_memory(
    bytes: &[u8],
    path: &str,
    cap: u64,
) -> Result<Option<Vec<Package>>, ParseError> {
    let Ok(file) = object::File::parse(bytes) else {
        return Ok(None);
    };
    let Some(section) = file.section_by_name(".dep-v0") else {
        return Ok(None);
    };
    let data = section
        .data()
        .map_err(|e| ParseError::malformed(format!(".dep-v0: {e}")))?;
    from_section(data, path, cap).map(Some)
}

/// The packages of a `.dep-v0` section's content.
pub(crate) fn from_section(data: &[u8], path: &str, cap: u64) -> Result<Vec<Package>, ParseError> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(cap + 1)
        .read_to_end(&mut json)
        .map_err(|e| ParseError::malformed(format!(".dep-v0: {e}")))?;
    if json.len() as u64 > cap {
        return Err(ParseError::TooLarge(cap));
    }
    let audit: Audit = serde_json::from_slice(&json)
        .map_err(|e| ParseError::malformed(format!(".dep-v0: {e}")))?;
    Ok(audit
        .packages
        .into_iter()
        .filter(|p| p.kind.as_deref() != Some("build") && !p.name.is_empty())
        .map(|p| Package {
            ecosystem: Ecosystem::Cargo,
            name: p.name,
            version: p.version,
            source: None,
            arch: None,
            path: path.to_string(),
        })
        .collect())
}

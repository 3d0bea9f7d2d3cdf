//! Python distributions: the core metadata (`Name:`, `Version:` headers)
//! of `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an `.egg-info`
//! file). Only the headers are read, up to the first empty line.

use super::text::{decode, field, stanzas};
use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package};

pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Vec<Package>, ParseError> {
    let text = decode(bytes);
    let headers = stanzas(&text).next().unwrap_or_default();
    let (Some(name), Some(version)) = (field(&headers, "Name"), field(&headers, "Version")) else {
        return Err(ParseError::malformed("no Name and Version headers"));
    };
    Ok(vec![Package {
        ecosystem: Ecosystem::Pypi,
        name: name.to_string(),
        version: version.to_string(),
        source: None,
        arch: None,
        path: path.to_string(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_only() {
        let p = parse(
            b"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n\nName: not-this\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("PyYAML", "6.0")
        );
        assert!(parse(b"Summary: nothing\n", "x").is_err());
    }
}

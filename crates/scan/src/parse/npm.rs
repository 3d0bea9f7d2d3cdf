//! npm packages: `node_modules/<name>/package.json` (and scoped
//! `node_modules/@scope/<name>/package.json`) with string `name` and
//! `version`. A package.json without them (a nested one describing a
//! module format) is not a package and is skipped quietly.

use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package};

#[derive(serde::Deserialize)]
struct Manifest {
    name: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Vec<Package>, ParseError> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| ParseError::malformed(e.to_string()))?;
    let (Some(serde_json::Value::String(name)), Some(serde_json::Value::String(version))) =
        (manifest.name, manifest.version)
    else {
        return Ok(Vec::new());
    };
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Package {
        ecosystem: Ecosystem::Npm,
        name,
        version,
        source: None,
        arch: None,
        path: path.to_string(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_version() {
        let p = parse(
            br#"{"name":"@types/node","version":"20.1.0","dependencies":{}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(p[0].name, "@types/node");
        assert!(parse(br#"{"type":"module"}"#, "x").unwrap().is_empty());
        assert!(parse(b"[1,2", "x").is_err());
    }
}

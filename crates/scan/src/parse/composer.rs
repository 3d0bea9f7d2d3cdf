//! PHP packages installed by Composer: `vendor/composer/installed.json`,
//! a list of packages (Composer 1) or `{"packages": [...]}` (Composer 2),
//! each with `name` (`vendor/name`) and `version`.

use crate::error::ParseError;
use crate::inventory::{Ecosystem, Package};

pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Vec<Package>, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::malformed(e.to_string()))?;
    let list = match &value {
        serde_json::Value::Array(list) => list,
        serde_json::Value::Object(map) => match map.get("packages") {
            Some(serde_json::Value::Array(list)) => list,
            _ => return Err(ParseError::malformed("no packages list")),
        },
        _ => return Err(ParseError::malformed("neither a list nor an object")),
    };
    Ok(list
        .iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?;
            let version = entry.get("version")?.as_str()?;
            (!name.is_empty() && !version.is_empty()).then(|| Package {
                ecosystem: Ecosystem::Composer,
                name: name.to_string(),
                version: version.to_string(),
                source: None,
                arch: None,
                path: path.to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        let v2 = br#"{"packages":[{"name":"monolog/monolog","version":"3.5.0"},{"name":"x"}],"dev":true}"#;
        assert_eq!(parse(v2, "x").unwrap().len(), 1);
        let v1 = br#"[{"name":"psr/log","version":"1.1.4"}]"#;
        assert_eq!(parse(v1, "x").unwrap()[0].name, "psr/log");
        assert!(parse(b"3", "x").is_err());
    }
}

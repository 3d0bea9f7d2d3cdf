//! `Cargo.lock`: `[[package]]` tables with `name`, `version` and, for
//! crates not of the workspace, `source`. Read line by line (the format
//! cargo writes), not as general TOML; every package is listed.

use super::text::decode;
use crate::inventory::{Ecosystem, Package};

fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once('=')?;
    if k.trim() != key {
        return None;
    }
    let v = v.trim();
    v.strip_prefix('"')?
        .strip_suffix('"')
        .filter(|v| !v.is_empty())
}

pub(crate) fn parse(bytes: &[u8], path: &str) -> Vec<Package> {
    let text = decode(bytes);
    let mut packages = Vec::new();
    let mut current: Option<(Option<&str>, Option<&str>)> = None;
    let mut flush = |current: &mut Option<(Option<&str>, Option<&str>)>| {
        if let Some((Some(name), Some(version))) = current.take() {
            packages.push(Package {
                ecosystem: Ecosystem::Cargo,
                name: name.to_string(),
                version: version.to_string(),
                source: None,
                arch: None,
                path: path.to_string(),
            });
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut current);
            if line == "[[package]]" {
                current = Some((None, None));
            }
            continue;
        }
        if let Some((name, version)) = current.as_mut() {
            if let Some(v) = string_value(line, "name") {
                *name = Some(v);
            } else if let Some(v) = string_value(line, "version") {
                *version = Some(v);
            }
        }
    }
    flush(&mut current);
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_packages() {
        let lock = b"version = 4\n\n[[package]]\nname = \"anyhow\"\nversion = \"1.0.86\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"anyhow\",\n]\n\n[metadata]\nname = \"no\"\n";
        let p = parse(lock, "Cargo.lock");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("anyhow", "1.0.86")
        );
    }
}

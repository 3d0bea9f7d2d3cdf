//! Semantic versions (semver 2.0.0) as npm, crates.io and Go order them:
//! `MAJOR.MINOR.PATCH[-pre][+build]`, numeric cores, pre-releases before
//! the release, pre-release identifiers compared numerically when both
//! are numeric (numeric before alphanumeric), fewer identifiers first;
//! build metadata ignored (so Go's `+incompatible` is). A leading `v` or
//! `=` and missing minor/patch (`1.2`) are tolerated. Go pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`, `v1.2.4-0.2019...`) are
//! pre-releases and order correctly under these rules.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Number(u64),
    Text(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Number(a), Ident::Number(b)) => a.cmp(b),
            (Ident::Number(_), Ident::Text(_)) => Ordering::Less,
            (Ident::Text(_), Ident::Number(_)) => Ordering::Greater,
            (Ident::Text(a), Ident::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed semantic version (build metadata dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

/// Parses a semantic version, tolerantly (see the module docs).
pub fn parse(version: &str) -> Option<Version> {
    let v = version.trim();
    let v = v.strip_prefix('=').unwrap_or(v).trim_start();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let v = v.split_once('+').map_or(v, |(v, _)| v);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut parts = [0u64; 3];
    for (n, part) in core.split('.').enumerate() {
        if n == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parts[n] = part.parse().ok()?;
    }
    let mut idents = Vec::new();
    if let Some(pre) = pre {
        for ident in pre.split('.') {
            if ident.is_empty()
                || !ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return None;
            }
            idents.push(if ident.bytes().all(|b| b.is_ascii_digit()) {
                Ident::Number(ident.parse().unwrap_or(u64::MAX))
            } else {
                Ident::Text(ident.to_string())
            });
        }
    }
    Some(Version {
        core: parts,
        pre: idents,
    })
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| super::empty_then(&self.pre, &other.pre, Ordering::Greater))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two semantic versions; a string that does not parse sorts
/// before every version, and two such strings compare as bytes.
pub fn compare(a: &str, b: &str) -> Ordering {
    super::parsed_or_bytes(a, b, parse)
}

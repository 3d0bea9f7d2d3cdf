//! The OSV record format (<https://ossf.github.io/osv-schema/>), as read
//! from `all.zip` entries and `*.json` files. Tolerant: unknown fields
//! are ignored and `null` reads as absent, so schema additions do not
//! fail an import; only `id` is required.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn null_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One OSV record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub upstream: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub severity: Vec<SeverityScore>,
    #[serde(default, deserialize_with = "null_vec")]
    pub affected: Vec<Affected>,
    #[serde(default, deserialize_with = "null_vec")]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// A `severity` entry: `type` (`CVSS_V3`, `CVSS_V4`, `Ubuntu`, ...) and
/// `score` (a vector, or a name for the distributions' own).
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub score: String,
}

/// An `affected` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<PackageRef>,
    #[serde(default, deserialize_with = "null_vec")]
    pub severity: Vec<SeverityScore>,
    #[serde(default, deserialize_with = "null_vec")]
    pub ranges: Vec<Range>,
    #[serde(default, deserialize_with = "null_vec")]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ecosystem_specific: Option<Value>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct PackageRef {
    #[serde(default)]
    pub ecosystem: String,
    #[serde(default)]
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "null_vec")]
    pub events: Vec<Event>,
}

/// One event of a range (exactly one field set, by the schema).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub introduced: Option<String>,
    #[serde(default)]
    pub fixed: Option<String>,
    #[serde(default)]
    pub last_affected: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
}

/// `references[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub url: String,
}

/// Parses one record.
pub fn parse(bytes: &[u8]) -> Result<Record, serde_json::Error> {
    serde_json::from_slice(bytes)
}

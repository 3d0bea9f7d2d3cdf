//! The compact form of an OSV record that the database stores per
//! (ecosystem, package): what matching and reporting need, nothing else.
//! Built by [`Advisory::from_record`], which also names the record's own
//! severity: from a CVSS v3.x vector (the base score computed), else the
//! distribution's or database's own severity name; the matcher falls back
//! on an aliased record's CVSS and then `UNKNOWN`.

use serde::{Deserialize, Serialize};

use crate::cvss;
use crate::osv::{Record, SeverityScore};

/// zot's severity names, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// zot's name (`UNKNOWN`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The CVSS qualitative rating of a base score (0.0, "None", is
    /// `UNKNOWN`: zot has no such CVE severity).
    pub fn from_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Unknown,
        }
    }

    /// A distribution's or database's own name (`important`, `moderate`,
    /// `negligible`, ...); `None` for names that say nothing.
    pub fn from_name(name: &str) -> Option<Severity> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "minor" | "unimportant" => Severity::Low,
            _ => return None,
        })
    }
}

/// How a severity was found, best first (the matcher keeps the best when
/// advisories merge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SeveritySource {
    Cvss,
    Own,
    Alias,
    None,
}

/// A CVSS-derived severity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub score: f64,
    pub vector: String,
    pub severity: Severity,
}

/// A version range: its events in the record's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `true` for `SEMVER`, `false` for `ECOSYSTEM`.
    pub semver: bool,
    pub events: Vec<Event>,
}

/// One range event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// What one advisory says about one package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The full OSV ecosystem, with its release (`Debian:12`).
    pub ecosystem: String,
    pub name: String,
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
}

/// An advisory as stored: one record, restricted to one package.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    /// `aliases` and `upstream`, without duplicates.
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    pub cvss: Option<Scored>,
    pub own_severity: Option<Severity>,
    pub references: Vec<String>,
    pub modified: Option<String>,
    pub affected: Vec<AffectedPackage>,
}

/// The longest description kept (bytes); longer ones are cut at a
/// character boundary.
pub const MAX_DETAILS: usize = 16 * 1024;

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The best CVSS v3.x score among severity entries.
pub fn best_cvss<'a>(entries: impl IntoIterator<Item = &'a SeverityScore>) -> Option<Scored> {
    let mut best: Option<Scored> = None;
    for e in entries {
        if e.kind != "CVSS_V3" {
            continue;
        }
        if let Some(score) = cvss::v3_base_score(&e.score)
            && best.as_ref().is_none_or(|b| score > b.score)
        {
            best = Some(Scored {
                score,
                vector: e.score.clone(),
                severity: Severity::from_score(score),
            });
        }
    }
    best
}

fn own_severity(record: &Record) -> Option<Severity> {
    let from_value = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.get("severity"))
            .and_then(|s| s.as_str())
            .and_then(Severity::from_name)
    };
    from_value(record.database_specific.as_ref())
        .or_else(|| {
            record.affected.iter().find_map(|a| {
                from_value(a.ecosystem_specific.as_ref())
                    .or_else(|| from_value(a.database_specific.as_ref()))
            })
        })
        .or_else(|| {
            record
                .severity
                .iter()
                .chain(record.affected.iter().flat_map(|a| a.severity.iter()))
                .filter(|s| !s.kind.starts_with("CVSS"))
                .find_map(|s| Severity::from_name(&s.score))
        })
}

impl Advisory {
    /// The record's own CVSS (record-level, then per-package entries).
    pub fn record_cvss(record: &Record) -> Option<Scored> {
        best_cvss(record.severity.iter())
            .or_else(|| best_cvss(record.affected.iter().flat_map(|a| a.severity.iter())))
    }

    /// The advisory of `record` for the packages that `keep` selects
    /// (by ecosystem and name).
    pub fn from_record(record: &Record, mut keep: impl FnMut(&str, &str) -> bool) -> Advisory {
        let mut aliases: Vec<String> = Vec::new();
        for a in record.aliases.iter().chain(&record.upstream) {
            if a != &record.id && !aliases.contains(a) {
                aliases.push(a.clone());
            }
        }
        let affected = record
            .affected
            .iter()
            .filter_map(|a| {
                let p = a.package.as_ref()?;
                if !keep(&p.ecosystem, &p.name) {
                    return None;
                }
                let ranges = a
                    .ranges
                    .iter()
                    .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
                    .map(|r| Range {
                        semver: r.kind == "SEMVER",
                        events: r
                            .events
                            .iter()
                            .filter_map(|e| {
                                Some(if let Some(v) = &e.introduced {
                                    Event::Introduced(v.clone())
                                } else if let Some(v) = &e.fixed {
                                    Event::Fixed(v.clone())
                                } else if let Some(v) = &e.last_affected {
                                    Event::LastAffected(v.clone())
                                } else {
                                    Event::Limit(e.limit.clone()?)
                                })
                            })
                            .collect(),
                    })
                    .collect();
                Some(AffectedPackage {
                    ecosystem: p.ecosystem.clone(),
                    name: p.name.clone(),
                    ranges,
                    versions: a.versions.clone(),
                })
            })
            .collect();
        Advisory {
            id: record.id.clone(),
            aliases,
            summary: record.summary.clone().filter(|s| !s.trim().is_empty()),
            details: record
                .details
                .clone()
                .filter(|s| !s.trim().is_empty())
                .map(|d| cut(d, MAX_DETAILS)),
            cvss: Self::record_cvss(record),
            own_severity: own_severity(record),
            references: record
                .references
                .iter()
                .map(|r| r.url.clone())
                .filter(|u| !u.is_empty())
                .collect(),
            modified: record.modified.clone(),
            affected,
        }
    }
}

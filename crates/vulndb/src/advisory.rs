//! The compact form of an OSV record that the database stores per
//! (ecosystem, package): what matching and reporting need, nothing else.
//! Built by [`Advisory::from_record`], which also names the record's own
//! severity: from a CVSS v3.x or else v4.0 vector (the base score
//! computed), else the
//! distribution's or database's own severity name; the matcher falls back
//! on an aliased record's CVSS and then `UNKNOWN`.

use serde::{Deserialize, Serialize};

use crate::osv::{Record, SeverityScore};
use crate::{cvss, cvss4};

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

/// The severity of the best CVSS score among severity entries: v3.x
/// vectors first (the scores other scanners show), else v4.0.
pub fn best_cvss<'a>(
    entries: impl IntoIterator<Item = &'a SeverityScore> + Clone,
) -> Option<Scored> {
    let best = |kind: &str, score: fn(&str) -> Option<f64>| {
        let mut best: Option<Scored> = None;
        for e in entries.clone() {
            if e.kind != kind {
                continue;
            }
            if let Some(s) = score(&e.score)
                && best.as_ref().is_none_or(|b| s > b.score)
            {
                best = Some(Scored {
                    score: s,
                    vector: e.score.clone(),
                    severity: Severity::from_score(s),
                });
            }
        }
        best
    };
    best("CVSS_V3", cvss::v3_base_score).or_else(|| best("CVSS_V4", cvss4::v4_score))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_sources_in_order() {
        let record = |json: &str| crate::osv::parse(json.as_bytes()).expect("parses");
        let v4 = record(
            r#"{"id": "X-1", "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"}]}"#,
        );
        let a = Advisory::from_record(&v4, |_, _| true);
        assert_eq!(
            a.cvss.as_ref().map(|c| (c.score, c.severity)),
            Some((8.7, Severity::High))
        );
        let both = record(
            r#"{"id": "X-2", "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"}, {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H"}]}"#,
        );
        let a = Advisory::from_record(&both, |_, _| true);
        assert_eq!(
            a.cvss.as_ref().map(|c| (c.score, c.severity)),
            Some((5.9, Severity::Medium))
        );
        let own = record(
            r#"{"id": "X-3", "severity": [{"type": "Ubuntu", "score": "medium"}], "affected": [{"ecosystem_specific": {"severity": "ignored: record severity first"}}]}"#,
        );
        let a = Advisory::from_record(&own, |_, _| true);
        assert_eq!((a.cvss, a.own_severity), (None, Some(Severity::Medium)));
        let per_package = record(
            r#"{"id": "X-4", "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "ecosystem_specific": {"severity": "Important"}}]}"#,
        );
        assert_eq!(
            Advisory::from_record(&per_package, |_, _| true).own_severity,
            Some(Severity::High)
        );
        let none = record(r#"{"id": "X-5", "severity": null, "aliases": null, "affected": null}"#);
        let a = Advisory::from_record(&none, |_, _| true);
        assert_eq!((a.cvss, a.own_severity), (None, None));
    }
}

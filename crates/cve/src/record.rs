//! What the scanner stores in the metadata store (`zot_meta`'s
//! `cve_scans` and `cve_findings` tables), as JSON:
//! - per manifest digest a [`ScanRecord`]: the package inventory, or the
//!   reason the manifest cannot be scanned (zot's error text);
//! - per (digest, database version) the findings, one [`StoredCve`] per
//!   CVE id with every affected package occurrence.
//!
//! Invariant: findings are a pure function of (inventory, database): a
//! database update recomputes them from the stored inventory, without
//! reading layers again.

use serde::{Deserialize, Serialize};
use zot_scan::Inventory;
use zot_search::cve::{CvePackage, CveRecord};
use zot_vulndb::Finding;

/// The scanner's record of one manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanRecord {
    /// Its package inventory.
    Inventory(Inventory),
    /// It cannot be scanned: zot's error text.
    Unscannable(String),
}

impl ScanRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `None` for bytes of another format (a later scanner's): the
    /// manifest is then scanned again.
    pub fn from_bytes(bytes: &[u8]) -> Option<ScanRecord> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether the current scanner would find the same (an inventory of
    /// an older scanner revision may lack packages).
    pub fn is_current(&self) -> bool {
        match self {
            ScanRecord::Inventory(i) => i.scanner >= Inventory::SCANNER,
            ScanRecord::Unscannable(_) => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPackage {
    pub name: String,
    pub path: String,
    pub installed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
}

/// One CVE of one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCve {
    pub id: String,
    pub title: String,
    pub description: String,
    pub reference: String,
    pub severity: String,
    /// The source advisories (`DSA-…`, `GHSA-…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
    pub packages: Vec<StoredPackage>,
}

/// zot's `Reference`: cve.org for a CVE id, else the first reference
/// (the source advisory's osv.dev page).
fn reference(id: &str, references: &[String]) -> String {
    if id.starts_with("CVE-") {
        return format!("https://www.cve.org/CVERecord?id={id}");
    }
    references.first().cloned().unwrap_or_default()
}

/// Groups the matcher's findings (one per package occurrence and CVE) by
/// CVE id, sorted by id; the highest severity of a CVE's occurrences wins.
pub fn group(findings: Vec<Finding>) -> Vec<StoredCve> {
    let mut out: std::collections::BTreeMap<String, (zot_vulndb::Severity, StoredCve)> =
        std::collections::BTreeMap::new();
    for f in findings {
        let package = StoredPackage {
            name: f.package.clone(),
            path: f.path.clone(),
            installed: f.installed_version.clone(),
            fixed: f.fixed_version.clone(),
        };
        let entry = out.entry(f.id.clone()).or_insert_with(|| {
            (
                f.severity,
                StoredCve {
                    id: f.id.clone(),
                    title: f.title.clone(),
                    description: f.description.clone(),
                    reference: reference(&f.id, &f.references),
                    severity: f.severity.as_str().to_owned(),
                    advisories: Vec::new(),
                    packages: Vec::new(),
                },
            )
        });
        if f.severity > entry.0 {
            entry.0 = f.severity;
            entry.1.severity = f.severity.as_str().to_owned();
        }
        for a in f.advisories {
            if !entry.1.advisories.contains(&a) {
                entry.1.advisories.push(a);
            }
        }
        if !entry.1.packages.contains(&package) {
            entry.1.packages.push(package);
        }
    }
    out.into_values().map(|v| v.1).collect()
}

/// The search crate's view of a stored CVE.
pub fn to_record(c: StoredCve) -> CveRecord {
    CveRecord {
        id: c.id,
        title: c.title,
        description: c.description,
        reference: c.reference,
        severity: c.severity,
        packages: c
            .packages
            .into_iter()
            .map(|p| CvePackage {
                name: p.name,
                path: p.path,
                installed: p.installed,
                fixed: p.fixed,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_scan::Ecosystem;
    use zot_vulndb::{Severity, SeveritySource};

    fn finding(id: &str, package: &str, severity: Severity, path: &str) -> Finding {
        Finding {
            id: id.into(),
            severity,
            severity_source: SeveritySource::Own,
            cvss: None,
            ecosystem: Ecosystem::Deb,
            package: package.into(),
            installed_version: "1.0".into(),
            fixed_version: Some("1.1".into()),
            path: path.into(),
            title: format!("{package} flaw"),
            description: String::new(),
            advisories: vec![format!("DSA-{package}")],
            references: vec![format!("https://osv.dev/vulnerability/DSA-{package}")],
        }
    }

    #[test]
    fn findings_are_grouped_by_cve_with_the_highest_severity() {
        let grouped = group(vec![
            finding("CVE-2", "libssl3", Severity::Medium, "var/lib/dpkg/status"),
            finding("CVE-2", "openssl", Severity::High, "var/lib/dpkg/status"),
            finding("CVE-2", "openssl", Severity::High, "var/lib/dpkg/status"),
            finding(
                "GHSA-x",
                "requests",
                Severity::Low,
                "usr/lib/python3/requests",
            ),
        ]);
        assert_eq!(grouped.len(), 2);
        let cve = &grouped[0];
        assert_eq!((cve.id.as_str(), cve.severity.as_str()), ("CVE-2", "HIGH"));
        assert_eq!(cve.reference, "https://www.cve.org/CVERecord?id=CVE-2");
        assert_eq!(cve.packages.len(), 2, "{:?}", cve.packages);
        assert_eq!(cve.advisories, ["DSA-libssl3", "DSA-openssl"]);
        let ghsa = &grouped[1];
        assert_eq!(ghsa.reference, "https://osv.dev/vulnerability/DSA-requests");
        let record = ScanRecord::Inventory(Inventory::default());
        assert_eq!(ScanRecord::from_bytes(&record.to_bytes()), Some(record));
        assert_eq!(ScanRecord::from_bytes(b"not json"), None);
    }
}

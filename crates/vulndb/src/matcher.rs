//! Matching an inventory against the database.
//!
//! - OS packages match the distribution's advisories by *source* package
//!   (dpkg's `Source:`, apk's origin; rpm by binary and source name) and
//!   by release: the inventory's os-release picks the OSV ecosystem
//!   (`Debian:12`, `Ubuntu:22.04[:LTS]`, `Alpine:v3.20`, `Rocky Linux:9`,
//!   ...); a distribution this module does not know matches nothing.
//! - A version is affected by an `affected` entry when it is listed in
//!   `versions`, or falls in an `ECOSYSTEM` (the ecosystem's order) or
//!   `SEMVER` range, evaluated as the OSV schema describes: events sorted
//!   by version (`introduced: "0"` first), `introduced` opens, `fixed`
//!   closes at the version, `last_affected` after it, `limit` bounds all.
//! - Advisories are merged per package occurrence by CVE: a record is
//!   reported under its own id if it is a `CVE-…`, else under its first
//!   `CVE-…` alias (or upstream id), else under its own id; merged
//!   records keep every source advisory's id and an osv.dev reference.
//! - Severity: the record's CVSS v3.x (else v4.0) base score, else its own severity
//!   name, else an aliased record's CVSS (looked up in the database),
//!   else `UNKNOWN`; merged records keep the best-sourced severity.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use zot_scan::{Ecosystem, Inventory, OsRelease, Package};

use crate::advisory::{Advisory, AffectedPackage, Event, Scored, Severity, SeveritySource};
use crate::error::DbError;
use crate::version::Scheme;

/// Where advisories are read from (the database; tests may use memory).
pub trait AdvisoryIndex {
    /// The advisories of a package in an ecosystem family (`Debian`,
    /// `PyPI`, ...); `name` as [`package_key`] normalises it.
    fn advisories(&self, base: &str, name: &str) -> Result<Vec<Advisory>, DbError>;
    /// The CVSS of any record with this id or alias.
    fn alias_cvss(&self, id: &str) -> Result<Option<Scored>, DbError>;
}

/// One vulnerability of one package occurrence.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The `CVE-…` id when any record names one, else the advisory's id.
    pub id: String,
    pub severity: Severity,
    pub severity_source: SeveritySource,
    /// The CVSS that gave the severity, if one did.
    pub cvss: Option<Scored>,
    pub ecosystem: Ecosystem,
    /// The installed package (binary package for OS packages).
    pub package: String,
    pub installed_version: String,
    /// The lowest fixed version above the installed one, if any.
    pub fixed_version: Option<String>,
    pub path: String,
    pub title: String,
    pub description: String,
    /// The source advisories' ids (e.g. `DSA-…`, `GHSA-…`), sorted.
    pub advisories: Vec<String>,
    /// osv.dev pages of the source advisories, then their references.
    pub references: Vec<String>,
}

/// The family (part before the first `:`) of an OSV ecosystem.
pub fn base_of(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// The database key of a package name in an ecosystem family (PyPI
/// names normalised as PEP 503 says; others as they are).
pub fn package_key(base: &str, name: &str) -> String {
    if base == "PyPI" {
        let mut out = String::with_capacity(name.len());
        let mut sep = false;
        for c in name.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                sep = true;
            } else {
                if sep && !out.is_empty() {
                    out.push('-');
                }
                sep = false;
                out.extend(c.to_lowercase());
            }
        }
        out
    } else {
        name.to_string()
    }
}

enum Accept {
    Any,
    Exact(Vec<String>),
    Contains(String),
}

impl Accept {
    fn accepts(&self, ecosystem: &str) -> bool {
        match self {
            Accept::Any => true,
            Accept::Exact(list) => list.iter().any(|e| e == ecosystem),
            Accept::Contains(s) => ecosystem.contains(s.as_str()),
        }
    }
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The OSV family and accepted ecosystems for an OS package.
fn os_target(os: &OsRelease, eco: Ecosystem) -> Option<(&'static str, Accept)> {
    let v = os.version_id.as_deref();
    let ids = std::iter::once(os.id.as_str()).chain(os.id_like.iter().map(String::as_str));
    let id = os.id.as_str();
    Some(match (eco, id) {
        (Ecosystem::Deb, "debian") => (
            "Debian",
            Accept::Exact(vec![format!("Debian:{}", major(v?))]),
        ),
        (Ecosystem::Deb, "ubuntu") => {
            let v = v?;
            (
                "Ubuntu",
                Accept::Exact(vec![format!("Ubuntu:{v}"), format!("Ubuntu:{v}:LTS")]),
            )
        }
        (Ecosystem::Apk, "alpine") => (
            "Alpine",
            Accept::Exact(vec![format!("Alpine:v{}", major_minor(v?))]),
        ),
        (Ecosystem::Apk, "wolfi") => ("Wolfi", Accept::Any),
        (Ecosystem::Apk, "chainguard") => ("Chainguard", Accept::Any),
        (Ecosystem::Rpm, "rocky") => (
            "Rocky Linux",
            Accept::Exact(vec![format!("Rocky Linux:{}", major(v?))]),
        ),
        (Ecosystem::Rpm, "almalinux") => (
            "AlmaLinux",
            Accept::Exact(vec![format!("AlmaLinux:{}", major(v?))]),
        ),
        (Ecosystem::Rpm, "mageia") => ("Mageia", Accept::Exact(vec![format!("Mageia:{}", v?)])),
        (Ecosystem::Rpm, "opensuse-leap") => (
            "openSUSE",
            Accept::Exact(vec![format!("openSUSE:Leap {}", v?)]),
        ),
        (Ecosystem::Rpm, "rhel") => (
            "Red Hat",
            Accept::Contains(format!("enterprise_linux:{}", major(v?))),
        ),
        _ => {
            // Derivatives named only by ID_LIKE are not matched: their
            // packages are not the parent's.
            let _ = ids;
            return None;
        }
    })
}

/// The OSV family of a language ecosystem.
fn language_base(eco: Ecosystem) -> Option<&'static str> {
    Some(match eco {
        Ecosystem::Pypi => "PyPI",
        Ecosystem::Npm => "npm",
        Ecosystem::Golang => "Go",
        Ecosystem::Cargo => "crates.io",
        Ecosystem::Maven => "Maven",
        Ecosystem::Gem => "RubyGems",
        Ecosystem::Composer => "Packagist",
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm => return None,
    })
}

struct Query {
    base: &'static str,
    accept: Accept,
    names: Vec<String>,
    version: String,
}

fn query(os: Option<&OsRelease>, p: &Package) -> Option<Query> {
    if p.ecosystem.is_os() {
        let (base, accept) = os_target(os?, p.ecosystem)?;
        let (names, version) = match (p.ecosystem, &p.source) {
            (Ecosystem::Deb, Some(s)) => (vec![s.name.clone()], s.version.clone()),
            (Ecosystem::Apk, Some(s)) => (vec![s.name.clone()], p.version.clone()),
            (Ecosystem::Rpm, Some(s)) if s.name != p.name => {
                (vec![p.name.clone(), s.name.clone()], p.version.clone())
            }
            _ => (vec![p.name.clone()], p.version.clone()),
        };
        Some(Query {
            base,
            accept,
            names,
            version,
        })
    } else {
        Some(Query {
            base: language_base(p.ecosystem)?,
            accept: Accept::Any,
            names: vec![p.name.clone()],
            version: p.version.clone(),
        })
    }
}

/// The OSV ecosystem families an inventory needs (what an update from
/// a URL fetches), sorted.
pub fn ecosystems_for(inventory: &Inventory) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = inventory
        .packages
        .iter()
        .filter_map(|p| query(inventory.os.as_ref(), p).map(|q| q.base))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn is_zero(v: &str) -> bool {
    v == "0"
}

/// Whether `version` is affected by `a`; and the fixed version above it.
pub fn affects(a: &AffectedPackage, version: &str) -> (bool, Option<String>) {
    let mut affected = a.versions.iter().any(|v| v == version);
    let mut fixed_above: Option<(Scheme, String)> = None;
    for range in &a.ranges {
        let scheme = if range.semver {
            Scheme::Semver
        } else {
            match Scheme::of_ecosystem(&a.ecosystem) {
                Some(s) => s,
                None => continue,
            }
        };
        let key = |e: &Event| -> (u8, String) {
            match e {
                Event::Introduced(v) if is_zero(v) => (0, String::new()),
                Event::Introduced(v)
                | Event::Fixed(v)
                | Event::LastAffected(v)
                | Event::Limit(v) => (1, v.clone()),
            }
        };
        let mut events: Vec<&Event> = range.events.iter().collect();
        events.sort_by(|x, y| {
            let (kx, vx) = key(x);
            let (ky, vy) = key(y);
            kx.cmp(&ky).then_with(|| {
                if kx == 0 {
                    Ordering::Equal
                } else {
                    scheme.compare(&vx, &vy)
                }
            })
        });
        let mut inside = false;
        let mut limited = false;
        for e in &events {
            match e {
                Event::Introduced(v) => {
                    if is_zero(v) || scheme.compare(version, v) != Ordering::Less {
                        inside = true;
                    }
                }
                Event::Fixed(v) => {
                    if scheme.compare(version, v) != Ordering::Less {
                        inside = false;
                    }
                }
                Event::LastAffected(v) => {
                    if scheme.compare(version, v) == Ordering::Greater {
                        inside = false;
                    }
                }
                Event::Limit(v) => {
                    if v != "*" && scheme.compare(version, v) != Ordering::Less {
                        limited = true;
                    }
                }
            }
        }
        if inside && !limited {
            affected = true;
            for e in &events {
                if let Event::Fixed(v) = e
                    && scheme.compare(v, version) == Ordering::Greater
                {
                    if fixed_above
                        .as_ref()
                        .is_none_or(|(s, f)| s.compare(v, f) == Ordering::Less)
                    {
                        fixed_above = Some((scheme, v.clone()));
                    }
                    break;
                }
            }
        }
    }
    (affected, fixed_above.map(|(_, v)| v))
}

fn cve_id(adv: &Advisory) -> String {
    if adv.id.starts_with("CVE-") {
        return adv.id.clone();
    }
    adv.aliases
        .iter()
        .find(|a| a.starts_with("CVE-"))
        .cloned()
        .unwrap_or_else(|| adv.id.clone())
}

fn title_of(adv: &Advisory) -> String {
    if let Some(s) = &adv.summary {
        return s.clone();
    }
    adv.details
        .as_deref()
        .and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_default()
}

fn severity_of(
    index: &dyn AdvisoryIndex,
    adv: &Advisory,
) -> Result<(Severity, SeveritySource, Option<Scored>), DbError> {
    if let Some(c) = &adv.cvss {
        return Ok((c.severity, SeveritySource::Cvss, Some(c.clone())));
    }
    if let Some(s) = adv.own_severity {
        return Ok((s, SeveritySource::Own, None));
    }
    for alias in &adv.aliases {
        if let Some(c) = index.alias_cvss(alias)? {
            return Ok((c.severity, SeveritySource::Alias, Some(c)));
        }
    }
    Ok((Severity::Unknown, SeveritySource::None, None))
}

/// Every vulnerability of every package in `inventory`, sorted by
/// package, path and id.
pub fn match_inventory(
    inventory: &Inventory,
    index: &dyn AdvisoryIndex,
) -> Result<Vec<Finding>, DbError> {
    // (package position, reported id) -> finding
    let mut found: BTreeMap<(usize, String), Finding> = BTreeMap::new();
    for (pos, p) in inventory.packages.iter().enumerate() {
        let Some(q) = query(inventory.os.as_ref(), p) else {
            continue;
        };
        let mut seen = Vec::new();
        for name in &q.names {
            let key = package_key(q.base, name);
            for adv in index.advisories(q.base, &key)? {
                if seen.contains(&adv.id) {
                    continue;
                }
                let mut hit = false;
                let mut fixed: Option<String> = None;
                for a in &adv.affected {
                    if !q.accept.accepts(&a.ecosystem) || package_key(q.base, &a.name) != key {
                        continue;
                    }
                    let (yes, f) = affects(a, &q.version);
                    if yes {
                        hit = true;
                        fixed = fixed.or(f);
                    }
                }
                if !hit {
                    continue;
                }
                seen.push(adv.id.clone());
                let id = cve_id(&adv);
                let (severity, source, cvss) = severity_of(index, &adv)?;
                let mut references = vec![format!("https://osv.dev/vulnerability/{}", adv.id)];
                references.extend(adv.references.iter().cloned());
                let finding = Finding {
                    id: id.clone(),
                    severity,
                    severity_source: source,
                    cvss,
                    ecosystem: p.ecosystem,
                    package: p.name.clone(),
                    installed_version: p.version.clone(),
                    fixed_version: fixed,
                    path: p.path.clone(),
                    title: title_of(&adv),
                    description: adv.details.clone().unwrap_or_default(),
                    advisories: vec![adv.id.clone()],
                    references,
                };
                match found.entry((pos, id)) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(finding);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        merge(o.get_mut(), finding)
                    }
                }
            }
        }
    }
    Ok(found.into_values().collect())
}

fn merge(into: &mut Finding, other: Finding) {
    if (other.severity_source, std::cmp::Reverse(other.severity))
        < (into.severity_source, std::cmp::Reverse(into.severity))
    {
        into.severity = other.severity;
        into.severity_source = other.severity_source;
        into.cvss = other.cvss;
    }
    if into.fixed_version.is_none() {
        into.fixed_version = other.fixed_version;
    }
    if into.title.is_empty() {
        into.title = other.title;
    }
    if into.description.is_empty() {
        into.description = other.description;
    }
    for a in other.advisories {
        if !into.advisories.contains(&a) {
            into.advisories.push(a);
        }
    }
    into.advisories.sort();
    for r in other.references {
        if !into.references.contains(&r) {
            into.references.push(r);
        }
    }
}

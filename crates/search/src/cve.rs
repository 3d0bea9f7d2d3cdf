//! Vulnerabilities in search: what the scanner has stored for an image,
//! as zot's `CVE` objects, summaries, filters and pages (zot-interfaces
//! §2.4, §2.5). The scanner itself lives elsewhere (`zot-cve`); this crate
//! reads its results through [`CveSource`], handed to the schema with
//! [`crate::Search::with_cve`].
//!
//! Invariants:
//! - A query never scans: an image the scanner has not reached yet is
//!   "not scanned" (no CVEs, `MaxSeverity` ""), as zot shows an image
//!   missing from its cache.
//! - An index's result is the union of its manifests' results (the later
//!   manifest wins for one CVE id, as in zot); it is not scanned while
//!   none of its manifests is, and unscannable when all are.

use std::collections::BTreeMap;
use std::sync::Arc;

use zot_oci::Digest;
use zot_oci::image_meta::{ImageMeta, MetaKind};

use crate::facts::RepoCtx;
use crate::paging::{LIMIT_NEGATIVE, OFFSET_NEGATIVE};
use crate::types::{
    Cve, ImageVulnerabilitySummary, PackageInfo, PageInfo, PageInput, SortCriteria,
};

/// One package occurrence affected by a CVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvePackage {
    pub name: String,
    /// Where it was found in the image ("" when unknown).
    pub path: String,
    pub installed: String,
    pub fixed: Option<String>,
}

/// One CVE found in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CveRecord {
    pub id: String,
    pub title: String,
    pub description: String,
    pub reference: String,
    /// zot's name: `UNKNOWN`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub severity: String,
    pub packages: Vec<CvePackage>,
}

/// What the scanner has for one manifest.
#[derive(Debug, Clone)]
pub enum ScanState {
    /// Not scanned yet (or no database yet).
    NotScanned,
    /// It cannot be scanned; zot's error text.
    Unscannable(String),
    /// Scanned and matched: its CVEs, sorted by id, one entry per id.
    Scanned(Arc<[CveRecord]>),
}

/// The scanner's results, as search reads them. Calls may block briefly
/// (a metadata read); resolvers call them from blocking tasks or for one
/// image at a time.
pub trait CveSource: Send + Sync + 'static {
    /// The state of the manifest `digest` (never an index) of `repo`.
    fn state(&self, repo: &str, digest: &Digest) -> ScanState;

    /// Every manifest digest whose current findings name `id`, when the
    /// source keeps such an index (`ImageListForCVE` then checks
    /// membership instead of reading each image's state).
    fn digests_with(&self, id: &str) -> Option<Arc<std::collections::HashSet<Digest>>> {
        let _ = id;
        None
    }
}

/// The CVE source in the schema's data (absent: CVE search is off).
#[derive(Clone)]
pub struct CveData(pub Arc<dyn CveSource>);

/// Severity ranks, zot's order (NONE lowest).
fn rank(severity: &str) -> u8 {
    match severity {
        "UNKNOWN" => 1,
        "LOW" => 2,
        "MEDIUM" => 3,
        "HIGH" => 4,
        "CRITICAL" => 5,
        _ => 0,
    }
}

/// The state of an image (a manifest, or an index over its manifests).
pub fn image_state(cve: &dyn CveSource, repo: &RepoCtx, meta: &Arc<ImageMeta>) -> ScanState {
    if let MetaKind::Manifest(_) = &meta.kind {
        return cve.state(repo.name(), &meta.digest);
    }
    let children = repo.manifests(meta);
    if children.is_empty() {
        return ScanState::Scanned(Arc::from(Vec::new()));
    }
    let mut merged: BTreeMap<String, CveRecord> = BTreeMap::new();
    let (mut scanned, mut pending, mut error) = (false, false, None);
    for child in children {
        match cve.state(repo.name(), &child.meta.digest) {
            ScanState::Scanned(list) => {
                scanned = true;
                for c in list.iter() {
                    merged.insert(c.id.clone(), c.clone());
                }
            }
            ScanState::NotScanned => pending = true,
            ScanState::Unscannable(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if scanned {
        ScanState::Scanned(merged.into_values().collect())
    } else if pending {
        ScanState::NotScanned
    } else {
        ScanState::Unscannable(error.unwrap_or_default())
    }
}

/// zot's summary of a scanned list (MaxSeverity `NONE` when empty).
pub fn summary(list: &[CveRecord]) -> ImageVulnerabilitySummary {
    let mut s = ImageVulnerabilitySummary::disabled();
    let names = ["NONE", "UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
    let mut max = 0u8;
    let mut counts = [0i32; 6];
    for c in list {
        // Unrecognised names count as UNKNOWN.
        let r = rank(&c.severity).max(1);
        counts[usize::from(r)] += 1;
        max = max.max(r);
    }
    let max = names[usize::from(max)];
    s.max_severity = Some(max.to_owned());
    s.count = Some(i32::try_from(list.len()).unwrap_or(i32::MAX));
    s.unknown_count = Some(counts[1]);
    s.low_count = Some(counts[2]);
    s.medium_count = Some(counts[3]);
    s.high_count = Some(counts[4]);
    s.critical_count = Some(counts[5]);
    s
}

/// The summary of a state: "not scanned" and "unscannable" show no
/// severity and zero counts.
pub fn state_summary(state: &ScanState) -> ImageVulnerabilitySummary {
    match state {
        ScanState::Scanned(list) => summary(list),
        _ => ImageVulnerabilitySummary::disabled(),
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

/// Whether `needle` (lower-cased) appears in any of the CVE's fields
/// (zot's searchedCVE / excludedCVE match).
fn mentions(c: &CveRecord, needle: &str) -> bool {
    [&c.title, &c.id, &c.severity, &c.reference, &c.description]
        .iter()
        .any(|f| contains_ci(f, needle))
        || c.packages.iter().any(|p| {
            contains_ci(&p.name, needle)
                || contains_ci(&p.installed, needle)
                || contains_ci(&p.path, needle)
                || p.fixed.as_deref().is_some_and(|f| contains_ci(f, needle))
        })
}

/// zot's filters: `searched` keeps CVEs mentioning it (empty: all),
/// `excluded` drops those mentioning it, `severity` keeps one severity
/// (an unknown name is `UNKNOWN`).
pub fn filter(
    list: &[CveRecord],
    searched: Option<&str>,
    excluded: Option<&str>,
    severity: Option<&str>,
) -> Vec<CveRecord> {
    let searched = searched.map(str::to_lowercase).filter(|s| !s.is_empty());
    let excluded = excluded.map(str::to_lowercase).filter(|s| !s.is_empty());
    let severity = severity.filter(|s| !s.is_empty()).map(|s| {
        let up = s.to_uppercase();
        if rank(&up) == 0 {
            "UNKNOWN".to_owned()
        } else {
            up
        }
    });
    list.iter()
        .filter(|c| searched.as_deref().is_none_or(|s| mentions(c, s)))
        .filter(|c| excluded.as_deref().is_none_or(|e| !mentions(c, e)))
        .filter(|c| {
            severity.as_deref().is_none_or(|s| {
                let own = if rank(&c.severity) == 0 {
                    "UNKNOWN"
                } else {
                    c.severity.as_str()
                };
                own == s
            })
        })
        .cloned()
        .collect()
}

/// The largest CVE page.
pub const MAX_CVE_LIMIT: i32 = 4096;

/// Sorts and pages a CVE list (zot's CVE pagination: SEVERITY by default,
/// descending with ties by id; ALPHABETIC_ASC/DSC by id).
pub fn page(
    mut list: Vec<CveRecord>,
    input: Option<&PageInput>,
) -> Result<(PageInfo, Vec<CveRecord>), String> {
    let input = input.cloned().unwrap_or_default();
    let limit = input.limit.unwrap_or(0);
    let offset = input.offset.unwrap_or(0);
    if limit < 0 {
        return Err(LIMIT_NEGATIVE.to_owned());
    }
    if offset < 0 {
        return Err(OFFSET_NEGATIVE.to_owned());
    }
    if limit > MAX_CVE_LIMIT {
        return Err("pagination limit has excessive value".to_owned());
    }
    match input.sort_by.unwrap_or(SortCriteria::Severity) {
        SortCriteria::Severity => list.sort_by(|a, b| {
            rank(&b.severity)
                .cmp(&rank(&a.severity))
                .then_with(|| a.id.cmp(&b.id))
        }),
        SortCriteria::AlphabeticAsc => list.sort_by(|a, b| a.id.cmp(&b.id)),
        SortCriteria::AlphabeticDsc => list.sort_by(|a, b| b.id.cmp(&a.id)),
        other => {
            return Err(format!(
                "sorting CVEs by '{}' is not supported the pagination sort criteria is not supported",
                other.as_str()
            ));
        }
    }
    let p = crate::paging::Paging {
        limit: usize::try_from(limit).unwrap_or(0),
        offset: usize::try_from(offset).unwrap_or(0),
        sort: SortCriteria::Severity,
    };
    Ok(crate::paging::slice(list, &p))
}

/// zot's `CVE` object; `paths` false leaves `PackagePath` null (as zot's
/// CVE diff does).
pub fn to_gql(c: &CveRecord, paths: bool) -> Cve {
    Cve {
        id: Some(c.id.clone()),
        title: Some(c.title.clone()),
        description: Some(c.description.clone()),
        reference: Some(c.reference.clone()),
        severity: Some(c.severity.clone()),
        package_list: Some(
            c.packages
                .iter()
                .map(|p| {
                    Some(PackageInfo {
                        name: Some(p.name.clone()),
                        package_path: paths.then(|| {
                            if p.path.is_empty() {
                                "Not Specified".to_owned()
                            } else {
                                p.path.clone()
                            }
                        }),
                        installed_version: Some(p.installed.clone()),
                        fixed_version: Some(
                            p.fixed
                                .clone()
                                .unwrap_or_else(|| "Not Specified".to_owned()),
                        ),
                    })
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, severity: &str, pkg: &str) -> CveRecord {
        CveRecord {
            id: id.into(),
            title: format!("{pkg}: a flaw"),
            description: String::new(),
            reference: String::new(),
            severity: severity.into(),
            packages: vec![CvePackage {
                name: pkg.into(),
                path: String::new(),
                installed: "1.0".into(),
                fixed: None,
            }],
        }
    }

    #[test]
    fn summary_counts_and_max() {
        let list = [
            rec("CVE-1", "LOW", "a"),
            rec("CVE-2", "HIGH", "b"),
            rec("CVE-3", "HIGH", "c"),
            rec("CVE-4", "UNKNOWN", "d"),
        ];
        let s = summary(&list);
        assert_eq!(s.max_severity.as_deref(), Some("HIGH"));
        assert_eq!(
            (
                s.count,
                s.unknown_count,
                s.low_count,
                s.medium_count,
                s.high_count,
                s.critical_count
            ),
            (Some(4), Some(1), Some(1), Some(0), Some(2), Some(0))
        );
        assert_eq!(summary(&[]).max_severity.as_deref(), Some("NONE"));
    }

    #[test]
    fn filters_and_pages() {
        let list = vec![
            rec("CVE-1", "LOW", "openssl"),
            rec("CVE-2", "HIGH", "zlib"),
            rec("CVE-3", "CRITICAL", "openssl"),
        ];
        let ids = |l: &[CveRecord]| l.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&filter(&list, Some("OpenSSL"), None, None)),
            ["CVE-1", "CVE-3"]
        );
        assert_eq!(ids(&filter(&list, None, Some("openssl"), None)), ["CVE-2"]);
        assert_eq!(ids(&filter(&list, None, None, Some("high"))), ["CVE-2"]);
        let (info, p) = page(
            list.clone(),
            Some(&PageInput {
                limit: Some(2),
                offset: Some(0),
                sort_by: None,
            }),
        )
        .expect("valid page");
        assert_eq!((info.total_count, info.item_count), (3, 2));
        assert_eq!(ids(&p), ["CVE-3", "CVE-2"]);
        let too_big = PageInput {
            limit: Some(5000),
            ..PageInput::default()
        };
        assert!(page(list, Some(&too_big)).is_err());
    }
}

//! The schema's plain types: inputs, enums and the output objects that
//! are values rather than views over repository data. Names, nullability
//! and argument spellings are zot's `schema.graphql`, checked by the
//! `schema_matches_zot` test.
//!
//! Complexity: scalar fields cost 0, every object or list field costs 1
//! plus its children, so a query's complexity counts the objects it
//! builds (list fields with a page are multiplied, see `query.rs`).

use async_graphql::{Enum, InputObject, SimpleObject};

use crate::time::Time;

/// zot's `SortCriteria`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortCriteria {
    Relevance,
    UpdateTime,
    AlphabeticAsc,
    AlphabeticDsc,
    Severity,
    Stars,
    Downloads,
}

impl SortCriteria {
    /// The value as the schema spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SortCriteria::Relevance => "RELEVANCE",
            SortCriteria::UpdateTime => "UPDATE_TIME",
            SortCriteria::AlphabeticAsc => "ALPHABETIC_ASC",
            SortCriteria::AlphabeticDsc => "ALPHABETIC_DSC",
            SortCriteria::Severity => "SEVERITY",
            SortCriteria::Stars => "STARS",
            SortCriteria::Downloads => "DOWNLOADS",
        }
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct PageInput {
    pub limit: Option<i32>,
    pub offset: Option<i32>,
    pub sort_by: Option<SortCriteria>,
}

#[derive(InputObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase")]
pub struct PlatformInput {
    pub os: Option<String>,
    pub arch: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
#[graphql(rename_fields = "PascalCase")]
pub struct ImageInput {
    pub repo: String,
    pub tag: String,
    pub digest: Option<String>,
    pub platform: Option<PlatformInput>,
}

#[derive(InputObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase")]
pub struct Filter {
    pub os: Option<Vec<Option<String>>>,
    pub arch: Option<Vec<Option<String>>>,
    pub has_to_be_signed: Option<bool>,
    pub is_bookmarked: Option<bool>,
    pub is_starred: Option<bool>,
}

#[derive(SimpleObject, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct PageInfo {
    #[graphql(complexity = 0)]
    pub total_count: i32,
    #[graphql(complexity = 0)]
    pub item_count: i32,
}

#[derive(SimpleObject, Debug, Clone, Default, PartialEq, Eq)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct Platform {
    #[graphql(complexity = 0)]
    pub os: Option<String>,
    #[graphql(complexity = 0)]
    pub arch: Option<String>,
}

impl From<&zot_oci::image_meta::Platform> for Platform {
    fn from(p: &zot_oci::image_meta::Platform) -> Platform {
        Platform {
            os: Some(p.os.clone()),
            arch: Some(p.arch.clone()),
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct LayerSummary {
    #[graphql(complexity = 0)]
    pub size: Option<String>,
    #[graphql(complexity = 0)]
    pub digest: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct HistoryDescription {
    #[graphql(complexity = 0)]
    pub created: Option<Time>,
    #[graphql(complexity = 0)]
    pub created_by: Option<String>,
    #[graphql(complexity = 0)]
    pub author: Option<String>,
    #[graphql(complexity = 0)]
    pub comment: Option<String>,
    #[graphql(complexity = 0)]
    pub empty_layer: Option<bool>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct LayerHistory {
    pub layer: Option<LayerSummary>,
    pub history_description: Option<HistoryDescription>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct Annotation {
    #[graphql(complexity = 0)]
    pub key: Option<String>,
    #[graphql(complexity = 0)]
    pub value: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct Referrer {
    #[graphql(complexity = 0)]
    pub media_type: Option<String>,
    #[graphql(complexity = 0)]
    pub artifact_type: Option<String>,
    #[graphql(complexity = 0)]
    pub size: Option<i32>,
    #[graphql(complexity = 0)]
    pub digest: Option<String>,
    pub annotations: Vec<Option<Annotation>>,
}

#[derive(SimpleObject, Debug, Clone, Default, PartialEq, Eq)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct SignatureSummary {
    #[graphql(complexity = 0)]
    pub tool: Option<String>,
    #[graphql(complexity = 0)]
    pub is_trusted: Option<bool>,
    #[graphql(complexity = 0)]
    pub author: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct ImageVulnerabilitySummary {
    #[graphql(complexity = 0)]
    pub max_severity: Option<String>,
    #[graphql(complexity = 0)]
    pub count: Option<i32>,
    #[graphql(complexity = 0)]
    pub unknown_count: Option<i32>,
    #[graphql(complexity = 0)]
    pub low_count: Option<i32>,
    #[graphql(complexity = 0)]
    pub medium_count: Option<i32>,
    #[graphql(complexity = 0)]
    pub high_count: Option<i32>,
    #[graphql(complexity = 0)]
    pub critical_count: Option<i32>,
}

impl ImageVulnerabilitySummary {
    /// What every image shows while CVE scanning is off: no severity, zero
    /// counts.
    pub fn disabled() -> ImageVulnerabilitySummary {
        ImageVulnerabilitySummary {
            max_severity: Some(String::new()),
            count: Some(0),
            unknown_count: Some(0),
            low_count: Some(0),
            medium_count: Some(0),
            high_count: Some(0),
            critical_count: Some(0),
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct PackageInfo {
    #[graphql(complexity = 0)]
    pub name: Option<String>,
    #[graphql(complexity = 0)]
    pub package_path: Option<String>,
    #[graphql(complexity = 0)]
    pub installed_version: Option<String>,
    #[graphql(complexity = 0)]
    pub fixed_version: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(name = "CVE", rename_fields = "PascalCase", serial)]
pub struct Cve {
    #[graphql(complexity = 0)]
    pub id: Option<String>,
    #[graphql(complexity = 0)]
    pub title: Option<String>,
    #[graphql(complexity = 0)]
    pub description: Option<String>,
    #[graphql(complexity = 0)]
    pub reference: Option<String>,
    #[graphql(complexity = 0)]
    pub severity: Option<String>,
    pub package_list: Option<Vec<Option<PackageInfo>>>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(name = "CVEResultForImage", rename_fields = "PascalCase", serial)]
pub struct CveResultForImage {
    #[graphql(complexity = 0)]
    pub tag: Option<String>,
    #[graphql(name = "CVEList")]
    pub cve_list: Option<Vec<Option<Cve>>>,
    pub summary: Option<ImageVulnerabilitySummary>,
    pub page: Option<PageInfo>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(rename_fields = "PascalCase", serial)]
pub struct ImageIdentifier {
    #[graphql(complexity = 0)]
    pub repo: String,
    #[graphql(complexity = 0)]
    pub tag: String,
    #[graphql(complexity = 0)]
    pub digest: Option<String>,
    pub platform: Option<Platform>,
}

#[derive(SimpleObject, Debug, Clone, Default)]
#[graphql(name = "CVEDiffResult", rename_fields = "PascalCase", serial)]
pub struct CveDiffResult {
    pub minuend: ImageIdentifier,
    pub subtrahend: ImageIdentifier,
    #[graphql(name = "CVEList")]
    pub cve_list: Option<Vec<Option<Cve>>>,
    pub summary: Option<ImageVulnerabilitySummary>,
    pub page: Option<PageInfo>,
}

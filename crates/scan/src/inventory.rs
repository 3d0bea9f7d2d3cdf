//! The inventory of an image: its operating system and every package found
//! in its layers (after whiteouts), each with the path where it was found.
//! It is plain data (serde), small enough to be stored with the manifest,
//! so a database update can re-match it without reading layers again.
//! Packages are kept sorted and without duplicates.

use serde::{Deserialize, Serialize};

/// The package ecosystem a package belongs to (its package manager).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Debian packages (dpkg), Debian and Ubuntu.
    Deb,
    /// Alpine packages (apk).
    Apk,
    /// RPM packages (Red Hat, Fedora, SUSE, ...).
    Rpm,
    /// Python distributions.
    Pypi,
    /// npm packages.
    Npm,
    /// Go modules (from a binary's build info).
    Golang,
    /// Rust crates (cargo-auditable, Cargo.lock).
    Cargo,
    /// Java archives; the name is `groupId:artifactId`.
    Maven,
    /// Ruby gems.
    Gem,
    /// PHP packages (Composer); the name is `vendor/name`.
    Composer,
}

impl Ecosystem {
    /// The purl type of this ecosystem.
    pub fn purl_type(self) -> &'static str {
        match self {
            Self::Deb => "deb",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::Pypi => "pypi",
            Self::Npm => "npm",
            Self::Golang => "golang",
            Self::Cargo => "cargo",
            Self::Maven => "maven",
            Self::Gem => "gem",
            Self::Composer => "composer",
        }
    }

    /// Whether packages of this ecosystem are the operating system's.
    pub fn is_os(self) -> bool {
        matches!(self, Self::Deb | Self::Apk | Self::Rpm)
    }
}

/// The source package a binary package was built from (dpkg's `Source:`,
/// apk's origin, rpm's source rpm), which distributions' advisories name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    /// As the package manager writes it: dpkg's `[epoch:]upstream[-revision]`,
    /// rpm's `[epoch:]version-release`, a Go module's `v1.2.3`, ...
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Where it was found, relative to the image root; inside an archive
    /// the archive's path, `!/`, and the path in the archive.
    pub path: String,
}

/// The operating system, from `etc/os-release` (or `usr/lib/os-release`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`, `rhel`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
}

/// A file that could not be read; the rest of the scan went on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// The package inventory of one image manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The [`Inventory::SCANNER`] revision that made it: a stored inventory
    /// of an older revision may lack what the current scanner finds.
    #[serde(default)]
    pub scanner: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    /// Sorted by ecosystem, name, version, path; no duplicates.
    pub packages: Vec<Package>,
    /// Files skipped (too large, malformed), at most `Limits::problems`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Problems beyond those kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub problems_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Inventory {
    /// The scanner's revision, raised whenever it finds more or differently.
    pub const SCANNER: u32 = 1;

    /// The packages of one ecosystem.
    pub fn of(&self, ecosystem: Ecosystem) -> impl Iterator<Item = &Package> {
        self.packages
            .iter()
            .filter(move |p| p.ecosystem == ecosystem)
    }

    /// The first package of that ecosystem and name.
    pub fn find(&self, ecosystem: Ecosystem, name: &str) -> Option<&Package> {
        self.of(ecosystem).find(|p| p.name == name)
    }
}

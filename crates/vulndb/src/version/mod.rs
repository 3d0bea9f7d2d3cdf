//! Version orders of the ecosystems OSV covers. Each comparator is total
//! and never panics: a string its ecosystem would reject still gets a
//! place (documented per module), so a malformed record cannot stop a
//! match. [`Scheme::of_ecosystem`] maps an OSV ecosystem name
//! (`Debian:12`, `PyPI`, ...) to its order.

use std::cmp::Ordering;

pub mod apk;
pub mod dpkg;
pub mod gem;
pub mod maven;
pub mod pep440;
pub mod rpm;
pub mod semver;

/// Orders two strings by their parsed forms; a string that does not
/// parse sorts before every version, two such strings compare as bytes.
pub(crate) fn parsed_or_bytes<T: Ord>(
    a: &str,
    b: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Orders lists where an empty one sorts `empty_is` relative to any
/// other (a release without pre-release identifiers, a local label).
pub(crate) fn empty_then<T: Ord>(a: &[T], b: &[T], empty_is: Ordering) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => empty_is,
        (false, true) => empty_is.reverse(),
        _ => a.cmp(b),
    }
}

/// A version order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// dpkg: Debian, Ubuntu.
    Dpkg,
    /// apk-tools: Alpine, Wolfi, Chainguard.
    Apk,
    /// rpmvercmp: Red Hat, Rocky, AlmaLinux, SUSE, openSUSE, Mageia, ...
    Rpm,
    /// PEP 440: PyPI.
    Pep440,
    /// Semantic versioning: npm, crates.io, Go, and OSV's `SEMVER` ranges.
    Semver,
    /// Maven's ComparableVersion.
    Maven,
    /// RubyGems.
    Gem,
}

impl Scheme {
    /// The order of an OSV ecosystem (`Debian:12` is Debian's); `None`
    /// for ecosystems without a known order (only explicit `versions`
    /// lists match there).
    pub fn of_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" | "Alpaquita" | "BellSoft Hardened Containers" => {
                Scheme::Apk
            }
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "SUSE" | "openSUSE" | "Mageia"
            | "openEuler" | "Photon OS" | "Azure Linux" => Scheme::Rpm,
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "Go" | "Packagist" | "NuGet" | "Hex" | "Pub" => Scheme::Semver,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::Gem,
            _ => return None,
        })
    }

    /// Compares two versions in this order.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Semver => semver::compare(a, b),
            Scheme::Maven => maven::compare(a, b),
            Scheme::Gem => gem::compare(a, b),
        }
    }
}

//! Repository names, tags and manifest references, validated against the
//! grammar of the OCI Distribution Specification:
//!
//! - name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
//!   at most [`RepoName::MAX_LEN`] bytes;
//! - tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
//!
//! A valid name never contains `.` or `..` as a path segment, nor any byte
//! outside `[a-z0-9._/-]`, so it is safe to join onto a storage root.
//!
//! Beyond the grammar, a component after the first may not be `blobs`,
//! `index.json` or `oci-layout` ([`RESERVED_COMPONENTS`]): each repository
//! is an OCI image layout on disk, and a repository `n/blobs` or
//! `n/index.json` would be written into the layout of repository `n`.

use crate::digest::{Digest, DigestError};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("repository name must not be empty")]
    Empty,
    #[error("repository name is longer than {} bytes", RepoName::MAX_LEN)]
    TooLong,
    #[error("invalid repository name component {0:?}")]
    BadComponent(String),
    #[error("repository name component {0:?} is reserved by the OCI image layout")]
    Reserved(String),
    #[error("invalid tag")]
    BadTag,
    #[error("invalid digest: {0}")]
    BadDigest(#[from] DigestError),
}

/// Names of an OCI image layout's own entries, refused as a component after
/// the first.
pub const RESERVED_COMPONENTS: &[&str] = &["blobs", "index.json", "oci-layout"];

/// A validated repository name such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub const MAX_LEN: usize = 255;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+", followed by an alnum.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(NameError::TooLong);
        }
        for (i, c) in s.split('/').enumerate() {
            if !valid_component(c) {
                return Err(NameError::BadComponent(c.chars().take(64).collect()));
            }
            if i > 0 && RESERVED_COMPONENTS.contains(&c) {
                return Err(NameError::Reserved(c.to_owned()));
            }
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub const MAX_LEN: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        let rest_ok = b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if first_ok && rest_ok && b.len() <= Self::MAX_LEN {
            Ok(Tag(s.to_owned()))
        } else {
            Err(NameError::BadTag)
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/alpine",
            "a/b/c/d/e",
            "foo.bar",
            "foo_bar",
            "foo__bar",
            "foo---bar",
            "0x/y-1.2_3",
            "blobs",
            "blobs/x",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "Library/alpine",
            "..",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "/a",
            "a/",
            "a___b",
            "a..b",
            "-a",
            "a-",
            "a_",
            "%2e%2e",
            "a b",
            "a\0b",
            "n/index.json",
            "n/oci-layout/x",
            "n/blobs",
            "n/blobs/sha256",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?}");
        }
        assert_eq!("a".repeat(256).parse::<RepoName>(), Err(NameError::TooLong));
        assert!("a".repeat(255).parse::<RepoName>().is_ok());
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "A-b.c_d", &"a".repeat(128)] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129), "ä"] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }
}

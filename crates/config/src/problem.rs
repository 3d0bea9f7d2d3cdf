//! [`Problem`]: one thing wrong with a configuration, located by its key path.
//!
//! Invariant: `path` is the dotted key path in zot's canonical spelling for keys
//! this crate knows (`storage.rootDirectory`, `http.tls.cacert`), the user's own
//! spelling for keys it does not know, `[i]` for list items, and empty for
//! problems about the document as a whole (syntax errors, I/O errors without a
//! file name).

use std::fmt;

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `storage.gcDelay`; empty for the whole document.
    pub path: String,
    /// What is wrong, e.g. `unknown key`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `"{path}: {message}"`, or just the message when the path is empty.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Problem {}

/// Joins a parent path and a child key (`""` + `storage` = `storage`).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_path() {
        assert_eq!(
            Problem::new("storage.gc", "expected a boolean").to_string(),
            "storage.gc: expected a boolean"
        );
        assert_eq!(Problem::new("", "not JSON").to_string(), "not JSON");
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("", "http"), "http");
        assert_eq!(join("http", "tls"), "http.tls");
    }
}

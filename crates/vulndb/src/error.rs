//! Errors of the database: each names what failed (the source, the file
//! or the zip entry) so a failed update can be logged and the previous
//! database kept.

use std::io;

/// Why the database could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("index {context}: {message}")]
    Index { context: String, message: String },
    #[error("{what}: not a valid zip archive: {message}")]
    Zip { what: String, message: String },
    #[error("{what}: malformed OSV record: {message}")]
    Record { what: String, message: String },
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("the vulnerability database is not present")]
    Missing,
}

impl DbError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        DbError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn index(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        DbError::Index {
            context: context.into(),
            message: e.to_string(),
        }
    }
}

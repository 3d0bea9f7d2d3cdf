//! Errors of a scan. A layer that cannot be read at all (bad compression,
//! a broken tar stream, a limit of the whole layer reached) fails the scan;
//! a single file that cannot be parsed is recorded as a [`crate::Problem`]
//! in the inventory and the scan goes on.

use std::io;

/// Why a layer could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The layer's media type is not a tar layer (plain, gzip or zstd).
    #[error("scanning is not supported for given media type: layer media type '{0}'")]
    UnsupportedMediaType(String),
    /// Reading or decompressing the layer failed.
    #[error("layer {layer}: {source}")]
    Io {
        layer: usize,
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed.
    #[error("layer {layer}: malformed tar stream: {message}")]
    Tar { layer: usize, message: String },
    /// A limit of the whole scan was reached (a tar bomb, too many entries).
    #[error("layer {layer}: {what} exceeds the limit of {limit}")]
    Limit {
        layer: usize,
        what: &'static str,
        limit: u64,
    },
    /// The blocking task reading the layer failed (a bug: it panicked).
    #[error("layer {layer}: the reading task failed: {message}")]
    Task { layer: usize, message: String },
}

/// Why one file could not be parsed; kept as a [`crate::Problem`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("malformed: {0}")]
    Malformed(String),
}

impl ParseError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(message.into())
    }
}

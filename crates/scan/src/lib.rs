//! Package inventories of container images: the operating system and the
//! OS and language packages found in an image's layers, read in order as
//! streams with OCI whiteouts applied, and their export as SBOMs (SPDX
//! 2.3 and CycloneDX 1.5 JSON). No HTTP and no storage: a layer is an
//! [`tokio::io::AsyncRead`] (the storage's blob stream) and its media type.
//!
//! ```no_run
//! # async fn f(layers: Vec<(String, tokio::fs::File)>) -> Result<(), zot_scan::ScanError> {
//! let mut scanner = zot_scan::Scanner::new(zot_scan::Limits::default());
//! for (media_type, stream) in layers {
//!     scanner.add_layer(&media_type, stream).await?;
//! }
//! let inventory = scanner.finish();
//! # Ok(()) }
//! ```
//!
//! Every layer is untrusted: memory and work are bounded by [`Limits`], a
//! file that cannot be parsed becomes a [`Problem`] in the inventory, and
//! no input makes the scanner panic.
//!
//! Layout: `layers.rs` walks layers (`tar.rs` reads tar streams,
//! `matcher.rs` picks the files), `parse/` reads text databases and
//! metadata files, `rpm/` rpm databases, `binary.rs` executables
//! (`gobuild.rs`, `auditable.rs`), `java.rs` archives, `sbom/` exports.

mod auditable;
mod binary;
mod error;
mod gobuild;
mod inventory;
mod java;
mod layers;
mod limits;
mod matcher;
mod parse;
#[cfg(test)]
mod proptests;
mod rpm;
mod sbom;
mod spool;
mod tar;

pub use error::{ParseError, ScanError};
pub use inventory::{Ecosystem, Inventory, OsRelease, Package, Problem, SourcePackage};
pub use layers::{SCANNABLE_LAYER_TYPES, Scanner, is_scannable_layer};
pub use limits::Limits;
pub use sbom::{SbomInfo, purl, timestamp as rfc3339_utc, to_cyclonedx, to_spdx};

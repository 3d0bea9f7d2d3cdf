//! The OSV vulnerability database and the matching of package
//! inventories (`zot_scan::Inventory`) against it. No HTTP server; the
//! database source may be fetched over HTTP.
//!
//! - [`version`]: each ecosystem's version order.
//! - [`osv`]: the OSV record format; [`advisory`]: the compact form the
//!   database stores, with the record's own severity ([`cvss`] scores).
//! - [`matcher`]: [`match_inventory`] over an [`AdvisoryIndex`].
//! - [`VulnDb`]: the on-disk index under `_zot/cve/`, updated from a
//!   [`Source`] (a URL or a folder). Not yet: the OCI-artifact source
//!   (`cve.osv.repository`), which needs the registry client.

pub mod advisory;
pub mod cvss;
pub mod cvss4;
pub mod db;
mod error;
pub mod matcher;
pub mod osv;
mod source;
pub mod version;

pub use advisory::{Advisory, Severity, SeveritySource};
pub use db::{DbInfo, Snapshot, VulnDb};
pub use error::DbError;
pub use matcher::{AdvisoryIndex, Finding, ecosystems_for, match_inventory};
pub use source::{DEFAULT_URL, MAX_RECORD, Outcome, Source};

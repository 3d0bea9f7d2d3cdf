//! rpm's package database: the header blobs stored in SQLite
//! (`rpmdb.sqlite`, rpm ≥ 4.16), in a Berkeley DB hash file (`Packages`,
//! older distributions) or in rpm's ndb format (`Packages.db`, SUSE), each
//! parsed by `header.rs`.

pub(crate) mod bdb;
pub(crate) mod header;
pub(crate) mod ndb;
pub(crate) mod sqlite;

//! rpm's package database: the header blobs stored in SQLite
//! (`rpmdb.sqlite`, rpm ≥ 4.16) or in a Berkeley DB hash file (`Packages`,
//! older distributions), each parsed by `header.rs`.

pub(crate) mod bdb;
pub(crate) mod header;
pub(crate) mod sqlite;

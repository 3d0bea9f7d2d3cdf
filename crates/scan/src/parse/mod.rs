//! Parsers of package databases and metadata files. Each takes bytes (or
//! a spool) already bounded by the caller and returns packages; none
//! panics or loops on hostile input (each has a property test over random
//! bytes), and a malformed record is skipped rather than failing its file
//! where the format allows telling records apart.

use std::io::Read;

use crate::error::ParseError;
use crate::layers::Finding;
use crate::limits::Limits;
use crate::matcher::FileKind;
use crate::spool::{self, Spool};

pub(crate) mod apk;
pub(crate) mod cargo_lock;
pub(crate) mod composer;
pub(crate) mod dpkg;
pub(crate) mod gem;
pub(crate) mod npm;
pub(crate) mod os_release;
pub(crate) mod python;
pub(crate) mod text;

/// Reads a file of `kind` at `path` from `data` (`size` bytes).
pub(crate) fn read(
    kind: FileKind,
    path: &str,
    size: u64,
    data: &mut impl Read,
    limits: &Limits,
) -> Result<Finding, ParseError> {
    let packages = match kind {
        FileKind::OsRelease => {
            let bytes = spool::read_capped(data, size, limits.metadata_bytes)?;
            return Ok(Finding {
                os: os_release::parse(&bytes),
                ..Finding::default()
            });
        }
        FileKind::DpkgStatus => dpkg::parse(
            &spool::read_capped(data, size, limits.database_bytes)?,
            path,
        ),
        FileKind::ApkInstalled => apk::parse(
            &spool::read_capped(data, size, limits.database_bytes)?,
            path,
        ),
        FileKind::PythonMetadata => {
            python::parse(&spool::read_head(data, size, limits.metadata_bytes)?, path)?
        }
        FileKind::NpmPackage => npm::parse(
            &spool::read_capped(data, size, limits.metadata_bytes)?,
            path,
        )?,
        FileKind::CargoLock => cargo_lock::parse(
            &spool::read_capped(data, size, limits.database_bytes)?,
            path,
        ),
        FileKind::Gemspec => gem::parse(
            &spool::read_capped(data, size, limits.metadata_bytes)?,
            path,
        )?,
        FileKind::ComposerInstalled => composer::parse(
            &spool::read_capped(data, size, limits.database_bytes)?,
            path,
        )?,
        FileKind::RpmSqlite => crate::rpm::sqlite::read(data, size, path, limits)?,
        FileKind::RpmBerkeley => {
            crate::rpm::bdb::read(&Spool::read_from(data, size, limits)?, path, limits)?
        }
        FileKind::RpmNdb => {
            crate::rpm::ndb::read(&Spool::read_from(data, size, limits)?, path, limits)?
        }
        FileKind::JavaArchive => {
            let found = crate::java::scan(&Spool::read_from(data, size, limits)?, path, limits)?;
            return Ok(Finding {
                packages: found.packages,
                problems: found.problems,
                os: None,
            });
        }
    };
    Ok(Finding::packages(packages))
}

//! rpm ≥ 4.16's SQLite database: table `Packages(hnum, blob)`. The file is
//! copied to a temporary file (SQLite needs one), opened read-only and
//! immutable (no journal, no locks), `Packages` must be a table (a view
//! could run any query), and SQLite's virtual machine is interrupted
//! after `Limits::sqlite_steps` steps.

use std::io::{self, Read, Write};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::ParseError;
use crate::inventory::Package;
use crate::limits::Limits;

pub(crate) fn read(
    data: &mut impl Read,
    size: u64,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Package>, ParseError> {
    if size > limits.archive_bytes {
        return Err(ParseError::TooLarge(limits.archive_bytes));
    }
    let mut file = tempfile::NamedTempFile::new()?;
    let copied = io::copy(&mut data.take(size), file.as_file_mut())?;
    if copied != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "content ends early").into());
    }
    file.as_file_mut().flush()?;
    let sql = |e: rusqlite::Error| ParseError::malformed(format!("rpm sqlite: {e}"));
    let uri = format!("file:{}?immutable=1", file.path().display());
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let mut steps: u64 = 0;
    let budget = limits.sqlite_steps;
    conn.progress_handler(
        1000,
        Some(move || {
            steps += 1000;
            steps > budget
        }),
    );
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = 'Packages'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?;
    if kind.as_deref() != Some("table") {
        return Err(ParseError::malformed("rpm sqlite: Packages is not a table"));
    }
    let mut statement = conn.prepare("SELECT blob FROM Packages").map_err(sql)?;
    let mut rows = statement.query([]).map_err(sql)?;
    let mut packages = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        let Ok(blob) = row.get_ref(0).and_then(|v| v.as_blob().map_err(Into::into)) else {
            continue;
        };
        if let Ok(Some(package)) = super::header::package(blob, path) {
            packages.push(package);
        }
    }
    Ok(packages)
}

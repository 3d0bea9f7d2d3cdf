//! The dedupe map of stores that share content by zero-byte placeholders
//! (an S3 bucket, where there are no hard links): for each blob digest, the
//! repository whose object holds the content. Other repositories holding
//! the digest keep a placeholder that the storage layer resolves here.
//!
//! Invariants:
//! - The map is written with the rows of the repository it names
//!   ([`crate::Change::HoldsContent`]), in the same transaction, and only
//!   after the object it names holds the content.
//! - Removing a repository's blob row ([`crate::Change::RemoveBlob`], or
//!   forgetting the repository) drops the entry when it names that
//!   repository: the map never names a repository that no longer records
//!   the blob. (The storage layer moves the content to the next holder and
//!   records it there *before* removing the old holder's row.)
//! - Like every table here, it is a cache of the bucket: a rebuild finds
//!   every object with content (a non-empty object, or the empty blob's
//!   own digest) and records it again.

use crate::kv::Write;
use crate::{MetaStore, Result};
use zot_oci::Digest;

/// blob digest -> repository whose object holds the content.
const ORIGINS: &str = "blob_origins";

/// Records `repo` as the holder of `digest`'s content.
pub(crate) fn set(w: &mut dyn Write, digest: &str, repo: &str) -> Result<()> {
    w.put(ORIGINS, digest.as_bytes(), repo.as_bytes())
}

/// Drops the entry of `digest` if it names `repo`.
pub(crate) fn drop_if(w: &mut dyn Write, digest: &str, repo: &str) -> Result<()> {
    if w.get(ORIGINS, digest.as_bytes())?.as_deref() == Some(repo.as_bytes()) {
        w.delete(ORIGINS, digest.as_bytes())?;
    }
    Ok(())
}

impl MetaStore {
    /// The repository recorded as holding the content of `digest` on a
    /// store with placeholders (see the module documentation).
    pub fn blob_origin(&self, digest: &Digest) -> Result<Option<String>> {
        let v = self.read(|r| r.get(ORIGINS, digest.to_string().as_bytes()))?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

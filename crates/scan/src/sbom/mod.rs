//! SBOM exports of an inventory: SPDX 2.3 JSON and CycloneDX 1.5 JSON,
//! each package with its purl and the path where it was found. The output
//! is a function of the inventory and [`SbomInfo`] only (identifiers are
//! derived from a hash of both), so the same image gives the same bytes.

mod cyclonedx;
mod purl;
mod spdx;

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

pub use cyclonedx::to_cyclonedx;
pub use purl::purl;
pub use spdx::to_spdx;

use crate::inventory::Inventory;

/// What the SBOM describes and when it was made.
#[derive(Clone, Debug)]
pub struct SbomInfo {
    /// The image, e.g. `repo@sha256:...`.
    pub name: String,
    pub created: SystemTime,
}

/// The name of the tool in the documents.
pub(crate) const TOOL: &str = "zot-scan";
pub(crate) const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// RFC 3339 UTC with second precision.
pub fn timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A hex digest of the inventory and the info, for document identifiers.
pub(crate) fn fingerprint(inventory: &Inventory, info: &SbomInfo) -> String {
    let mut hash = Sha256::new();
    hash.update(info.name.as_bytes());
    hash.update([0]);
    hash.update(serde_json::to_vec(inventory).unwrap_or_default());
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
    }
}

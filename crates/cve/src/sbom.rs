//! SBOM referrers (`extensions.search.cve.trivy.sbom`): after a manifest's
//! inventory is made, it is exported (SPDX 2.3 JSON or CycloneDX 1.5
//! JSON, `zot_scan`'s exports) and stored in the manifest's repository as
//! zot stores it: an OCI image manifest with `artifactType`
//! `application/spdx+json` or `application/vnd.cyclonedx+json`, the
//! empty JSON config, one layer of that media type holding the document,
//! and `subject` = the scanned manifest, pushed by digest (no tag).
//!
//! Invariants:
//! - At most one SBOM of the configured format per manifest and
//!   repository: the repository's referrers of the subject are read
//!   before pushing, so a re-scan, a re-match or a restart never adds a
//!   second one. A scan job exports (a fresh inventory, or one stored
//!   when the manifest was scanned in another repository or before SBOMs
//!   were asked for); re-matches never do.
//! - The SBOM goes through the registry's own upload sessions and
//!   manifest push (verified digests, metadata and events in step), on
//!   any storage backend.

use std::time::SystemTime;

use bytes::Bytes;
use serde_json::json;
use zot_oci::{Digest, Reference, RepoName, media_types};
use zot_scan::{Inventory, SbomInfo};
use zot_storage::{Registry, StorageError};

/// The SBOM format of `trivy.sbom.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// `spdx-json`: SPDX 2.3 JSON.
    Spdx,
    /// `cyclonedx`: CycloneDX 1.5 JSON.
    CycloneDx,
}

impl SbomFormat {
    /// The artifact type, which is also the layer's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "sbom.spdx.json",
            SbomFormat::CycloneDx => "sbom.cdx.json",
        }
    }

    fn render(self, inventory: &Inventory, info: &SbomInfo) -> serde_json::Value {
        match self {
            SbomFormat::Spdx => zot_scan::to_spdx(inventory, info),
            SbomFormat::CycloneDx => zot_scan::to_cyclonedx(inventory, info),
        }
    }
}

/// Why an SBOM was not attached.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("encoding the SBOM: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The empty JSON config (`{}`) of artifact manifests.
const EMPTY_JSON: &[u8] = b"{}";

/// The subject of an SBOM: the scanned manifest.
pub struct Subject<'a> {
    pub repo: &'a RepoName,
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub size: u64,
}

/// Stores `bytes` as a blob of `repo` unless it is there; returns its digest.
async fn put_blob(reg: &Registry, repo: &RepoName, bytes: Bytes) -> Result<Digest, StorageError> {
    let digest = Digest::sha256_of(&bytes);
    if reg.blob_size(repo, &digest).await?.is_some() {
        return Ok(digest);
    }
    let id = reg.start_upload(repo).await?;
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    match reg
        .complete_upload(repo, &id, &digest, Some(0), Some(body))
        .await
    {
        Ok(_) => Ok(digest),
        Err(e) => {
            if let Err(c) = reg.cancel_upload(repo, &id).await {
                tracing::debug!(error = %c, "cve: cancelling a failed SBOM upload");
            }
            Err(e)
        }
    }
}

/// Attaches the SBOM of `inventory` to `subject` unless one of `format`
/// is there; returns the SBOM manifest's digest when one was pushed.
pub async fn attach(
    reg: &Registry,
    subject: &Subject<'_>,
    inventory: &Inventory,
    format: SbomFormat,
) -> Result<Option<Digest>, SbomError> {
    let artifact_type = format.media_type();
    if !reg
        .referrers(subject.repo, subject.digest, Some(artifact_type))?
        .is_empty()
    {
        return Ok(None);
    }
    let info = SbomInfo {
        name: format!("{}@{}", subject.repo, subject.digest),
        created: SystemTime::now(),
    };
    let document = serde_json::to_vec(&format.render(inventory, &info))?;
    let size = document.len() as u64;
    let layer = put_blob(reg, subject.repo, Bytes::from(document)).await?;
    let config = put_blob(reg, subject.repo, Bytes::from_static(EMPTY_JSON)).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": media_types::OCI_EMPTY,
            "digest": config.to_string(),
            "size": EMPTY_JSON.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": artifact_type,
            "digest": layer.to_string(),
            "size": size,
            "annotations": { "org.opencontainers.image.title": format.file_name() },
        }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
        "annotations": { "org.opencontainers.image.created": zot_scan::rfc3339_utc(info.created) },
    });
    let body = serde_json::to_vec(&manifest)?;
    let digest = Digest::sha256_of(&body);
    reg.put_manifest(
        subject.repo,
        &Reference::Digest(digest.clone()),
        Some(media_types::OCI_MANIFEST),
        &body,
    )
    .await?;
    Ok(Some(digest))
}

/// [`attach`] for the scan queue: the subject looked up, failures logged
/// (the scan's results stand without the SBOM).
pub(crate) async fn attach_logged(
    reg: &Registry,
    repo: &str,
    digest: &Digest,
    inventory: &Inventory,
    format: SbomFormat,
) {
    let Ok(name) = repo.parse::<RepoName>() else {
        return;
    };
    let record = match reg.manifest_record(&name, &Reference::Digest(digest.clone())) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(repo, %digest, error = %e, "cve: SBOM not attached");
            return;
        }
    };
    let subject = Subject {
        repo: &name,
        digest,
        media_type: &record.media_type,
        size: record.size,
    };
    match attach(reg, &subject, inventory, format).await {
        Ok(Some(d)) => tracing::debug!(repo, %digest, sbom = %d, "cve: SBOM attached"),
        Ok(None) => {}
        Err(e) => tracing::warn!(repo, %digest, error = %e, "cve: SBOM not attached"),
    }
}

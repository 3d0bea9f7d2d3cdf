//! Docker schema2 to OCI, on the way in (unless `preserveDigest`), as zot
//! does with regclient's `WithManifestToOCI`: a Docker image manifest
//! becomes an OCI image manifest (config and layer media types mapped,
//! blobs unchanged), a Docker manifest list an OCI index whose Docker
//! children are converted too (so their digests, and the index's, change).
//!
//! Invariants:
//! - The conversion is a pure function of the upstream bytes (JSON objects
//!   re-serialised with sorted keys), so the digest it predicts is the one
//!   stored: a tag whose local digest equals the predicted one is present,
//!   and the skip-by-digest rule holds for converted images.
//! - Only media types change; blob digests and sizes, annotations,
//!   platforms and every other field are kept.

use bytes::Bytes;
use serde_json::Value;
use zot_client::{Manifest, RegistryClient};
use zot_oci::media_types as mt;
use zot_oci::{Digest, ManifestKind};

use crate::SyncError;

/// The OCI media type of a Docker config or layer type.
pub fn blob_media_type(docker: &str) -> Option<&'static str> {
    Some(match docker {
        "application/vnd.docker.container.image.v1+json" => {
            "application/vnd.oci.image.config.v1+json"
        }
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        _ => return None,
    })
}

fn is_docker(media_type: &str) -> bool {
    ManifestKind::from_media_type(media_type).is_some_and(ManifestKind::is_docker)
}

fn invalid(m: &Manifest, why: impl std::fmt::Display) -> SyncError {
    SyncError::Invalid(format!("converting {}: {why}", m.digest))
}

fn finish(value: &Value, media_type: &str) -> Result<Manifest, SyncError> {
    let bytes = serde_json::to_vec(value).map_err(|e| SyncError::Invalid(e.to_string()))?;
    Ok(Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes: Bytes::from(bytes),
        media_type: media_type.to_owned(),
    })
}

/// A Docker image manifest as an OCI image manifest.
pub fn image(m: &Manifest) -> Result<Manifest, SyncError> {
    let mut v: Value = serde_json::from_slice(&m.bytes).map_err(|e| invalid(m, e))?;
    v["mediaType"] = Value::from(mt::OCI_MANIFEST);
    if let Some(config) = v.get_mut("config")
        && let Some(t) = config["mediaType"].as_str().and_then(blob_media_type)
    {
        config["mediaType"] = Value::from(t);
    }
    if let Some(layers) = v.get_mut("layers").and_then(Value::as_array_mut) {
        for layer in layers {
            if let Some(t) = layer["mediaType"].as_str().and_then(blob_media_type) {
                layer["mediaType"] = Value::from(t);
            }
        }
    }
    finish(&v, mt::OCI_MANIFEST)
}

/// `m` as it is stored: unchanged when it is OCI; converted, with its
/// converted children (to store first, by digest), when it is Docker.
pub async fn to_oci(
    client: &RegistryClient,
    upstream: &str,
    m: Manifest,
) -> Result<(Manifest, Vec<Manifest>), SyncError> {
    match ManifestKind::from_media_type(&m.media_type) {
        Some(ManifestKind::DockerManifest) => Ok((image(&m)?, Vec::new())),
        Some(ManifestKind::DockerManifestList) => {
            let mut v: Value = serde_json::from_slice(&m.bytes).map_err(|e| invalid(&m, e))?;
            let mut children = Vec::new();
            if let Some(list) = v.get_mut("manifests").and_then(Value::as_array_mut) {
                for desc in list {
                    let media_type = desc["mediaType"].as_str().unwrap_or_default();
                    if !is_docker(media_type) {
                        continue;
                    }
                    let digest = desc["digest"].as_str().unwrap_or_default().to_owned();
                    let child = client.manifest(upstream, &digest).await?;
                    if child.media_type != mt::DOCKER_MANIFEST {
                        return Err(invalid(
                            &m,
                            format!("child {digest} is {}", child.media_type),
                        ));
                    }
                    let converted = image(&child)?;
                    desc["mediaType"] = Value::from(mt::OCI_MANIFEST);
                    desc["digest"] = Value::from(converted.digest.to_string());
                    desc["size"] = Value::from(converted.bytes.len() as u64);
                    children.push(converted);
                }
            }
            v["mediaType"] = Value::from(mt::OCI_INDEX);
            Ok((finish(&v, mt::OCI_INDEX)?, children))
        }
        _ => Ok((m, Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_media_types_change_and_nothing_else() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt::DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": format!("sha256:{}", "a".repeat(64)), "size": 3},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": format!("sha256:{}", "b".repeat(64)), "size": 5},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": format!("sha256:{}", "c".repeat(64)), "size": 7, "urls": ["https://x"]}
            ],
            "annotations": {"k": "v"}
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        let m = Manifest {
            digest: Digest::sha256_of(&bytes),
            bytes: bytes.into(),
            media_type: mt::DOCKER_MANIFEST.to_owned(),
        };
        let c = image(&m).expect("converts");
        let v: Value = serde_json::from_slice(&c.bytes).expect("json");
        assert_eq!(v["mediaType"], mt::OCI_MANIFEST);
        assert_eq!(
            v["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(
            v["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            v["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        );
        assert_eq!(v["layers"][1]["urls"][0], "https://x");
        assert_eq!(v["config"]["digest"], body["config"]["digest"]);
        assert_eq!(v["annotations"], body["annotations"]);
        assert_eq!(c.digest, Digest::sha256_of(&c.bytes));
        // Deterministic: the same input predicts the same digest.
        assert_eq!(image(&m).expect("again").digest, c.digest);
        zot_oci::ParsedManifest::parse(&c.bytes, Some(&c.media_type), false).expect("valid OCI");
    }
}

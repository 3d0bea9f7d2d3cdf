//! Parsing and validation of pushed manifests: OCI image manifests and
//! indexes (artifacts included) and, when allowed, Docker schema2 manifests
//! and manifest lists. Docker schema1 is always refused.
//!
//! A [`ParsedManifest`] is only produced for a body that is well-formed JSON,
//! has `schemaVersion: 2`, a media type consistent with its `Content-Type`,
//! and well-formed descriptors. Whether the referenced content exists is the
//! storage layer's question; this module only lists the references.

use crate::digest::Digest;
use crate::media_types as mt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl ManifestKind {
    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        match media_type {
            mt::OCI_MANIFEST => Some(ManifestKind::OciManifest),
            mt::OCI_INDEX => Some(ManifestKind::OciIndex),
            mt::DOCKER_MANIFEST => Some(ManifestKind::DockerManifest),
            mt::DOCKER_MANIFEST_LIST => Some(ManifestKind::DockerManifestList),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => mt::OCI_MANIFEST,
            ManifestKind::OciIndex => mt::OCI_INDEX,
            ManifestKind::DockerManifest => mt::DOCKER_MANIFEST,
            ManifestKind::DockerManifestList => mt::DOCKER_MANIFEST_LIST,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(
            self,
            ManifestKind::OciIndex | ManifestKind::DockerManifestList
        )
    }

    pub fn is_docker(self) -> bool {
        matches!(
            self,
            ManifestKind::DockerManifest | ManifestKind::DockerManifestList
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("Docker schema1 manifests are not supported; push a schema2 or OCI manifest")]
    Schema1,
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error(
        "Docker schema2 manifests are not accepted by this registry (enable http.compat: [\"docker2s2\"])"
    )]
    DockerNotAllowed,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("mediaType {body:?} in the manifest does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("manifest has no media type and none can be inferred")]
    NoMediaType,
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

/// The parts of a manifest the registry needs.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    manifests: Option<serde_json::Value>,
    subject: Option<serde_json::Value>,
    annotations: Option<serde_json::Value>,
    // Present in schema1 manifests only.
    fs_layers: Option<serde_json::Value>,
}

fn descriptor(field: &str, v: serde_json::Value) -> Result<Descriptor, ManifestError> {
    serde_json::from_value(v).map_err(|e| ManifestError::Invalid(format!("{field}: {e}")))
}

fn descriptors(
    field: &str,
    v: Option<serde_json::Value>,
) -> Result<Vec<Descriptor>, ManifestError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, d)| descriptor(&format!("{field}[{i}]"), d))
            .collect(),
        Some(_) => Err(ManifestError::Invalid(format!("{field} must be an array"))),
    }
}

impl ParsedManifest {
    /// Parses and validates a manifest body pushed with `content_type`.
    pub fn parse(
        body: &[u8],
        content_type: Option<&str>,
        allow_docker: bool,
    ) -> Result<ParsedManifest, ManifestError> {
        let header = content_type.map(mt::essence).filter(|s| !s.is_empty());
        if matches!(header, Some(mt::DOCKER_SCHEMA1 | mt::DOCKER_SCHEMA1_SIGNED)) {
            return Err(ManifestError::Schema1);
        }
        let raw: RawManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        let version = raw.schema_version.as_ref().and_then(|v| v.as_i64());
        if version == Some(1) || raw.fs_layers.is_some() {
            return Err(ManifestError::Schema1);
        }
        if version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let media_type = match (raw.media_type.as_deref(), header) {
            (Some(body_mt), Some(h)) if body_mt != h => {
                return Err(ManifestError::MediaTypeMismatch {
                    body: body_mt.to_owned(),
                    header: h.to_owned(),
                });
            }
            (Some(m), _) | (None, Some(m)) => m.to_owned(),
            (None, None) if raw.manifests.is_some() => mt::OCI_INDEX.to_owned(),
            (None, None) if raw.config.is_some() => mt::OCI_MANIFEST.to_owned(),
            (None, None) => return Err(ManifestError::NoMediaType),
        };
        if media_type == mt::DOCKER_SCHEMA1 || media_type == mt::DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1);
        }
        let kind = ManifestKind::from_media_type(&media_type).ok_or_else(|| {
            ManifestError::UnsupportedMediaType(media_type.chars().take(128).collect())
        })?;
        if kind.is_docker() && !allow_docker {
            return Err(ManifestError::DockerNotAllowed);
        }
        let annotations = match raw.annotations {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|_| {
                ManifestError::Invalid("annotations must map strings to strings".into())
            })?),
        };
        let subject = match raw.subject {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(descriptor("subject", v)?),
        };
        let mut parsed = ParsedManifest {
            kind,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject,
            artifact_type: raw.artifact_type,
            annotations,
        };
        if kind.is_index() {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(ManifestError::Invalid(
                    "an index has no config or layers".into(),
                ));
            }
            if raw.manifests.is_none() {
                return Err(ManifestError::Invalid(
                    "an index needs a manifests array".into(),
                ));
            }
            parsed.manifests = descriptors("manifests", raw.manifests)?;
        } else {
            if raw.manifests.is_some() {
                return Err(ManifestError::Invalid(
                    "an image manifest has no manifests array".into(),
                ));
            }
            let config = raw
                .config
                .ok_or_else(|| ManifestError::Invalid("config is required".into()))?;
            parsed.config = Some(descriptor("config", config)?);
            if raw.layers.is_none() && kind == ManifestKind::DockerManifest {
                return Err(ManifestError::Invalid("layers is required".into()));
            }
            parsed.layers = descriptors("layers", raw.layers)?;
        }
        Ok(parsed)
    }

    /// Blobs that must be present in the repository for this manifest to be
    /// accepted: the config and every distributable layer.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(
            self.layers
                .iter()
                .filter(|d| !mt::NON_DISTRIBUTABLE_LAYERS.contains(&d.media_type.as_str())),
        )
    }

    /// Manifests that must be present for an index to be accepted.
    pub fn required_manifests(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter()
    }

    /// The artifact type a referrers listing shows for this manifest: its
    /// `artifactType`, else the config's media type.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    const D2: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000002";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":3}}]{extra}}}"#,
            mt::OCI_MANIFEST
        )
    }

    #[test]
    fn parses_image_manifest() {
        let m = ParsedManifest::parse(image("").as_bytes(), Some(mt::OCI_MANIFEST), false).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        assert_eq!(m.required_blobs().count(), 2);
        assert_eq!(
            m.effective_artifact_type(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn subject_and_artifact_type() {
        let body = image(&format!(
            r#","artifactType":"application/x-sig","subject":{{"mediaType":"{}","digest":"{D1}","size":9}},"annotations":{{"a":"b"}}"#,
            mt::OCI_MANIFEST
        ));
        let m = ParsedManifest::parse(body.as_bytes(), Some(mt::OCI_MANIFEST), false).unwrap();
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), D1);
        assert_eq!(m.effective_artifact_type(), Some("application/x-sig"));
        assert_eq!(m.annotations.unwrap()["a"], "b");
    }

    #[test]
    fn rejects() {
        let ok = image("");
        assert_eq!(
            ParsedManifest::parse(ok.as_bytes(), Some(mt::OCI_INDEX), false).unwrap_err(),
            ManifestError::MediaTypeMismatch {
                body: mt::OCI_MANIFEST.into(),
                header: mt::OCI_INDEX.into()
            }
        );
        assert!(matches!(
            ParsedManifest::parse(b"{", None, true),
            Err(ManifestError::Json(_))
        ));
        assert_eq!(
            ParsedManifest::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, true).unwrap_err(),
            ManifestError::Schema1
        );
        assert_eq!(
            ParsedManifest::parse(b"{}", Some(mt::DOCKER_SCHEMA1_SIGNED), true).unwrap_err(),
            ManifestError::Schema1
        );
        assert_eq!(
            ParsedManifest::parse(br#"{"schemaVersion":3,"manifests":[]}"#, None, true)
                .unwrap_err(),
            ManifestError::SchemaVersion
        );
        let docker = ok.replace(mt::OCI_MANIFEST, mt::DOCKER_MANIFEST);
        assert_eq!(
            ParsedManifest::parse(docker.as_bytes(), Some(mt::DOCKER_MANIFEST), false).unwrap_err(),
            ManifestError::DockerNotAllowed
        );
        assert!(ParsedManifest::parse(docker.as_bytes(), Some(mt::DOCKER_MANIFEST), true).is_ok());
        let bad_digest = ok.replace(D2, "sha256:xyz");
        assert!(matches!(
            ParsedManifest::parse(bad_digest.as_bytes(), None, false),
            Err(ManifestError::Invalid(_))
        ));
        assert!(matches!(
            ParsedManifest::parse(
                br#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
                None,
                false
            ),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn index() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            mt::OCI_MANIFEST
        );
        let m = ParsedManifest::parse(body.as_bytes(), Some(mt::OCI_INDEX), false).unwrap();
        assert_eq!(m.kind, ManifestKind::OciIndex);
        assert_eq!(m.required_manifests().count(), 1);
        assert_eq!(m.required_blobs().count(), 0);
    }
}

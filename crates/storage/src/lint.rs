//! Lint: manifests must carry the configured mandatory annotations.
//!
//! As zot does, an annotation is found on the manifest itself or, for an
//! image, among the labels of its config (`config.Labels`). A manifest
//! missing any is refused as invalid, naming every missing one; nothing is
//! stored. A config is read only up to the manifest size limit (4 MiB): a
//! larger one has no labels for lint.

use crate::error::{Result, StorageError};
use crate::registry::Registry;
use zot_oci::{ManifestError, ParsedManifest, RepoName};

impl Registry {
    /// Replaces the mandatory annotations (a configuration reload): pushes
    /// checked from now on use them; one being checked keeps the old ones.
    pub fn set_mandatory_annotations(&self, annotations: Vec<String>) {
        let mut lint = self.lint.write().unwrap_or_else(|e| e.into_inner());
        *lint = std::sync::Arc::new(annotations);
    }

    /// Checks `parsed` against the mandatory annotations (none configured: Ok).
    pub(crate) async fn lint_manifest(
        &self,
        repo: &RepoName,
        parsed: &ParsedManifest,
    ) -> Result<()> {
        let wanted = self.lint.read().unwrap_or_else(|e| e.into_inner()).clone();
        if wanted.is_empty() {
            return Ok(());
        }
        let on_manifest = |k: &String| {
            parsed
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(k))
        };
        let mut missing: Vec<&String> = wanted.iter().filter(|k| !on_manifest(k)).collect();
        if !missing.is_empty()
            && let Some(config) = &parsed.config
            && let Ok(bytes) = self.read_document(repo, &config.digest).await
            && let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            let labels = doc.get("config").and_then(|c| c.get("Labels"));
            missing.retain(|k| labels.and_then(|l| l.get(k.as_str())).is_none());
        }
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Err(StorageError::ManifestInvalid(ManifestError::Invalid(
            format!("missing mandatory annotations: {}", names.join(", ")),
        )))
    }
}

//! `platforms` (ours, beyond zot; zot #2122): only some children of an
//! index are synced. The stored index lists only those children (so every
//! manifest it names is present, as the registry requires); its digest is
//! then not the upstream's, with or without `preserveDigest`. A child left
//! out can still be fetched on demand by its digest.
//!
//! A child matches an entry `os/arch[/variant]` when its platform has that
//! `os` and `architecture` and, when the entry names one, that `variant`.
//! A child without a platform (e.g. an attestation manifest) matches none.

use serde_json::Value;
use zot_client::Manifest;
use zot_oci::{Digest, ManifestKind};

use crate::SyncError;

/// One `platforms` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Parses `os/arch[/variant]` entries (validated with the configuration;
/// a malformed one is left out).
pub fn parse(list: &[String]) -> Vec<Platform> {
    list.iter()
        .filter_map(|p| {
            let mut parts = p.split('/');
            Some(Platform {
                os: parts.next()?.to_owned(),
                architecture: parts.next()?.to_owned(),
                variant: parts.next().map(str::to_owned),
            })
        })
        .collect()
}

fn matches(platforms: &[Platform], platform: &Value) -> bool {
    platforms.iter().any(|p| {
        platform["os"].as_str() == Some(p.os.as_str())
            && platform["architecture"].as_str() == Some(p.architecture.as_str())
            && p.variant
                .as_deref()
                .is_none_or(|v| platform["variant"].as_str() == Some(v))
    })
}

/// `m` with only the children of `platforms` when it is an index (itself
/// when nothing is left out); an index with none of them is refused.
pub fn filter(m: Manifest, platforms: &[Platform]) -> Result<Manifest, SyncError> {
    let is_index = ManifestKind::from_media_type(&m.media_type).is_some_and(ManifestKind::is_index);
    if platforms.is_empty() || !is_index {
        return Ok(m);
    }
    let mut v: Value = serde_json::from_slice(&m.bytes)
        .map_err(|e| SyncError::Invalid(format!("{}: {e}", m.digest)))?;
    let Some(list) = v.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Ok(m);
    };
    let before = list.len();
    list.retain(|d| matches(platforms, &d["platform"]));
    if list.is_empty() {
        return Err(SyncError::Invalid(format!(
            "{}: no child for the configured platforms",
            m.digest
        )));
    }
    if list.len() == before {
        return Ok(m);
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| SyncError::Invalid(e.to_string()))?;
    Ok(Manifest {
        digest: Digest::sha256_of(&bytes),
        bytes: bytes.into(),
        media_type: m.media_type,
    })
}

/// The digests an index lists.
pub fn children(m: &Manifest) -> Vec<String> {
    serde_json::from_slice::<Value>(&m.bytes)
        .ok()
        .and_then(|v| {
            v["manifests"].as_array().map(|l| {
                l.iter()
                    .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(children: &[(&str, &str, Option<&str>)]) -> Manifest {
        let manifests: Vec<Value> = children
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut p = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = Value::from(*v);
                }
                serde_json::json!({
                    "mediaType": zot_oci::media_types::OCI_MANIFEST,
                    "digest": format!("sha256:{}", format!("{i}").repeat(64)),
                    "size": 1, "platform": p
                })
            })
            .collect();
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": zot_oci::media_types::OCI_INDEX, "manifests": manifests
        }))
        .expect("json");
        Manifest {
            digest: Digest::sha256_of(&bytes),
            bytes: bytes.into(),
            media_type: zot_oci::media_types::OCI_INDEX.to_owned(),
        }
    }

    #[test]
    fn keeps_the_listed_platforms() {
        let m = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v7")),
        ]);
        let p = parse(&["linux/arm64/v8".to_owned(), "linux/amd64".to_owned()]);
        let f = filter(m.clone(), &p).expect("filtered");
        assert_eq!(children(&f).len(), 2);
        assert_ne!(f.digest, m.digest);
        assert_eq!(f.digest, Digest::sha256_of(&f.bytes));
        // Nothing left out: the index as it is.
        let all = parse(&[
            "linux/amd64".into(),
            "linux/arm64".into(),
            "linux/arm".into(),
        ]);
        assert_eq!(filter(m.clone(), &all).expect("same").digest, m.digest);
        // A variant must match when named.
        let v6 = parse(&["linux/arm/v6".into()]);
        assert!(filter(m, &v6).is_err());
    }
}

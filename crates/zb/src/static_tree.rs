//! The fixtures as plain files, for a static web server to serve as if it
//! were a registry (reads only):
//!
//! ```text
//! <dir>/v2/_catalog                        {"repositories": [...]}: every
//!                                          fixture's repository and every
//!                                          one a workload only lists
//! <dir>/v2/<repo>/manifests/<tag>          the manifest (serve as the OCI manifest type)
//! <dir>/v2/<repo>/blobs/sha256:<hex>       config and layer
//! ```
//!
//! The bytes are the ones a push of the same fixtures sends, so `zb
//! --no-setup` reads the same content from these files as from a registry.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::data::{Blob, BlobSource};
use crate::workload::Workload;

/// Writes the fixtures of the read-only workloads in `workloads` under `dir`.
pub fn write(
    dir: &Path,
    workloads: &[Workload],
    prefix: &str,
    source: &BlobSource,
) -> anyhow::Result<()> {
    let mut repos = BTreeSet::new();
    for w in workloads.iter().filter(|w| w.read_only()) {
        repos.extend(w.listed(prefix));
        for f in w.fixtures(prefix) {
            if !repos.insert(f.repo.clone()) {
                continue;
            }
            let image = f.image(source)?;
            let repo_dir = dir.join("v2").join(&f.repo);
            write_file(
                &repo_dir.join("manifests").join(f.tag),
                &Blob::from_bytes(image.manifest),
            )?;
            for blob in [&image.config, &image.layer] {
                write_file(&repo_dir.join("blobs").join(&blob.digest), blob)?;
            }
        }
    }
    let catalog = json!({ "repositories": repos });
    write_file(
        &dir.join("v2/_catalog"),
        &Blob::from_bytes(catalog.to_string().into()),
    )
}

fn write_file(path: &Path, blob: &Blob) -> anyhow::Result<()> {
    let parent = path.parent().context("path without parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut file =
        fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for part in blob.body() {
        file.write_all(&part)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::blobs_of;
    use crate::workload::{TINY, select};

    #[test]
    fn writes_manifests_blobs_and_catalog() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("zb-static-{}", std::process::id()));
        let workloads = select("^manifest-get$|push-monolithic-1MiB")?;
        let sizes: Vec<u64> = workloads.iter().flat_map(Workload::sizes).collect();
        let source = BlobSource::new(&sizes);
        write(&dir, &workloads, "t", &source)?;
        let catalog = fs::read_to_string(dir.join("v2/_catalog"))?;
        assert_eq!(catalog, r#"{"repositories":["t/manifest"]}"#);
        let manifest = fs::read(dir.join("v2/t/manifest/manifests/latest"))?;
        for (digest, size) in blobs_of(&manifest)? {
            let blob = fs::read(dir.join("v2/t/manifest/blobs").join(&digest))?;
            assert_eq!(blob.len() as u64, size);
            assert_eq!(Blob::from_bytes(blob.into()).digest, digest);
        }
        fs::remove_dir_all(&dir)?;

        let workloads = select("^catalog")?;
        write(&dir, &workloads, "t", &BlobSource::new(&[TINY]))?;
        let catalog: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("v2/_catalog"))?)?;
        let listed = catalog["repositories"].as_array().map(Vec::len);
        assert_eq!(listed, Some(crate::workload::CATALOG_REPOS));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}

//! The OCI-artifact database source (`cve.osv.repository`): an artifact
//! in a registry (ours included) whose layers are OSV zips, each annotated
//! `org.opencontainers.image.title: <ecosystem>/all.zip`, is fetched into a
//! local folder (`<dir>/<ecosystem>/all.zip`) that the database then
//! imports as a `path` source.
//!
//! Invariants:
//! - A zip is written to `all.zip.part` as its verified blob stream
//!   arrives (the client checks digest and size) and renamed over
//!   `all.zip` only when complete; a failure leaves the previous zip.
//! - A layer whose digest is the one fetched last (`all.zip.digest`) is
//!   not downloaded again, so an unchanged artifact keeps the file stamps
//!   and the database is not rebuilt.
//! - Titles are checked: one path segment before `/all.zip`, no `..`.
//! - `localhost` and `127.*` hosts are reached over plain HTTP, others
//!   over HTTPS.

use std::path::Path;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use zot_client::{ClientOptions, RegistryClient};

const TITLE: &str = "org.opencontainers.image.title";

/// `host/repo:tag` or `host/repo@digest` → (base URL, repo, reference).
pub fn parse_reference(reference: &str) -> Result<(String, String, String), String> {
    let (host, rest) = reference
        .split_once('/')
        .ok_or_else(|| format!("{reference}: not <host>/<repo>:<tag>"))?;
    let (repo, r) = match rest.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{reference}: no tag"))?,
    };
    let plain = host.starts_with("localhost") || host.starts_with("127.");
    let scheme = if plain { "http" } else { "https" };
    Ok((format!("{scheme}://{host}"), repo.to_owned(), r.to_owned()))
}

/// Fetches the artifact's zips into `dir`; returns the ecosystems found.
pub async fn fetch(reference: &str, dir: &Path) -> Result<Vec<String>, String> {
    let (url, repo, r) = parse_reference(reference)?;
    let client = RegistryClient::new(&ClientOptions::new(vec![url])).map_err(|e| e.to_string())?;
    let manifest = client
        .manifest(&repo, &r)
        .await
        .map_err(|e| format!("{reference}: {e}"))?;
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| format!("{reference}: manifest: {e}"))?;
    let mut found = Vec::new();
    for layer in doc["layers"].as_array().into_iter().flatten() {
        let Some(eco) = layer["annotations"][TITLE]
            .as_str()
            .and_then(|t| t.strip_suffix("/all.zip"))
        else {
            continue;
        };
        if eco.is_empty() || eco.contains('/') || eco.contains("..") {
            return Err(format!("{reference}: bad layer title {eco:?}/all.zip"));
        }
        let digest: zot_oci::Digest = layer["digest"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("{reference}: a layer without a digest"))?;
        let size = layer["size"].as_u64();
        let eco_dir = dir.join(eco);
        let stamp = eco_dir.join("all.zip.digest");
        found.push(eco.to_owned());
        if tokio::fs::read_to_string(&stamp)
            .await
            .is_ok_and(|d| d.trim() == digest.to_string())
            && eco_dir.join("all.zip").is_file()
        {
            continue;
        }
        let io = |e: std::io::Error| format!("{}: {e}", eco_dir.display());
        tokio::fs::create_dir_all(&eco_dir).await.map_err(io)?;
        let part = eco_dir.join("all.zip.part");
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut stream = client
            .blob(&repo, &digest, size)
            .await
            .map_err(|e| format!("{reference}: {digest}: {e}"))?;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(format!("{reference}: {digest}: {e}"));
                }
            };
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&part, eco_dir.join("all.zip"))
            .await
            .map_err(io)?;
        tokio::fs::write(&stamp, digest.to_string())
            .await
            .map_err(io)?;
        tracing::info!(ecosystem = eco, %digest, "cve: OSV zip fetched from the artifact");
    }
    if found.is_empty() {
        return Err(format!("{reference}: no layer titled <ecosystem>/all.zip"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::parse_reference;

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("localhost:5000/osv/db:all"),
            Ok((
                "http://localhost:5000".into(),
                "osv/db".into(),
                "all".into()
            ))
        );
        assert_eq!(
            parse_reference("ghcr.io/o/osv@sha256:ab"),
            Ok(("https://ghcr.io".into(), "o/osv".into(), "sha256:ab".into()))
        );
        assert!(parse_reference("osv:all").is_err());
    }
}

//! Scrub: verifies, without changing anything, that every blob of a
//! repository hashes to its name and that every listed manifest and every
//! blob it references is present, whole and intact.
//!
//! Invariants: a scrub only reads; each problem names the repository, the
//! reference (tag, or digest of an untagged manifest) whose image is
//! affected, and the blob; a problem is reported, never a reason to stop.

use crate::error::Result;
use crate::paths;
use crate::registry::Registry;
use futures_util::StreamExt;
use std::collections::HashMap;
use zot_oci::{Descriptor, Digest, ParsedManifest, RepoName};

/// What is wrong with a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubFault {
    /// Its content does not hash to its digest.
    Corrupt,
    /// It is shorter or longer than the manifest says.
    WrongSize,
    /// A manifest needs it and it is not there.
    Missing,
    /// It cannot be read (an I/O error), or a manifest cannot be parsed.
    Unreadable,
}

impl ScrubFault {
    pub fn as_str(self) -> &'static str {
        match self {
            ScrubFault::Corrupt => "corrupt",
            ScrubFault::WrongSize => "wrong size",
            ScrubFault::Missing => "missing",
            ScrubFault::Unreadable => "unreadable",
        }
    }
}

/// One problem found by a scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubProblem {
    pub repository: String,
    /// The tag or digest of the affected manifest; `None` for a blob no
    /// manifest references.
    pub reference: Option<String>,
    pub blob: Digest,
    pub fault: ScrubFault,
}

/// The result of scrubbing one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub blobs_checked: usize,
    pub manifests_checked: usize,
    pub problems: Vec<ScrubProblem>,
}

impl Registry {
    /// Scrubs one repository (see the module documentation).
    pub async fn scrub_repo(&self, repo: &RepoName) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        // Every blob file: content against name.
        let mut faults: HashMap<Digest, ScrubFault> = HashMap::new();
        for alg in self.backend.list(&paths::blobs_dir(repo)).await? {
            if !alg.is_dir || !matches!(alg.name.as_str(), "sha256" | "sha512") {
                continue;
            }
            let folder = format!("{}/{}", paths::blobs_dir(repo), alg.name);
            for entry in self.backend.list(&folder).await? {
                let Ok(digest) = format!("{}:{}", alg.name, entry.name).parse::<Digest>() else {
                    continue;
                };
                if entry.is_dir {
                    continue;
                }
                report.blobs_checked += 1;
                if let Some(fault) = self.verify_blob(repo, &digest).await {
                    faults.insert(digest, fault);
                }
            }
        }
        // Every listed manifest and what it references.
        let index = self.read_index(repo).await?;
        let mut seen_blobs = std::collections::HashSet::new();
        let mut queue: Vec<(Descriptor, String)> = index
            .descriptors()
            .into_iter()
            .map(|(d, tag)| {
                let reference = tag.unwrap_or_else(|| d.digest.to_string());
                (d, reference)
            })
            .collect();
        let mut seen_manifests = std::collections::HashSet::new();
        while let Some((desc, reference)) = queue.pop() {
            if !seen_manifests.insert((desc.digest.clone(), reference.clone())) {
                continue;
            }
            report.manifests_checked += 1;
            let mut problem = |blob: &Digest, fault| {
                seen_blobs.insert(blob.clone());
                tracing::error!(%repo, reference, %blob, fault = fault_str(fault), "scrub: problem found");
                report.problems.push(ScrubProblem {
                    repository: repo.to_string(),
                    reference: Some(reference.clone()),
                    blob: blob.clone(),
                    fault,
                });
            };
            let size = self.blob_size(repo, &desc.digest).await?;
            if size.is_none() {
                problem(&desc.digest, ScrubFault::Missing);
                continue;
            }
            if let Some(&fault) = faults.get(&desc.digest) {
                problem(&desc.digest, fault);
                continue;
            }
            let parsed = match self.backend.read(&paths::blob(repo, &desc.digest)).await {
                Ok(bytes) => ParsedManifest::parse(&bytes, Some(&desc.media_type), true).ok(),
                Err(_) => None,
            };
            let Some(parsed) = parsed else {
                problem(&desc.digest, ScrubFault::Unreadable);
                continue;
            };

            for blob in parsed.required_blobs() {
                match self.blob_size(repo, &blob.digest).await? {
                    None => problem(&blob.digest, ScrubFault::Missing),
                    Some(size) if size != blob.size => problem(&blob.digest, ScrubFault::WrongSize),
                    Some(_) if faults.contains_key(&blob.digest) => {
                        problem(&blob.digest, faults[&blob.digest])
                    }
                    Some(_) => {}
                }
            }
            queue.extend(
                parsed
                    .manifests
                    .iter()
                    .map(|m| (m.clone(), reference.clone())),
            );
        }
        // Faulty blobs no manifest references.
        for (blob, fault) in faults {
            if !seen_blobs.contains(&blob) {
                tracing::error!(%repo, %blob, fault = fault.as_str(), "scrub: problem found");
                report.problems.push(ScrubProblem {
                    repository: repo.to_string(),
                    reference: None,
                    blob,
                    fault,
                });
            }
        }
        report.problems.sort_by(|a, b| {
            (&a.reference, a.blob.to_string()).cmp(&(&b.reference, b.blob.to_string()))
        });
        report.problems.dedup();
        Ok(report)
    }

    /// Hashes one blob; `None` when it matches its digest.
    async fn verify_blob(&self, repo: &RepoName, digest: &Digest) -> Option<ScrubFault> {
        let size = match self.blob_size(repo, digest).await {
            Ok(Some(s)) => s,
            Ok(None) => return Some(ScrubFault::Missing),
            Err(_) => return Some(ScrubFault::Unreadable),
        };
        let mut stream = match self.blob_stream(repo, digest, 0, size).await {
            Ok(s) => s,
            Err(_) => return Some(ScrubFault::Unreadable),
        };
        let mut hasher = digest.algorithm().hasher();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return Some(ScrubFault::Unreadable);
            };
            // Hashing is CPU work: on the blocking pool, not a runtime worker.
            hasher = match tokio::task::spawn_blocking(move || {
                hasher.update(&chunk);
                hasher
            })
            .await
            {
                Ok(h) => h,
                Err(_) => return Some(ScrubFault::Unreadable),
            };
        }
        (hasher.finish() != *digest).then_some(ScrubFault::Corrupt)
    }
}

fn fault_str(f: ScrubFault) -> &'static str {
    f.as_str()
}

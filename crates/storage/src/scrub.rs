//! Scrub: verifies, without changing anything, that every blob of a
//! repository hashes to its name and that every listed manifest and every
//! blob it references is present, whole and intact.
//!
//! Invariants: a scrub only reads; each problem names the repository, the
//! reference (tag, or digest of an untagged manifest) whose image is
//! affected, and the blob (or the layout's file or folder: an `index.json`
//! that cannot be parsed, a blob folder that cannot be listed); a problem
//! is reported, never a reason to stop, and what was found before it is
//! kept.

use crate::documents::ListedManifest;
use crate::index::LayoutIndex;
use crate::paths;
use crate::registry::Registry;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use zot_oci::{Descriptor, Digest, RepoName};

/// What is wrong with a blob, a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubFault {
    /// Its content does not hash to its digest.
    Corrupt,
    /// It is shorter or longer than the manifest says.
    WrongSize,
    /// A manifest needs it and it is not there.
    Missing,
    /// It cannot be read (an I/O error), or `index.json` cannot be parsed,
    /// or a folder cannot be listed.
    Unreadable,
    /// It is listed as a manifest (in `index.json` or by an index) and is
    /// intact, but is none: larger than 4 MiB (not read), or not parsable.
    NotManifest,
}

impl ScrubFault {
    pub fn as_str(self) -> &'static str {
        match self {
            ScrubFault::Corrupt => "corrupt",
            ScrubFault::WrongSize => "wrong size",
            ScrubFault::Missing => "missing",
            ScrubFault::Unreadable => "unreadable",
            ScrubFault::NotManifest => "not a manifest",
        }
    }
}

/// What a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScrubItem {
    /// A file or folder of the layout itself, relative to the repository
    /// (`index.json`, `blobs/sha256`); sorted before blobs.
    Layout(String),
    /// A blob (a layer, a config or a manifest).
    Blob(Digest),
}

impl std::fmt::Display for ScrubItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScrubItem::Blob(d) => d.fmt(f),
            ScrubItem::Layout(p) => f.write_str(p),
        }
    }
}

/// One problem found by a scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubProblem {
    pub repository: String,
    /// The tag or digest of the affected manifest; `None` for a blob no
    /// manifest references, or a problem of the layout itself.
    pub reference: Option<String>,
    pub item: ScrubItem,
    pub fault: ScrubFault,
}

/// The result of scrubbing one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub blobs_checked: usize,
    pub manifests_checked: usize,
    pub problems: Vec<ScrubProblem>,
}

impl ScrubReport {
    fn problem(
        &mut self,
        repo: &RepoName,
        reference: Option<&str>,
        item: ScrubItem,
        fault: ScrubFault,
    ) {
        tracing::error!(%repo, reference, %item, fault = fault.as_str(), "scrub: problem found");
        self.problems.push(ScrubProblem {
            repository: repo.to_string(),
            reference: reference.map(str::to_owned),
            item,
            fault,
        });
    }
}

impl Registry {
    /// Scrubs one repository (see the module documentation). Never fails:
    /// whatever cannot be read is a problem in the report, and the checks
    /// that can still be made are made.
    pub async fn scrub_repo(&self, repo: &RepoName) -> ScrubReport {
        let mut report = ScrubReport::default();
        // Every blob file: content against name.
        let mut faults: HashMap<Digest, ScrubFault> = HashMap::new();
        let algorithms = match self.backend.list(&paths::blobs_dir(repo)).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(%repo, error = %e, "scrub: listing blobs");
                report.problem(
                    repo,
                    None,
                    ScrubItem::Layout("blobs".into()),
                    ScrubFault::Unreadable,
                );
                Vec::new()
            }
        };
        for alg in algorithms {
            if !matches!(alg.name.as_str(), "sha256" | "sha512") {
                continue;
            }
            let folder = format!("{}/{}", paths::blobs_dir(repo), alg.name);
            let listed = if alg.is_dir {
                self.backend.list(&folder).await
            } else {
                Err(std::io::Error::other("not a folder"))
            };
            let entries = match listed {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(%repo, folder, error = %e, "scrub: listing blobs");
                    let item = ScrubItem::Layout(format!("blobs/{}", alg.name));
                    report.problem(repo, None, item, ScrubFault::Unreadable);
                    continue;
                }
            };
            for entry in entries {
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
        let index = match self.read_index(repo).await {
            Ok(index) => index,
            Err(e) => {
                tracing::error!(%repo, error = %e, "scrub: reading index.json");
                report.problem(
                    repo,
                    None,
                    ScrubItem::Layout("index.json".into()),
                    ScrubFault::Unreadable,
                );
                LayoutIndex::default()
            }
        };
        let mut seen_blobs = HashSet::new();
        let mut queue: Vec<(Descriptor, String)> = index
            .descriptors()
            .into_iter()
            .map(|(d, tag)| {
                let reference = tag.unwrap_or_else(|| d.digest.to_string());
                (d, reference)
            })
            .collect();
        let mut seen_manifests = HashSet::new();
        while let Some((desc, reference)) = queue.pop() {
            if !seen_manifests.insert((desc.digest.clone(), reference.clone())) {
                continue;
            }
            report.manifests_checked += 1;
            let mut problem = |blob: &Digest, fault| {
                seen_blobs.insert(blob.clone());
                report.problem(repo, Some(&reference), ScrubItem::Blob(blob.clone()), fault);
            };
            match self.blob_size(repo, &desc.digest).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    problem(&desc.digest, ScrubFault::Missing);
                    continue;
                }
                Err(_) => {
                    problem(&desc.digest, ScrubFault::Unreadable);
                    continue;
                }
            }
            if let Some(&fault) = faults.get(&desc.digest) {
                problem(&desc.digest, fault);
                continue;
            }
            let parsed = match self.read_listed_manifest(repo, &desc).await {
                ListedManifest::Parsed(parsed) => *parsed,
                ListedManifest::Missing => {
                    problem(&desc.digest, ScrubFault::Missing);
                    continue;
                }
                ListedManifest::TooLarge(_) | ListedManifest::NotManifest { .. } => {
                    problem(&desc.digest, ScrubFault::NotManifest);
                    continue;
                }
                ListedManifest::Unreadable(_) => {
                    problem(&desc.digest, ScrubFault::Unreadable);
                    continue;
                }
            };

            for blob in parsed.required_blobs() {
                match self.blob_size(repo, &blob.digest).await {
                    Ok(None) => problem(&blob.digest, ScrubFault::Missing),
                    Err(_) => problem(&blob.digest, ScrubFault::Unreadable),
                    Ok(Some(size)) if size != blob.size => {
                        problem(&blob.digest, ScrubFault::WrongSize)
                    }
                    Ok(Some(_)) => {
                        if let Some(&fault) = faults.get(&blob.digest) {
                            problem(&blob.digest, fault)
                        }
                    }
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
                report.problem(repo, None, ScrubItem::Blob(blob), fault);
            }
        }
        report
            .problems
            .sort_by(|a, b| (&a.reference, &a.item).cmp(&(&b.reference, &b.item)));
        report.problems.dedup();
        report
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

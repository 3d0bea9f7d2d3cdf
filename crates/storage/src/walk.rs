//! The walk of a store's root: every OCI layout and every upload folder
//! under it, never descending into a layout's blob folders.
//!
//! Invariant: the result does not depend on the order in which folders are
//! visited; folders are listed several at a time (and their sub-folders
//! checked for `oci-layout` several at a time) so that, at start-up, the
//! latency of tens of thousands of directory reads overlaps.

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use crate::error::Result;
use crate::paths;
use crate::registry::Registry;
use zot_oci::RepoName;

/// Folders listed at once.
const LIST_CONCURRENCY: usize = 16;
/// `oci-layout` checks at once within one folder.
const CHECK_CONCURRENCY: usize = 16;

/// Folders found under the root.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub layouts: Vec<RepoName>,
    /// Repositories (layouts or not yet) with a `.uploads` folder.
    pub upload_folders: Vec<RepoName>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Folder {
    Plain,
    Layout,
    LayoutBlobs,
}

/// What one folder holds.
#[derive(Default)]
struct Visit {
    children: Vec<(String, Folder)>,
    layouts: Vec<RepoName>,
    upload_folder: Option<RepoName>,
}

impl Registry {
    /// Walks the folders under the root (never the blob folders of a
    /// layout) and returns the layouts and upload folders found.
    pub(crate) async fn walk(&self) -> Result<Walk> {
        let mut walk = Walk::default();
        let mut pending = vec![(String::new(), Folder::Plain)];
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < LIST_CONCURRENCY
                && let Some((dir, kind)) = pending.pop()
            {
                running.push(self.visit(dir, kind));
            }
            let Some(visit) = running.next().await else {
                break;
            };
            let visit = visit?;
            walk.layouts.extend(visit.layouts);
            walk.upload_folders.extend(visit.upload_folder);
            pending.extend(visit.children);
        }
        Ok(walk)
    }

    async fn visit(&self, dir: String, kind: Folder) -> Result<Visit> {
        let mut visit = Visit::default();
        let mut candidates = Vec::new();
        for entry in self.backend.list(&dir).await? {
            let name = entry.name;
            if !entry.is_dir {
                continue;
            }
            if name == paths::UPLOADS {
                visit.upload_folder = dir.parse::<RepoName>().ok();
                continue;
            }
            let skip = name.starts_with('.')
                || name.starts_with('_')
                || (kind == Folder::LayoutBlobs && matches!(name.as_str(), "sha256" | "sha512"));
            if !skip {
                candidates.push(name);
            }
        }
        let mut candidates = candidates.into_iter();
        let mut checks = FuturesUnordered::new();
        loop {
            while checks.len() < CHECK_CONCURRENCY
                && let Some(name) = candidates.next()
            {
                let path = if dir.is_empty() {
                    name.clone()
                } else {
                    format!("{dir}/{name}")
                };
                checks.push(self.check_layout(name, path));
            }
            let Some(check) = checks.next().await else {
                break;
            };
            let (name, path, layout) = check?;
            let child = if layout {
                match path.parse::<RepoName>() {
                    Ok(repo) => visit.layouts.push(repo),
                    Err(e) => tracing::warn!(
                        path,
                        error = %e,
                        "skipping a layout whose path is not a valid repository name"
                    ),
                }
                Folder::Layout
            } else if kind == Folder::Layout && name == "blobs" {
                Folder::LayoutBlobs
            } else {
                Folder::Plain
            };
            visit.children.push((path, child));
        }
        Ok(visit)
    }

    /// Whether folder `path` (named `name`) is a layout.
    async fn check_layout(&self, name: String, path: String) -> Result<(String, String, bool)> {
        let layout = self.backend.size(&format!("{path}/oci-layout")).await?;
        Ok((name, path, layout.is_some()))
    }
}

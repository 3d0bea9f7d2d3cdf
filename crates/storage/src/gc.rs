//! Garbage collection of one repository: tags and manifests per the
//! retention policy, then blobs no manifest references, then the repository
//! itself when nothing is left.
//!
//! Invariants (why GC never removes what a push or a pull needs):
//! - GC of a repository runs under the repository's exclusive lock, as
//!   every write of its `index.json` does; blob placements and mounts hold
//!   the shared lock, so GC never finds a repository empty (and removes its
//!   layout) while its first blob is being placed. `put_manifest` checks again, under that lock,
//!   that every blob it needs is present before listing the manifest: so
//!   either GC ran first (the push is refused with `MANIFEST_BLOB_UNKNOWN`,
//!   nothing is acknowledged) or the manifest is listed before GC looks, and
//!   its blobs are referenced. An acknowledged manifest never loses a blob.
//! - A blob is removed only once older than `gcDelay`: by file age, by the
//!   time its placement was last recorded ([`Lifecycle`], which also covers
//!   a dedupe hard link whose file is old), and never in the first `gcDelay`
//!   after start-up (placements before a restart are not remembered). The
//!   check and the removal run under the blob's digest lock, which a
//!   placement holds until it is recorded (a mount records the placement
//!   before it links): a blob uploaded or mounted for a manifest not pushed
//!   yet survives `gcDelay`. With several instances sharing state in
//!   Redis, the digest lock is also the digest's lease there, and GC
//!   removes a blob only by claiming its mark key, which placements and
//!   manifest pushes on other instances write (`digest_guard.rs`): a
//!   manifest pushed elsewhere after this round read `index.json` keeps
//!   its blobs. Such a round stops sweeping once half of `gcDelay` has
//!   passed since that read (the marks live `gcDelay`). Retention claims
//!   the manifests it removes the same way (`gc_retention.rs`,
//!   `manifest_claims.rs`): one that an index pushed elsewhere names, or
//!   that is pushed again elsewhere, during the round is kept.
//! - Blobs are removed from this repository only: with dedupe, another
//!   repository's hard link keeps the content; on S3, content that other
//!   repositories' placeholders stand for is first moved to one of them
//!   (`dedupe.rs`), and a failed move keeps the blob (a problem).
//! - If a listed manifest (in `index.json` or as an index's child) cannot
//!   be read now (an I/O error, content that no longer matches its digest),
//!   no blob of the repository is removed in that run: its references are
//!   unknown. A blob listed as a manifest that is none (over the 4 MiB
//!   limit, not JSON, JSON of no supported kind) is read at most to that
//!   limit, kept, counted as a problem and logged, and the sweep goes on,
//!   keeping every digest its JSON names. A missing manifest or blob is
//!   logged and skipped.
//! - Order of writes as elsewhere: `index.json`, then files, then the
//!   metadata store. An empty repository loses `oci-layout` before
//!   `index.json`, so a crash half-way leaves a folder that is no
//!   repository rather than an empty repository that comes back.

use crate::documents::ListedManifest;
use crate::error::Result;
use crate::gc_retention::Removals;
use crate::manifest_claims::ManifestClaims;
use crate::paths;
use crate::registry::Registry;
use crate::retention::Retention;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zot_meta::{Change, Times};
use zot_oci::{Descriptor, Digest, ParsedManifest, RepoName};

/// Entries of the placement table above which it is pruned.
const FRESH_PRUNE_AT: usize = 100_000;

/// What a GC run is told to do.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Minimum age of an unreferenced blob before it is removed (`gcDelay`).
    pub delay: Duration,
    pub retention: Retention,
}

/// What a GC run did (or, for tags and manifests in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub tags_removed: usize,
    pub manifests_removed: usize,
    pub blobs_removed: usize,
    pub repository_removed: bool,
    /// Missing or unreadable objects, logged and skipped.
    pub problems: usize,
}

impl GcReport {
    pub fn add(&mut self, other: &GcReport) {
        self.tags_removed += other.tags_removed;
        self.manifests_removed += other.manifests_removed;
        self.blobs_removed += other.blobs_removed;
        self.repository_removed |= other.repository_removed;
        self.problems += other.problems;
    }
}

/// State the lifecycle tasks keep in memory: recent blob placements and
/// pull times not yet written to the metadata store.
pub(crate) struct Lifecycle {
    started: Instant,
    /// How long placements are remembered; `None`: not tracked (no GC).
    track: Mutex<Option<Duration>>,
    fresh: Mutex<HashMap<(RepoName, Digest), Instant>>,
    /// Pull times and download counts not yet written (sharded: noted on
    /// every manifest `GET`).
    pub(crate) pulls: crate::search::PullLog,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Lifecycle {
    pub(crate) fn new() -> Lifecycle {
        Lifecycle {
            started: Instant::now(),
            track: Mutex::new(None),
            fresh: Mutex::default(),
            pulls: crate::search::PullLog::new(),
        }
    }

    /// Remembers the blobs `changes` add (called with the digest lock held
    /// by a placement, before it is acknowledged).
    pub(crate) fn note_changes(&self, repo: &RepoName, changes: &[Change]) {
        let Some(keep) = *lock(&self.track) else {
            return;
        };
        let mut fresh = lock(&self.fresh);
        for change in changes {
            if let Change::AddBlob(d) = change {
                fresh.insert((repo.clone(), d.clone()), Instant::now());
            }
        }
        if fresh.len() > FRESH_PRUNE_AT {
            fresh.retain(|_, t| t.elapsed() < keep);
        }
    }

    /// How long placements are remembered (`gcDelay`), if GC is on.
    pub(crate) fn tracked(&self) -> Option<Duration> {
        *lock(&self.track)
    }

    fn is_fresh(&self, repo: &RepoName, digest: &Digest, delay: Duration) -> bool {
        self.started.elapsed() < delay
            || lock(&self.fresh)
                .get(&(repo.clone(), digest.clone()))
                .is_some_and(|t| t.elapsed() < delay)
    }
}

/// A manifest listed in `index.json`.
pub(crate) struct Listed {
    pub(crate) desc: Descriptor,
    pub(crate) tags: Vec<String>,
    pub(crate) parsed: Option<ParsedManifest>,
    /// What it names, when it is not a manifest this registry parses.
    pub(crate) mentions: Vec<Digest>,
    pub(crate) times: Times,
}

/// The references of a listed manifest, as far as GC can know them.
enum References {
    Parsed(Box<ParsedManifest>),
    /// Missing, or not a manifest: the digests it names (maybe none).
    Mentions(Vec<Digest>),
    /// Cannot be read now: unknown.
    Unknown,
}

impl Registry {
    /// Starts remembering blob placements for `delay` (GC is on).
    pub fn track_placements(&self, delay: Duration) {
        *lock(&self.lifecycle.track) = Some(delay);
    }

    /// Notes a pull of manifest `digest` (in memory; see [`Registry::flush_pulls`]).
    /// Counts no download (see [`Registry::record_download`]).
    pub fn record_pull(&self, repo: &RepoName, digest: &Digest) {
        self.lifecycle.pulls.note(repo, digest, now_secs(), 0);
    }

    /// Writes the pull times and download counts noted since the last
    /// call, in one transaction.
    pub async fn flush_pulls(&self) -> Result<()> {
        let batch = self.lifecycle.pulls.take();
        if batch.is_empty() {
            return Ok(());
        }
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.record_downloads(&batch))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Every repository (layout) under the root.
    pub async fn repositories(&self) -> Result<Vec<RepoName>> {
        Ok(self.walk().await?.layouts)
    }

    /// Garbage-collects every repository; a failing one is logged and skipped.
    pub async fn gc_all(&self, options: &GcOptions) -> Result<GcReport> {
        let mut total = GcReport::default();
        for repo in self.repositories().await? {
            match self.gc_repo(&repo, options).await {
                Ok(r) => total.add(&r),
                Err(e) => {
                    tracing::warn!(%repo, error = %e, "gc: repository skipped");
                    total.problems += 1;
                }
            }
        }
        Ok(total)
    }

    /// Garbage-collects one repository (see the module documentation).
    pub async fn gc_repo(&self, repo: &RepoName, options: &GcOptions) -> Result<GcReport> {
        if let Err(e) = self.flush_pulls().await {
            tracing::warn!(error = %e, "gc: recording pull times");
        }
        let _guard = self.lock_repo(repo).await;
        self.reconcile(repo).await?;
        let mut report = GcReport::default();
        let read_at = Instant::now();
        let mut index = self.read_index(repo).await?;
        let now = now_secs();
        let mut sweep = true;
        let mut listed: HashMap<Digest, Listed> = HashMap::new();
        for (desc, tag) in index.descriptors() {
            let entry = listed.entry(desc.digest.clone()).or_insert_with(|| Listed {
                desc,
                tags: Vec::new(),
                parsed: None,
                mentions: Vec::new(),
                times: Times::default(),
            });
            entry.tags.extend(tag);
        }
        for (digest, l) in listed.iter_mut() {
            match self.read_manifest(repo, &l.desc, &mut report).await {
                References::Parsed(parsed) => l.parsed = Some(*parsed),
                References::Mentions(mentions) => l.mentions = mentions,
                References::Unknown => sweep = false,
            }
            l.times = self.meta.times(repo, digest)?;
            if l.times.pushed.is_none() {
                let age = self.backend.age_secs(&paths::blob(repo, digest)).await;
                l.times.pushed = Some(now.saturating_sub(age.ok().flatten().unwrap_or(0)));
            }
        }

        let retention = &options.retention;
        let Removals {
            tags: removed_tags,
            manifests: removed,
            mut claims,
        } = self
            .retention_removals(repo, &listed, options, (now, read_at), &mut report)
            .await;
        for tag in &removed_tags {
            tracing::info!(%repo, tag, dry_run = retention.dry_run, "gc: removing tag per retention policy");
        }
        for d in &removed {
            tracing::info!(%repo, digest = %d, dry_run = retention.dry_run, "gc: removing manifest");
        }
        report.tags_removed = removed_tags.len();
        report.manifests_removed = removed.len();
        let removed = if retention.dry_run {
            HashSet::new()
        } else {
            let done = self
                .remove_manifests(repo, &mut index, &listed, &removed_tags, &removed, &claims)
                .await;
            self.release_claims(&mut claims, None).await;
            done?;
            removed
        };

        if sweep {
            let roots: Vec<&Listed> = listed
                .values()
                .filter(|l| !removed.contains(&l.desc.digest))
                .collect();
            if let Some(referenced) = self.referenced(repo, &roots, &mut report).await {
                self.sweep_blobs(repo, &referenced, options.delay, read_at, &mut report)
                    .await?
            }
        } else {
            tracing::warn!(%repo, "gc: a manifest could not be read; no blob removed");
        }
        if index.descriptors().is_empty() && self.blob_count(repo).await? == 0 {
            self.remove_empty(repo).await?;
            report.repository_removed = true;
        }
        Ok(report)
    }

    /// Reads and parses a listed manifest, at most 4 MiB of it; logs and
    /// counts in `report` whatever is not a parsed manifest but a missing one.
    async fn read_manifest(
        &self,
        repo: &RepoName,
        desc: &Descriptor,
        report: &mut GcReport,
    ) -> References {
        let digest = &desc.digest;
        match self.read_listed_manifest(repo, desc).await {
            ListedManifest::Parsed(p) => References::Parsed(p),
            ListedManifest::Missing => {
                tracing::warn!(%repo, %digest, "gc: listed manifest is missing");
                References::Mentions(Vec::new())
            }
            ListedManifest::TooLarge(size) => {
                tracing::warn!(%repo, %digest, size, "gc: listed as a manifest but larger than a manifest may be; kept, not read");
                report.problems += 1;
                References::Mentions(Vec::new())
            }
            ListedManifest::NotManifest { why, mentions } => {
                tracing::warn!(%repo, %digest, error = %why, "gc: listed as a manifest but cannot be parsed as one; kept with every digest it names");
                report.problems += 1;
                References::Mentions(mentions)
            }
            ListedManifest::Unreadable(e) => {
                tracing::warn!(%repo, %digest, error = %e, "gc: cannot read manifest; no blob removed in this run");
                report.problems += 1;
                References::Unknown
            }
        }
    }

    async fn remove_manifests(
        &self,
        repo: &RepoName,
        index: &mut crate::index::LayoutIndex,
        listed: &HashMap<Digest, Listed>,
        removed_tags: &HashSet<String>,
        removed: &HashSet<Digest>,
        claims: &ManifestClaims,
    ) -> Result<()> {
        if removed_tags.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut changes = Vec::new();
        for tag in removed_tags {
            index.remove_tag(tag);
            changes.push(Change::RemoveTag(tag.clone()));
        }
        for d in removed {
            changes.extend(index.remove_digest(d).into_iter().map(Change::RemoveTag));
            if let Some(subject) = listed
                .get(d)
                .and_then(|l| l.parsed.as_ref()?.subject.as_ref())
            {
                changes.push(Change::RemoveReferrer {
                    subject: subject.digest.clone(),
                    referrer: d.clone(),
                });
            }
            changes.push(Change::RemoveManifest(d.clone()));
            changes.push(Change::RemoveBlob(d.clone()));
        }
        if self.meta.events_enabled() {
            let listed = listed.values().map(|l| (&l.desc, l.tags.as_slice()));
            changes.extend(
                crate::events::removed_by_gc(repo, listed, removed_tags, removed)
                    .into_iter()
                    .map(|e| Change::Event(Box::new(e))),
            );
        }
        if claims.lost() {
            return Err(
                std::io::Error::other(format!("{repo}: gc's removal lease was lost")).into(),
            );
        }
        changes.push(self.write_index(repo, index).await?);
        for d in removed {
            if claims.lost() {
                // A push elsewhere may no longer wait: the files stay (as
                // unreferenced blobs for a later round's sweep).
                tracing::warn!(%repo, "gc: removal lease lost; manifest files left for a later round");
                break;
            }
            let deleted = match self.lock_digest(d).await {
                Ok(_digest_guard) => self.delete_blob_object(repo, d).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!(%repo, digest = %d, error = %e, "gc: removing manifest file");
            }
        }
        self.apply_meta(repo, changes).await
    }

    /// Every digest the kept manifests need, walking into index children
    /// that `index.json` does not list. `None` if one cannot be read.
    async fn referenced(
        &self,
        repo: &RepoName,
        roots: &[&Listed],
        report: &mut GcReport,
    ) -> Option<HashSet<Digest>> {
        let mut out = HashSet::new();
        let mut queue: Vec<Descriptor> = Vec::new();
        let visit = |p: &ParsedManifest, out: &mut HashSet<Digest>, q: &mut Vec<Descriptor>| {
            out.extend(p.config.iter().map(|c| c.digest.clone()));
            out.extend(p.layers.iter().map(|l| l.digest.clone()));
            q.extend(p.manifests.iter().cloned());
        };
        for l in roots {
            out.insert(l.desc.digest.clone());
            out.extend(l.mentions.iter().cloned());
            if let Some(p) = &l.parsed {
                visit(p, &mut out, &mut queue);
            }
        }
        while let Some(desc) = queue.pop() {
            if !out.insert(desc.digest.clone()) {
                continue;
            }
            match self.read_manifest(repo, &desc, report).await {
                References::Parsed(p) => visit(&p, &mut out, &mut queue),
                References::Mentions(mentions) => out.extend(mentions),
                References::Unknown => return None,
            }
        }
        Some(out)
    }

    /// The blob files of `repo`, as (key, digest) pairs.
    async fn blob_files(&self, repo: &RepoName) -> Result<Vec<(String, Option<Digest>)>> {
        let mut out = Vec::new();
        for alg in self.backend.list(&paths::blobs_dir(repo)).await? {
            if !alg.is_dir || !matches!(alg.name.as_str(), "sha256" | "sha512") {
                continue; // e.g. a repository named `<repo>/blobs`
            }
            let folder = format!("{}/{}", paths::blobs_dir(repo), alg.name);
            for blob in self.backend.list(&folder).await? {
                if blob.is_dir || blob.name.starts_with('.') {
                    continue;
                }
                let digest = format!("{}:{}", alg.name, blob.name).parse::<Digest>().ok();
                out.push((format!("{folder}/{}", blob.name), digest));
            }
        }
        Ok(out)
    }

    async fn blob_count(&self, repo: &RepoName) -> Result<usize> {
        Ok(self.blob_files(repo).await?.len())
    }

    async fn sweep_blobs(
        &self,
        repo: &RepoName,
        referenced: &HashSet<Digest>,
        delay: Duration,
        read_at: Instant,
        report: &mut GcReport,
    ) -> Result<()> {
        let mut changes = Vec::new();
        for (key, digest) in self.blob_files(repo).await? {
            let Some(digest) = digest else {
                continue; // not a blob name: not ours to remove
            };
            if referenced.contains(&digest) || self.meta.manifest(repo, &digest)?.is_some() {
                continue;
            }
            let _placement = self.lock_digest(&digest).await?;
            if self.lifecycle.is_fresh(repo, &digest, delay) {
                continue;
            }
            match self.backend.age_secs(&key).await {
                Ok(Some(age)) if age >= delay.as_secs() => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(%repo, %digest, error = %e, "gc: cannot stat blob; skipped");
                    report.problems += 1;
                    continue;
                }
            }
            if self.uploads_shared() && read_at.elapsed() > delay / 2 {
                // Pushes elsewhere since the read of index.json are known by
                // their marks, which live gcDelay (`digest_guard.rs`).
                tracing::info!(%repo, "gc: round longer than half of gcDelay; the rest is swept next round");
                break;
            }
            let claim = match self.claim_removal(repo, &digest).await {
                Ok(Some(claim)) => claim,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%repo, %digest, error = %e, "gc: cannot check the placement mark; kept");
                    report.problems += 1;
                    continue;
                }
            };
            let deleted = self.delete_blob_object(repo, &digest).await;
            self.release_removal(claim).await;
            match deleted {
                Ok(_) => {
                    tracing::debug!(%repo, %digest, "gc: removed unreferenced blob");
                    report.blobs_removed += 1;
                    changes.push(Change::RemoveBlob(digest));
                }
                Err(e) => {
                    tracing::warn!(%repo, %digest, error = %e, "gc: cannot remove blob; skipped");
                    report.problems += 1;
                }
            }
        }
        if !changes.is_empty() {
            self.apply_meta(repo, changes).await?;
        }
        Ok(())
    }

    /// Removes the layout files of a repository with no manifest and no
    /// blob (call with the repository lock held). Folders stay: an upload
    /// may be starting in `.uploads`, and a folder without `oci-layout` is
    /// not a repository.
    ///
    /// `oci-layout` goes first: it is what makes a folder a repository, so
    /// a crash before `index.json` is removed leaves a folder that is no
    /// longer one (not served; the start-up sync forgets it) holding an
    /// empty `index.json`, which a later push to the name reuses. The other
    /// order would leave `oci-layout` alone, and the start-up sync would
    /// bring the empty repository back.
    async fn remove_empty(&self, repo: &RepoName) -> Result<()> {
        self.backend.delete(&paths::oci_layout(repo)).await?;
        self.backend.delete(&paths::index(repo)).await?;
        self.forget_layout(repo);
        let meta = self.meta.clone();
        let name = repo.as_str().to_owned();
        tokio::task::spawn_blocking(move || meta.forget_repo(&name))
            .await
            .map_err(std::io::Error::other)??;
        tracing::info!(%repo, "gc: removed empty repository");
        Ok(())
    }
}

impl Registry {
    /// The metadata store (for tools and tests that inspect or seed it).
    pub fn metadata(&self) -> &zot_meta::MetaStore {
        &self.meta
    }
}

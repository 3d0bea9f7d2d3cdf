//! What the resolvers read: the metadata of repositories, and the users'
//! stars and bookmarks. Implemented over the registry's stores by the
//! binary's wiring, and by plain in-memory values in tests.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Recorded facts about one manifest digest in one repository. Times are
/// Unix nanoseconds; `None` is zot's zero time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestStats {
    /// Manifest `GET`s (not `HEAD`, not signatures).
    pub downloads: u64,
    pub last_pull_ns: Option<i128>,
    pub pushed_ns: Option<i128>,
    /// The user who pushed it ("" when anonymous or unknown).
    pub pushed_by: String,
}

/// One tag of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub tag: String,
    pub digest: Digest,
    /// When the tag was last set (None: unknown; zot then shows the push time).
    pub tagged_ns: Option<i128>,
}

/// Everything search shows about one repository.
#[derive(Debug, Clone, Default)]
pub struct RepoData {
    pub name: String,
    pub tags: Vec<TagRow>,
    /// Every manifest and index the repository holds (tagged ones, index
    /// children, referrers), by digest.
    pub images: HashMap<Digest, Arc<ImageMeta>>,
    pub stats: HashMap<Digest, DigestStats>,
    /// Referrers of each subject digest (descriptors as the referrers API
    /// lists them).
    pub referrers: HashMap<Digest, Vec<Descriptor>>,
    pub star_count: u64,
}

/// Which per-user list a repository is toggled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pref {
    Star,
    Bookmark,
}

/// A user's starred and bookmarked repositories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPrefs {
    pub starred: BTreeSet<String>,
    pub bookmarked: BTreeSet<String>,
}

/// The metadata the resolvers read. Every method may block briefly (an
/// embedded-database read); the resolvers call it from blocking tasks.
pub trait Source: Send + Sync + 'static {
    /// Every repository with its generation: a number that changes whenever
    /// anything search shows about the repository changes (tags, manifests,
    /// recorded times, download counts once flushed, stars), so summaries
    /// may be cached per (name, generation).
    fn repos(&self) -> Result<Vec<(String, u64)>, SourceError>;
    /// One repository's metadata; `None` when there is no such repository.
    fn repo(&self, name: &str) -> Result<Option<Arc<RepoData>>, SourceError>;
    /// The user's stars and bookmarks.
    fn user_prefs(&self, user: &str) -> Result<UserPrefs, SourceError>;
    /// Flips `repo`'s membership of the user's list (and the repository's
    /// star count); returns whether it is now in the list. The caller has
    /// checked that the repository exists and that the user may read it.
    fn toggle(&self, user: &str, pref: Pref, repo: &str) -> Result<bool, SourceError>;
    /// A number that changes whenever [`Source::repos`] would return
    /// something different (any repository added, removed, or changed in
    /// generation); `None` when the source does not track one, and then
    /// search lists the repositories on every query. With it, a query over
    /// unchanged metadata costs no listing at all.
    fn version(&self) -> Option<u64> {
        None
    }
    /// Whether every read is served by this process (an embedded
    /// database), so a short one may run on an async worker. A source
    /// reading over the network (the shared metadata store in Redis) says
    /// false: its reads stay on the blocking pool. False by default.
    fn local(&self) -> bool {
        false
    }
    /// Summaries saved by [`Source::save_cards`] (by this run or an
    /// earlier one) whose repository still has the generation saved with
    /// them: (name, generation, bytes). None by default.
    fn saved_cards(&self) -> Result<Vec<(String, u64, Vec<u8>)>, SourceError> {
        Ok(Vec::new())
    }
    /// Keeps summaries for [`Source::saved_cards`]; one whose repository
    /// has another generation by now is dropped. Does nothing by default.
    fn save_cards(&self, cards: Vec<(String, u64, Vec<u8>)>) -> Result<(), SourceError> {
        let _ = cards;
        Ok(())
    }
}

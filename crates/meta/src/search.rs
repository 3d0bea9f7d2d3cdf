//! The search extension's tables: what search shows beyond what the
//! registry itself needs, kept in the same store and the same transactions
//! as the manifests and tags they describe.
//!
//! Invariants:
//! - Rows describe manifests and tags of the store's tables: removing a
//!   manifest (`Change::RemoveManifest`) removes its image record, pusher
//!   and download count; removing a tag removes its tag time; forgetting a
//!   repository removes every row of it (its star count and the users'
//!   stars and bookmarks of it included). Removals happen whether search is
//!   on or not, so no row outlives its manifest while search is off.
//! - A rebuild from the layout ([`crate::MetaStore::replace_repo`]) keeps
//!   the rows of manifests and tags still present: image records (content
//!   addressed, so never stale), pushers, download counts, tag times and
//!   stars are history or derivations the layout does not hold.
//! - While search is on, every transaction that changes a repository
//!   (including pull-count flushes and star toggles) gives it a new
//!   generation, drawn from one store-wide sequence, so a (name,
//!   generation) pair never names two different states, even across a
//!   repository removed and pushed again.
//! - A saved summary (`search_cards`) is current while its repository's
//!   generation equals the one saved with it: with search on every change
//!   draws a new generation; with search off every transaction that
//!   changes a repository drops its summary instead, and forgetting a
//!   repository drops it too. Summaries are saved only for the generation
//!   the repository has when they are written.
//! - The `indexed` mark says image records were kept for every manifest
//!   since it was set; it is cleared when the store is opened with search
//!   off, and the owner fills the missing records before setting it again.
//! - Search reads ([`crate::MetaStore::search_repo`]) of a shared store
//!   (Redis) are not one snapshot: a repository changed between two of its
//!   reads is read again at its next generation.

use serde::{Deserialize, Serialize};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest};

use crate::kv::{Read, Write, all, delete_all, k2, k3, part, read_u64, u64_bytes, under};
use crate::{Change, Result};

pub(crate) mod cards;
pub(crate) mod codec;
mod store;

/// (repo, manifest digest) -> [`ImageMeta`] (binary, see `codec.rs`).
pub(crate) const IMAGES: &str = "images";
/// (repo, manifest digest) -> the user who first pushed it.
pub(crate) const PUSHERS: &str = "pushers";
/// (repo, tag) -> when the tag was last set, Unix nanoseconds.
pub(crate) const TAG_TIMES: &str = "tag_times";
/// (repo, manifest digest) -> manifest `GET`s counted as downloads.
pub(crate) const DOWNLOADS: &str = "downloads";
/// (user, list, repo) -> "": a user's stars (list "0") and bookmarks (list "1").
pub(crate) const USER_PREFS: &str = "user_prefs";
/// repo -> number of users who starred it.
pub(crate) const STARS: &str = "stars";
/// repo -> generation (see the module documentation).
pub(crate) const GENERATIONS: &str = "generations";
/// repo -> (generation, summary): search's summary of the repository
/// (opaque here), valid while the repository's generation is the one
/// stored with it (see the module documentation).
pub(crate) const CARDS: &str = "search_cards";
/// "seq" -> last generation handed out; "indexed" -> 1 when set.
pub(crate) const STATE: &str = "search_state";

const SEQ: &[u8] = b"seq";
const INDEXED: &[u8] = b"indexed";

/// A per-user list of repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrefList {
    Starred,
    Bookmarked,
}

impl PrefList {
    fn code(self) -> &'static str {
        match self {
            PrefList::Starred => "0",
            PrefList::Bookmarked => "1",
        }
    }

    fn from_code(c: &str) -> Option<PrefList> {
        match c {
            "0" => Some(PrefList::Starred),
            "1" => Some(PrefList::Bookmarked),
            _ => None,
        }
    }
}

/// Recorded facts about one manifest digest of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub digest: Digest,
    pub downloads: u64,
    /// Seconds since the Unix epoch (None: never / unknown).
    pub pushed: Option<u64>,
    pub pulled: Option<u64>,
    /// "" when unknown or anonymous.
    pub pushed_by: String,
}

/// A tag of a repository, as search reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub tag: String,
    pub digest: Digest,
    /// When it was last set, Unix nanoseconds (None: unknown).
    pub tagged_ns: Option<u64>,
}

/// Everything search reads about one repository.
#[derive(Debug, Clone, Default)]
pub struct SearchRepo {
    pub generation: u64,
    pub tags: Vec<TagRow>,
    /// Records of every manifest and index the repository holds.
    pub images: Vec<ImageMeta>,
    pub stats: Vec<DigestRow>,
    /// (subject, referrer's descriptor).
    pub referrers: Vec<(Digest, Descriptor)>,
    pub stars: u64,
}

/// One batch entry of pulls: the last pull time and the downloads counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub repo: zot_oci::RepoName,
    pub digest: Digest,
    /// Seconds since the Unix epoch of the last pull.
    pub secs: u64,
    /// Pulls counted as downloads (0 when only the time is recorded).
    pub count: u64,
}

/// Applies the search part of `change`, if it has one.
pub(crate) fn apply(w: &mut dyn Write, r: &str, change: &Change) -> Result<()> {
    match change {
        Change::PutImage(meta) => {
            w.put(
                IMAGES,
                &k2(r, &meta.digest.to_string()),
                &codec::encode(meta),
            )?;
        }
        Change::PushedBy(d, user) => {
            let k = k2(r, &d.to_string());
            if w.get(PUSHERS, &k)?.is_none() {
                w.put(PUSHERS, &k, user.as_bytes())?;
            }
        }
        Change::Tagged(tag, ns) => w.put(TAG_TIMES, &k2(r, tag), &u64_bytes(*ns))?,
        Change::RemoveManifest(d) => {
            let k = k2(r, &d.to_string());
            w.delete(IMAGES, &k)?;
            w.delete(PUSHERS, &k)?;
            w.delete(DOWNLOADS, &k)?;
        }
        Change::RemoveTag(tag) => w.delete(TAG_TIMES, &k2(r, tag))?,
        _ => {}
    }
    Ok(())
}

/// Notes that the write changes `repo`: with search on, gives it a new
/// generation; with search off (generations stand still), drops its saved
/// summary, which would otherwise look current.
pub(crate) fn touched(w: &mut dyn Write, repo: &str, search: bool) -> Result<()> {
    if search {
        let next = advance(w)?;
        w.put(GENERATIONS, repo.as_bytes(), &u64_bytes(next))?;
    } else {
        w.delete(CARDS, repo.as_bytes())?;
    }
    Ok(())
}

/// Draws the next number of the store-wide sequence: the store's search
/// version (see [`crate::MetaStore::search_version`]) moves with it.
fn advance(w: &mut dyn Write) -> Result<u64> {
    let next = w.get(STATE, SEQ)?.map_or(0, |v| read_u64(&v)) + 1;
    w.put(STATE, SEQ, &u64_bytes(next))?;
    Ok(next)
}

/// The last number drawn from the sequence (0: none yet).
pub(crate) fn version(r: &mut dyn Read) -> Result<u64> {
    Ok(r.get(STATE, SEQ)?.map_or(0, |v| read_u64(&v)))
}

/// Removes every search row of `repo` (it is gone).
pub(crate) fn forget(w: &mut dyn Write, repo: &str) -> Result<()> {
    let range = under(&[repo]);
    for table in [IMAGES, PUSHERS, TAG_TIMES, DOWNLOADS] {
        delete_all(w, table, &range)?;
    }
    w.delete(STARS, repo.as_bytes())?;
    w.delete(GENERATIONS, repo.as_bytes())?;
    w.delete(CARDS, repo.as_bytes())?;
    // The listing changed: the store's version moves.
    advance(w)?;
    // Keyed by user first: a repository's rows are found by a scan (rare:
    // a repository is forgotten when it is removed).
    for (k, _) in w.range(USER_PREFS, b"", None, usize::MAX)? {
        if part(&k, 2) == repo {
            w.delete(USER_PREFS, &k)?;
        }
    }
    Ok(())
}

/// After a rebuild of `repo`: drops the rows of manifests and tags the
/// layout no longer holds (the others are kept, see the module documentation).
pub(crate) fn prune(w: &mut dyn Write, repo: &str) -> Result<()> {
    let range = under(&[repo]);
    for (table, of) in [
        (IMAGES, crate::MANIFESTS),
        (PUSHERS, crate::MANIFESTS),
        (DOWNLOADS, crate::MANIFESTS),
        (TAG_TIMES, crate::TAGS),
    ] {
        for (k, _) in all(w, table, &range)? {
            if w.get(of, &k)?.is_none() {
                w.delete(table, &k)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn indexed(r: &mut dyn Read) -> Result<bool> {
    Ok(r.get(STATE, INDEXED)?.is_some())
}

pub(crate) fn set_indexed(w: &mut dyn Write, on: bool) -> Result<()> {
    if on {
        w.put(STATE, INDEXED, &u64_bytes(1))
    } else {
        w.delete(STATE, INDEXED)
    }
}

/// The key of a user's list entry.
pub(crate) fn pref_key(user: &str, list: PrefList, repo: &str) -> Vec<u8> {
    k3(user, list.code(), repo)
}

pub(crate) fn decode_pref(code: &str) -> Option<PrefList> {
    PrefList::from_code(code)
}

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

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest};

use crate::{Change, MAX, Result};

pub(crate) mod cards;
pub(crate) mod codec;
mod store;

/// (repo, manifest digest) -> [`ImageMeta`] (binary, see `codec.rs`; JSON
/// in stores written before it).
pub(crate) const IMAGES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("images");
/// (repo, manifest digest) -> the user who first pushed it.
pub(crate) const PUSHERS: TableDefinition<(&str, &str), &str> = TableDefinition::new("pushers");
/// (repo, tag) -> when the tag was last set, Unix nanoseconds.
pub(crate) const TAG_TIMES: TableDefinition<(&str, &str), u64> = TableDefinition::new("tag_times");
/// (repo, manifest digest) -> manifest `GET`s counted as downloads.
pub(crate) const DOWNLOADS: TableDefinition<(&str, &str), u64> = TableDefinition::new("downloads");
/// (user, list, repo) -> (): a user's stars (list 0) and bookmarks (list 1).
pub(crate) const USER_PREFS: TableDefinition<(&str, u8, &str), ()> =
    TableDefinition::new("user_prefs");
/// repo -> number of users who starred it.
pub(crate) const STARS: TableDefinition<&str, u64> = TableDefinition::new("stars");
/// repo -> generation (see the module documentation).
pub(crate) const GENERATIONS: TableDefinition<&str, u64> = TableDefinition::new("generations");
/// repo -> (generation, summary): search's summary of the repository
/// (opaque here), valid while the repository's generation is the one
/// stored with it (see the module documentation).
pub(crate) const CARDS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("search_cards");
/// "seq" -> last generation handed out; "indexed" -> 1 when set.
pub(crate) const STATE: TableDefinition<&str, u64> = TableDefinition::new("search_state");

const SEQ: &str = "seq";
const INDEXED: &str = "indexed";

/// Creates the tables (at open).
pub(crate) fn create(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(IMAGES)?;
    txn.open_table(PUSHERS)?;
    txn.open_table(TAG_TIMES)?;
    txn.open_table(DOWNLOADS)?;
    txn.open_table(USER_PREFS)?;
    txn.open_table(STARS)?;
    txn.open_table(GENERATIONS)?;
    txn.open_table(CARDS)?;
    txn.open_table(STATE)?;
    Ok(())
}

/// A per-user list of repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrefList {
    Starred,
    Bookmarked,
}

impl PrefList {
    fn code(self) -> u8 {
        match self {
            PrefList::Starred => 0,
            PrefList::Bookmarked => 1,
        }
    }

    fn from_code(c: u8) -> Option<PrefList> {
        match c {
            0 => Some(PrefList::Starred),
            1 => Some(PrefList::Bookmarked),
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

/// Everything search reads about one repository, from one read transaction.
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

/// The search rows of one write transaction, opened when first needed
/// (most changes, e.g. blob placements, need none).
pub(crate) struct Rows<'t> {
    txn: &'t WriteTransaction,
    open: Option<Tables<'t>>,
}

pub(crate) struct Tables<'t> {
    images: redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    pushers: redb::Table<'t, (&'static str, &'static str), &'static str>,
    tag_times: redb::Table<'t, (&'static str, &'static str), u64>,
    downloads: redb::Table<'t, (&'static str, &'static str), u64>,
}

impl<'t> Rows<'t> {
    pub(crate) fn new(txn: &'t WriteTransaction) -> Rows<'t> {
        Rows { txn, open: None }
    }

    fn tables(&mut self) -> Result<&mut Tables<'t>> {
        if self.open.is_none() {
            self.open = Some(Tables {
                images: self.txn.open_table(IMAGES)?,
                pushers: self.txn.open_table(PUSHERS)?,
                tag_times: self.txn.open_table(TAG_TIMES)?,
                downloads: self.txn.open_table(DOWNLOADS)?,
            });
        }
        match self.open.as_mut() {
            Some(t) => Ok(t),
            None => unreachable!("just opened"),
        }
    }

    /// Applies the search part of `change`, if it has one.
    pub(crate) fn apply(&mut self, r: &str, change: &Change) -> Result<()> {
        match change {
            Change::PutImage(meta) => {
                let d = meta.digest.to_string();
                let v = codec::encode(meta);
                self.tables()?
                    .images
                    .insert((r, d.as_str()), v.as_slice())?;
            }
            Change::PushedBy(d, user) => {
                let d = d.to_string();
                let t = self.tables()?;
                if t.pushers.get((r, d.as_str()))?.is_none() {
                    t.pushers.insert((r, d.as_str()), user.as_str())?;
                }
            }
            Change::Tagged(tag, ns) => {
                self.tables()?.tag_times.insert((r, tag.as_str()), *ns)?;
            }
            Change::RemoveManifest(d) => {
                let d = d.to_string();
                let t = self.tables()?;
                t.images.remove((r, d.as_str()))?;
                t.pushers.remove((r, d.as_str()))?;
                t.downloads.remove((r, d.as_str()))?;
            }
            Change::RemoveTag(tag) => {
                self.tables()?.tag_times.remove((r, tag.as_str()))?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Notes that `txn` changes `repo`: with search on, gives it a new
/// generation; with search off (generations stand still), drops its saved
/// summary, which would otherwise look current.
pub(crate) fn touched(txn: &WriteTransaction, repo: &str, search: bool) -> Result<()> {
    if search {
        let next = advance(txn)?;
        txn.open_table(GENERATIONS)?.insert(repo, next)?;
    } else {
        txn.open_table(CARDS)?.remove(repo)?;
    }
    Ok(())
}

/// Draws the next number of the store-wide sequence: the store's search
/// version (see [`crate::MetaStore::search_version`]) moves with it.
fn advance(txn: &WriteTransaction) -> Result<u64> {
    let mut state = txn.open_table(STATE)?;
    let next = state.get(SEQ)?.map_or(0, |v| v.value()) + 1;
    state.insert(SEQ, next)?;
    Ok(next)
}

/// The last number drawn from the sequence (0: none yet).
pub(crate) fn version(txn: &redb::ReadTransaction) -> Result<u64> {
    Ok(txn.open_table(STATE)?.get(SEQ)?.map_or(0, |v| v.value()))
}

/// Removes every search row of `repo` (it is gone).
pub(crate) fn forget(txn: &WriteTransaction, repo: &str) -> Result<()> {
    let range = (repo, "")..(repo, MAX);
    txn.open_table(IMAGES)?
        .retain_in(range.clone(), |_, _| false)?;
    txn.open_table(PUSHERS)?
        .retain_in(range.clone(), |_, _| false)?;
    txn.open_table(TAG_TIMES)?
        .retain_in(range.clone(), |_, _| false)?;
    txn.open_table(DOWNLOADS)?.retain_in(range, |_, _| false)?;
    txn.open_table(STARS)?.remove(repo)?;
    txn.open_table(GENERATIONS)?.remove(repo)?;
    txn.open_table(CARDS)?.remove(repo)?;
    // The listing changed: the store's version moves.
    advance(txn)?;
    // Keyed by user first: a repository's rows are found by a scan (rare:
    // a repository is forgotten when it is removed).
    txn.open_table(USER_PREFS)?
        .retain(|(_, _, r), _| r != repo)?;
    Ok(())
}

/// After a rebuild of `repo`: drops the rows of manifests and tags the
/// layout no longer holds (the others are kept, see the module documentation).
pub(crate) fn prune(txn: &WriteTransaction, repo: &str) -> Result<()> {
    let manifests = txn.open_table(crate::MANIFESTS)?;
    let tags = txn.open_table(crate::TAGS)?;
    prune_table(txn, IMAGES, repo, |d| {
        Ok(manifests.get((repo, d))?.is_some())
    })?;
    prune_table(txn, PUSHERS, repo, |d| {
        Ok(manifests.get((repo, d))?.is_some())
    })?;
    prune_table(txn, DOWNLOADS, repo, |d| {
        Ok(manifests.get((repo, d))?.is_some())
    })?;
    prune_table(txn, TAG_TIMES, repo, |t| Ok(tags.get((repo, t))?.is_some()))?;
    Ok(())
}

/// Removes the rows `(repo, x)` of `table` for which `keep(x)` is false.
fn prune_table<V: redb::Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, &str), V>,
    repo: &str,
    keep: impl Fn(&str) -> Result<bool>,
) -> Result<()> {
    let mut t = txn.open_table(table)?;
    let mut gone = Vec::new();
    for item in t.range((repo, "")..(repo, MAX))? {
        let second = item?.0.value().1.to_owned();
        if !keep(&second)? {
            gone.push(second);
        }
    }
    for second in gone {
        t.remove((repo, second.as_str()))?;
    }
    Ok(())
}

pub(crate) fn indexed(txn: &redb::ReadTransaction) -> Result<bool> {
    Ok(txn.open_table(STATE)?.get(INDEXED)?.is_some())
}

pub(crate) fn set_indexed(txn: &WriteTransaction, on: bool) -> Result<()> {
    let mut state = txn.open_table(STATE)?;
    if on {
        state.insert(INDEXED, 1)?;
    } else {
        state.remove(INDEXED)?;
    }
    Ok(())
}

pub(crate) fn decode_pref(code: u8) -> Option<PrefList> {
    PrefList::from_code(code)
}

pub(crate) fn pref_code(list: PrefList) -> u8 {
    list.code()
}

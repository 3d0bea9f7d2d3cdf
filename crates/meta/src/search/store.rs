//! The [`MetaStore`] operations of the search tables: reads of a whole
//! repository in one transaction, pull batches with download counts, the
//! users' stars and bookmarks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

use redb::{ReadableDatabase, ReadableTable};
use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest, RepoName};

use super::{
    DOWNLOADS, DigestRow, GENERATIONS, IMAGES, PUSHERS, PrefList, Pull, STARS, SearchRepo,
    TAG_TIMES, TagRow, USER_PREFS,
};
use crate::{MANIFESTS, MAX, ManifestRecord, MetaStore, REFERRERS, REPOS, Result, TAGS, TIMES};

impl MetaStore {
    /// Turns the upkeep of the search tables on (image records, pushers,
    /// tag times, download counts, generations). Removals happen either way.
    pub fn set_search(&self, on: bool) {
        self.search.store(on, Ordering::Release);
    }

    pub fn search_enabled(&self) -> bool {
        self.search.load(Ordering::Acquire)
    }

    /// Whether image records were kept for every manifest since the mark
    /// was last set (see the module documentation of `search`).
    pub fn search_indexed(&self) -> Result<bool> {
        let txn = self.db()?.begin_read()?;
        super::indexed(&txn)
    }

    /// Sets or clears the `indexed` mark (writes only when it changes).
    pub fn set_search_indexed(&self, on: bool) -> Result<()> {
        if self.search_indexed()? == on {
            return Ok(());
        }
        self.watch((|| {
            let txn = self.begin_write()?;
            super::set_indexed(&txn, on)?;
            txn.commit()?;
            Ok(())
        })())
    }

    /// Digests of `repo` that have an image record.
    pub fn image_digests(&self, repo: &str) -> Result<HashSet<Digest>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(IMAGES)?;
        let mut out = HashSet::new();
        for item in t.range((repo, "")..(repo, MAX))? {
            out.extend(item?.0.value().1.parse::<Digest>().ok());
        }
        Ok(out)
    }

    /// Manifests of `repo` without an image record.
    pub fn manifests_without_image(&self, repo: &str) -> Result<Vec<ManifestRecord>> {
        let txn = self.db()?.begin_read()?;
        let manifests = txn.open_table(MANIFESTS)?;
        let images = txn.open_table(IMAGES)?;
        let mut out = Vec::new();
        for item in manifests.range((repo, "")..(repo, MAX))? {
            let (k, v) = item?;
            if images.get((repo, k.value().1))?.is_none() {
                out.push(serde_json::from_slice(v.value())?);
            }
        }
        Ok(out)
    }

    /// The image record of a manifest of `repo`.
    pub fn image(&self, repo: &str, digest: &Digest) -> Result<Option<ImageMeta>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(IMAGES)?;
        Ok(match t.get((repo, digest.to_string().as_str()))? {
            Some(v) => Some(super::codec::decode(v.value())?),
            None => None,
        })
    }

    /// A number that moves whenever a repository of this store is added,
    /// changed or removed while search is on (the last generation drawn),
    /// so that a listing of [`MetaStore::search_repos`] may be reused
    /// while it stays the same.
    pub fn search_version(&self) -> Result<u64> {
        let txn = self.db()?.begin_read()?;
        super::version(&txn)
    }

    /// Every repository with its generation (0: none recorded yet), in
    /// lexical order.
    pub fn search_repos(&self) -> Result<Vec<(String, u64)>> {
        let txn = self.db()?.begin_read()?;
        let repos = txn.open_table(REPOS)?;
        let mut gens = HashMap::new();
        for item in txn.open_table(GENERATIONS)?.range::<&str>(..)? {
            let (k, v) = item?;
            gens.insert(k.value().to_owned(), v.value());
        }
        let mut out = Vec::new();
        for item in repos.range::<&str>(..)? {
            let name = item?.0.value().to_owned();
            let generation = gens.get(&name).copied().unwrap_or(0);
            out.push((name, generation));
        }
        Ok(out)
    }

    /// Everything search shows about `repo`, from one read transaction;
    /// `None` when the store does not know it.
    pub fn search_repo(&self, repo: &str) -> Result<Option<SearchRepo>> {
        let txn = self.db()?.begin_read()?;
        if txn.open_table(REPOS)?.get(repo)?.is_none() {
            return Ok(None);
        }
        let range = (repo, "")..(repo, MAX);
        let mut out = SearchRepo {
            generation: txn
                .open_table(GENERATIONS)?
                .get(repo)?
                .map_or(0, |v| v.value()),
            stars: txn.open_table(STARS)?.get(repo)?.map_or(0, |v| v.value()),
            ..SearchRepo::default()
        };
        let mut tag_times = HashMap::new();
        for item in txn.open_table(TAG_TIMES)?.range(range.clone())? {
            let (k, v) = item?;
            tag_times.insert(k.value().1.to_owned(), v.value());
        }
        for item in txn.open_table(TAGS)?.range(range.clone())? {
            let (k, v) = item?;
            let tag = k.value().1.to_owned();
            let rec: ManifestRecord = serde_json::from_slice(v.value())?;
            out.tags.push(TagRow {
                tagged_ns: tag_times.get(&tag).copied(),
                tag,
                digest: rec.digest,
            });
        }
        for item in txn.open_table(IMAGES)?.range(range.clone())? {
            out.images.push(super::codec::decode(item?.1.value())?);
        }
        let mut stats: BTreeMap<String, DigestRow> = BTreeMap::new();
        for item in txn.open_table(TIMES)?.range(range.clone())? {
            let (k, v) = item?;
            let (pushed, pulled) = v.value();
            if let Some(r) = row(&mut stats, k.value().1) {
                r.pushed = (pushed > 0).then_some(pushed);
                r.pulled = (pulled > 0).then_some(pulled);
            }
        }
        for item in txn.open_table(DOWNLOADS)?.range(range.clone())? {
            let (k, v) = item?;
            if let Some(r) = row(&mut stats, k.value().1) {
                r.downloads = v.value();
            }
        }
        for item in txn.open_table(PUSHERS)?.range(range)? {
            let (k, v) = item?;
            if let Some(r) = row(&mut stats, k.value().1) {
                v.value().clone_into(&mut r.pushed_by);
            }
        }
        out.stats = stats.into_values().collect();
        let referrers = txn.open_table(REFERRERS)?;
        for item in referrers.range((repo, "", "")..(repo, MAX, ""))? {
            let (k, v) = item?;
            if let Ok(subject) = k.value().1.parse::<Digest>() {
                let desc: Descriptor = serde_json::from_slice(v.value())?;
                out.referrers.push((subject, desc));
            }
        }
        Ok(Some(out))
    }

    /// Records pull times and download counts in one transaction.
    /// Manifests the store does not know are skipped; with search on, a
    /// count is added unless the manifest's record says it is a signature,
    /// and every repository in the batch gets a new generation.
    pub fn record_downloads(&self, pulls: &[Pull]) -> Result<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        self.watch(self.record_downloads_once(pulls))
    }

    fn record_downloads_once(&self, pulls: &[Pull]) -> Result<()> {
        let search = self.search_enabled();
        let txn = self.begin_write()?;
        let mut touched = HashSet::new();
        {
            let manifests = txn.open_table(MANIFESTS)?;
            let images = txn.open_table(IMAGES)?;
            let mut times = txn.open_table(TIMES)?;
            let mut downloads = txn.open_table(DOWNLOADS)?;
            for p in pulls {
                let (r, d) = (p.repo.as_str(), p.digest.to_string());
                let key = (r, d.as_str());
                if manifests.get(key)?.is_none() {
                    continue;
                }
                let pushed = times.get(key)?.map_or(0, |v| v.value().0);
                times.insert(key, (pushed, p.secs))?;
                if !search {
                    continue;
                }
                touched.insert(r);
                let signature = match images.get(key)? {
                    Some(v) => super::codec::decode(v.value()).is_ok_and(|m| m.is_signature()),
                    None => false,
                };
                if p.count > 0 && !signature {
                    let n = downloads.get(key)?.map_or(0, |v| v.value());
                    downloads.insert(key, n.saturating_add(p.count))?;
                }
            }
        }
        // Pull times alone are not part of a summary: with search off
        // nothing search keeps changed.
        for r in touched {
            super::touched(&txn, r, true)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// A user's stars and bookmarks.
    pub fn user_prefs(&self, user: &str) -> Result<Vec<(PrefList, String)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(USER_PREFS)?;
        let mut out = Vec::new();
        for item in t.range((user, 0u8, "")..=(user, u8::MAX, MAX))? {
            let k = item?.0;
            let (_, code, repo) = k.value();
            if let Some(list) = super::decode_pref(code) {
                out.push((list, repo.to_owned()));
            }
        }
        Ok(out)
    }

    /// Flips `repo`'s membership of the user's `list`; returns whether it is
    /// now a member. A star also changes the repository's star count when
    /// `count_stars_here` (the repository lives in this store; otherwise
    /// the caller calls [`MetaStore::add_stars`] on its store).
    pub fn toggle_pref(
        &self,
        user: &str,
        list: PrefList,
        repo: &str,
        count_stars_here: bool,
    ) -> Result<bool> {
        self.watch((|| {
            let txn = self.begin_write()?;
            let now = {
                let mut prefs = txn.open_table(USER_PREFS)?;
                let key = (user, super::pref_code(list), repo);
                if prefs.remove(key)?.is_some() {
                    false
                } else {
                    prefs.insert(key, ())?;
                    true
                }
            };
            if list == PrefList::Starred && count_stars_here {
                add_stars_in(&txn, repo, if now { 1 } else { -1 })?;
                super::touched(&txn, repo, self.search_enabled())?;
            }
            txn.commit()?;
            Ok(now)
        })())
    }

    /// Changes `repo`'s star count by `delta` (never below zero).
    pub fn add_stars(&self, repo: &RepoName, delta: i64) -> Result<()> {
        self.watch((|| {
            let txn = self.begin_write()?;
            add_stars_in(&txn, repo.as_str(), delta)?;
            super::touched(&txn, repo.as_str(), self.search_enabled())?;
            txn.commit()?;
            Ok(())
        })())
    }
}

/// The stats row of digest `d`, made when first needed (`None`: not a digest).
fn row<'a>(stats: &'a mut BTreeMap<String, DigestRow>, d: &str) -> Option<&'a mut DigestRow> {
    if !stats.contains_key(d) {
        let row = DigestRow {
            digest: d.parse().ok()?,
            downloads: 0,
            pushed: None,
            pulled: None,
            pushed_by: String::new(),
        };
        stats.insert(d.to_owned(), row);
    }
    stats.get_mut(d)
}

fn add_stars_in(txn: &redb::WriteTransaction, repo: &str, delta: i64) -> Result<()> {
    let mut stars = txn.open_table(STARS)?;
    let n = stars.get(repo)?.map_or(0, |v| v.value());
    let n = n.saturating_add_signed(delta);
    if n == 0 {
        stars.remove(repo)?;
    } else {
        stars.insert(repo, n)?;
    }
    Ok(())
}

//! The [`MetaStore`] operations of the search tables: reads of a whole
//! repository, pull batches with download counts, the users' stars and
//! bookmarks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

use zot_oci::image_meta::ImageMeta;
use zot_oci::{Descriptor, Digest, RepoName};

use super::{
    DOWNLOADS, DigestRow, GENERATIONS, IMAGES, PUSHERS, PrefList, Pull, STARS, SearchRepo,
    TAG_TIMES, TagRow, USER_PREFS,
};
use crate::kv::{Write, all, k2, part, read_u64, u64_bytes, under};
use crate::{MANIFESTS, ManifestRecord, MetaStore, REFERRERS, REPOS, Result, TAGS, TIMES};

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
        self.read(|r| super::indexed(r))
    }

    /// Sets or clears the `indexed` mark (writes only when it changes).
    pub fn set_search_indexed(&self, on: bool) -> Result<()> {
        if self.search_indexed()? == on {
            return Ok(());
        }
        self.write(false, |w| super::set_indexed(w, on))
    }

    /// Digests of `repo` that have an image record.
    pub fn image_digests(&self, repo: &str) -> Result<HashSet<Digest>> {
        let rows = self.read(|r| all(r, IMAGES, &under(&[repo])))?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| part(k, 1).parse::<Digest>().ok())
            .collect())
    }

    /// Manifests of `repo` without an image record.
    pub fn manifests_without_image(&self, repo: &str) -> Result<Vec<ManifestRecord>> {
        let range = under(&[repo]);
        let (manifests, images) =
            self.read(|r| Ok((all(r, MANIFESTS, &range)?, all(r, IMAGES, &range)?)))?;
        let with: HashSet<Vec<u8>> = images.into_iter().map(|(k, _)| k).collect();
        let mut out = Vec::new();
        for (k, v) in manifests {
            if !with.contains(&k) {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        Ok(out)
    }

    /// The image record of a manifest of `repo`.
    pub fn image(&self, repo: &str, digest: &Digest) -> Result<Option<ImageMeta>> {
        match self.read(|r| r.get(IMAGES, &k2(repo, &digest.to_string())))? {
            Some(v) => Ok(Some(super::codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// A number that moves whenever a repository of this store is added,
    /// changed or removed while search is on (the last generation drawn),
    /// so that a listing of [`MetaStore::search_repos`] may be reused
    /// while it stays the same.
    pub fn search_version(&self) -> Result<u64> {
        self.read(|r| super::version(r))
    }

    /// Every repository with its generation (0: none recorded yet), in
    /// lexical order.
    pub fn search_repos(&self) -> Result<Vec<(String, u64)>> {
        let (repos, gens) = self.read(|r| {
            Ok((
                r.range(REPOS, b"", None, usize::MAX)?,
                r.range(GENERATIONS, b"", None, usize::MAX)?,
            ))
        })?;
        let gens: HashMap<Vec<u8>, u64> =
            gens.into_iter().map(|(k, v)| (k, read_u64(&v))).collect();
        Ok(repos
            .into_iter()
            .map(|(k, _)| {
                let generation = gens.get(&k).copied().unwrap_or(0);
                (part(&k, 0), generation)
            })
            .collect())
    }

    /// Everything search shows about `repo`; `None` when the store does
    /// not know it.
    pub fn search_repo(&self, repo: &str) -> Result<Option<SearchRepo>> {
        self.read(|r| {
            if r.get(REPOS, repo.as_bytes())?.is_none() {
                return Ok(None);
            }
            let range = under(&[repo]);
            let mut out = SearchRepo {
                generation: r
                    .get(GENERATIONS, repo.as_bytes())?
                    .map_or(0, |v| read_u64(&v)),
                stars: r.get(STARS, repo.as_bytes())?.map_or(0, |v| read_u64(&v)),
                ..SearchRepo::default()
            };
            let tag_times: HashMap<String, u64> = all(r, TAG_TIMES, &range)?
                .into_iter()
                .map(|(k, v)| (part(&k, 1), read_u64(&v)))
                .collect();
            for (k, v) in all(r, TAGS, &range)? {
                let tag = part(&k, 1);
                let rec: ManifestRecord = serde_json::from_slice(&v)?;
                out.tags.push(TagRow {
                    tagged_ns: tag_times.get(&tag).copied(),
                    tag,
                    digest: rec.digest,
                });
            }
            for (_, v) in all(r, IMAGES, &range)? {
                out.images.push(super::codec::decode(&v)?);
            }
            let mut stats: BTreeMap<String, DigestRow> = BTreeMap::new();
            for (k, v) in all(r, TIMES, &range)? {
                let (pushed, pulled) = crate::times_of(&v);
                if let Some(row) = row(&mut stats, &part(&k, 1)) {
                    row.pushed = (pushed > 0).then_some(pushed);
                    row.pulled = (pulled > 0).then_some(pulled);
                }
            }
            for (k, v) in all(r, DOWNLOADS, &range)? {
                if let Some(row) = row(&mut stats, &part(&k, 1)) {
                    row.downloads = read_u64(&v);
                }
            }
            for (k, v) in all(r, PUSHERS, &range)? {
                if let Some(row) = row(&mut stats, &part(&k, 1)) {
                    row.pushed_by = String::from_utf8_lossy(&v).into_owned();
                }
            }
            out.stats = stats.into_values().collect();
            for (k, v) in all(r, REFERRERS, &range)? {
                if let Ok(subject) = part(&k, 1).parse::<Digest>() {
                    let desc: Descriptor = serde_json::from_slice(&v)?;
                    out.referrers.push((subject, desc));
                }
            }
            Ok(Some(out))
        })
    }

    /// Records pull times and download counts in one transaction.
    /// Manifests the store does not know are skipped; with search on, a
    /// count is added unless the manifest's record says it is a signature,
    /// and every repository in the batch gets a new generation.
    pub fn record_downloads(&self, pulls: &[Pull]) -> Result<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        let search = self.search_enabled();
        self.write(false, |w| record_downloads_in(w, pulls, search))
    }

    /// A user's stars and bookmarks.
    pub fn user_prefs(&self, user: &str) -> Result<Vec<(PrefList, String)>> {
        let rows = self.read(|r| all(r, USER_PREFS, &under(&[user])))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, _)| Some((super::decode_pref(&part(&k, 1))?, part(&k, 2))))
            .collect())
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
        let search = self.search_enabled();
        self.write(false, |w| {
            let key = super::pref_key(user, list, repo);
            let now = if w.get(USER_PREFS, &key)?.is_some() {
                w.delete(USER_PREFS, &key)?;
                false
            } else {
                w.put(USER_PREFS, &key, b"")?;
                true
            };
            if list == PrefList::Starred && count_stars_here {
                add_stars_in(w, repo, if now { 1 } else { -1 })?;
                super::touched(w, repo, search)?;
            }
            Ok(now)
        })
    }

    /// Changes `repo`'s star count by `delta` (never below zero).
    pub fn add_stars(&self, repo: &RepoName, delta: i64) -> Result<()> {
        let search = self.search_enabled();
        self.write(false, |w| {
            add_stars_in(w, repo.as_str(), delta)?;
            super::touched(w, repo.as_str(), search)
        })
    }
}

fn record_downloads_in(w: &mut dyn Write, pulls: &[Pull], search: bool) -> Result<()> {
    let mut touched = HashSet::new();
    for p in pulls {
        let key = k2(p.repo.as_str(), &p.digest.to_string());
        if w.get(MANIFESTS, &key)?.is_none() {
            continue;
        }
        let pushed = w.get(TIMES, &key)?.map_or(0, |v| crate::times_of(&v).0);
        w.put(TIMES, &key, &crate::times_value(pushed, p.secs))?;
        if !search {
            continue;
        }
        touched.insert(p.repo.as_str());
        let signature = match w.get(IMAGES, &key)? {
            Some(v) => super::codec::decode(&v).is_ok_and(|m| m.is_signature()),
            None => false,
        };
        if p.count > 0 && !signature {
            let n = w.get(DOWNLOADS, &key)?.map_or(0, |v| read_u64(&v));
            w.put(DOWNLOADS, &key, &u64_bytes(n.saturating_add(p.count)))?;
        }
    }
    // Pull times alone are not part of a summary: with search off
    // nothing search keeps changed.
    for r in touched {
        super::touched(w, r, true)?;
    }
    Ok(())
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

fn add_stars_in(w: &mut dyn Write, repo: &str, delta: i64) -> Result<()> {
    let n = w.get(STARS, repo.as_bytes())?.map_or(0, |v| read_u64(&v));
    let n = n.saturating_add_signed(delta);
    if n == 0 {
        w.delete(STARS, repo.as_bytes())
    } else {
        w.put(STARS, repo.as_bytes(), &u64_bytes(n))
    }
}

//! Cards saved in the metadata store ([`Source::saved_cards`]), so a
//! start-up reads one small record per repository instead of reading and
//! deriving every image record again.
//!
//! Invariants: a saved card carries [`FORMAT`] as its first byte and is
//! used only by a binary that writes the same; **bump [`FORMAT`] whenever
//! what a card holds or how it is derived (`RepoCard::build`, `facts.rs`)
//! changes**, so that cards of an older binary are rebuilt, not trusted.
//! A card that does not decode is rebuilt. The store hands back only
//! cards whose generation is still current.
//!
//! [`Source::saved_cards`]: crate::Source::saved_cards

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use zot_meta::{MetaError, RecordReader, RecordWriter};
use zot_oci::image_meta::Platform;

use super::{Catalog, Platforms, RepoCard, TagCard};

/// Cards built since the last save that make a save worth a write
/// transaction (fewer wait for the next build; a start-up rebuilds the
/// few left unsaved).
const SAVE_BATCH: usize = 64;

/// The first byte of a saved card (see the module documentation).
pub const FORMAT: u8 = 1;

fn platforms(w: &mut RecordWriter, list: &[Platform]) {
    w.uint(list.len() as u64);
    for p in list {
        w.str(&p.os);
        w.str(&p.arch);
    }
}

fn time(w: &mut RecordWriter, t: Option<i64>) {
    w.opt(t.as_ref(), |w, v| {
        w.fixed(u64::from_le_bytes(v.to_le_bytes()))
    });
}

/// The saved form of `card` (its name and generation are kept beside it).
pub fn encode(card: &RepoCard) -> Vec<u8> {
    let RepoCard {
        name: _,
        generation: _,
        last_updated,
        downloads,
        stars,
        size,
        platforms: repo_platforms,
        vendors,
        newest_signed,
        tags,
    } = card;
    let mut w = RecordWriter::new(FORMAT);
    time(&mut w, *last_updated);
    w.uint(*downloads);
    w.uint(*stars);
    w.uint(*size);
    platforms(&mut w, repo_platforms);
    w.uint(vendors.len() as u64);
    for v in vendors {
        w.str(v);
    }
    w.bool(*newest_signed);
    w.uint(tags.len() as u64);
    for t in tags {
        let TagCard {
            tag,
            last_updated,
            downloads,
            signed,
            platforms: tag_platforms,
            top,
            manifests,
        } = t;
        w.str(tag);
        time(&mut w, *last_updated);
        w.uint(*downloads);
        w.bool(*signed);
        platforms(&mut w, tag_platforms);
        w.fixed(*top);
        w.uint(manifests.len() as u64);
        for m in manifests {
            w.fixed(*m);
        }
    }
    w.finish()
}

struct Decoder<'a, 'p> {
    r: RecordReader<'a>,
    interned: &'p Platforms,
}

impl Decoder<'_, '_> {
    fn platforms(&mut self) -> Result<Arc<[Platform]>, MetaError> {
        let n = self.r.count()?;
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            list.push(Platform {
                os: self.r.string()?,
                arch: self.r.string()?,
            });
        }
        Ok(self.interned.intern(list))
    }

    fn time(&mut self) -> Result<Option<i64>, MetaError> {
        self.r
            .opt(|r| r.fixed().map(|v| i64::from_le_bytes(v.to_le_bytes())))
    }

    fn card(&mut self, name: &str, generation: u64) -> Result<RepoCard, MetaError> {
        let last_updated = self.time()?;
        let downloads = self.r.uint()?;
        let stars = self.r.uint()?;
        let size = self.r.uint()?;
        let platforms = self.platforms()?;
        let n = self.r.count()?;
        let mut vendors = Vec::with_capacity(n);
        for _ in 0..n {
            vendors.push(self.r.string()?);
        }
        let newest_signed = self.r.bool()?;
        let n = self.r.count()?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            let tag: Box<str> = self.r.str_ref()?.into();
            let last_updated = self.time()?;
            let downloads = self.r.uint()?;
            let signed = self.r.bool()?;
            let platforms = self.platforms()?;
            let top = self.r.fixed()?;
            let m = self.r.count()?;
            let mut manifests = Vec::with_capacity(m);
            for _ in 0..m {
                manifests.push(self.r.fixed()?);
            }
            tags.push(TagCard {
                tag,
                last_updated,
                downloads,
                signed,
                platforms,
                top,
                manifests: manifests.into(),
            });
        }
        self.r.end()?;
        Ok(RepoCard {
            name: name.into(),
            generation,
            last_updated,
            downloads,
            stars,
            size,
            platforms,
            vendors: vendors.into(),
            newest_signed,
            tags: tags.into(),
        })
    }
}

/// The card saved as `bytes`; `None` when it is of another format or
/// does not decode (it is then built again).
pub fn decode(name: &str, generation: u64, bytes: &[u8], interned: &Platforms) -> Option<RepoCard> {
    let (&format, rest) = bytes.split_first()?;
    if format != FORMAT {
        return None;
    }
    let mut d = Decoder {
        r: RecordReader::new(rest),
        interned,
    };
    d.card(name, generation).ok()
}

impl Catalog {
    /// Puts the source's saved cards of repositories listed in `live`
    /// (same generation) into the cache. A failure to read them is logged:
    /// the cards are then built.
    pub(super) fn load_saved(&self, live: &[(String, u64)]) {
        let saved = match self.source.saved_cards() {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!(error = %e, "search: reading the saved summaries");
                return;
            }
        };
        let current: HashMap<&str, u64> = live.iter().map(|(n, g)| (n.as_str(), *g)).collect();
        let mut map = self.cards.write().unwrap_or_else(PoisonError::into_inner);
        for (name, generation, bytes) in saved {
            if current.get(name.as_str()) != Some(&generation) {
                continue;
            }
            if let Some(card) = decode(&name, generation, &bytes, &self.platforms) {
                map.insert(card.name.clone(), Arc::new(card));
            }
        }
    }

    /// Saves the cards just built, on a thread of its own, once enough
    /// are waiting (see [`SAVE_BATCH`]) or at the `first` build.
    pub(super) fn save(&self, fresh: &[Arc<RepoCard>], first: bool) {
        let batch = {
            let mut unsaved = self.unsaved.lock().unwrap_or_else(PoisonError::into_inner);
            unsaved.extend(fresh.iter().cloned());
            if unsaved.is_empty() || (unsaved.len() < SAVE_BATCH && !first) {
                return;
            }
            std::mem::take(&mut *unsaved)
        };
        let source = Arc::clone(&self.source);
        let saving = std::thread::Builder::new()
            .name("search-save".into())
            .spawn(move || {
                let encoded = batch
                    .iter()
                    .map(|c| (c.name.to_string(), c.generation, encode(c)))
                    .collect();
                if let Err(e) = source.save_cards(encoded) {
                    tracing::warn!(error = %e, "search: saving summaries");
                }
            });
        if let Err(e) = saving {
            tracing::warn!(error = %e, "search: cannot start saving summaries");
        }
    }
}

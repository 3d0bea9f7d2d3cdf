//! Saved search summaries: search builds a summary of every repository
//! (its "card") from the repository's rows; saving them lets the next
//! start-up read 10,000 small records instead of deriving them all again.
//! The bytes are search's own; this store only keeps each beside the
//! generation it was built for, and hands back those still current.

use redb::{ReadableDatabase, ReadableTable};

use super::{CARDS, GENERATIONS};
use crate::{MetaStore, Result};

/// A saved summary: (repository, generation it describes, bytes).
pub type SavedCard = (String, u64, Vec<u8>);

impl MetaStore {
    /// The saved summaries whose repository still has the generation they
    /// were built for, in name order.
    pub fn search_cards(&self) -> Result<Vec<SavedCard>> {
        let txn = self.db()?.begin_read()?;
        let gens = txn.open_table(GENERATIONS)?;
        let mut out = Vec::new();
        for item in txn.open_table(CARDS)?.range::<&str>(..)? {
            let (k, v) = item?;
            let (generation, bytes) = v.value();
            let repo = k.value();
            if gens.get(repo)?.is_some_and(|g| g.value() == generation) {
                out.push((repo.to_owned(), generation, bytes.to_vec()));
            }
        }
        Ok(out)
    }

    /// Saves summaries, in one transaction; a summary whose repository has
    /// moved on to another generation (or is gone) is not saved.
    pub fn save_search_cards(&self, cards: &[SavedCard]) -> Result<()> {
        if cards.is_empty() {
            return Ok(());
        }
        self.watch((|| {
            let txn = self.begin_write()?;
            {
                let gens = txn.open_table(GENERATIONS)?;
                let mut saved = txn.open_table(CARDS)?;
                for (repo, generation, bytes) in cards {
                    let current = gens.get(repo.as_str())?.map(|g| g.value());
                    if current == Some(*generation) {
                        saved.insert(repo.as_str(), (*generation, bytes.as_slice()))?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })())
    }
}

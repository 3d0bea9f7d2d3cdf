//! Saved search summaries: search builds a summary of every repository
//! (its "card") from the repository's rows; saving them lets the next
//! start-up read 10,000 small records instead of deriving them all again.
//! The bytes are search's own; this store only keeps each beside the
//! generation it was built for (8 big-endian bytes, then the summary), and
//! hands back those still current.

use super::{CARDS, GENERATIONS};
use crate::kv::{part, read_u64, u64_bytes};
use crate::{MetaStore, Result};

/// A saved summary: (repository, generation it describes, bytes).
pub type SavedCard = (String, u64, Vec<u8>);

impl MetaStore {
    /// The saved summaries whose repository still has the generation they
    /// were built for, in name order.
    pub fn search_cards(&self) -> Result<Vec<SavedCard>> {
        self.read(|r| {
            let gens: std::collections::HashMap<Vec<u8>, u64> = r
                .range(GENERATIONS, b"", None, usize::MAX)?
                .into_iter()
                .map(|(k, v)| (k, read_u64(&v)))
                .collect();
            let mut out = Vec::new();
            for (k, v) in r.range(CARDS, b"", None, usize::MAX)? {
                let generation = read_u64(&v);
                if gens.get(&k) == Some(&generation) {
                    out.push((part(&k, 0), generation, v.get(8..).unwrap_or(&[]).to_vec()));
                }
            }
            Ok(out)
        })
    }

    /// Saves summaries, in one transaction; a summary whose repository has
    /// moved on to another generation (or is gone) is not saved.
    pub fn save_search_cards(&self, cards: &[SavedCard]) -> Result<()> {
        if cards.is_empty() {
            return Ok(());
        }
        self.write(false, |w| {
            for (repo, generation, bytes) in cards {
                let current = w.get(GENERATIONS, repo.as_bytes())?.map(|g| read_u64(&g));
                if current == Some(*generation) {
                    let mut v = u64_bytes(*generation).to_vec();
                    v.extend_from_slice(bytes);
                    w.put(CARDS, repo.as_bytes(), &v)?;
                }
            }
            Ok(())
        })
    }
}

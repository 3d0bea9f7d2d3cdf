//! Whether a shared store (Redis) is known to be in step with the layouts,
//! so that an instance starting against it need not compare every
//! repository with the bucket again.
//!
//! Invariants:
//! - The mark (`store_state` row `synced`) holds [`SYNC_FORMAT`], the
//!   version of this store's row formats. It is set by the owner after a
//!   complete synchronisation with the layouts, and is current only while
//!   it equals [`SYNC_FORMAT`]: a build that changes the formats changes
//!   the number, and the first instance of it synchronises again.
//! - Instances keep a shared store in step themselves (each change is
//!   written after its layout), so a later instance trusts the mark. After
//!   an outage of the store an instance still synchronises (its writes
//!   during the outage may have reached the layouts only).
//! - The embedded store (redb) is always compared at start-up: it is
//!   local, and the comparison is one stat sweep.

use crate::kv::{read_u64, u64_bytes};
use crate::{MetaStore, Result};

const STATE: &str = "store_state";
const SYNCED: &[u8] = b"synced";

/// The version of the row formats a `synced` mark vouches for.
pub const SYNC_FORMAT: u64 = 1;

impl MetaStore {
    /// Whether the store was marked in step with the layouts by a build of
    /// the current row formats.
    pub fn synced_mark(&self) -> Result<bool> {
        let v = self.read(|r| r.get(STATE, SYNCED))?;
        Ok(v.is_some_and(|v| read_u64(&v) == SYNC_FORMAT))
    }

    /// Marks the store in step with the layouts.
    pub fn set_synced_mark(&self) -> Result<()> {
        self.write(false, |w| w.put(STATE, SYNCED, &u64_bytes(SYNC_FORMAT)))
    }
}

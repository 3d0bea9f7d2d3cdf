//! Reading a [`Pull`] while it arrives: from its tail (the newest bytes,
//! kept in memory) when the reader keeps pace, else from the file the
//! bytes are written to, as far as it is written.
//!
//! Invariants:
//! - A reader's last byte waits for the blob to be stored (verified); a
//!   failed transfer ends the reader with an error.
//! - A reader that never read the file paces the transfer (`pace.rs`),
//!   and leaves it when it reads the file or is dropped.
//! - The tail holds at most [`TAIL_BYTES`] (plus one chunk) per pull; its
//!   chunks are the upstream's own buffers (shared with the upload's
//!   batches being written, not copied), contiguous, in order.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use super::{Phase, Progress, Pull};

/// Largest chunk a reader reads from the file at once: below the size
/// from which the binary's allocator maps each buffer afresh (512 KiB), so
/// read buffers are reused rather than faulted in page by page each time.
const READ_CHUNK: u64 = 256 * 1024;
/// Newest bytes kept in memory per pull (readers keeping pace are at most
/// half of it behind, see `pace.rs`).
pub(super) const TAIL_BYTES: usize = 2 * 1024 * 1024;

/// The newest chunks of a pull, by offset.
#[derive(Default)]
pub(super) struct Tail {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl Tail {
    /// Keeps `chunk`, which starts at byte `at`, dropping the oldest
    /// beyond [`TAIL_BYTES`].
    pub(super) fn push(&mut self, at: u64, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back((at, chunk));
        while self.bytes > TAIL_BYTES && self.chunks.len() > 1 {
            if let Some((_, old)) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The bytes from `pos` (to at most `limit`, and the end of the chunk
    /// holding `pos`), when the tail still has them.
    fn take(&self, pos: u64, limit: u64) -> Option<Bytes> {
        let i = self
            .chunks
            .partition_point(|(at, _)| *at <= pos)
            .checked_sub(1)?;
        let (at, chunk) = self.chunks.get(i)?;
        let end = (at + chunk.len() as u64).min(limit);
        let from = usize::try_from(pos - at).ok()?;
        let to = usize::try_from(end.checked_sub(*at)?).ok()?;
        (from < to).then(|| chunk.slice(from..to))
    }
}

impl Pull {
    /// The state now.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until upstream answered: the blob's size (`None`: unknown)
    /// once bytes may flow, or `Err(phase)` when the pull ended without
    /// any (absent, failed).
    pub async fn started(&self) -> Result<Option<u64>, Phase> {
        let mut rx = self.progress.clone();
        let p = rx
            .wait_for(|p| p.phase != Phase::Connecting)
            .await
            .map(|p| *p)
            .map_err(|_| Phase::Failed)?;
        match p.phase {
            Phase::Absent | Phase::Present | Phase::Failed => Err(p.phase),
            _ => Ok(p.size),
        }
    }

    /// Waits for the end of the transfer.
    pub async fn ended(&self) -> Phase {
        let mut rx = self.progress.clone();
        rx.wait_for(|p| p.phase.ended())
            .await
            .map_or(Phase::Failed, |p| p.phase)
    }

    /// Bytes `start..end` (`end`: `None` to the end of the blob), as they
    /// arrive. The last byte is sent only once the blob is verified; a
    /// failed transfer ends the stream with an error.
    pub fn reader(
        self: Arc<Self>,
        start: u64,
        end: Option<u64>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let rx = self.progress.clone();
        // A reader starting behind the tail reads the file: it never paces.
        let arrived = rx.borrow().arrived;
        let paced = (start.saturating_add(super::pace::LAG_BYTES) >= arrived)
            .then(|| self.pace.join(start, end))
            .flatten();
        let state = Some(ReadState {
            pull: self,
            rx,
            pos: start,
            end,
            paced,
        });
        futures_util::stream::unfold(state, |state| async move {
            let mut st = state?;
            match st.next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(st))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

struct ReadState {
    pull: Arc<Pull>,
    rx: watch::Receiver<Progress>,
    pos: u64,
    end: Option<u64>,
    /// Its id among the readers pacing the transfer, while it is one.
    paced: Option<u64>,
}

impl Drop for ReadState {
    fn drop(&mut self) {
        if let Some(id) = self.paced.take() {
            self.pull.pace.leave(id);
        }
    }
}

impl ReadState {
    async fn next(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let p = *self.rx.borrow_and_update();
            if matches!(p.phase, Phase::Failed | Phase::Absent | Phase::Present) {
                return Err(io::Error::other("the upstream transfer failed"));
            }
            let verified = p.phase == Phase::Stored;
            // How far this reader may go now: to its end once verified,
            // else up to what arrived, holding back its last byte.
            let limit = match (verified, self.end) {
                (true, Some(end)) => end.min(p.arrived),
                (true, None) => p.arrived,
                (false, Some(end)) => p.arrived.min(end.saturating_sub(1)),
                (false, None) => p.arrived.saturating_sub(1),
            };
            if self.pos < limit {
                let kept = self
                    .pull
                    .tail
                    .lock()
                    .ok()
                    .and_then(|t| t.take(self.pos, limit));
                if let Some(chunk) = kept {
                    self.pos += chunk.len() as u64;
                    if let Some(id) = self.paced {
                        self.pull.pace.advance(id, self.pos);
                    }
                    return Ok(Some(chunk));
                }
                if let Some(id) = self.paced.take() {
                    self.pull.pace.leave(id);
                }
                // Past the tail: the file, as far as it is written.
                let written = limit.min(p.received);
                if self.pos < written {
                    let len = (written - self.pos).min(READ_CHUNK);
                    let chunk = self.read(self.pos, len).await?;
                    self.pos += len;
                    return Ok(Some(chunk));
                }
            }
            if verified {
                return Ok(None);
            }
            if self.rx.changed().await.is_err() {
                return Err(io::Error::other("the upstream transfer stopped"));
            }
        }
    }

    async fn read(&self, pos: u64, len: u64) -> io::Result<Bytes> {
        let file = self
            .pull
            .spool
            .get()
            .cloned()
            .ok_or_else(|| io::Error::other("no spool file"))?;
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
            file.read_exact_at(&mut buf, pos)?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(chunks: &[(u64, &'static [u8])]) -> Tail {
        let mut t = Tail::default();
        for (at, c) in chunks {
            t.push(*at, Bytes::from_static(c));
        }
        t
    }

    #[test]
    fn take_gives_the_rest_of_the_chunk_holding_pos_up_to_the_limit() {
        let t = tail(&[(0, b"abcd"), (4, b"efgh")]);
        assert_eq!(t.take(0, 100).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(t.take(2, 100).as_deref(), Some(&b"cd"[..]));
        assert_eq!(t.take(5, 100).as_deref(), Some(&b"fgh"[..]));
        assert_eq!(t.take(5, 7).as_deref(), Some(&b"fg"[..]));
        // At the limit, past the end: nothing.
        assert_eq!(t.take(7, 7), None);
        assert_eq!(t.take(8, 100), None);
    }

    #[test]
    fn the_oldest_chunks_go_beyond_the_bound_and_are_then_not_taken() {
        let big: &'static [u8] = Box::leak(vec![7u8; TAIL_BYTES - 4].into_boxed_slice());
        let n = big.len() as u64;
        let mut t = tail(&[(0, b"head"), (4, big)]);
        assert_eq!(t.take(0, u64::MAX).as_deref(), Some(&b"head"[..]));
        t.push(4 + n, Bytes::from_static(b"next"));
        assert_eq!(t.take(0, u64::MAX), None, "evicted");
        assert_eq!(t.take(4, 8).as_deref(), Some(&big[..4]));
        assert_eq!(t.take(4 + n, u64::MAX).as_deref(), Some(&b"next"[..]));
        assert_eq!(t.bytes, TAIL_BYTES);
    }
}

//! Generated blob data.
//!
//! A blob of `size` bytes is the first `size - TAIL` bytes of one shared
//! random buffer followed by a `TAIL`-byte tail derived from a label
//! (`sha256(label)`), so two labels give two digests while the bulk of every
//! blob is the same memory: a run holds one buffer of the largest size it
//! needs, whatever the concurrency. The buffer comes from a seeded generator,
//! so every run and every target sees the same bytes and the same digests for
//! the same labels. The SHA-256 state after each prefix length is computed
//! once; a blob's digest then costs one clone and the tail.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Bytes at the end of each generated blob that make it unique.
pub const TAIL: usize = 32;
/// Largest frame handed to the HTTP body; slices of the shared buffer.
const FRAME: usize = 1 << 20;
const SEED: u64 = 0x7a62_5f62_656e_6368;

/// A blob to send: `prefix` then `tail`, with its digest.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    prefix: Bytes,
    tail: Bytes,
}

impl Blob {
    /// A blob whose whole content is `data` (configs, manifests).
    pub fn from_bytes(data: Bytes) -> Self {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        Blob {
            digest,
            prefix: data,
            tail: Bytes::new(),
        }
    }

    pub fn size(&self) -> u64 {
        (self.prefix.len() + self.tail.len()) as u64
    }

    /// The bytes in `start..end`, as frames of at most 1 MiB (no copy).
    pub fn slice(&self, start: u64, end: u64) -> Vec<Bytes> {
        let (start, end) = (start as usize, (end.min(self.size())) as usize);
        let mut parts = Vec::new();
        let plen = self.prefix.len();
        let mut pos = start;
        while pos < end.min(plen) {
            let stop = (pos + FRAME).min(end.min(plen));
            parts.push(self.prefix.slice(pos..stop));
            pos = stop;
        }
        if end > plen {
            parts.push(self.tail.slice(start.max(plen) - plen..end - plen));
        }
        parts
    }

    /// The whole blob as frames.
    pub fn body(&self) -> Vec<Bytes> {
        self.slice(0, self.size())
    }

    /// `(start, end)` byte ranges (end exclusive) of chunks of `chunk` bytes.
    pub fn chunks(&self, chunk: u64) -> Vec<(u64, u64)> {
        let chunk = chunk.max(1);
        let size = self.size();
        (0..size.div_ceil(chunk))
            .map(|k| (k * chunk, ((k + 1) * chunk).min(size)))
            .collect()
    }
}

/// The shared random buffer and the hash states of its prefixes.
pub struct BlobSource {
    shared: Bytes,
    states: BTreeMap<usize, Sha256>,
}

impl BlobSource {
    /// Prepares blobs of each size in `sizes` (every size at least `TAIL`).
    pub fn new(sizes: &[u64]) -> Self {
        let mut lens: Vec<usize> = sizes
            .iter()
            .map(|&s| (s as usize).max(TAIL) - TAIL)
            .collect();
        lens.sort_unstable();
        lens.dedup();
        let shared = Bytes::from(random_bytes(lens.last().copied().unwrap_or(0), SEED));
        let mut states = BTreeMap::new();
        let mut hasher = Sha256::new();
        let mut done = 0;
        for len in lens {
            hasher.update(&shared[done..len]);
            done = len;
            states.insert(len, hasher.clone());
        }
        BlobSource { shared, states }
    }

    /// The blob of `size` bytes named by `label`. `size` must be one given
    /// to [`BlobSource::new`].
    pub fn blob(&self, size: u64, label: &str) -> anyhow::Result<Blob> {
        let len = (size as usize).max(TAIL) - TAIL;
        let Some(state) = self.states.get(&len) else {
            anyhow::bail!("blob size {size} was not prepared");
        };
        let tail: [u8; TAIL] = Sha256::digest(label.as_bytes()).into();
        let mut hasher = state.clone();
        hasher.update(tail);
        Ok(Blob {
            digest: format!("sha256:{}", hex::encode(hasher.finalize())),
            prefix: self.shared.slice(..len),
            tail: Bytes::copy_from_slice(&tail),
        })
    }
}

/// `len` pseudo-random bytes (splitmix64), the same for the same seed.
/// Allocated once at its exact size: a 1 GiB buffer costs 1 GiB.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = vec![0u8; len];
    for word in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let bytes = (z ^ (z >> 31)).to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn random_bytes_are_deterministic_and_not_zero() {
        let a = random_bytes(4096, 1);
        assert_eq!(a, random_bytes(4096, 1));
        assert_ne!(a, random_bytes(4096, 2));
        let zeros = a.iter().filter(|&&b| b == 0).count();
        assert!(zeros < 64, "{zeros} zero bytes in 4096");
        assert_eq!(random_bytes(13, 1).len(), 13);
    }

    #[test]
    fn digest_matches_the_bytes_sent() -> anyhow::Result<()> {
        let src = BlobSource::new(&[100, 3 * FRAME as u64 + 7, 40]);
        for size in [40, 100, 3 * FRAME as u64 + 7] {
            let blob = src.blob(size, "a")?;
            let body = concat(&blob.body());
            assert_eq!(body.len() as u64, size);
            assert_eq!(blob.size(), size);
            let want = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
            assert_eq!(blob.digest, want);
        }
        Ok(())
    }

    #[test]
    fn labels_give_distinct_digests_sizes_must_be_prepared() -> anyhow::Result<()> {
        let src = BlobSource::new(&[1000]);
        assert_ne!(src.blob(1000, "a")?.digest, src.blob(1000, "b")?.digest);
        assert_eq!(src.blob(1000, "a")?.digest, src.blob(1000, "a")?.digest);
        assert!(src.blob(999, "a").is_err());
        Ok(())
    }

    #[test]
    fn chunks_and_slices_cover_the_blob() -> anyhow::Result<()> {
        let src = BlobSource::new(&[1000]);
        let blob = src.blob(1000, "x")?;
        let ranges = blob.chunks(300);
        assert_eq!(ranges, vec![(0, 300), (300, 600), (600, 900), (900, 1000)]);
        let joined: Vec<u8> = ranges
            .iter()
            .flat_map(|&(s, e)| concat(&blob.slice(s, e)))
            .collect();
        assert_eq!(joined, concat(&blob.body()));
        // A slice inside the tail only.
        assert_eq!(concat(&blob.slice(990, 1000)).len(), 10);
        assert_eq!(blob.chunks(5000), vec![(0, 1000)]);
        Ok(())
    }

    #[test]
    fn small_blobs_from_bytes() {
        let blob = Blob::from_bytes(Bytes::from_static(b"{}"));
        assert_eq!(
            blob.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(concat(&blob.body()), b"{}");
    }
}

//! A running SHA-256 or SHA-512 whose state can be saved and resumed in
//! another process: what an upload session shared between registry
//! instances keeps in its record, so any instance can append the next chunk
//! and finish the digest without reading the data again.
//!
//! It is the hash of FIPS 180-4 driven block by block over `sha2`'s own
//! compression functions (`compress256`, `compress512`, with their CPU
//! feature detection), so it computes exactly what [`crate::Hasher`] does;
//! the tests compare the two over random splits and round trips.
//!
//! Invariants: the buffer holds fewer bytes than one block; `len` counts
//! every byte given to [`HashState::update`]; a saved state
//! ([`SavedHashState`]) is checked when read back (word count, buffer
//! length), so a corrupt record is an error, never a wrong digest.

use crate::digest::{Algorithm, Digest};
use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

const H256: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const H512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

#[derive(Clone, PartialEq, Eq)]
enum Words {
    Sha256([u32; 8]),
    Sha512([u64; 8]),
}

impl Words {
    fn block_len(&self) -> usize {
        match self {
            Words::Sha256(_) => 64,
            Words::Sha512(_) => 128,
        }
    }

    /// Compresses `blocks` (a whole number of blocks).
    fn compress(&mut self, blocks: &[u8]) {
        match self {
            Words::Sha256(h) => {
                for b in blocks.chunks_exact(64) {
                    sha2::compress256(h, std::slice::from_ref(GenericArray::from_slice(b)));
                }
            }
            Words::Sha512(h) => {
                for b in blocks.chunks_exact(128) {
                    sha2::compress512(h, std::slice::from_ref(GenericArray::from_slice(b)));
                }
            }
        }
    }
}

/// A resumable running digest (see the module doc).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SavedHashState", into = "SavedHashState")]
pub struct HashState {
    words: Words,
    buf: Vec<u8>,
    len: u64,
}

impl std::fmt::Debug for HashState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HashState({}, {} bytes)",
            self.algorithm().as_str(),
            self.len
        )
    }
}

impl HashState {
    pub fn new(algorithm: Algorithm) -> HashState {
        let words = match algorithm {
            Algorithm::Sha256 => Words::Sha256(H256),
            Algorithm::Sha512 => Words::Sha512(H512),
        };
        HashState {
            buf: Vec::with_capacity(words.block_len()),
            words,
            len: 0,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.words {
            Words::Sha256(_) => Algorithm::Sha256,
            Words::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        let block = self.words.block_len();
        if !self.buf.is_empty() {
            let take = (block - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < block {
                return;
            }
            let full = std::mem::take(&mut self.buf);
            self.words.compress(&full);
            self.buf = full;
            self.buf.clear();
        }
        let whole = data.len() - data.len() % block;
        self.words.compress(&data[..whole]);
        self.buf.extend_from_slice(&data[whole..]);
    }

    /// The digest of everything hashed (the state itself is kept).
    pub fn finish(&self) -> Digest {
        let mut words = self.words.clone();
        let block = words.block_len();
        let mut tail = self.buf.clone();
        tail.push(0x80);
        let len_bytes = block / 8; // 8 for SHA-256, 16 for SHA-512
        while tail.len() % block != block - len_bytes {
            tail.push(0);
        }
        let bits = u128::from(self.len) * 8;
        match words {
            Words::Sha256(_) => tail.extend_from_slice(&(bits as u64).to_be_bytes()),
            Words::Sha512(_) => tail.extend_from_slice(&bits.to_be_bytes()),
        }
        words.compress(&tail);
        let hex = match words {
            Words::Sha256(h) => h.iter().map(|w| format!("{w:08x}")).collect(),
            Words::Sha512(h) => h.iter().map(|w| format!("{w:016x}")).collect(),
        };
        Digest::from_parts(self.algorithm(), hex)
    }
}

/// The saved form of a [`HashState`]: the algorithm, the chaining words
/// (big-endian hex), the bytes hashed, and the partial block (hex).
#[derive(Serialize, Deserialize)]
pub struct SavedHashState {
    alg: String,
    words: String,
    len: u64,
    buf: String,
}

impl From<HashState> for SavedHashState {
    fn from(s: HashState) -> SavedHashState {
        let alg = s.algorithm().as_str().to_owned();
        let words = match &s.words {
            Words::Sha256(h) => h.iter().map(|w| format!("{w:08x}")).collect(),
            Words::Sha512(h) => h.iter().map(|w| format!("{w:016x}")).collect(),
        };
        SavedHashState {
            alg,
            words,
            len: s.len,
            buf: hex::encode(&s.buf),
        }
    }
}

/// A saved hash state that cannot be resumed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid saved hash state: {0}")]
pub struct HashStateError(&'static str);

impl TryFrom<SavedHashState> for HashState {
    type Error = HashStateError;

    fn try_from(s: SavedHashState) -> Result<HashState, HashStateError> {
        let raw = hex::decode(&s.words).map_err(|_| HashStateError("words are not hex"))?;
        let words = match s.alg.as_str() {
            "sha256" if raw.len() == 32 => {
                let mut h = [0u32; 8];
                for (w, b) in h.iter_mut().zip(raw.chunks_exact(4)) {
                    *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
                Words::Sha256(h)
            }
            "sha512" if raw.len() == 64 => {
                let mut h = [0u64; 8];
                for (w, b) in h.iter_mut().zip(raw.chunks_exact(8)) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    *w = u64::from_be_bytes(a);
                }
                Words::Sha512(h)
            }
            _ => return Err(HashStateError("unknown algorithm or word count")),
        };
        let buf = hex::decode(&s.buf).map_err(|_| HashStateError("buffer is not hex"))?;
        if buf.len() >= words.block_len() || buf.len() as u64 != s.len % words.block_len() as u64 {
            return Err(HashStateError(
                "buffer length does not match the length hashed",
            ));
        }
        Ok(HashState {
            words,
            buf,
            len: s.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency).
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn data(n: usize, seed: &mut u64) -> Vec<u8> {
        (0..n).map(|_| next(seed) as u8).collect()
    }

    fn one_shot(alg: Algorithm, data: &[u8]) -> Digest {
        let mut h = alg.hasher();
        h.update(data);
        h.finish()
    }

    #[test]
    fn empty_and_known_vectors() {
        let s = HashState::new(Algorithm::Sha256);
        assert_eq!(s.finish(), Digest::sha256_of(b""));
        let mut s = HashState::new(Algorithm::Sha256);
        s.update(b"abc");
        assert_eq!(
            s.finish().hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut s = HashState::new(Algorithm::Sha512);
        s.update(b"abc");
        assert!(s.finish().hex().starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn random_splits_and_round_trips_equal_the_one_shot_digest() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            for round in 0..200 {
                // Lengths around block boundaries and beyond.
                let n = match round % 4 {
                    0 => (next(&mut seed) % 300) as usize,
                    1 => 64 * (next(&mut seed) % 5) as usize + (round % 3),
                    2 => 128 * (next(&mut seed) % 5) as usize,
                    _ => (next(&mut seed) % 20_000) as usize,
                };
                let bytes = data(n, &mut seed);
                let mut state = HashState::new(alg);
                let mut at = 0;
                while at < n {
                    let step = 1 + (next(&mut seed) % 700) as usize;
                    let end = (at + step).min(n);
                    state.update(&bytes[at..end]);
                    at = end;
                    // Saved and resumed as another instance would.
                    let json = serde_json::to_string(&state).unwrap();
                    let back: HashState = serde_json::from_str(&json).unwrap();
                    assert_eq!(back, state);
                    state = back;
                }
                assert_eq!(state.len(), n as u64);
                assert_eq!(state.finish(), one_shot(alg, &bytes), "{alg:?} {n}");
            }
        }
    }

    #[test]
    fn corrupt_saved_states_are_refused() {
        let mut state = HashState::new(Algorithm::Sha256);
        state.update(b"hello");
        let json = serde_json::to_value(&state).unwrap();
        let mut bad = json.clone();
        bad["len"] = 6.into();
        assert!(serde_json::from_value::<HashState>(bad).is_err());
        let mut bad = json.clone();
        bad["alg"] = "sha512".into();
        assert!(serde_json::from_value::<HashState>(bad).is_err());
        let mut bad = json;
        bad["words"] = "zz".into();
        assert!(serde_json::from_value::<HashState>(bad).is_err());
    }
}

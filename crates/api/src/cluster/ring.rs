//! Which member owns a repository: zot's rule, bit for bit.
//!
//! Invariants:
//! - The owner of `name` among `n` members is
//!   `SipHash-2-4(key, name bytes) mod n`, where the 16-byte key is split
//!   into `k0 = key[0..8]` and `k1 = key[8..16]`, each read little-endian —
//!   exactly what Go's `github.com/dchest/siphash` `New(key)` does, and what
//!   `siphasher`'s `SipHasher24::new_with_key` does. The name's bytes are
//!   written raw (no length suffix: `Hash::hash` on a `str` would append a
//!   `0xff` byte and disagree with zot).
//! - The result depends only on the key, the name and the member count, so
//!   every member with the same `members` list and `hashKey` agrees.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

/// SipHash-2-4 of `data` keyed with the 16 bytes of `key`, as dchest/siphash's
/// `New(key).Write(data).Sum64()`.
pub fn sum64(key: &[u8; 16], data: &[u8]) -> u64 {
    let mut hasher = SipHasher24::new_with_key(key);
    hasher.write(data);
    hasher.finish()
}

/// The index of the member owning `repo` among `members` members
/// (`members` > 0).
pub fn owner_index(key: &[u8; 16], repo: &str, members: usize) -> usize {
    let n = members.max(1) as u64;
    // The remainder is below `members`, so it fits a usize.
    (sum64(key, repo.as_bytes()) % n) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SipHash paper's key `00 01 .. 0f` and message `00 01 .. len-1`
    /// (the reference implementation's `vectors.h`, read as little-endian
    /// u64; len 15 is the paper's Appendix A example).
    #[test]
    fn siphash_reference_vectors() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let message: Vec<u8> = (0..64).collect();
        for (len, want) in [
            (0, 0x726f_db47_dd0e_0e31_u64),
            (1, 0x74f8_39c5_93dc_67fd),
            (2, 0x0d6c_8009_d9a9_4f5a),
            (7, 0xab02_00f5_8b01_d137),
            (8, 0x93f5_f579_9a93_2462),
            (15, 0xa129_ca61_49be_45e5),
            (63, 0x958a_324c_eb06_4572),
        ] {
            assert_eq!(sum64(&key, &message[..len]), want, "length {len}");
        }
    }

    /// Values printed by dchest/siphash's Go code (`New([]byte(hashKey))`,
    /// `Write([]byte(name))`, `Sum64()`, `% 3`) with the key of zot's
    /// cluster examples.
    #[test]
    fn names_route_as_in_go_zot() {
        let key = b"loremipsumdolors";
        for (name, sum, owner) in [
            ("alpine", 0xea6f_74aa_b8ac_0b9b_u64, 1),
            ("library/alpine", 0xdb85_d8f7_f78a_762f, 0),
            ("busybox", 0xf02a_ee92_9b4d_38f0, 0),
            ("a/b/c", 0xe150_8f20_64e1_d701, 1),
            ("zot", 0x8e5b_14d8_dbe1_d033, 2),
            ("project/app-0", 0x3db0_4905_db4e_d5be, 1),
            ("project/app-1", 0x1b2c_f350_5255_7178, 2),
            ("project/app-2", 0xef16_28dd_0927_6cf9, 0),
            ("project/app-3", 0x6912_45d3_7431_6106, 2),
            ("project/app-4", 0x2d58_0dca_93a1_42dc, 0),
            ("project/app-5", 0x9a0f_e8b3_6c0d_5dfc, 2),
        ] {
            assert_eq!(sum64(key, name.as_bytes()), sum, "{name}");
            assert_eq!(owner_index(key, name, 3), owner, "{name}");
        }
    }

    #[test]
    fn one_member_owns_everything() {
        for name in ["a", "b/c", "zot"] {
            assert_eq!(owner_index(b"loremipsumdolors", name, 1), 0);
        }
    }

    #[test]
    fn the_key_matters() {
        let a = sum64(b"loremipsumdolors", b"alpine");
        let b = sum64(b"loremipsumdolorz", b"alpine");
        assert_ne!(a, b);
    }
}

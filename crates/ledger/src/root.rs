//! The state root, kept incrementally with a lattice hash (LtHash).
//!
//! Each state entry `(table tag, key bytes, value bytes)` is expanded by
//! BLAKE3's extendable output into 2048 bytes, read as 1024 little-endian u16
//! lanes. A table's accumulator is the lane-wise wrapping sum of its entries'
//! lanes: a multiset hash, so the order entries were written in does not
//! matter, and changing one entry costs two expansions (subtract the old
//! lanes, add the new) instead of re-hashing the table. The root is BLAKE3 of
//! the params digest and the accumulators. This is the construction of
//! Bellare–Micciancio's LtHash as used by Solana's accounts lattice hash;
//! 1024 lanes of 16 bits give its security margin against finding a multiset
//! that collides.

use peercloud_types::Hash32;

/// Lanes per accumulator.
pub const LTHASH_LANES: usize = 1024;
/// Bytes of BLAKE3 output per entry: two per lane.
const LTHASH_BYTES: usize = LTHASH_LANES * 2;
/// Domain tag of an entry's expansion.
const ENTRY_CONTEXT: &str = "peercloud ledger state entry lthash v1";
/// Domain tag of the root over the accumulators.
const ROOT_CONTEXT: &str = "peercloud ledger state root v1";

/// A lattice-hash accumulator: the wrapping sum of its entries' lanes.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash {
    lanes: Box<[u16; LTHASH_LANES]>,
}

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.checksum())
    }
}

impl Default for LtHash {
    fn default() -> Self {
        LtHash::identity()
    }
}

impl LtHash {
    /// The accumulator of the empty multiset (all lanes zero).
    pub fn identity() -> Self {
        LtHash {
            lanes: Box::new([0; LTHASH_LANES]),
        }
    }

    /// Adds the entry `(tag, key, value)`.
    pub fn insert(&mut self, tag: u8, key: &[u8], value: &[u8]) {
        let expanded = expand(tag, key, value);
        for (lane, pair) in self.lanes.iter_mut().zip(expanded.chunks_exact(2)) {
            *lane = lane.wrapping_add(u16::from_le_bytes([pair[0], pair[1]]));
        }
    }

    /// Removes the entry `(tag, key, value)` (which must have been inserted).
    pub fn remove(&mut self, tag: u8, key: &[u8], value: &[u8]) {
        let expanded = expand(tag, key, value);
        for (lane, pair) in self.lanes.iter_mut().zip(expanded.chunks_exact(2)) {
            *lane = lane.wrapping_sub(u16::from_le_bytes([pair[0], pair[1]]));
        }
    }

    /// The lanes as little-endian bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes
            .iter()
            .flat_map(|lane| lane.to_le_bytes())
            .collect()
    }

    /// BLAKE3 of the lanes (a short form for logs and comparisons).
    pub fn checksum(&self) -> Hash32 {
        Hash32::of(&self.to_bytes())
    }
}

fn expand(tag: u8, key: &[u8], value: &[u8]) -> [u8; LTHASH_BYTES] {
    let mut hasher = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
    hasher.update(&[tag]);
    // Keys are at most a few dozen bytes: the cast cannot truncate, and the
    // length prefix keeps (key, value) splits unambiguous.
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    let mut out = [0u8; LTHASH_BYTES];
    hasher.finalize_xof().fill(&mut out);
    out
}

/// The state root over the params digest and the tagged table accumulators.
pub fn state_root(params_digest: &Hash32, tables: &[(u8, &LtHash)]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(ROOT_CONTEXT);
    hasher.update(params_digest.as_bytes());
    for (tag, acc) in tables {
        hasher.update(&[*tag]);
        hasher.update(&acc.to_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_and_remove_undoes_insert() {
        let mut a = LtHash::identity();
        a.insert(1, b"k1", b"v1");
        a.insert(1, b"k2", b"v2");
        let mut b = LtHash::identity();
        b.insert(1, b"k2", b"v2");
        b.insert(1, b"k1", b"v1");
        assert_eq!(a, b);
        b.remove(1, b"k2", b"v2");
        let mut c = LtHash::identity();
        c.insert(1, b"k1", b"v1");
        assert_eq!(b, c);
        c.remove(1, b"k1", b"v1");
        assert_eq!(c, LtHash::identity());
    }

    #[test]
    fn tag_key_and_value_split_all_count() {
        let entry = |tag, key: &[u8], value: &[u8]| {
            let mut h = LtHash::identity();
            h.insert(tag, key, value);
            h
        };
        let base = entry(1, b"ab", b"c");
        assert_ne!(base, entry(2, b"ab", b"c"));
        assert_ne!(base, entry(1, b"a", b"bc"));
        assert_ne!(base, entry(1, b"ab", b"d"));
    }

    #[test]
    fn root_depends_on_params_and_tags() {
        let acc = LtHash::identity();
        let p1 = Hash32::of(b"p1");
        let p2 = Hash32::of(b"p2");
        assert_ne!(state_root(&p1, &[(1, &acc)]), state_root(&p2, &[(1, &acc)]));
        assert_ne!(state_root(&p1, &[(1, &acc)]), state_root(&p1, &[(2, &acc)]));
    }
}

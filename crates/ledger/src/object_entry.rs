//! A bucket's object index entries: the owner's signed word that key `k` of
//! bucket `b` names an object (or names nothing any more). They are not
//! ledger state: the cluster's nodes keep them (a write per block would cap
//! a bucket at the block rate), and whoever holds one can check it against
//! the bucket's owner on the ledger, so a node can neither forge nor alter
//! an entry, only withhold it, which a quorum read outvotes.
//!
//! Entries of one key merge last-writer-wins ([`newer`]): the later `at_ms`,
//! and on a tie the larger hash of the signed bytes, so every replica that
//! has seen the same entries agrees on the winner whatever order they came in.

use std::collections::BTreeMap;

use peercloud_types::{ContentId, Hash32, Kind, Signed, Versioned, encoding::encode};
use serde::{Deserialize, Serialize};

use crate::storage_records::BucketId;

/// Longest object key, in bytes (S3's limit).
pub const OBJECT_KEY_BYTES_MAX: usize = 1024;

/// Largest object kept in its bucket's index rather than on the cluster's
/// chunk holders ([`ObjectRef::inline`]), plaintext bytes: as garage keeps
/// objects under 3 KiB in its object table, a small object costs one index
/// write instead of a manifest and a chunk on three holders each.
pub const INLINE_OBJECT_BYTES_MAX: u64 = 3 * 1024;
/// Most bytes an [`InlineObject`]'s chunks take (the sealed manifest and
/// data of an object of [`INLINE_OBJECT_BYTES_MAX`] take well under this).
pub const INLINE_CHUNKS_BYTES_MAX: usize = 8 * 1024;
/// Most entries one index write carries (and most usages, receipts and
/// repair receipts, each).
pub const INDEX_WRITE_ENTRIES_MAX: usize = 1_000;
/// Most bytes of inline objects one index write carries (so a write stays
/// well inside an index message).
pub const INLINE_WRITE_BYTES_MAX: usize = 1 << 20;

/// An object a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The stored object's manifest CID.
    pub manifest: ContentId,
    /// Its plaintext size, bytes.
    pub size: u64,
    /// Its chunks are kept by the bucket's index replicas with this entry
    /// (an [`InlineObject`] whose manifest is `manifest`), not by the
    /// cluster's chunk holders.
    pub inline: bool,
}

/// The chunks of an object kept in its bucket's index
/// ([`ObjectRef::inline`]), as a chunk holder would store them: the
/// manifest chunk first, then the data chunks in the manifest's order
/// (sealed in a private bucket). Not signed: the owner's entry names the
/// manifest by CID and the manifest names each chunk by CID, so the bytes
/// check themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineObject {
    /// The manifest chunk, then the data chunks.
    pub chunks: Vec<Vec<u8>>,
}

impl Versioned for InlineObject {
    const KIND: u8 = Kind::InlineObject as u8;
    const VERSION: u8 = 1;
}

impl InlineObject {
    /// The CID of its manifest chunk (what its entry names), if it has one.
    pub fn manifest(&self) -> Option<ContentId> {
        self.chunks.first().map(|c| ContentId::of(c))
    }

    /// Bytes its chunks take.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

/// Inline objects found by the CID of their manifest, each manifest hashed
/// once: matching a write's or a read's many entries to their chunks by
/// scanning would hash every manifest once per entry.
#[derive(Debug, Clone, Default)]
pub struct InlineIndex<'a> {
    by_manifest: BTreeMap<ContentId, &'a InlineObject>,
}

impl<'a> InlineIndex<'a> {
    /// `objects` by their manifest's CID (the first of two with the same
    /// manifest; one without chunks is left out).
    pub fn new(objects: impl IntoIterator<Item = &'a InlineObject>) -> Self {
        let mut by_manifest = BTreeMap::new();
        for object in objects {
            if let Some(manifest) = object.manifest() {
                by_manifest.entry(manifest).or_insert(object);
            }
        }
        InlineIndex { by_manifest }
    }

    /// The object whose manifest is `manifest`.
    pub fn get(&self, manifest: &ContentId) -> Option<&'a InlineObject> {
        self.by_manifest.get(manifest).copied()
    }

    /// The chunks of `entry`'s object when it is inline and among these.
    pub fn of(&self, entry: &ObjectEntry) -> Option<&'a InlineObject> {
        let object = entry.object.filter(|o| o.inline)?;
        self.get(&object.manifest)
    }
}

/// One key of a bucket's index, signed by the bucket's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// The bucket.
    pub bucket: BucketId,
    /// The object's name in it ([`check_key`]).
    pub key: String,
    /// The object, or `None` when the key was deleted (a tombstone, kept so
    /// a replica that missed the delete cannot bring the object back).
    pub object: Option<ObjectRef>,
    /// When the owner wrote it, ms since the Unix epoch: the merge order.
    pub at_ms: u64,
}

impl Versioned for ObjectEntry {
    const KIND: u8 = Kind::ObjectEntry as u8;
    /// 2: [`ObjectRef::inline`].
    const VERSION: u8 = 2;
}

/// An object key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is empty.
    #[error("an object key cannot be empty")]
    Empty,
    /// The key is longer than [`OBJECT_KEY_BYTES_MAX`].
    #[error("object key of {len} bytes is longer than the {OBJECT_KEY_BYTES_MAX} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The key holds a control character.
    #[error("object key {key:?} holds a control character (U+{code:04X})")]
    Control {
        /// The key.
        key: String,
        /// The character's code point.
        code: u32,
    },
}

/// Checks an object key: 1..=1024 bytes of UTF-8 without control characters.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > OBJECT_KEY_BYTES_MAX {
        return Err(KeyError::TooLong { len: key.len() });
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(KeyError::Control {
            key: key.to_owned(),
            code: u32::from(c),
        });
    }
    Ok(())
}

/// The merge order of an entry: its time, then the hash of its signed bytes.
pub fn merge_order(entry: &Signed<ObjectEntry>) -> (u64, Hash32) {
    (entry.body.at_ms, Hash32::of(&encode(entry)))
}

/// Whether `candidate` replaces `current` (last writer wins, see the module
/// documentation); an entry does not replace itself. The same as comparing
/// [`merge_order`]s, hashing only when the times tie and the entries differ
/// (replicas mostly answer with the very same entries).
pub fn newer(candidate: &Signed<ObjectEntry>, current: &Signed<ObjectEntry>) -> bool {
    if candidate.body.at_ms != current.body.at_ms {
        return candidate.body.at_ms > current.body.at_ms;
    }
    if candidate == current {
        return false;
    }
    merge_order(candidate) > merge_order(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    fn entry(key: &str, at_ms: u64, size: u64, owner: &Keypair) -> Signed<ObjectEntry> {
        Signed::new(
            ObjectEntry {
                bucket: BucketId(Hash32::of(b"bucket")),
                key: key.to_owned(),
                object: Some(ObjectRef {
                    manifest: ContentId::of(&size.to_le_bytes()),
                    size,
                    inline: false,
                }),
                at_ms,
            },
            owner,
        )
    }

    #[test]
    fn the_later_write_wins_and_a_tie_breaks_the_same_way_everywhere() {
        let owner = Keypair::from_seed(&[1; 32]);
        let (old, new) = (entry("a", 5, 1, &owner), entry("a", 6, 2, &owner));
        assert!(newer(&new, &old));
        assert!(!newer(&old, &new));
        assert!(!newer(&new, &new));
        let (x, y) = (entry("a", 7, 3, &owner), entry("a", 7, 4, &owner));
        assert_ne!(newer(&x, &y), newer(&y, &x), "exactly one of a tie wins");
        // The quick path agrees with the merge order on every pair.
        let all = [old, new, x, y, entry("a", 5, 9, &owner)];
        for a in &all {
            for b in &all {
                assert_eq!(newer(a, b), merge_order(a) > merge_order(b));
            }
        }
    }

    #[test]
    fn keys_are_checked_naming_what_is_wrong() {
        assert_eq!(check_key("photos/2026/cat.jpg"), Ok(()));
        assert_eq!(check_key(""), Err(KeyError::Empty));
        let long = "k".repeat(OBJECT_KEY_BYTES_MAX + 1);
        assert!(
            check_key(&long)
                .unwrap_err()
                .to_string()
                .contains("1025 bytes")
        );
        let err = check_key("a\nb").unwrap_err().to_string();
        assert!(err.contains("U+000A"), "{err}");
    }

    #[test]
    fn entries_round_trip_in_their_canonical_encoding() {
        let owner = Keypair::from_seed(&[2; 32]);
        let signed = entry("k", 1, 9, &owner);
        let bytes = encode(&signed);
        let back: Signed<ObjectEntry> = peercloud_types::encoding::decode(&bytes).unwrap();
        assert_eq!(back, signed);
        assert!(back.verify().is_ok());
    }
}

//! Proof of storage: a holder shows it still has a chunk by answering a random
//! [`Challenge`] with an [`AuditProof`], a BLAKE3 verified slice that anyone
//! checks against the chunk's CID alone, without holding the chunk.
//!
//! ```text
//!  seed (a block seed, later) ─┐
//!  CID, chunk length ──────────┴─▶ Challenge::derive ─▶ 4 random 1 KiB leaves
//!  holder:  chunk bytes ─▶ prove ─▶ AuditProof: the leaves + the hash pairs on
//!                                   their paths to the root (≤ 8 KiB)
//!  auditor: CID, length ─▶ verify ─▶ Ok, or the check that failed (AuditError)
//! ```
//!
//! Why the CID is enough: a CID is the BLAKE3 hash of the sealed chunk, and
//! BLAKE3 is a binary Merkle tree over 1 KiB leaves whose root is that hash.
//! bao (the `bao-tree` crate) encodes a byte range as the leaves in it and the
//! hash pairs from the root down to them; the verifier recomputes each pair's
//! parent and compares the top one with the CID. Nothing else is trusted: the
//! length fixes the tree's shape, the challenge fixes the leaves, and the
//! prover's word counts for nothing.
//!
//! **How many leaves: [`AUDIT_LEAVES`] = 4.** A holder that lost (or never
//! stored) the chunk cannot answer at all; its bytes are sealed ciphertext, so
//! it cannot compress them or rebuild them without the owner's key. A holder
//! that keeps only a fraction `1 − f` of a chunk's leaves passes one audit with
//! probability about `(1 − f)^4`: keeping 90% passes 66% of daily audits and a
//! 30-day month of them with probability 3·10⁻⁶. Four leaves cost at most
//! 4 KiB of data plus the hash pairs on their paths (55 pairs for the largest
//! chunk), so a proof stays under [`AUDIT_PROOF_BYTES_MAX`].
//!
//! **Cost** (`benches/audit.rs`, which also prints what auditing 1 TiB daily
//! costs). The prover hashes the whole chunk once to rebuild the tree's
//! hashes (an outboard at 16 KiB groups, computed on the fly: BLAKE3 hashes
//! the 16 leaves of a group at once with SIMD; 0.3 ms for 1 MiB where one
//! leaf at a time took 1.2 ms); the verifier hashes 4 KiB and about 40 pairs
//! (9 µs). A 1 MiB chunk's proof is about 6.2 KiB encoded.
//!
//! Not here (they need the cluster ledger): drawing challenges from block
//! seeds, scheduling audits, reputation and slashing.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Cursor;

use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::{DecodeResponseIter, encode_ranges_validated};
use bao_tree::io::{BaoContentItem, DecodeError as BaoDecodeError};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use peercloud_types::{ContentId, Hash32, Kind, Versioned};
use serde::{Deserialize, Serialize};

/// Bytes in one leaf: BLAKE3's chunk, the smallest range a proof can name.
pub const AUDIT_LEAF_BYTES: u64 = 1024;

/// Leaves one challenge names (fewer only when the chunk has fewer): see the
/// module documentation for the detection odds behind the number.
pub const AUDIT_LEAVES: usize = 4;

/// Most bytes of bao encoding a proof may carry: 4 leaves (4,096 bytes) and
/// the hash pairs on their paths in a chunk of up to `CHUNK_BYTES_MAX` plus a
/// seal tag (a tree 15 levels deep: at most 1 + 2 + 4 + 4 × 12 = 55 pairs of
/// 64 bytes, 3,520 bytes), 7,616 bytes in all, rounded up.
pub const AUDIT_PROOF_BYTES_MAX: usize = 8 << 10;

/// Current version of [`AuditProof`]'s encoding. It fixes the tree's group
/// size (`GROUP`) too: the proof's byte layout depends on it.
pub const AUDIT_PROOF_VERSION: u8 = 1;

/// The BLAKE3 key-derivation context of challenges (BLAKE3's convention:
/// application, date, purpose), so no other hash in Peercloud collides with one.
const CHALLENGE_CONTEXT: &str = "peercloud 2025-06-01 audit challenge leaves v1";

/// bao's chunk group: the outboard keeps one hash pair per 16 KiB, and leaves
/// selected whole inside a group travel without their inner pairs. A proof of
/// single leaves is the same size at any group size; 16 KiB lets the prover
/// hash 16 leaves at once (SIMD) instead of one by one (4× faster, measured).
/// Larger groups would make the prover re-hash more bytes leaf by leaf
/// around each challenged leaf.
const GROUP: BlockSize = BlockSize::from_chunk_log(4);

/// The 1 KiB leaves of a chunk of `len` bytes (an empty chunk has one, empty).
pub fn leaves_of(len: u64) -> u64 {
    len.div_ceil(AUDIT_LEAF_BYTES).max(1)
}

/// Which leaves of a chunk a holder must prove: at most [`AUDIT_LEAVES`],
/// distinct, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Challenge {
    leaves: Vec<u64>,
}

impl Challenge {
    /// The challenge for the chunk `cid` of `len` bytes under `seed`: a pure
    /// function of the three, unpredictable to anyone who does not know the
    /// seed yet. The leaves are drawn from a BLAKE3 stream keyed by all three,
    /// by Floyd's sampling (one draw per leaf, no retries); a draw is a
    /// 64-bit word reduced modulo at most 16,385, a bias under 2⁻⁵⁰.
    pub fn derive(seed: &Hash32, cid: &ContentId, len: u64) -> Challenge {
        let leaves = leaves_of(len);
        let wanted = (AUDIT_LEAVES as u64).min(leaves);
        let mut stream = blake3::Hasher::new_derive_key(CHALLENGE_CONTEXT)
            .update(seed.as_bytes())
            .update(cid.digest())
            .update(&len.to_le_bytes())
            .finalize_xof();
        let mut chosen = BTreeSet::new();
        for last in leaves - wanted..leaves {
            let mut word = [0u8; 8];
            stream.fill(&mut word);
            let draw = u64::from_le_bytes(word) % (last + 1);
            if !chosen.insert(draw) {
                chosen.insert(last);
            }
        }
        Challenge {
            leaves: chosen.into_iter().collect(),
        }
    }

    /// The leaves named, ascending.
    pub fn leaves(&self) -> &[u64] {
        &self.leaves
    }

    /// Checks that this challenge fits a chunk of `len` bytes: 1 to
    /// [`AUDIT_LEAVES`] distinct leaves, ascending, all inside the chunk.
    /// (A challenge from a peer is checked before any work is done on it.)
    pub fn check(&self, len: u64) -> Result<(), AuditError> {
        let count = self.leaves.len();
        if count == 0 || count > AUDIT_LEAVES {
            return Err(AuditError::ChallengeSize { leaves: count });
        }
        if self.leaves.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(AuditError::ChallengeOrder {
                leaves: self.leaves.clone(),
            });
        }
        let leaves = leaves_of(len);
        match self.leaves.iter().find(|&&leaf| leaf >= leaves) {
            Some(&leaf) => Err(AuditError::ChallengeOutOfRange { leaf, len, leaves }),
            None => Ok(()),
        }
    }

    fn ranges(&self) -> ChunkRanges {
        let mut ranges = ChunkRanges::empty();
        for &leaf in &self.leaves {
            ranges |= ChunkRanges::from(ChunkNum(leaf)..ChunkNum(leaf + 1));
        }
        ranges
    }
}

/// A holder's answer to a [`Challenge`]: the challenged leaves of its chunk
/// and the hash pairs that tie them to the chunk's CID (bao's encoding of
/// those ranges, at 16 KiB groups).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProof {
    len: u64,
    leaves: Vec<u64>,
    encoded: Vec<u8>,
}

impl Versioned for AuditProof {
    const KIND: u8 = Kind::AuditProof as u8;
    const VERSION: u8 = AUDIT_PROOF_VERSION;
}

impl AuditProof {
    /// The length the holder's chunk has, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the holder's chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The leaves proved.
    pub fn leaves(&self) -> &[u64] {
        &self.leaves
    }

    /// Bytes of bao encoding carried (leaves and hash pairs).
    pub fn encoded_bytes(&self) -> usize {
        self.encoded.len()
    }
}

impl fmt::Debug for AuditProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditProof")
            .field("len", &self.len)
            .field("leaves", &self.leaves)
            .field("encoded_bytes", &self.encoded.len())
            .finish()
    }
}

/// The part of a proof where verification stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofPart {
    /// The hash pair of a tree node over a run of leaves.
    Hashes {
        /// The node's level (0: a pair of single leaves).
        level: u32,
        /// First leaf under the node.
        first_leaf: u64,
        /// One past the last leaf under the node.
        end_leaf: u64,
    },
    /// Leaf bytes (one leaf, or a run sent whole), from this leaf on.
    Leaf {
        /// The first leaf of the run.
        first_leaf: u64,
    },
}

impl fmt::Display for ProofPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofPart::Hashes {
                level,
                first_leaf,
                end_leaf,
            } => write!(
                f,
                "the hash pair over leaves {first_leaf}..{end_leaf} (tree level {level})"
            ),
            ProofPart::Leaf { first_leaf } => write!(f, "the bytes of leaf {first_leaf}"),
        }
    }
}

/// An audit challenge or proof failed a check; each variant names which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The challenge names no leaf, or more than [`AUDIT_LEAVES`].
    #[error("an audit challenge names {leaves} leaves; it must name 1 to {AUDIT_LEAVES}")]
    ChallengeSize {
        /// Leaves named.
        leaves: usize,
    },
    /// The challenge's leaves repeat or are out of order.
    #[error("an audit challenge's leaves must be distinct and ascending, got {leaves:?}")]
    ChallengeOrder {
        /// The leaves named.
        leaves: Vec<u64>,
    },
    /// The challenge names a leaf past the chunk's end.
    #[error("an audit challenge names leaf {leaf}, but a chunk of {len} bytes has {leaves} leaves")]
    ChallengeOutOfRange {
        /// The leaf named.
        leaf: u64,
        /// The chunk's length, bytes.
        len: u64,
        /// The chunk's leaves.
        leaves: u64,
    },
    /// The proof is of a chunk of another length.
    #[error(
        "wrong length: the proof is of a {proved}-byte chunk, chunk {cid} has {expected} bytes"
    )]
    WrongLength {
        /// The chunk audited.
        cid: ContentId,
        /// Its length.
        expected: u64,
        /// The length the proof states.
        proved: u64,
    },
    /// The proof covers other leaves than those asked.
    #[error(
        "wrong range: the proof of chunk {cid} covers leaves {proved:?}, the challenge asked {asked:?}"
    )]
    WrongRange {
        /// The chunk audited.
        cid: ContentId,
        /// The leaves challenged.
        asked: Vec<u64>,
        /// The leaves the proof stated or carried.
        proved: Vec<u64>,
    },
    /// The proof is larger than any honest one.
    #[error(
        "the proof of chunk {cid} carries {bytes} bytes; an honest one is at most {AUDIT_PROOF_BYTES_MAX}"
    )]
    TooLarge {
        /// The chunk audited.
        cid: ContentId,
        /// Bytes carried.
        bytes: usize,
    },
    /// The proof's top hashes do not combine to the CID: the prover's bytes
    /// are not the chunk's (or it proved another chunk).
    #[error("wrong root: the proof's top hashes do not combine to chunk {cid}")]
    WrongRoot {
        /// The chunk audited.
        cid: ContentId,
    },
    /// A hash pair or leaf of the proof does not match the hash above it.
    #[error("the proof of chunk {cid} breaks at {part}: it does not hash to the pair above it")]
    WrongHash {
        /// The chunk audited.
        cid: ContentId,
        /// Where.
        part: ProofPart,
    },
    /// The proof ends before it has proved every leaf.
    #[error("truncated proof of chunk {cid}: it ends before {part}")]
    Truncated {
        /// The chunk audited.
        cid: ContentId,
        /// The first part missing.
        part: ProofPart,
    },
    /// Bytes follow the end of the proof.
    #[error("the proof of chunk {cid} has {extra} bytes after its end")]
    TrailingBytes {
        /// The chunk audited.
        cid: ContentId,
        /// Bytes left over.
        extra: usize,
    },
    /// Reading the proof failed other than by running out (in memory, this
    /// does not happen).
    #[error("the proof of chunk {cid} could not be read: {reason}")]
    Unreadable {
        /// The chunk audited.
        cid: ContentId,
        /// What the decoder said.
        reason: String,
    },
    /// bao could not encode the proof (in memory, this does not happen).
    #[error("the proof could not be built: {reason}")]
    Prove {
        /// What the encoder said.
        reason: String,
    },
}

/// The holder's side: proves the challenged leaves of `bytes` (the whole
/// chunk). Hashes the chunk once to rebuild its tree; proves whatever the
/// bytes are, so bytes that are not the chunk's make a proof that fails
/// [`verify`].
pub fn prove(bytes: &[u8], challenge: &Challenge) -> Result<AuditProof, AuditError> {
    let len = bytes.len() as u64;
    challenge.check(len)?;
    let outboard = PreOrderMemOutboard::create(bytes, GROUP);
    let mut encoded = Vec::with_capacity(AUDIT_PROOF_BYTES_MAX);
    encode_ranges_validated(bytes, &outboard, &challenge.ranges(), &mut encoded).map_err(|e| {
        AuditError::Prove {
            reason: e.to_string(),
        }
    })?;
    Ok(AuditProof {
        len,
        leaves: challenge.leaves.clone(),
        encoded,
    })
}

/// The auditor's side: checks that `proof` proves `challenge` for the chunk
/// `cid` of `len` bytes. Needs nothing but these: the CID is the root every
/// proved leaf must hash up to.
pub fn verify(
    cid: &ContentId,
    len: u64,
    challenge: &Challenge,
    proof: &AuditProof,
) -> Result<(), AuditError> {
    challenge.check(len)?;
    let cid = *cid;
    if proof.len != len {
        return Err(AuditError::WrongLength {
            cid,
            expected: len,
            proved: proof.len,
        });
    }
    if proof.leaves != challenge.leaves {
        return Err(AuditError::WrongRange {
            cid,
            asked: challenge.leaves.clone(),
            proved: proof.leaves.clone(),
        });
    }
    if proof.encoded.len() > AUDIT_PROOF_BYTES_MAX {
        return Err(AuditError::TooLarge {
            cid,
            bytes: proof.encoded.len(),
        });
    }
    let tree = BaoTree::new(len, GROUP);
    let root = blake3::Hash::from_bytes(*cid.digest());
    let ranges = challenge.ranges();
    let mut reader = Cursor::new(proof.encoded.as_slice());
    let mut proved = BTreeSet::new();
    for (checked, item) in DecodeResponseIter::new(root, tree, &mut reader, &ranges).enumerate() {
        let item = item.map_err(|e| decode_error(cid, len, checked == 0, e))?;
        if let BaoContentItem::Leaf(leaf) = item {
            let first = leaf.offset / AUDIT_LEAF_BYTES;
            let end = (leaf.offset + leaf.data.len() as u64)
                .div_ceil(AUDIT_LEAF_BYTES)
                .max(first + 1);
            proved.extend(first..end);
        }
    }
    let extra = proof.encoded.len() - reader.position() as usize;
    if extra > 0 {
        return Err(AuditError::TrailingBytes { cid, extra });
    }
    // bao proved exactly what it was asked; this guards the count, so that
    // no reading of the ranges can pass a proof that checked fewer leaves.
    if !proved.iter().eq(challenge.leaves.iter()) {
        return Err(AuditError::WrongRange {
            cid,
            asked: challenge.leaves.clone(),
            proved: proved.into_iter().collect(),
        });
    }
    Ok(())
}

/// Names what bao's decoder found. The first item checked is checked against
/// the root (the CID), so a mismatch there is a wrong root.
fn decode_error(cid: ContentId, len: u64, at_root: bool, error: BaoDecodeError) -> AuditError {
    let leaves = leaves_of(len);
    let hashes = |node: bao_tree::TreeNode| {
        let range = node.chunk_range();
        ProofPart::Hashes {
            level: node.level(),
            first_leaf: range.start.0,
            end_leaf: range.end.0.min(leaves),
        }
    };
    match error {
        BaoDecodeError::ParentHashMismatch(_) | BaoDecodeError::LeafHashMismatch(_) if at_root => {
            AuditError::WrongRoot { cid }
        }
        BaoDecodeError::ParentHashMismatch(node) => AuditError::WrongHash {
            cid,
            part: hashes(node),
        },
        BaoDecodeError::LeafHashMismatch(chunk) => AuditError::WrongHash {
            cid,
            part: ProofPart::Leaf {
                first_leaf: chunk.0,
            },
        },
        BaoDecodeError::ParentNotFound(node) => AuditError::Truncated {
            cid,
            part: hashes(node),
        },
        BaoDecodeError::LeafNotFound(chunk) => AuditError::Truncated {
            cid,
            part: ProofPart::Leaf {
                first_leaf: chunk.0,
            },
        },
        BaoDecodeError::Io(e) => AuditError::Unreadable {
            cid,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;

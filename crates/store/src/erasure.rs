//! Reed-Solomon erasure coding of chunk groups ([`Redundancy::Erasure`]).
//!
//! An object's sealed chunks are taken `data` at a time; each group gets
//! `parity` parity chunks, and any `data` of the group's `data + parity`
//! chunks give back all of its data chunks. Parity chunks are chunks like any
//! other — content-addressed, verified on every read, placed on their own
//! nodes — so the stores, the network and the placement need nothing new;
//! only the manifest records which CIDs are parity and the group's shape.
//!
//! The code is `reed-solomon-simd` (Leopard-RS, O(n log n), SIMD). Its shards
//! must be of one even length, so every shard of a group is zero-padded to
//! the group's longest data chunk rounded up to even ([`shard_bytes`]); the
//! padding is never stored for data chunks (their lengths are in the
//! manifest) and is cut off again on recovery.
//!
//! A group of one data chunk (a short object's, or an object's last) gets
//! parity that is the chunk itself when its sealed length is even (RS over
//! one shard is replication): its pieces share one CID and the network keeps
//! that CID on `1 + parity` distinct nodes, which is the same protection.
//!
//! Reading a group back ([`recover_group`]) is the get pipeline's fallback
//! when one of its data chunks cannot be read or is corrupt: it fetches the
//! group's other pieces, fastest first — the remaining data chunks (they
//! need no decoding) and as many parity chunks as data chunks are missing,
//! all at once, then one more for each piece that fails — verifies each
//! against its CID and length, and decodes.
//!
//! [`Redundancy::Erasure`]: crate::Redundancy::Erasure

use std::thread;

use peercloud_types::ContentId;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::StoreError;
use crate::manifest::{ChunkGroup, Manifest};
use crate::store::ChunkStore;

/// Pieces of one group fetched at once during a recovery: as many reads in
/// flight as the get pipeline's readers at most (`READERS_MAX`), so a
/// recovery adds no more load than a get already makes.
pub const RECOVERY_READS_MAX: usize = 8;

/// Erasure coding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErasureError {
    /// The group's shape is not one the code supports.
    #[error("erasure coding of {data} data + {parity} parity shards is not supported: {reason}")]
    Shape {
        /// Data shards per group.
        data: usize,
        /// Parity shards per group.
        parity: usize,
        /// Why.
        reason: String,
    },
    /// Fewer than `data` shards of the group are present.
    #[error("only {present} of the {needed} shards needed to recover the group are present")]
    TooFew {
        /// Shards present.
        present: usize,
        /// Shards needed (the group's data count).
        needed: usize,
    },
    /// A present shard has the wrong length.
    #[error("shard {index} is {len} bytes; the group's shards are {expected} bytes")]
    ShardLength {
        /// Its index in the group (data first, then parity).
        index: usize,
        /// Its length.
        len: usize,
        /// What it should be.
        expected: usize,
    },
}

/// The one length every shard of a group is coded at: the longest data
/// chunk, rounded up to even (at least 2 bytes).
pub fn shard_bytes(data_lens: &[usize]) -> usize {
    let longest = data_lens.iter().copied().max().unwrap_or(0).max(1);
    longest + longest % 2
}

fn shape_error(data: usize, parity: usize, reason: impl ToString) -> ErasureError {
    ErasureError::Shape {
        data,
        parity,
        reason: reason.to_string(),
    }
}

/// Pads `chunk` with zeros to `len`.
fn padded(chunk: &[u8], len: usize) -> Vec<u8> {
    let mut shard = Vec::with_capacity(len);
    shard.extend_from_slice(chunk);
    shard.resize(len, 0);
    shard
}

/// The `parity` parity shards of a group of data chunks (each at most the
/// group's [`shard_bytes`] long; the last group of an object may hold fewer
/// than the scheme's `data`, and its chunks may be shorter).
pub fn encode(data: &[&[u8]], parity: usize) -> Result<Vec<Vec<u8>>, ErasureError> {
    let lens: Vec<usize> = data.iter().map(|chunk| chunk.len()).collect();
    let bytes = shard_bytes(&lens);
    let mut encoder = ReedSolomonEncoder::new(data.len(), parity, bytes)
        .map_err(|e| shape_error(data.len(), parity, e))?;
    for chunk in data {
        encoder
            .add_original_shard(padded(chunk, bytes))
            .map_err(|e| shape_error(data.len(), parity, e))?;
    }
    let result = encoder
        .encode()
        .map_err(|e| shape_error(data.len(), parity, e))?;
    Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
}

/// The group's data chunks, from any `data_lens.len()` of its shards.
///
/// `shards` holds the group's data shards then its parity shards, in order,
/// `None` where one is missing; a present data shard is its chunk as stored
/// (unpadded), a parity shard is [`shard_bytes`] long. `data_lens` are the
/// data chunks' lengths (from the manifest). The caller has verified every
/// present shard against its CID.
pub fn recover(
    data_lens: &[usize],
    shards: &[Option<Vec<u8>>],
) -> Result<Vec<Vec<u8>>, ErasureError> {
    let data = data_lens.len();
    let parity = shards.len().saturating_sub(data);
    if shards.len() <= data {
        return Err(shape_error(data, parity, "no parity shards"));
    }
    let bytes = shard_bytes(data_lens);
    for (index, shard) in shards.iter().enumerate() {
        if let Some(shard) = shard {
            let expected = data_lens.get(index).copied().unwrap_or(bytes);
            if shard.len() != expected {
                return Err(ErasureError::ShardLength {
                    index,
                    len: shard.len(),
                    expected,
                });
            }
        }
    }
    let present = shards.iter().filter(|shard| shard.is_some()).count();
    if present < data {
        return Err(ErasureError::TooFew {
            present,
            needed: data,
        });
    }
    let missing_data = shards[..data].iter().any(Option::is_none);
    if !missing_data {
        return Ok(shards[..data].iter().flatten().cloned().collect());
    }
    let mut decoder =
        ReedSolomonDecoder::new(data, parity, bytes).map_err(|e| shape_error(data, parity, e))?;
    for (index, shard) in shards[..data].iter().enumerate() {
        if let Some(shard) = shard {
            decoder
                .add_original_shard(index, padded(shard, bytes))
                .map_err(|e| shape_error(data, parity, e))?;
        }
    }
    for (index, shard) in shards[data..].iter().enumerate() {
        if let Some(shard) = shard {
            decoder
                .add_recovery_shard(index, shard)
                .map_err(|e| shape_error(data, parity, e))?;
        }
    }
    let result = decoder.decode().map_err(|e| shape_error(data, parity, e))?;
    let mut restored: Vec<Option<Vec<u8>>> = shards[..data].to_vec();
    for (index, shard) in result.restored_original_iter() {
        if let Some(slot) = restored.get_mut(index) {
            let len = data_lens[index];
            *slot = Some(shard[..len].to_vec());
        }
    }
    restored
        .into_iter()
        .map(|shard| {
            shard.ok_or(ErasureError::TooFew {
                present,
                needed: data,
            })
        })
        .collect()
}

/// The last erasure group recovered by the opener, and its sealed data
/// chunks not used yet.
pub(crate) struct Recovered {
    group: usize,
    start: usize,
    chunks: Vec<Vec<u8>>,
}

/// Chunk `index` as read, or, when its read failed and the object is
/// erasure-coded, as recovered from its group (recovering the group once).
pub(crate) fn chunk_or_recovered<S: ChunkStore + ?Sized>(
    store: &S,
    object: &ContentId,
    manifest: &Manifest,
    index: usize,
    read: Result<Vec<u8>, StoreError>,
    recovered: &mut Option<Recovered>,
) -> Result<Vec<u8>, StoreError> {
    let err = match read {
        Ok(buf) => return Ok(buf),
        Err(err) => err,
    };
    let Some(group) = manifest.group_of(index) else {
        return Err(err);
    };
    if recovered.as_ref().is_none_or(|r| r.group != group.index) {
        tracing::debug!(%object, chunk = index, group = group.index, %err, "recovering an erasure group");
        let chunks = recover_group(store, object, manifest, &group, &[(index, err)])?;
        *recovered = Some(Recovered {
            group: group.index,
            start: group.data.start,
            chunks,
        });
    }
    let taken = recovered
        .as_mut()
        .and_then(|r| r.chunks.get_mut(index - r.start))
        .map(std::mem::take);
    taken.ok_or(StoreError::ThreadPanicked {
        thread: "erasure recovery",
    })
}

/// One piece of a group: its CID, its length and what it is, for errors.
struct Piece {
    cid: ContentId,
    len: usize,
    name: String,
}

/// The sealed data chunks of `group` of the object `manifest` describes,
/// recovered from its other pieces because the data chunks `failed` (object
/// chunk indexes, with why) could not be read. Every piece used is verified
/// against its CID and length first, and every recovered chunk against its
/// own CID after. Too few pieces is [`StoreError::GroupUnrecoverable`],
/// naming the group, how many pieces were found and why the others failed.
pub fn recover_group<S: ChunkStore + ?Sized>(
    store: &S,
    object: &ContentId,
    manifest: &Manifest,
    group: &ChunkGroup,
    failed: &[(usize, StoreError)],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let lens = manifest.group_lens(group);
    let shard = shard_bytes(&lens);
    let data = manifest.chunks[group.data.clone()]
        .iter()
        .zip(&lens)
        .enumerate()
        .map(|(i, (cid, &len))| Piece {
            cid: *cid,
            len,
            name: format!("data chunk {}", group.data.start + i),
        });
    let parity = manifest.parity_chunks[group.parity.clone()]
        .iter()
        .enumerate()
        .map(|(i, cid)| Piece {
            cid: *cid,
            len: shard,
            name: format!("parity chunk {}", group.parity.start + i),
        });
    let pieces: Vec<Piece> = data.chain(parity).collect();
    let needed = lens.len();
    let mut reasons: Vec<String> = failed
        .iter()
        .map(|(index, err)| format!("data chunk {index}: {err}"))
        .collect();
    let known_bad: Vec<usize> = failed
        .iter()
        .filter_map(|(index, _)| index.checked_sub(group.data.start))
        .collect();
    // Data chunks first (no decoding needed for them), then parity, in order.
    let mut untried = (0..pieces.len()).filter(|p| !known_bad.contains(p));
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; pieces.len()];
    let mut found = 0;
    while found < needed {
        let batch: Vec<usize> = untried.by_ref().take(needed - found).collect();
        if batch.is_empty() {
            return Err(StoreError::GroupUnrecoverable {
                object: *object,
                group: group.index,
                found,
                needed,
                pieces: pieces.len(),
                reasons: reasons.join("; "),
            });
        }
        for (p, fetched) in batch.iter().zip(fetch_pieces(store, &pieces, &batch)) {
            match fetched {
                Ok(bytes) => {
                    shards[*p] = Some(bytes);
                    found += 1;
                }
                Err(reason) => reasons.push(format!("{}: {reason}", pieces[*p].name)),
            }
        }
    }
    let recovered = recover(&lens, &shards).map_err(|source| StoreError::Erasure {
        group: group.index,
        source,
    })?;
    for (chunk, piece) in recovered.iter().zip(&pieces) {
        let actual = ContentId::of(chunk);
        if actual != piece.cid {
            return Err(StoreError::Corrupt {
                cid: piece.cid,
                actual: Some(actual),
                path: None,
                reported: Some(format!(
                    "recovered from erasure group {} of object {object}",
                    group.index
                )),
            });
        }
    }
    tracing::debug!(%object, group = group.index, found, "erasure group recovered");
    Ok(recovered)
}

/// Reads the pieces `which` (at most [`RECOVERY_READS_MAX`] at a time), each
/// checked against its CID and length; an error says why a piece is unusable.
fn fetch_pieces<S: ChunkStore + ?Sized>(
    store: &S,
    pieces: &[Piece],
    which: &[usize],
) -> Vec<Result<Vec<u8>, String>> {
    let fetch = |piece: &Piece| -> Result<Vec<u8>, String> {
        let bytes = store.get(&piece.cid).map_err(|e| e.to_string())?;
        let actual = ContentId::of(&bytes);
        if actual != piece.cid {
            return Err(format!("its bytes hash to {actual}"));
        }
        if bytes.len() != piece.len {
            return Err(format!(
                "it is {} bytes, its group's shards are {}",
                bytes.len(),
                piece.len
            ));
        }
        Ok(bytes)
    };
    let mut out = Vec::with_capacity(which.len());
    for wave in which.chunks(RECOVERY_READS_MAX) {
        if let [only] = wave {
            out.push(fetch(&pieces[*only]));
            continue;
        }
        thread::scope(|scope| {
            let reads: Vec<_> = wave
                .iter()
                .map(|&p| scope.spawn(move || fetch(&pieces[p])))
                .collect();
            for read in reads {
                out.push(
                    read.join()
                        .unwrap_or_else(|_| Err("its read thread panicked".into())),
                );
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chunks(lens: &[usize], seed: u8) -> Vec<Vec<u8>> {
        lens.iter()
            .enumerate()
            .map(|(i, &len)| {
                (0..len)
                    .map(|j| (j as u8).wrapping_mul(31) ^ seed ^ (i as u8))
                    .collect()
            })
            .collect()
    }

    fn all_shards(data: &[Vec<u8>], parity: usize) -> Vec<Option<Vec<u8>>> {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let parity = encode(&refs, parity).unwrap();
        data.iter().cloned().chain(parity).map(Some).collect()
    }

    #[test]
    fn rs_4_2_reads_back_with_any_two_shards_lost() {
        // Uneven lengths, odd ones too: the last chunk of an object is short.
        let data = chunks(&[1000, 1000, 999, 17], 5);
        let shards = all_shards(&data, 2);
        let lens: Vec<usize> = data.iter().map(Vec::len).collect();
        for a in 0..6 {
            for b in a + 1..6 {
                let mut lost = shards.clone();
                lost[a] = None;
                lost[b] = None;
                assert_eq!(recover(&lens, &lost).unwrap(), data, "lost {a} and {b}");
            }
        }
    }

    #[test]
    fn three_lost_of_rs_4_2_is_too_few_and_says_so() {
        let data = chunks(&[64; 4], 1);
        let mut shards = all_shards(&data, 2);
        shards[0] = None;
        shards[3] = None;
        shards[5] = None;
        assert_eq!(
            recover(&[64; 4], &shards),
            Err(ErasureError::TooFew {
                present: 3,
                needed: 4
            })
        );
    }

    #[test]
    fn a_shard_of_the_wrong_length_is_named() {
        let data = chunks(&[64; 4], 1);
        let mut shards = all_shards(&data, 2);
        shards[0] = None;
        shards[4] = Some(vec![0; 10]);
        assert_eq!(
            recover(&[64; 4], &shards),
            Err(ErasureError::ShardLength {
                index: 4,
                len: 10,
                expected: 64
            })
        );
    }

    #[test]
    fn parity_is_a_function_of_the_data() {
        let data = chunks(&[300, 300, 300], 9);
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        assert_eq!(encode(&refs, 2).unwrap(), encode(&refs, 2).unwrap());
        let mut other = data.clone();
        other[1][7] ^= 1;
        let other_refs: Vec<&[u8]> = other.iter().map(Vec::as_slice).collect();
        assert_ne!(encode(&refs, 2).unwrap(), encode(&other_refs, 2).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_data_count_of_the_shards_recovers_the_group(
            lens in prop::collection::vec(1usize..2048, 1..8),
            parity in 1usize..5,
            seed: u8,
            lost_seed: u64,
        ) {
            let data = chunks(&lens, seed);
            let mut shards = all_shards(&data, parity);
            // Lose `parity` shards, chosen by the seed.
            let total = shards.len();
            let mut order: Vec<usize> = (0..total).collect();
            let mut state = lost_seed | 1;
            for i in (1..total).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for &index in &order[..parity] {
                shards[index] = None;
            }
            prop_assert_eq!(recover(&lens, &shards).unwrap(), data);
        }
    }
}

//! Erasure-coded objects through the put and get pipelines: every group's
//! pieces are stored together, once each; an RS(4+2) object reads back
//! byte-identical with any two pieces of every group gone, a corrupt or
//! lying piece is passed over, and three lost pieces of a group are an error
//! that names the group.

// Helpers outside #[test] fns panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

mod common;

use common::FailingReader;
use std::collections::BTreeSet;
use std::sync::Mutex;

use peercloud_store::{
    CHUNK_BYTES_MIN, ChunkInventory, ChunkStore, FsChunkStore, Manifest, MemChunkStore, PutOptions,
    Redundancy, StoreError, VerifiedChunk, delete_object, get_object, put_object,
};
use peercloud_types::{ContentId, Keypair};

/// The smallest chunk keeps the many-object cases fast.
const CHUNK: usize = CHUNK_BYTES_MIN as usize;

/// Deterministic, incompressible-looking test content.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    out
}

fn rs(data: u8, parity: u8) -> PutOptions {
    PutOptions {
        chunk_bytes: CHUNK as u32,
        redundancy: Redundancy::Erasure { data, parity },
        ..PutOptions::default()
    }
}

fn get_bytes<S: ChunkStore + ?Sized>(
    store: &S,
    cid: &ContentId,
    owner: &Keypair,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    get_object(store, cid, &owner.x25519_secret(), &mut out)?;
    Ok(out)
}

/// Each group's pieces: its data chunks, then its parity chunks.
fn pieces(manifest: &Manifest) -> Vec<Vec<ContentId>> {
    (0..manifest.group_count())
        .map(|g| {
            let group = manifest.group(g).unwrap();
            manifest.chunks[group.data]
                .iter()
                .chain(&manifest.parity_chunks[group.parity])
                .copied()
                .collect()
        })
        .collect()
}

#[test]
fn rs_4_2_reads_back_with_any_two_pieces_of_every_group_lost() {
    let owner = Keypair::generate();
    // 11 chunks, the last one short: groups of 4, 4 and 3 data chunks.
    let data = content(10 * CHUNK + 1000, 1);
    for a in 0..6 {
        for b in a + 1..6 {
            let store = MemChunkStore::new();
            let receipt = put_object(&store, &data[..], &owner.public(), &rs(4, 2)).unwrap();
            let manifest = &receipt.manifest;
            assert_eq!(manifest.chunks.len(), 11);
            assert_eq!(manifest.group_count(), 3);
            assert_eq!(manifest.parity_chunks.len(), 6, "two per group");
            // Data, parity and the manifest, each stored once.
            assert_eq!(store.usage().unwrap().chunks, 11 + 6 + 1);
            for group in pieces(manifest) {
                for lost in [a, b] {
                    if let Some(cid) = group.get(lost) {
                        assert!(store.delete(cid).unwrap());
                    }
                }
            }
            let out = get_bytes(&store, &receipt.manifest_cid, &owner)
                .unwrap_or_else(|e| panic!("pieces {a} and {b} of every group lost: {e}"));
            assert!(out == data, "pieces {a} and {b} lost: not the bytes stored");
        }
    }
}

#[test]
fn objects_smaller_than_one_group_and_empty_ones() {
    let owner = Keypair::generate();
    // A group of one data chunk of even sealed length: Reed-Solomon over one
    // shard is replication, so its parity chunks are copies of it (one CID).
    let store = MemChunkStore::new();
    let data = content(CHUNK, 2);
    let receipt = put_object(&store, &data[..], &owner.public(), &rs(4, 2)).unwrap();
    let manifest = &receipt.manifest;
    assert_eq!(manifest.parity_chunks, vec![manifest.chunks[0]; 2]);
    assert!(get_bytes(&store, &receipt.manifest_cid, &owner).unwrap() == data);
    // Odd sealed lengths are padded: then the parity differs from the chunk.
    for (len, chunks) in [(1, 1), (2 * CHUNK + 7, 3), (0, 0)] {
        let store = MemChunkStore::new();
        let data = content(len, 2);
        let receipt = put_object(&store, &data[..], &owner.public(), &rs(4, 2)).unwrap();
        let manifest = &receipt.manifest;
        assert_eq!(manifest.chunks.len(), chunks, "len {len}");
        assert_eq!(manifest.group_count(), chunks.min(1), "len {len}");
        assert_eq!(manifest.parity_chunks.len(), 2 * chunks.min(1), "len {len}");
        // Lose up to two data chunks: the parity alone stands in for them.
        for cid in manifest.chunks.iter().take(2) {
            store.delete(cid).unwrap();
        }
        let out = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap();
        assert!(out == data, "len {len}");
    }
}

#[test]
fn a_corrupt_parity_chunk_is_passed_over_and_a_third_loss_names_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    let owner = Keypair::generate();
    let data = content(8 * CHUNK, 3);
    let receipt = put_object(&store, &data[..], &owner.public(), &rs(4, 2)).unwrap();
    let group = &pieces(&receipt.manifest)[1];

    // Group 1 loses data chunk 5 and its first parity chunk rots on disk:
    // data chunks 4, 6, 7 and the second parity chunk recover it.
    store.delete(&group[1]).unwrap();
    let path = store.chunk_path(&group[4]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    assert!(get_bytes(&store, &receipt.manifest_cid, &owner).unwrap() == data);

    // A third piece of the group gone: 3 of its 6 pieces, 4 needed.
    store.delete(&group[2]).unwrap();
    let err = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap_err();
    match &err {
        StoreError::GroupUnrecoverable {
            object,
            group,
            found,
            needed,
            pieces,
            reasons,
        } => {
            assert_eq!(*object, receipt.manifest_cid);
            assert_eq!((*group, *found, *needed, *pieces), (1, 3, 4, 6));
            assert!(reasons.contains("corrupt"), "{reasons}");
        }
        other => panic!("expected GroupUnrecoverable, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("group 1") && text.contains("3 of its 6"),
        "{text}"
    );
}

/// A memory store that records how its pieces arrived, and answers some
/// reads with wrong bytes (as a broken or hostile remote might).
#[derive(Default)]
struct Recording {
    inner: MemChunkStore,
    groups: Mutex<Vec<Vec<ContentId>>>,
    batches: Mutex<usize>,
    lying: Mutex<BTreeSet<ContentId>>,
}

impl ChunkStore for Recording {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        *self.batches.lock().unwrap() += 1;
        self.inner.put_many(chunks)
    }

    fn put_group(&self, pieces: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let cids = pieces.iter().map(|p| *p.cid()).collect();
        self.groups.lock().unwrap().push(cids);
        self.inner.put_many(pieces)
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.inner.get_into(cid, buf)?;
        if self.lying.lock().unwrap().contains(cid) {
            buf[0] ^= 1;
        }
        Ok(())
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        self.inner.has(cid)
    }
}

#[test]
fn each_group_is_put_whole_and_a_lying_piece_is_caught() {
    let store = Recording::default();
    let owner = Keypair::generate();
    let data = content(9 * CHUNK + 5, 4);
    let receipt = put_object(&store, &data[..], &owner.public(), &rs(4, 2)).unwrap();
    let mut groups = store.groups.lock().unwrap().clone();
    groups.sort();
    let mut expected = pieces(&receipt.manifest);
    expected.sort();
    assert_eq!(
        groups, expected,
        "one put_group per group, data then parity"
    );
    // Only the manifest went through put_many.
    assert_eq!(*store.batches.lock().unwrap(), 1);

    // Data chunk 0 gone, parity chunk 0 comes back wrong: the recovery
    // checks it against its CID and takes parity chunk 1 instead.
    let group = &pieces(&receipt.manifest)[0];
    store.inner.delete(&receipt.manifest.chunks[0]).unwrap();
    store
        .lying
        .lock()
        .unwrap()
        .insert(receipt.manifest.parity_chunks[0]);
    assert!(group.contains(&receipt.manifest.parity_chunks[0]));
    assert!(get_bytes(&store, &receipt.manifest_cid, &owner).unwrap() == data);

    // The second parity chunk lies too: group 0 has 3 good pieces.
    store
        .lying
        .lock()
        .unwrap()
        .insert(receipt.manifest.parity_chunks[1]);
    let err = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::GroupUnrecoverable { group: 0, found: 3, reasons, .. }
                if reasons.contains("hash to")
        ),
        "{err}"
    );
}

#[test]
fn replicated_objects_have_no_parity_and_no_groups() {
    let store = Recording::default();
    let owner = Keypair::generate();
    let options = PutOptions {
        chunk_bytes: CHUNK as u32,
        ..PutOptions::default()
    };
    let receipt = put_object(
        &store,
        &content(5 * CHUNK, 5)[..],
        &owner.public(),
        &options,
    )
    .unwrap();
    assert!(receipt.manifest.parity_chunks.is_empty());
    assert!(store.groups.lock().unwrap().is_empty());
    // A replicated chunk lost is lost: no recovery.
    store.inner.delete(&receipt.manifest.chunks[2]).unwrap();
    let err = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[test]
fn a_failed_put_leaves_no_piece_behind_and_a_delete_takes_the_parity_too() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    // Past the first batch (8 MiB of data), so whole groups were stored.
    let source = FailingReader { good: 9 << 20 };
    let err = put_object(&store, source, &owner.public(), &rs(4, 2)).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert_eq!(store.usage().unwrap().chunks, 0, "data and parity removed");

    let receipt = put_object(
        &store,
        &content(6 * CHUNK, 6)[..],
        &owner.public(),
        &rs(2, 1),
    )
    .unwrap();
    assert_eq!(receipt.manifest.parity_chunks.len(), 3);
    assert_eq!(
        delete_object(&store, &receipt.manifest_cid).unwrap(),
        6 + 3 + 1
    );
    assert_eq!(store.usage().unwrap().chunks, 0);
}

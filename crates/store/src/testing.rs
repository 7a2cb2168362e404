//! The contract every [`ChunkStore`] keeps (and the one a [`ChunkInventory`]
//! adds), as test suites run against each implementation (in this crate's tests; other crates enable the
//! `testing` feature to run it against theirs).
//!
//! Test support: a failed check panics with a message saying which rule broke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peercloud_types::{ContentId, Keypair, NodeId};

use crate::error::StoreError;
use crate::fs::FsChunkStore;
use crate::mem::MemChunkStore;
use crate::store::{ChunkInventory, ChunkPutters, ChunkStore, Released, StoreUsage, VerifiedChunk};

/// A store whose stored bytes a test can damage behind its back, to check
/// that reads catch it and puts repair it.
pub trait Tamper {
    /// Flips one bit of the stored bytes of `cid`.
    fn tamper(&self, cid: &ContentId);
    /// Loses the stored bytes of `cid` while its record stays (a file
    /// deleted behind the store's back; in memory, the bytes emptied).
    fn lose(&self, cid: &ContentId);
    /// Cuts the last byte off the stored bytes of `cid`.
    fn cut(&self, cid: &ContentId);
}

impl Tamper for MemChunkStore {
    fn tamper(&self, cid: &ContentId) {
        let mut inner = self.write();
        let bytes = inner.chunks.get_mut(cid).expect("tampered chunk is stored");
        bytes[0] ^= 1;
    }
    fn lose(&self, cid: &ContentId) {
        let mut inner = self.write();
        inner
            .chunks
            .get_mut(cid)
            .expect("lost chunk is stored")
            .clear();
    }
    fn cut(&self, cid: &ContentId) {
        let mut inner = self.write();
        inner
            .chunks
            .get_mut(cid)
            .expect("cut chunk is stored")
            .pop();
    }
}

impl Tamper for FsChunkStore {
    fn tamper(&self, cid: &ContentId) {
        let path = self.chunk_path(cid);
        let mut bytes = std::fs::read(&path).expect("tampered chunk file exists");
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).expect("tampered chunk file is writable");
    }
    fn lose(&self, cid: &ContentId) {
        std::fs::remove_file(self.chunk_path(cid)).expect("lost chunk file exists");
    }
    fn cut(&self, cid: &ContentId) {
        let path = self.chunk_path(cid);
        let mut bytes = std::fs::read(&path).expect("cut chunk file exists");
        bytes.pop();
        std::fs::write(&path, bytes).expect("cut chunk file is writable");
    }
}

/// Runs the checks every store passes, a local one or the network: a round
/// trip (the empty chunk too), absent chunks are `NotFound`, puts are
/// idempotent, a mismatched CID is refused and stores nothing, a batch puts
/// every chunk. The checks use CIDs of their own, so `make` may hand out the
/// same (shared, non-empty) network each time.
pub fn contract_suite<S: ChunkStore>(make: impl Fn() -> S) {
    round_trip(&make());
    absent_is_not_found(&make());
    idempotent_put(&make());
    refuses_mismatched_cid(&make());
    batches(&make());
}

/// Runs the checks of a store that keeps an inventory, on fresh (empty)
/// stores from `make`: the contract suite, then usage, delete, listing in
/// pages, tampered bytes reported as `Corrupt`, never returned, and lost or
/// cut bytes written again by the next put.
pub fn inventory_suite<S: ChunkInventory + Tamper>(make: impl Fn() -> S) {
    contract_suite(&make);
    counts_what_it_holds(&make());
    has_and_delete(&make());
    counts_a_repeated_put_once(&make());
    refuses_without_counting(&make());
    detects_tampering(&make());
    a_put_rewrites_lost_or_cut_bytes(&make());
    batches_and_lists(&make());
}

/// Runs the checks of a store that holds chunks for other nodes, on fresh
/// (empty) stores from `make`: putters are recorded once each, only a
/// putter may release a chunk and the last one deletes it, a plain delete
/// forgets the putters, and the quota refuses new bytes (never ones stored).
pub fn putters_suite<S: ChunkPutters>(make: impl Fn() -> S) {
    records_and_releases_putters(&make());
    only_a_putter_releases(&make());
    a_plain_delete_forgets_the_putters(&make());
    keeps_within_the_quota(&make());
    a_batch_for_a_putter_is_stored_whole_or_not_at_all(&make());
}

fn node(tag: u8) -> NodeId {
    Keypair::from_seed(&[tag; 32]).node_id()
}

fn a_put_rewrites_lost_or_cut_bytes<S: ChunkInventory + Tamper>(store: &S) {
    let bytes = vec![7u8; 3000];
    let cid = ContentId::of(&bytes);
    let held = StoreUsage {
        chunks: 1,
        bytes: 3000,
    };
    store.put(&cid, &bytes).unwrap();
    store.lose(&cid);
    assert!(store.get(&cid).is_err(), "lost bytes are not read back");
    store.put(&cid, &bytes).unwrap();
    assert_eq!(
        store.get(&cid).unwrap(),
        bytes,
        "a put of a chunk whose bytes were lost writes them again"
    );
    assert_eq!(store.usage().unwrap(), held, "a repair is not a new chunk");

    store.cut(&cid);
    assert!(store.get(&cid).is_err(), "cut bytes are not read back");
    store.put_many(&[VerifiedChunk::new(&bytes)]).unwrap();
    assert_eq!(
        store.get(&cid).unwrap(),
        bytes,
        "cut bytes are written again"
    );
    assert_eq!(store.usage().unwrap(), held);
    assert_eq!(store.list(None, 10).unwrap(), vec![cid]);
}

fn records_and_releases_putters<S: ChunkPutters>(store: &S) {
    let (a, b) = (node(1), node(2));
    let bytes = b"held for two nodes".to_vec();
    let cid = ContentId::of(&bytes);
    let chunk = VerifiedChunk::new(&bytes);
    assert!(store.putters(&cid).unwrap().is_empty());
    store.put_for(&a, chunk, u64::MAX).unwrap();
    store.put_for(&a, chunk, u64::MAX).unwrap();
    store.put_for(&b, chunk, u64::MAX).unwrap();
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(store.putters(&cid).unwrap(), both, "each putter once");
    assert_eq!(
        store.usage().unwrap().chunks,
        1,
        "one chunk, however many putters"
    );

    assert_eq!(
        store.delete_for(&a, &cid).unwrap(),
        Released::Kept { putters_left: 1 },
        "another node still wants it"
    );
    assert_eq!(store.get(&cid).unwrap(), bytes, "kept for the other putter");
    assert_eq!(store.putters(&cid).unwrap(), vec![b]);
    assert_eq!(store.delete_for(&b, &cid).unwrap(), Released::Deleted);
    assert!(
        !store.has(&cid).unwrap(),
        "the last putter's release deletes it"
    );
    assert_eq!(store.usage().unwrap(), StoreUsage::default());
    assert!(store.putters(&cid).unwrap().is_empty());
}

fn only_a_putter_releases<S: ChunkPutters>(store: &S) {
    let (putter, stranger) = (node(1), node(3));
    let bytes = b"put by one node".to_vec();
    let cid = ContentId::of(&bytes);
    let err = store.delete_for(&putter, &cid).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { cid: c } if c == cid),
        "{err}"
    );
    store
        .put_for(&putter, VerifiedChunk::new(&bytes), u64::MAX)
        .unwrap();
    let err = store.delete_for(&stranger, &cid).unwrap_err();
    assert!(
        matches!(err, StoreError::NotPutter { cid: c, node } if c == cid && node == stranger),
        "{err}"
    );
    assert_eq!(
        store.get(&cid).unwrap(),
        bytes,
        "a refused delete changes nothing"
    );
    assert_eq!(store.putters(&cid).unwrap(), vec![putter]);
    // A chunk stored by a plain put has no putters: no node may release it.
    let plain = b"stored by the node itself".to_vec();
    let plain_cid = ContentId::of(&plain);
    store.put(&plain_cid, &plain).unwrap();
    assert!(matches!(
        store.delete_for(&putter, &plain_cid),
        Err(StoreError::NotPutter { .. })
    ));
    assert!(store.has(&plain_cid).unwrap());
}

fn a_plain_delete_forgets_the_putters<S: ChunkPutters>(store: &S) {
    let putter = node(1);
    let bytes = b"deleted by the operator".to_vec();
    let cid = ContentId::of(&bytes);
    store
        .put_for(&putter, VerifiedChunk::new(&bytes), u64::MAX)
        .unwrap();
    assert!(store.delete(&cid).unwrap());
    assert!(store.putters(&cid).unwrap().is_empty());
    store.put(&cid, &bytes).unwrap();
    assert!(
        store.putters(&cid).unwrap().is_empty(),
        "a chunk put again starts with no putters"
    );
}

fn keeps_within_the_quota<S: ChunkPutters>(store: &S) {
    let (a, b) = (node(1), node(2));
    let first = vec![1u8; 600];
    let second = vec![2u8; 500];
    store.put_for(&a, VerifiedChunk::new(&first), 1000).unwrap();
    let err = store
        .put_for(&a, VerifiedChunk::new(&second), 1000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                chunk_bytes: 500,
                used_bytes: 600,
                quota_bytes: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !store.has(&ContentId::of(&second)).unwrap(),
        "nothing written"
    );
    assert_eq!(
        store.usage().unwrap(),
        StoreUsage {
            chunks: 1,
            bytes: 600
        }
    );
    // A chunk already here costs nothing: another putter is recorded even
    // with no room left.
    store.put_for(&b, VerifiedChunk::new(&first), 600).unwrap();
    assert_eq!(store.putters(&ContentId::of(&first)).unwrap().len(), 2);
    // Exactly full fits.
    store
        .put_for(&a, VerifiedChunk::new(&second[..400]), 1000)
        .unwrap();
    assert_eq!(store.used_bytes().unwrap(), 1000);
}

fn a_batch_for_a_putter_is_stored_whole_or_not_at_all<S: ChunkPutters>(store: &S) {
    let (a, b) = (node(1), node(2));
    let held = vec![1u8; 300];
    store.put_for(&b, VerifiedChunk::new(&held), 1000).unwrap();
    // 300 held + 400 + 400 new > 1000: the whole batch is refused, even the
    // chunk that alone would fit, and the chunk already held gains no putter.
    let (x, y) = (vec![2u8; 400], vec![3u8; 400]);
    let batch = [
        VerifiedChunk::new(&held),
        VerifiedChunk::new(&x),
        VerifiedChunk::new(&y),
    ];
    let err = store.put_many_for(&a, &batch, 1000).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                chunk_bytes: 400,
                used_bytes: 700,
                quota_bytes: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(!store.has(&ContentId::of(&x)).unwrap());
    assert!(!store.has(&ContentId::of(&y)).unwrap());
    assert_eq!(store.putters(&ContentId::of(&held)).unwrap(), vec![b]);
    assert_eq!(store.used_bytes().unwrap(), 300);
    // Within the quota (a chunk twice in the batch counts once), all are
    // stored and claimed by `a`.
    let batch = [
        VerifiedChunk::new(&held),
        VerifiedChunk::new(&x),
        VerifiedChunk::new(&x),
    ];
    store.put_many_for(&a, &batch, 700).unwrap();
    assert_eq!(store.used_bytes().unwrap(), 700);
    assert_eq!(store.get(&ContentId::of(&x)).unwrap(), x);
    for cid in [ContentId::of(&held), ContentId::of(&x)] {
        assert!(store.putters(&cid).unwrap().contains(&a), "{cid}");
    }
}

fn round_trip<S: ChunkStore>(store: &S) {
    let bytes = b"a sealed chunk".to_vec();
    let cid = ContentId::of(&bytes);
    store.put(&cid, &bytes).unwrap();
    assert_eq!(store.get(&cid).unwrap(), bytes, "round trip");
    let mut buf = vec![9; 3];
    store.get_into(&cid, &mut buf).unwrap();
    assert_eq!(buf, bytes, "get_into replaces the buffer's content");
    let empty = ContentId::of(b"");
    store.put(&empty, b"").unwrap();
    assert_eq!(store.get(&empty).unwrap(), b"", "empty chunk round trip");
    assert!(store.has(&cid).unwrap() && store.has(&empty).unwrap());
}

fn absent_is_not_found<S: ChunkStore>(store: &S) {
    let cid = ContentId::of(b"never stored anywhere, by any test");
    assert!(!store.has(&cid).unwrap());
    let err = store.get(&cid).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { cid: c } if c == cid),
        "{err}"
    );
}

fn counts_what_it_holds<S: ChunkInventory>(store: &S) {
    let bytes = b"a sealed chunk".to_vec();
    store.put(&ContentId::of(&bytes), &bytes).unwrap();
    store.put(&ContentId::of(b""), b"").unwrap();
    assert_eq!(
        store.usage().unwrap(),
        StoreUsage {
            chunks: 2,
            bytes: bytes.len() as u64
        }
    );
}

fn has_and_delete<S: ChunkInventory>(store: &S) {
    let cid = ContentId::of(b"delete me");
    assert!(!store.has(&cid).unwrap());
    assert!(matches!(store.get(&cid), Err(StoreError::NotFound { cid: c }) if c == cid));
    store.put(&cid, b"delete me").unwrap();
    assert!(store.has(&cid).unwrap());
    assert!(
        store.delete(&cid).unwrap(),
        "delete reports a present chunk"
    );
    assert!(!store.has(&cid).unwrap());
    assert!(
        !store.delete(&cid).unwrap(),
        "delete reports an absent chunk"
    );
    assert!(matches!(store.get(&cid), Err(StoreError::NotFound { .. })));
    assert_eq!(store.usage().unwrap(), StoreUsage::default());
    store.put(&cid, b"delete me").unwrap();
    assert_eq!(
        store.get(&cid).unwrap(),
        b"delete me",
        "a deleted chunk can come back"
    );
}

fn idempotent_put<S: ChunkStore>(store: &S) {
    let cid = ContentId::of(b"twice");
    store.put(&cid, b"twice").unwrap();
    store.put(&cid, b"twice").unwrap();
    let chunk = VerifiedChunk::new(b"twice");
    store.put_many(&[chunk, chunk]).unwrap();
    assert_eq!(store.get(&cid).unwrap(), b"twice");
}

fn counts_a_repeated_put_once<S: ChunkInventory>(store: &S) {
    let cid = ContentId::of(b"twice");
    let chunk = VerifiedChunk::new(b"twice");
    store.put_many(&[chunk, chunk]).unwrap();
    store.put(&cid, b"twice").unwrap();
    assert_eq!(
        store.usage().unwrap(),
        StoreUsage {
            chunks: 1,
            bytes: 5
        },
        "counted once"
    );
    assert_eq!(store.list(None, 10).unwrap(), vec![cid]);
}

fn refuses_mismatched_cid<S: ChunkStore>(store: &S) {
    let cid = ContentId::of(b"the real bytes");
    let err = store.put(&cid, b"other bytes").unwrap_err();
    assert!(
        matches!(err, StoreError::CidMismatch { cid: c, actual } if c == cid && actual == ContentId::of(b"other bytes")),
        "{err}"
    );
    assert!(!store.has(&cid).unwrap(), "a refused put stores nothing");
    assert!(!store.has(&ContentId::of(b"other bytes")).unwrap());
}

fn refuses_without_counting<S: ChunkInventory>(store: &S) {
    let cid = ContentId::of(b"the real bytes");
    assert!(store.put(&cid, b"other bytes").is_err());
    assert_eq!(store.usage().unwrap(), StoreUsage::default());
}

fn detects_tampering<S: ChunkInventory + Tamper>(store: &S) {
    let bytes = vec![42u8; 1000];
    let cid = ContentId::of(&bytes);
    store.put(&cid, &bytes).unwrap();
    store.tamper(&cid);
    let mut buf = Vec::new();
    let err = store.get_into(&cid, &mut buf).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { cid: c, .. } if c == cid),
        "{err}"
    );
    assert!(buf.is_empty(), "corrupt bytes are never handed out");
    assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { .. })));
    // A put skips a chunk that is recorded and whose bytes are there at
    // their length, which a flipped bit keeps; so the repair of a corrupt
    // chunk is a delete followed by a put.
    assert!(store.delete(&cid).unwrap());
    store.put(&cid, &bytes).unwrap();
    assert_eq!(store.get(&cid).unwrap(), bytes);
}

fn batch_blobs() -> Vec<Vec<u8>> {
    (0u32..50)
        .map(|i| i.to_le_bytes().repeat(i as usize + 1))
        .collect()
}

fn batches<S: ChunkStore>(store: &S) {
    let blobs = batch_blobs();
    let chunks: Vec<VerifiedChunk<'_>> = blobs.iter().map(|b| VerifiedChunk::new(b)).collect();
    store.put_many(&chunks).unwrap();
    for (blob, chunk) in blobs.iter().zip(&chunks) {
        assert_eq!(
            &store.get(chunk.cid()).unwrap(),
            blob,
            "every chunk of a batch"
        );
    }
}

fn batches_and_lists<S: ChunkInventory>(store: &S) {
    let blobs = batch_blobs();
    let chunks: Vec<VerifiedChunk<'_>> = blobs.iter().map(|b| VerifiedChunk::new(b)).collect();
    store.put_many(&chunks).unwrap();
    let mut expected: Vec<ContentId> = chunks.iter().map(|c| *c.cid()).collect();
    expected.sort();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(after.as_ref(), 7).unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last().copied() else {
            break;
        };
        listed.extend(page);
        after = Some(last);
    }
    assert_eq!(listed, expected, "pages cover every chunk once, in order");
    let bytes: u64 = blobs.iter().map(|b| b.len() as u64).sum();
    assert_eq!(store.usage().unwrap(), StoreUsage { chunks: 50, bytes });
    assert_eq!(store.used_bytes().unwrap(), bytes);
    for (blob, chunk) in blobs.iter().zip(&chunks) {
        assert_eq!(&store.get(chunk.cid()).unwrap(), blob);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_contract() {
        inventory_suite(MemChunkStore::new);
        putters_suite(MemChunkStore::new);
    }

    #[test]
    fn file_store_keeps_the_contract() {
        let dirs = std::cell::RefCell::new(Vec::new());
        let make = || {
            let dir = tempfile::tempdir().unwrap();
            let store = FsChunkStore::open(dir.path()).unwrap();
            dirs.borrow_mut().push(dir);
            store
        };
        inventory_suite(make);
        putters_suite(make);
    }

    #[test]
    fn file_store_keeps_its_putters_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"survives a restart".to_vec();
        let cid = ContentId::of(&bytes);
        {
            let store = FsChunkStore::open(dir.path()).unwrap();
            store
                .put_for(&node(1), VerifiedChunk::new(&bytes), u64::MAX)
                .unwrap();
        }
        let store = FsChunkStore::open(dir.path()).unwrap();
        assert_eq!(store.putters(&cid).unwrap(), vec![node(1)]);
        assert_eq!(store.delete_for(&node(1), &cid).unwrap(), Released::Deleted);
        assert!(
            !store.chunk_path(&cid).exists(),
            "the file went with the last putter"
        );
    }
}

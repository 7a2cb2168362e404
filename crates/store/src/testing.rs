//! The contract every [`ChunkStore`] keeps (and the one a [`ChunkInventory`]
//! adds), as test suites run against each implementation (in this crate's tests; other crates enable the
//! `testing` feature to run it against theirs).
//!
//! Test support: a failed check panics with a message saying which rule broke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peercloud_types::ContentId;

use crate::error::StoreError;
use crate::fs::FsChunkStore;
use crate::mem::MemChunkStore;
use crate::store::{ChunkInventory, ChunkStore, StoreUsage, VerifiedChunk};

/// A store whose stored bytes a test can damage, to check that reads catch it.
pub trait Tamper {
    /// Flips one bit of the stored bytes of `cid`.
    fn tamper(&self, cid: &ContentId);
}

impl Tamper for MemChunkStore {
    fn tamper(&self, cid: &ContentId) {
        let mut inner = self.write();
        let bytes = inner.chunks.get_mut(cid).expect("tampered chunk is stored");
        bytes[0] ^= 1;
    }
}

impl Tamper for FsChunkStore {
    fn tamper(&self, cid: &ContentId) {
        let path = self.chunk_path(cid);
        let mut bytes = std::fs::read(&path).expect("tampered chunk file exists");
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).expect("tampered chunk file is writable");
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
/// pages, and tampered bytes reported as `Corrupt`, never returned.
pub fn inventory_suite<S: ChunkInventory + Tamper>(make: impl Fn() -> S) {
    contract_suite(&make);
    counts_what_it_holds(&make());
    has_and_delete(&make());
    counts_a_repeated_put_once(&make());
    refuses_without_counting(&make());
    detects_tampering(&make());
    batches_and_lists(&make());
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
    // A put skips a chunk that is already recorded, so the repair of a
    // corrupt chunk is a delete followed by a put.
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
    }

    #[test]
    fn file_store_keeps_the_contract() {
        let dirs = std::cell::RefCell::new(Vec::new());
        inventory_suite(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = FsChunkStore::open(dir.path()).unwrap();
            dirs.borrow_mut().push(dir);
            store
        });
    }
}

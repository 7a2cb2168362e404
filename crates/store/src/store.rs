//! The [`ChunkStore`] trait: a local, content-addressed store of sealed chunks.
//!
//! [`ChunkStore`] is what every store does (put, get); [`ChunkInventory`] is
//! what a store that knows its contents adds (list, delete, usage). Two rules
//! hold for every implementation, and `testing::contract_suite` checks both
//! against each one:
//!
//! - **Nothing enters under a wrong name.** Bytes reach a store only as a
//!   [`VerifiedChunk`], whose CID was computed from (or checked against) its
//!   bytes (outside this crate there is no other way to make one);
//!   [`ChunkStore::put`] refuses bytes that do not hash to the CID offered.
//! - **Nothing leaves unverified.** Every read hashes the bytes it returns;
//!   a mismatch is [`StoreError::Corrupt`] and the bytes are dropped.
//!
//! A store that holds chunks for other nodes is a [`ChunkPutters`]: it
//! records which nodes put each chunk, keeps within a byte quota, and lets
//! a chunk go only when the last node that put it releases it.
//!
//! Writes are batched ([`ChunkStore::put_many`]) because durability costs one
//! fsync per file, one per directory and one per metadata commit; a batch
//! shares the directory and commit costs. A put returns only once the chunk
//! is durable.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use peercloud_types::{ContentId, Kind, NodeId, Versioned};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Most CIDs one [`ChunkStore::list`] call returns: 64 Ki CIDs are 2 MiB,
/// enough to page through millions of chunks without holding them all.
pub const LIST_PAGE_MAX: usize = 1 << 16;

/// A chunk whose CID is known to be the BLAKE3 of its bytes.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedChunk<'a> {
    cid: ContentId,
    bytes: &'a [u8],
}

impl<'a> VerifiedChunk<'a> {
    /// Hashes `bytes` to name them.
    pub fn new(bytes: &'a [u8]) -> Self {
        VerifiedChunk {
            cid: ContentId::of(bytes),
            bytes,
        }
    }

    /// Checks that `bytes` hash to `cid` (chunks received from other nodes).
    pub fn check(cid: &ContentId, bytes: &'a [u8]) -> Result<Self, StoreError> {
        let actual = ContentId::of(bytes);
        if actual != *cid {
            return Err(StoreError::CidMismatch { cid: *cid, actual });
        }
        Ok(VerifiedChunk { cid: actual, bytes })
    }

    /// For the put pipeline, which computed `cid` from these very bytes a
    /// moment earlier on another thread; hashing again would cost a third
    /// BLAKE3 pass per byte on the writer threads, which must stay lean to
    /// keep the disk busy (measured: ~15% of put throughput).
    pub(crate) fn already_hashed(cid: ContentId, bytes: &'a [u8]) -> Self {
        debug_assert!(
            cid.matches(bytes),
            "pipeline passed a CID that does not match its bytes"
        );
        VerifiedChunk { cid, bytes }
    }

    /// The chunk's CID.
    pub fn cid(&self) -> &ContentId {
        &self.cid
    }

    /// The chunk's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// What a store keeps about each chunk besides its bytes (persisted, versioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    /// The chunk's size in bytes.
    pub size_bytes: u64,
}

impl Versioned for ChunkMeta {
    const KIND: u8 = Kind::ChunkMeta as u8;
    const VERSION: u8 = 1;
}

/// How much a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Number of chunks.
    pub chunks: u64,
    /// Sum of the chunks' sizes in bytes (file-system overhead not counted).
    pub bytes: u64,
}

/// A store of chunks named by their BLAKE3 CID: a disk, memory, the network
/// as one node reaches it, or the network through a node's API. What every
/// store does is put and get; a store that keeps its own inventory (a disk,
/// memory) is also a [`ChunkInventory`]. Shared between threads.
pub trait ChunkStore: Send + Sync {
    /// Stores every chunk durably; returns only when all of them are on
    /// stable storage (for a network store: on every replica; an
    /// erasure-coded object's pieces go through [`ChunkStore::put_group`]). Chunks
    /// already present are skipped (puts are idempotent) once a cheap check
    /// finds their bytes still there at their length; a chunk whose bytes
    /// were lost or cut short behind the store's back is written again. On
    /// error no partial chunk is left behind.
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError>;

    /// Stores the pieces (data and parity chunks) of one erasure group: one
    /// copy of each, and for a store that spans nodes each piece on a
    /// distinct node, so losing a node costs the group one piece at most.
    /// Returns once every piece is durable. A store on one disk or in
    /// memory has one place to put anything: by default this is
    /// [`ChunkStore::put_many`].
    fn put_group(&self, pieces: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        self.put_many(pieces)
    }

    /// Reads the chunk into `buf` (cleared first, its allocation reused) and
    /// verifies its hash.
    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError>;

    /// Reads a sealed chunk that the caller authenticates itself before it
    /// uses a byte of it (an AEAD tag under the object's key, bound to the
    /// chunk's index): a store whose bytes come through a link it trusts (a
    /// user's own node, which verified every chunk it answers) may skip
    /// hashing them a second time. Wrong bytes still never reach the
    /// caller's output: the seal does not open. By default this is
    /// [`ChunkStore::get_into`].
    fn get_sealed_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.get_into(cid, buf)
    }

    /// Whether the chunk is stored.
    fn has(&self, cid: &ContentId) -> Result<bool, StoreError>;

    /// Told that chunks a failed put wrote are referenced by nothing (they
    /// were sealed under a key drawn for that put alone): a store with an
    /// inventory removes them, the network store as a node reaches it asks
    /// their holders to release them. Best effort (the put's own error is
    /// what the caller sees), so it does nothing by default.
    fn abandon(&self, cids: &[ContentId]) {
        let _ = cids;
    }

    /// How many chunk reads a get should keep in flight at once: 1 for a
    /// local disk (one reader ahead of decryption is enough), more for a store
    /// whose reads wait on a network round trip.
    fn read_parallelism(&self) -> usize {
        1
    }

    /// Stores `bytes` under `cid`, refusing them with [`StoreError::CidMismatch`]
    /// when they do not hash to it.
    fn put(&self, cid: &ContentId, bytes: &[u8]) -> Result<(), StoreError> {
        let chunk = VerifiedChunk::check(cid, bytes)?;
        self.put_many(&[chunk])
    }

    /// Reads and verifies the chunk.
    fn get(&self, cid: &ContentId) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        self.get_into(cid, &mut buf)?;
        Ok(buf)
    }
}

/// A store that knows what it holds: it can list, count and delete its
/// chunks. Local stores are; the network seen from one client is not.
pub trait ChunkInventory: ChunkStore {
    /// Removes the chunk; returns whether it was there.
    fn delete(&self, cid: &ContentId) -> Result<bool, StoreError>;

    /// Up to `limit` (at most [`LIST_PAGE_MAX`]) stored CIDs in ascending order,
    /// starting after `after` (from the first when `None`).
    fn list(&self, after: Option<&ContentId>, limit: usize) -> Result<Vec<ContentId>, StoreError>;

    /// The number of chunks and bytes stored.
    fn usage(&self) -> Result<StoreUsage, StoreError>;

    /// Bytes stored (sum of chunk sizes).
    fn used_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.usage()?.bytes)
    }
}

/// What [`ChunkPutters::delete_for`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The putter was the last one: the chunk is gone.
    Deleted,
    /// Other nodes put the chunk too: only this putter's record went.
    Kept {
        /// Putters still recorded.
        putters_left: u64,
    },
}

/// A store that holds chunks for other nodes: it records which nodes put
/// each chunk (its putters), keeps within a byte quota, and removes a chunk
/// only when the last of its putters releases it. A node's own disk is one.
pub trait ChunkPutters: ChunkInventory {
    /// Stores `chunk` for `putter` and records `putter` among its putters.
    /// A chunk not stored yet is refused with [`StoreError::QuotaExceeded`]
    /// (nothing written) when it would take the bytes stored past
    /// `quota_bytes`; a chunk already stored costs nothing more.
    fn put_for(
        &self,
        putter: &NodeId,
        chunk: VerifiedChunk<'_>,
        quota_bytes: u64,
    ) -> Result<(), StoreError> {
        self.put_many_for(putter, &[chunk], quota_bytes)
    }

    /// [`ChunkPutters::put_for`] of several chunks at once (a batch put):
    /// all are stored and claimed, or none is (the new ones together must
    /// fit in `quota_bytes`).
    fn put_many_for(
        &self,
        putter: &NodeId,
        chunks: &[VerifiedChunk<'_>],
        quota_bytes: u64,
    ) -> Result<(), StoreError>;

    /// `putter` no longer needs the chunk: its record goes, and the chunk
    /// with it when no other putter is left. [`StoreError::NotFound`] when
    /// the chunk is not here, [`StoreError::NotPutter`] when `putter` never
    /// put it (nothing changes then).
    fn delete_for(&self, putter: &NodeId, cid: &ContentId) -> Result<Released, StoreError>;

    /// The nodes that put the chunk, ascending (empty when it is absent, or
    /// was stored by a plain [`ChunkStore::put`]).
    fn putters(&self, cid: &ContentId) -> Result<Vec<NodeId>, StoreError>;
}

/// Erasure groups of one batch stored at once: a network store's group put
/// waits on as many nodes as the group has pieces, so a few overlap those
/// waits (four RS(4+2) groups keep 24 transfers in flight), while a batch of
/// many small groups still runs on a bounded number of threads.
pub const GROUP_PUTS_IN_FLIGHT: usize = 4;

/// Stores one batch of the put pipeline: all at once for replicas; group by
/// group for an erasure-coded object (`groups` holds each group's length),
/// up to [`GROUP_PUTS_IN_FLIGHT`] groups at once. The first error is returned.
pub(crate) fn put_batch<S: ChunkStore + ?Sized>(
    store: &S,
    chunks: &[VerifiedChunk<'_>],
    groups: &[usize],
) -> Result<(), StoreError> {
    let mut slices = Vec::with_capacity(groups.len());
    let mut rest = chunks;
    for &len in groups {
        let (group, after) = rest.split_at(len.min(rest.len()));
        slices.push(group);
        rest = after;
    }
    match slices.as_slice() {
        [] => store.put_many(chunks),
        [only] => store.put_group(only),
        _ => {
            let next = AtomicUsize::new(0);
            let failed = AtomicBool::new(false);
            let worker = || {
                while !failed.load(Ordering::Relaxed) {
                    let Some(group) = slices.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(err) = store.put_group(group) {
                        failed.store(true, Ordering::Relaxed);
                        return Err(err);
                    }
                }
                Ok(())
            };
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..slices.len().min(GROUP_PUTS_IN_FLIGHT))
                    .map(|_| scope.spawn(worker))
                    .collect();
                let mut first = Ok(());
                for handle in workers {
                    let result = handle.join().unwrap_or(Err(StoreError::ThreadPanicked {
                        thread: "chunk group writer",
                    }));
                    first = first.and(result);
                }
                first
            })
        }
    }
}

/// Verifies bytes read back from a store.
pub(crate) fn verify_read(
    cid: &ContentId,
    bytes: &[u8],
    path: Option<&std::path::Path>,
) -> Result<(), StoreError> {
    let actual = ContentId::of(bytes);
    if actual != *cid {
        return Err(StoreError::Corrupt {
            cid: *cid,
            actual: Some(actual),
            path: path.map(Into::into),
            reported: None,
        });
    }
    Ok(())
}

//! [`MemChunkStore`]: chunks in a `BTreeMap` behind a lock. For tests, caches
//! and nodes that store nothing durable. It follows the same contract as the
//! disk store, reads included: every `get` re-hashes the bytes, and a put of a
//! chunk whose stored bytes differ from the chunk's (damaged in place) stores
//! them again.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use peercloud_types::{ContentId, NodeId};

use crate::error::StoreError;
use crate::store::{
    ChunkInventory, ChunkPutters, ChunkStore, LIST_PAGE_MAX, Released, StoreUsage, VerifiedChunk,
    verify_read,
};

/// An in-memory chunk store.
#[derive(Debug, Default)]
pub struct MemChunkStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) chunks: BTreeMap<ContentId, Vec<u8>>,
    /// The nodes that put each chunk (only chunks put with `put_for`).
    putters: BTreeMap<ContentId, BTreeSet<NodeId>>,
    bytes: u64,
}

impl Inner {
    /// Stores the chunk unless the very bytes are there already; returns
    /// the bytes it added to the total.
    fn store(&mut self, chunk: &VerifiedChunk<'_>) -> u64 {
        let bytes = chunk.bytes();
        match self.chunks.get_mut(chunk.cid()) {
            Some(stored) if stored.as_slice() == bytes => 0,
            Some(stored) => {
                // Damaged in place: the size counted is the chunk's, already in.
                stored.clear();
                stored.extend_from_slice(bytes);
                0
            }
            None => {
                self.chunks.insert(*chunk.cid(), bytes.to_vec());
                self.bytes += bytes.len() as u64;
                bytes.len() as u64
            }
        }
    }

    fn remove(&mut self, cid: &ContentId) -> bool {
        self.putters.remove(cid);
        match self.chunks.remove(cid) {
            Some(bytes) => {
                self.bytes -= bytes.len() as u64;
                true
            }
            None => false,
        }
    }
}

impl MemChunkStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave the map half-updated (every
    // update is one insert or remove plus a counter), so a poisoned lock's data
    // is still sound and we keep using it.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChunkStore for MemChunkStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let mut inner = self.write();
        for chunk in chunks {
            inner.store(chunk);
        }
        Ok(())
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        buf.clear();
        {
            let inner = self.read();
            let bytes = inner
                .chunks
                .get(cid)
                .ok_or(StoreError::NotFound { cid: *cid })?;
            buf.extend_from_slice(bytes);
        }
        if let Err(err) = verify_read(cid, buf, None) {
            buf.clear();
            return Err(err);
        }
        Ok(())
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        Ok(self.read().chunks.contains_key(cid))
    }

    fn abandon(&self, cids: &[ContentId]) {
        for cid in cids {
            // A memory store's delete cannot fail.
            let _ = self.delete(cid);
        }
    }
}

impl ChunkInventory for MemChunkStore {
    fn delete(&self, cid: &ContentId) -> Result<bool, StoreError> {
        Ok(self.write().remove(cid))
    }
    fn list(&self, after: Option<&ContentId>, limit: usize) -> Result<Vec<ContentId>, StoreError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let inner = self.read();
        Ok(inner
            .chunks
            .range((start, Bound::Unbounded))
            .take(limit.min(LIST_PAGE_MAX))
            .map(|(cid, _)| *cid)
            .collect())
    }
    fn usage(&self) -> Result<StoreUsage, StoreError> {
        let inner = self.read();
        Ok(StoreUsage {
            chunks: inner.chunks.len() as u64,
            bytes: inner.bytes,
        })
    }
}

impl ChunkPutters for MemChunkStore {
    fn put_many_for(
        &self,
        putter: &NodeId,
        chunks: &[VerifiedChunk<'_>],
        quota_bytes: u64,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        let mut adding = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for chunk in chunks {
            let chunk_bytes = chunk.bytes().len() as u64;
            if inner.chunks.contains_key(chunk.cid()) || !seen.insert(*chunk.cid()) {
                continue;
            }
            if inner.bytes + adding + chunk_bytes > quota_bytes {
                return Err(StoreError::QuotaExceeded {
                    cid: *chunk.cid(),
                    chunk_bytes,
                    used_bytes: inner.bytes + adding,
                    quota_bytes,
                });
            }
            adding += chunk_bytes;
        }
        for chunk in chunks {
            inner.store(chunk);
            inner
                .putters
                .entry(*chunk.cid())
                .or_default()
                .insert(*putter);
        }
        Ok(())
    }

    fn delete_for(&self, putter: &NodeId, cid: &ContentId) -> Result<Released, StoreError> {
        let mut inner = self.write();
        if !inner.chunks.contains_key(cid) {
            return Err(StoreError::NotFound { cid: *cid });
        }
        let released = inner
            .putters
            .get_mut(cid)
            .filter(|putters| putters.contains(putter))
            .map(|putters| {
                putters.remove(putter);
                putters.len() as u64
            });
        let Some(left) = released else {
            return Err(StoreError::NotPutter {
                cid: *cid,
                node: *putter,
            });
        };
        if left > 0 {
            return Ok(Released::Kept { putters_left: left });
        }
        inner.remove(cid);
        Ok(Released::Deleted)
    }

    fn putters(&self, cid: &ContentId) -> Result<Vec<NodeId>, StoreError> {
        Ok(self
            .read()
            .putters
            .get(cid)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default())
    }
}

//! [`MemChunkStore`]: chunks in a `BTreeMap` behind a lock. For tests, caches
//! and nodes that store nothing durable. It follows the same contract as the
//! disk store, reads included: every `get` re-hashes the bytes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use peercloud_types::ContentId;

use crate::error::StoreError;
use crate::store::{
    ChunkInventory, ChunkStore, LIST_PAGE_MAX, StoreUsage, VerifiedChunk, verify_read,
};

/// An in-memory chunk store.
#[derive(Debug, Default)]
pub struct MemChunkStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) chunks: BTreeMap<ContentId, Vec<u8>>,
    bytes: u64,
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
            if !inner.chunks.contains_key(chunk.cid()) {
                inner.chunks.insert(*chunk.cid(), chunk.bytes().to_vec());
                inner.bytes += chunk.bytes().len() as u64;
            }
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
        let mut inner = self.write();
        match inner.chunks.remove(cid) {
            Some(bytes) => {
                inner.bytes -= bytes.len() as u64;
                Ok(true)
            }
            None => Ok(false),
        }
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

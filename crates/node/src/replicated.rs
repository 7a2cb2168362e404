//! A [`ChunkStore`] over the providers' stores: every chunk is placed on the
//! nodes that rendezvous hashing picks for its CID (3 by default, distinct
//! owners first) and read back from the first replica that has it intact.
//!
//! This is the storage half of the grid as one process sees it: writes land on
//! every replica before they are acknowledged, and a read survives a missing or
//! corrupted replica (the bad one is skipped, its error logged).

use std::sync::Arc;

use peercloud_store::{
    ChunkStore, PlacementNode, StoreError, StoreUsage, VerifiedChunk, place, store::LIST_PAGE_MAX,
};
use peercloud_types::ContentId;

/// One storage node: its placement identity and its local store.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Node and owner, for placement.
    pub placement: PlacementNode,
    /// The node's chunk store.
    pub store: Arc<dyn ChunkStoreDebug>,
}

/// A chunk store that can be printed (all ours can).
pub trait ChunkStoreDebug: ChunkStore + std::fmt::Debug {}
impl<T: ChunkStore + std::fmt::Debug> ChunkStoreDebug for T {}

/// Chunks spread over replicas by placement.
#[derive(Debug, Clone)]
pub struct ReplicatedStore {
    replicas: Vec<Replica>,
    copies: usize,
}

impl ReplicatedStore {
    /// A store writing `copies` replicas of each chunk over `replicas`.
    pub fn new(replicas: Vec<Replica>, copies: usize) -> Self {
        ReplicatedStore { replicas, copies }
    }

    /// The replicas holding `cid`, best first.
    pub fn holders(&self, cid: &ContentId) -> Vec<&Replica> {
        let nodes: Vec<PlacementNode> = self.replicas.iter().map(|r| r.placement).collect();
        place(cid, &nodes, self.copies)
            .into_iter()
            .filter_map(|p| self.replicas.iter().find(|r| r.placement.node == p.node))
            .collect()
    }
}

impl ChunkStore for ReplicatedStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        // Place each chunk once, then hand every replica its share in one batch.
        let mut shares: Vec<Vec<VerifiedChunk<'_>>> = vec![Vec::new(); self.replicas.len()];
        for chunk in chunks {
            for holder in self.holders(chunk.cid()) {
                if let Some(i) = self
                    .replicas
                    .iter()
                    .position(|r| r.placement.node == holder.placement.node)
                {
                    shares[i].push(*chunk);
                }
            }
        }
        for (replica, share) in self.replicas.iter().zip(&shares) {
            if !share.is_empty() {
                replica.store.put_many(share)?;
            }
        }
        Ok(())
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let mut last = StoreError::NotFound { cid: *cid };
        for holder in self.holders(cid) {
            match holder.store.get_into(cid, buf) {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::warn!(node = %holder.placement.node, %cid, %err, "replica unusable, trying the next");
                    last = err;
                }
            }
        }
        Err(last)
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        for holder in self.holders(cid) {
            if holder.store.has(cid)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn delete(&self, cid: &ContentId) -> Result<bool, StoreError> {
        let mut any = false;
        for holder in self.holders(cid) {
            any |= holder.store.delete(cid)?;
        }
        Ok(any)
    }

    fn list(&self, after: Option<&ContentId>, limit: usize) -> Result<Vec<ContentId>, StoreError> {
        let limit = limit.min(LIST_PAGE_MAX);
        let mut all = std::collections::BTreeSet::new();
        for replica in &self.replicas {
            all.extend(replica.store.list(after, limit)?);
        }
        Ok(all.into_iter().take(limit).collect())
    }

    fn usage(&self) -> Result<StoreUsage, StoreError> {
        let mut total = StoreUsage::default();
        for replica in &self.replicas {
            let u = replica.store.usage()?;
            total.chunks += u.chunks;
            total.bytes += u.bytes;
        }
        Ok(total)
    }
}

//! Chunks across the network. A chunk lives on [`REPLICAS_DEFAULT`] nodes
//! chosen by rendezvous placement over the registered nodes (distinct owners
//! first); a put writes every copy before it returns, a get tries the
//! holders in rank order and verifies what it reads, so one dead holder
//! costs a retry, not the data.
//!
//! [`NetStore`] wraps this as a [`ChunkStore`] so the object pipeline
//! (`put_object` / `get_object`) runs unchanged over the network.

use std::sync::Arc;

use futures::future::join_all;
use peercloud_api::ErrorCode;
use peercloud_net::Protocol;
use peercloud_store::{
    ChunkStore, PlacementNode, REPLICAS_DEFAULT, StoreError, VerifiedChunk, place, rank,
};
use peercloud_types::{ContentId, NodeId};

use super::{AskError, Inner};
use crate::wire::Message;

/// Chunks in flight at once in one put or get of many.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A network chunk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// No node is registered to hold chunks.
    #[error("no storage nodes are registered on the ledger yet")]
    NoNodes,
    /// Fewer copies than wanted could be written.
    #[error("chunk {cid}: only {stored} of {wanted} copies stored ({reasons})")]
    Replicas {
        /// The chunk.
        cid: ContentId,
        /// Copies stored.
        stored: usize,
        /// Copies wanted.
        wanted: usize,
        /// Why the others failed.
        reasons: String,
    },
    /// No node holding the chunk answered with it.
    #[error("chunk {cid} not found on any node ({reasons})")]
    NotFound {
        /// The chunk.
        cid: ContentId,
        /// What each holder said.
        reasons: String,
    },
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Inner {
    /// The registered nodes as placement candidates.
    fn placement_nodes(&self) -> Vec<PlacementNode> {
        self.chain()
            .state()
            .nodes()
            .map(|(node, record)| PlacementNode {
                node: *node,
                owner: record.owner,
            })
            .collect()
    }

    /// Stores one sealed chunk on its replicas (falling through the ranking
    /// past nodes that fail). Returns the nodes that hold it. The caller has
    /// checked that `bytes` hash to `cid` (the API on receipt, [`NetStore`]
    /// by its [`VerifiedChunk`]s); every replica checks again on its own.
    pub(crate) async fn put_chunk(
        &self,
        cid: ContentId,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Vec<NodeId>, ChunkError> {
        // Encoded once, sent to every remote replica.
        let encoded = Arc::new(
            Message::ChunkPut {
                cid,
                bytes: bytes.as_ref().clone(),
            }
            .to_bytes(),
        );
        let nodes = self.placement_nodes();
        if nodes.is_empty() {
            return Err(ChunkError::NoNodes);
        }
        let wanted = (REPLICAS_DEFAULT as usize).min(nodes.len());
        let ranked = {
            // The placement's picks first (distinct owners), then the rest by rank.
            let mut picks = place(&cid, &nodes, wanted);
            for n in rank(&cid, &nodes) {
                if !picks.contains(&n) {
                    picks.push(n);
                }
            }
            picks
        };
        let mut stored = Vec::with_capacity(wanted);
        let mut reasons = Vec::new();
        let mut next = 0;
        while stored.len() < wanted && next < ranked.len() {
            let take = (wanted - stored.len()).min(ranked.len() - next);
            let batch = &ranked[next..next + take];
            next += take;
            let attempts = batch.iter().map(|target| {
                let (bytes, encoded) = (bytes.clone(), encoded.clone());
                async move {
                    let outcome = self.put_on(&target.node, cid, bytes, encoded).await;
                    (target.node, outcome)
                }
            });
            for (node, outcome) in join_all(attempts).await {
                match outcome {
                    Ok(()) => stored.push(node),
                    Err(e) => reasons.push(e),
                }
            }
        }
        if stored.len() < wanted {
            return Err(ChunkError::Replicas {
                cid,
                stored: stored.len(),
                wanted,
                reasons: reasons.join("; "),
            });
        }
        Ok(stored)
    }

    async fn put_on(
        &self,
        node: &NodeId,
        cid: ContentId,
        bytes: Arc<Vec<u8>>,
        encoded: Arc<Vec<u8>>,
    ) -> Result<(), String> {
        if *node == self.node_id() {
            let store = self.store.clone();
            return tokio::task::spawn_blocking(move || store.put(&cid, &bytes))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string());
        }
        match self
            .ask_encoded(node, Protocol::Chunk, encoded.as_ref().clone())
            .await
        {
            Ok(Message::Ack) => Ok(()),
            Ok(_) => Err(format!("node {node}: unexpected answer")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Reads one chunk from the first holder that has it, verified.
    pub async fn get_chunk(&self, cid: ContentId) -> Result<Vec<u8>, ChunkError> {
        if self.store.has(&cid)? {
            let store = self.store.clone();
            let local = tokio::task::spawn_blocking(move || store.get(&cid)).await;
            if let Ok(Ok(bytes)) = local {
                return Ok(bytes);
            }
        }
        let nodes = self.placement_nodes();
        let mut reasons = Vec::new();
        for holder in rank(&cid, &nodes) {
            if holder.node == self.node_id() {
                continue;
            }
            match self
                .ask(&holder.node, Protocol::Chunk, &Message::ChunkGet { cid })
                .await
            {
                Ok(Message::Chunk(Some(bytes))) => {
                    if ContentId::of(&bytes) == cid {
                        return Ok(bytes);
                    }
                    reasons.push(format!("node {}: corrupt copy", holder.node));
                }
                Ok(Message::Chunk(None)) => {}
                Ok(_) => reasons.push(format!("node {}: unexpected answer", holder.node)),
                Err(e @ (AskError::Net { .. } | AskError::Refused { .. })) => {
                    reasons.push(e.to_string())
                }
            }
        }
        if reasons.is_empty() {
            reasons.push("no holder has it".into());
        }
        Err(ChunkError::NotFound {
            cid,
            reasons: reasons.join("; "),
        })
    }
}

/// A peer asks this node to keep a chunk.
pub(crate) async fn on_put(inner: &Inner, cid: ContentId, bytes: Vec<u8>) -> Message {
    let store = inner.store.clone();
    match tokio::task::spawn_blocking(move || store.put(&cid, &bytes)).await {
        Ok(Ok(())) => Message::Ack,
        Ok(Err(e @ StoreError::CidMismatch { .. })) => {
            Message::error(ErrorCode::BadRequest, e.to_string())
        }
        Ok(Err(e)) => Message::error(ErrorCode::StoreFailed, e.to_string()),
        Err(e) => Message::error(ErrorCode::Internal, e.to_string()),
    }
}

/// A peer asks for a chunk.
pub(crate) async fn on_get(inner: &Inner, cid: ContentId) -> Message {
    let store = inner.store.clone();
    match tokio::task::spawn_blocking(move || store.get(&cid)).await {
        Ok(Ok(bytes)) => Message::Chunk(Some(bytes)),
        Ok(Err(StoreError::NotFound { .. })) => Message::Chunk(None),
        Ok(Err(e)) => {
            tracing::warn!(%cid, %e, "chunk read failed");
            Message::Chunk(None)
        }
        Err(e) => Message::error(ErrorCode::Internal, e.to_string()),
    }
}

/// The network as a [`ChunkStore`], for the object pipeline. Its methods
/// block on the node's runtime: call them from a blocking thread.
#[derive(Debug, Clone)]
pub struct NetStore {
    inner: Arc<Inner>,
    runtime: tokio::runtime::Handle,
}

impl NetStore {
    /// A store over `inner`'s network, driven by `runtime`.
    pub fn new(inner: Arc<Inner>, runtime: tokio::runtime::Handle) -> NetStore {
        NetStore { inner, runtime }
    }
}

impl ChunkStore for NetStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let owned: Vec<(ContentId, Arc<Vec<u8>>)> = chunks
            .iter()
            .map(|c| (*c.cid(), Arc::new(c.bytes().to_vec())))
            .collect();
        let inner = self.inner.clone();
        self.runtime.block_on(async move {
            for group in owned.chunks(CHUNKS_IN_FLIGHT) {
                let puts = group
                    .iter()
                    .map(|(cid, bytes)| inner.put_chunk(*cid, bytes.clone()));
                for outcome in join_all(puts).await {
                    outcome.map_err(|e| StoreError::Remote {
                        reason: e.to_string(),
                    })?;
                }
            }
            Ok(())
        })
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let cid = *cid;
        let bytes = self
            .runtime
            .block_on(async move { inner.get_chunk(cid).await })
            .map_err(|e| match e {
                ChunkError::NotFound { cid, .. } => StoreError::NotFound { cid },
                other => StoreError::Remote {
                    reason: other.to_string(),
                },
            })?;
        buf.clear();
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        let mut buf = Vec::new();
        match self.get_into(cid, &mut buf) {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read_parallelism(&self) -> usize {
        peercloud_store::READ_PARALLELISM_REMOTE
    }
}

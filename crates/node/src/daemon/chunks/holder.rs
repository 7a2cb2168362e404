//! The holder's side of the chunk protocol: what this node does when a peer
//! asks it to keep, send or release a chunk.
//!
//! A put is admitted only when all of these hold, checked in this order
//! (cheapest first) and refused with a [`PutRefusal`] that names which one
//! failed:
//!
//! 1. the sender is a node registered on the ledger (its libp2p peer id is
//!    its node key, so the id needs no lookup);
//! 2. this node is a placement candidate for the chunk: registered, its
//!    owner staked to serve, and one of the chunk's
//!    [`peercloud_store::candidates`] (the placement's picks, then the first
//!    [`peercloud_store::window`] ranks: the larger of
//!    `REPLICAS_DEFAULT × PLACEMENT_WINDOW_FACTOR` and
//!    [`peercloud_store::GROUP_PIECES_MAX`], so a piece of an erasure group,
//!    placed within its first `pieces` ranks, is accepted too);
//! 3. the bytes hash to the CID;
//! 4. the chunk fits in the storage this node offers (`storage_bytes`): the
//!    bytes stored plus the chunk's, unless the chunk is already here. The
//!    store checks this in the same commit that records the chunk, so
//!    concurrent puts cannot overshoot it.
//!
//! The store records the sender as one of the chunk's putters; a
//! `ChunkDelete` from a putter releases its record, and the chunk goes with
//! the last one. Payment for what is stored is not part of this (storage
//! contracts will be).

use bytes::Bytes;
use std::sync::Arc;

use peercloud_api::ErrorCode;
use peercloud_ledger::ClusterId;
use peercloud_net::PeerId;
use peercloud_store::{ChunkPutters, ChunkStore, REPLICAS_DEFAULT, StoreError, may_hold, window};
use peercloud_types::{ContentId, NodeId};

use super::super::Inner;
use crate::wire::Message;

/// Why this node will not keep a chunk.
#[derive(Debug, thiserror::Error)]
pub enum PutRefusal {
    /// The sender's peer id carries no node key.
    #[error("peer {peer} is not a node: its peer id carries no ed25519 node key")]
    NotANode {
        /// The peer id, as text.
        peer: String,
    },
    /// The sender is not on the ledger.
    #[error("node {sender} is not registered on the ledger: only registered nodes store chunks")]
    NotRegistered {
        /// The sender.
        sender: NodeId,
    },
    /// This node is not registered or its owner has no stake to serve, so
    /// it is no placement candidate for any chunk.
    #[error("node {node} holds no chunks: it is not registered with its owner staked to serve")]
    NotStaked {
        /// This node.
        node: NodeId,
    },
    /// A bucket's chunk came for a cluster this node is no active member of.
    #[error("node {node} holds no chunks of {cluster}: it is not an active member")]
    NotMember {
        /// This node.
        node: NodeId,
        /// The cluster the chunk is placed in.
        cluster: ClusterId,
    },
    /// The chunk's placement does not reach this node.
    #[error(
        "node {node} is not a placement candidate of chunk {cid}: not among its picks nor its first {window} ranks over {nodes} staked nodes"
    )]
    NotPlaced {
        /// This node.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// Ranks a holder accepts.
        window: usize,
        /// Staked nodes this node knows.
        nodes: usize,
    },
    /// The store refused or failed: wrong bytes, no room, a disk error.
    #[error("node {node}: {source}")]
    Store {
        /// This node.
        node: NodeId,
        /// What the store said (boxed: the refusal stays small on the happy path).
        source: Box<StoreError>,
    },
    /// The blocking task writing the chunk died (a bug).
    #[error("node {node}: the chunk write task failed: {reason}")]
    Task {
        /// This node.
        node: NodeId,
        /// What the runtime said.
        reason: String,
    },
}

impl PutRefusal {
    /// The code the refusal travels under.
    pub fn code(&self) -> ErrorCode {
        match self {
            PutRefusal::NotANode { .. } => ErrorCode::BadRequest,
            PutRefusal::NotRegistered { .. } => ErrorCode::NotRegistered,
            PutRefusal::NotStaked { .. }
            | PutRefusal::NotMember { .. }
            | PutRefusal::NotPlaced { .. } => ErrorCode::NotPlaced,
            PutRefusal::Store { source, .. } => match **source {
                StoreError::QuotaExceeded { .. } | StoreError::DiskFull { .. } => {
                    ErrorCode::StorageFull
                }
                StoreError::CidMismatch { .. } => ErrorCode::BadRequest,
                _ => ErrorCode::StoreFailed,
            },
            PutRefusal::Task { .. } => ErrorCode::Internal,
        }
    }
}

/// Checks rules 1 and 2 of the module documentation for `sender`'s put of `cid`.
pub(super) fn admit(
    inner: &Inner,
    sender: &NodeId,
    cid: &ContentId,
    cluster: Option<&ClusterId>,
) -> Result<(), PutRefusal> {
    let registered = inner.chain().state().node(sender).is_some();
    if !registered {
        return Err(PutRefusal::NotRegistered { sender: *sender });
    }
    let me = inner.node_id();
    if let Some(cluster) = cluster {
        return placed_in_cluster(inner, cid, &me, cluster);
    }
    let nodes = inner.placement_nodes();
    if !nodes.iter().any(|n| n.node == me) {
        return Err(PutRefusal::NotStaked { node: me });
    }
    if !may_hold(cid, &nodes, REPLICAS_DEFAULT as usize, &me) {
        return Err(PutRefusal::NotPlaced {
            node: me,
            cid: *cid,
            window: window(REPLICAS_DEFAULT as usize),
            nodes: nodes.len(),
        });
    }
    Ok(())
}

/// Rule 2 for a bucket's chunk: `me` is an active member of `cluster` (its
/// stake is locked there) and one of `cid`'s candidates among the cluster's
/// active members, ranked by their weights.
fn placed_in_cluster(
    inner: &Inner,
    cid: &ContentId,
    me: &NodeId,
    cluster: &ClusterId,
) -> Result<(), PutRefusal> {
    let chain = inner.chain();
    let nodes = super::super::index::cluster_nodes(chain.state(), cluster);
    if !nodes.iter().any(|n| n.node == *me) {
        return Err(PutRefusal::NotMember {
            node: *me,
            cluster: *cluster,
        });
    }
    if !may_hold(cid, &nodes, REPLICAS_DEFAULT as usize, me) {
        return Err(PutRefusal::NotPlaced {
            node: *me,
            cid: *cid,
            window: window(REPLICAS_DEFAULT as usize),
            nodes: nodes.len(),
        });
    }
    Ok(())
}

/// Keeps a chunk on this node for `sender` (this node itself, or a peer),
/// once the module's rules admit it.
pub(crate) async fn store_here(
    inner: &Inner,
    sender: NodeId,
    cid: ContentId,
    bytes: Bytes,
    cluster: Option<&ClusterId>,
) -> Result<(), PutRefusal> {
    admit(inner, &sender, &cid, cluster)?;
    super::batch::store_admitted(inner, move |put| {
        put(sender, &mut std::iter::once((&cid, &bytes[..])))
    })
    .await
}

/// A peer asks this node to keep a chunk.
pub(crate) async fn on_put(
    inner: &Inner,
    peer: PeerId,
    cid: ContentId,
    bytes: Vec<u8>,
    cluster: Option<ClusterId>,
) -> Message {
    let Some(sender) = peercloud_net::node_id_of(&peer) else {
        let refusal = PutRefusal::NotANode {
            peer: peer.to_string(),
        };
        return Message::error(refusal.code(), refusal.to_string());
    };
    match store_here(inner, sender, cid, Bytes::from(bytes), cluster.as_ref()).await {
        Ok(()) => Message::Ack,
        Err(refusal) => {
            tracing::debug!(%cid, %sender, %refusal, "chunk put refused");
            Message::error(refusal.code(), refusal.to_string())
        }
    }
}

/// A peer asks for a chunk. A copy that fails verification here is
/// answered `chunk_corrupt`, never sent, so the asker can tell a chunk lost
/// from one gone bad.
pub(crate) async fn on_get(inner: &Arc<Inner>, cid: ContentId) -> Message {
    let store = inner.store.clone();
    match tokio::task::spawn_blocking(move || store.get(&cid)).await {
        Ok(Ok(bytes)) => Message::Chunk(Some(bytes)),
        // Not held: perhaps kept at the edge (a public piece served here).
        Ok(Err(StoreError::NotFound { .. })) => {
            let cached = inner.clone();
            let copy = tokio::task::spawn_blocking(move || cached.edge.get_for_peer(&cid)).await;
            Message::Chunk(copy.ok().flatten())
        }
        Ok(Err(e @ StoreError::Corrupt { .. })) => {
            tracing::warn!(%cid, %e, "a chunk held here is corrupt");
            Message::error(
                ErrorCode::ChunkCorrupt,
                format!("node {}: {e}", inner.node_id()),
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(%cid, %e, "chunk read failed");
            Message::Chunk(None)
        }
        Err(e) => Message::error(ErrorCode::Internal, e.to_string()),
    }
}

/// Releases `sender`'s claim on a chunk held here (the chunk goes with its
/// last putter).
pub(crate) async fn release_here(
    inner: &Inner,
    sender: NodeId,
    cid: ContentId,
) -> Result<peercloud_store::Released, StoreError> {
    let store = inner.store.clone();
    tokio::task::spawn_blocking(move || store.delete_for(&sender, &cid))
        .await
        .map_err(|_| StoreError::ThreadPanicked {
            thread: "chunk delete",
        })?
}

/// A peer no longer needs a chunk it put here.
pub(crate) async fn on_delete(inner: &Inner, peer: PeerId, cid: ContentId) -> Message {
    let Some(sender) = peercloud_net::node_id_of(&peer) else {
        return Message::error(
            ErrorCode::BadRequest,
            format!("peer {peer} is not a node: its peer id carries no ed25519 node key"),
        );
    };
    let node = inner.node_id();
    match release_here(inner, sender, cid).await {
        Ok(released) => {
            tracing::debug!(%cid, %sender, ?released, "chunk released");
            Message::Ack
        }
        Err(e @ StoreError::NotFound { .. }) => {
            Message::error(ErrorCode::NotFound, format!("node {node}: {e}"))
        }
        Err(e @ StoreError::NotPutter { .. }) => {
            Message::error(ErrorCode::NotPutter, format!("node {node}: {e}"))
        }
        Err(e) => Message::error(ErrorCode::StoreFailed, format!("node {node}: {e}")),
    }
}

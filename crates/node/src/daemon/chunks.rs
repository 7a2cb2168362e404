//! Chunks across the network. A chunk lives on [`REPLICAS_DEFAULT`] nodes
//! chosen by rendezvous placement over the registered nodes whose owner is
//! staked to serve (distinct owners first); a put writes every copy before
//! it returns, falling through the chunk's [`candidates`] past nodes that
//! fail or refuse; a get tries the nodes a put places it on nearest first
//! (ping round trip), then the rest of the ranking, and verifies what it
//! reads, so one dead holder costs a retry, not the data, and a chunk
//! that every holder has bad is reported corrupt, not missing.
//!
//! ```text
//!  put_chunk ─ChunkPut─► holder: registered sender? placement candidate? fits the quota?
//!                        └─► FsChunkStore::put_for (records the sender as a putter)
//!  get_chunk ─ChunkGet─► holder: the bytes, none, or chunk_corrupt
//!  delete_chunk ─ChunkDelete─► holder: releases the sender's claim; the last one deletes
//! ```
//!
//! An erasure group ([`Inner::put_group`]) is placed piece by piece on
//! distinct nodes ([`place_group`]), one copy each, all pieces at once; a
//! piece whose node fails or refuses falls through to the next node of its
//! window the group does not use ([`group_candidate`]).
//!
//! The holder's rules are in [`holder`]. [`NetStore`] wraps this as a
//! [`ChunkStore`] so the object pipeline (`put_object` / `get_object`) runs
//! unchanged over the network; when a put fails part way the pipeline
//! abandons the chunks it wrote, and `NetStore` asks their holders to
//! release them.

pub(super) mod audit;
mod batch;
mod holder;
mod repair_put;

use bytes::Bytes;
use std::sync::Arc;

use futures::future::join_all;
use peercloud_api::ErrorCode;
use peercloud_ledger::ClusterId;
use peercloud_net::Protocol;
use peercloud_store::{
    ChunkStore, GroupPlacementError, PlacementNode, REPLICAS_DEFAULT, StoreError, VerifiedChunk,
    candidates, group_candidate, place, place_group, rank, window,
};
use peercloud_types::{ContentId, NodeId};

pub(crate) use batch::{is_batch, on_put_batch};
pub use holder::PutRefusal;
pub(crate) use holder::{on_delete, on_get, on_put};
pub(crate) use repair_put::{RepairCounted, on_repair_put};

use super::{AskError, Inner};
use crate::wire::Message;

/// Chunks in flight at once in one put, get or delete of many.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A network chunk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// No node is registered and staked to hold chunks.
    #[error("no storage nodes are registered and staked on the ledger yet")]
    NoNodes,
    /// The cluster asked for has no active member (or is not on the ledger).
    #[error("{cluster} has no active member to hold chunks (or is not on the ledger)")]
    NoClusterNodes {
        /// The cluster.
        cluster: ClusterId,
    },
    /// Fewer copies than wanted could be written.
    #[error(
        "chunk {cid}: only {stored} of {wanted} copies stored ({})",
        join(failures)
    )]
    Replicas {
        /// The chunk.
        cid: ContentId,
        /// Copies stored.
        stored: usize,
        /// Copies wanted.
        wanted: usize,
        /// Why each other candidate did not take it.
        failures: Vec<AskError>,
    },
    /// An erasure group cannot go on distinct nodes: too few nodes, or too
    /// many pieces.
    #[error(transparent)]
    GroupPlacement(#[from] GroupPlacementError),
    /// A piece of an erasure group found no node that took it.
    #[error(
        "erasure group piece {index} ({cid}): no node of its window that the group does not use took it; {stored} of {pieces} pieces stored ({})",
        join(failures)
    )]
    GroupPiece {
        /// The piece's position in the group (data first, then parity).
        index: usize,
        /// Its CID.
        cid: ContentId,
        /// Pieces of the group stored.
        stored: usize,
        /// Pieces in the group.
        pieces: usize,
        /// Why each node tried did not take it.
        failures: Vec<AskError>,
    },
    /// No node holding the chunk answered with it, and none had it corrupt.
    #[error("chunk {cid} not found on any node ({reasons})")]
    NotFound {
        /// The chunk.
        cid: ContentId,
        /// What each holder said.
        reasons: String,
    },
    /// No holder answered with good bytes and at least one had bad ones
    /// (its own copy failed verification, or what it sent did not hash to
    /// the CID).
    #[error("chunk {cid} is corrupt on every holder that has it ({reasons})")]
    Corrupt {
        /// The chunk.
        cid: ContentId,
        /// What bad bytes that reached this node hash to, if any did.
        actual: Option<ContentId>,
        /// What each holder said.
        reasons: String,
    },
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChunkError {
    /// The code the API answers this error with: a put every candidate
    /// refused for the same reason answers that reason (all full:
    /// `storage_full`); a group wider than the network places is a
    /// `bad_request`; other put failures are `unavailable`.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChunkError::NoNodes
            | ChunkError::NoClusterNodes { .. }
            | ChunkError::GroupPlacement(GroupPlacementError::TooFewNodes { .. }) => {
                ErrorCode::Unavailable
            }
            ChunkError::GroupPlacement(GroupPlacementError::TooWide { .. }) => {
                ErrorCode::BadRequest
            }
            ChunkError::Replicas { failures, .. } | ChunkError::GroupPiece { failures, .. } => {
                let mut codes = failures.iter().map(|f| match f {
                    AskError::Refused { code, .. } => Some(*code),
                    AskError::Net { .. } => None,
                });
                match codes.next().flatten() {
                    Some(first) if codes.all(|c| c == Some(first)) => first,
                    _ => ErrorCode::Unavailable,
                }
            }
            ChunkError::NotFound { .. } => ErrorCode::NotFound,
            ChunkError::Corrupt { .. } => ErrorCode::ChunkCorrupt,
            ChunkError::Store(StoreError::DiskFull { .. }) => ErrorCode::StorageFull,
            ChunkError::Store(_) => ErrorCode::StoreFailed,
        }
    }
}

fn join(failures: &[AskError]) -> String {
    if failures.is_empty() {
        return "no other candidate".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The bytes of `Message::ChunkPut { cid, cluster, bytes }`, exactly as
/// [`Message::to_bytes`] writes them, with one copy of `bytes` into a buffer
/// of the final size. The generic encoder would clone the chunk into the
/// message, then grow its output by doubling and copy it once more: three
/// passes over a megabyte and fresh pages each time, which showed in the
/// put profile. The chunk is the message's last field and postcard writes
/// a byte sequence as its length (an unsigned LEB128 varint) then the
/// bytes, so the message with no bytes ends in the length 0, which this
/// replaces.
fn encode_chunk_put(cid: ContentId, cluster: Option<ClusterId>, bytes: &[u8]) -> Vec<u8> {
    let mut head = Message::ChunkPut {
        cid,
        cluster,
        bytes: Vec::new(),
    }
    .to_bytes();
    debug_assert_eq!(
        head.last(),
        Some(&0),
        "an empty byte sequence ends the head"
    );
    head.pop();
    let mut out = Vec::with_capacity(head.len() + VARINT_BYTES_MAX + bytes.len());
    out.extend_from_slice(&head);
    let mut len = bytes.len();
    while len >= 0x80 {
        // Low seven bits, with the continuation bit set (the cast keeps them).
        out.push((len & 0x7f) as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
    out
}

/// The longest LEB128 varint of a `usize` on a 64-bit target.
const VARINT_BYTES_MAX: usize = 10;

/// Where a chunk's replicated put stands: its ranked candidates, how many
/// of them were asked, which hold it and why the others did not.
#[derive(Debug)]
struct Replicas<'a> {
    cid: ContentId,
    wanted: usize,
    ranked: &'a [PlacementNode],
    tried: usize,
    stored: Vec<NodeId>,
    failures: Vec<AskError>,
}

/// What [`Inner::delete_chunk`] did.
#[derive(Debug, Default)]
pub struct ChunkRelease {
    /// Holders that released this node's claim (and deleted the chunk when
    /// no other putter was left).
    pub released: Vec<NodeId>,
    /// Candidates that could not be asked, or failed (not those that never
    /// had the chunk from this node).
    pub failures: Vec<AskError>,
}

impl Inner {
    /// The placement candidates: registered nodes whose owner's stake is at
    /// least the network's minimum to serve (as `AwardJob` requires of an
    /// awarded node).
    pub(crate) fn placement_nodes(&self) -> Vec<PlacementNode> {
        let chain = self.chain();
        let state = chain.state();
        let stake_min = state.params().stake_min_to_serve;
        state
            .nodes()
            .filter(|(_, record)| state.stake(&record.owner) >= stake_min)
            .map(|(node, record)| PlacementNode::new(*node, record.owner))
            .collect()
    }

    /// The nodes a put places on: the active members of `cluster`, each
    /// weighted by the capacity it offers (a bucket's chunks), or every
    /// registered, staked node at weight one. Refused when there are none.
    pub(crate) fn placement_scope(
        &self,
        cluster: Option<&ClusterId>,
    ) -> Result<Vec<PlacementNode>, ChunkError> {
        let nodes = match cluster {
            None => self.placement_nodes(),
            Some(cluster) => super::index::cluster_nodes(self.chain().state(), cluster),
        };
        match (nodes.is_empty(), cluster) {
            (false, _) => Ok(nodes),
            (true, None) => Err(ChunkError::NoNodes),
            (true, Some(cluster)) => Err(ChunkError::NoClusterNodes { cluster: *cluster }),
        }
    }

    /// Every node that may hold a chunk, placed network-wide or in any
    /// cluster: where gets and releases look.
    pub(crate) fn holder_nodes(&self) -> Vec<PlacementNode> {
        let mut nodes = self.placement_nodes();
        let chain = self.chain();
        let state = chain.state();
        for (cluster, _) in state.clusters() {
            for node in super::index::cluster_nodes(state, cluster) {
                if nodes.iter().all(|n| n.node != node.node) {
                    nodes.push(PlacementNode::new(node.node, node.owner));
                }
            }
        }
        nodes
    }

    /// Stores one sealed chunk on its replicas, falling through its
    /// [`candidates`] (in `cluster`, or network-wide) past nodes that fail
    /// or refuse. Returns the nodes that hold it. The caller has checked
    /// that `bytes` hash to `cid` (the API on receipt, [`NetStore`] by its
    /// [`VerifiedChunk`]s); every replica checks again on its own.
    pub(crate) async fn put_chunk(
        &self,
        cid: ContentId,
        bytes: Bytes,
        cluster: Option<&ClusterId>,
    ) -> Result<Vec<NodeId>, ChunkError> {
        let nodes = self.placement_scope(cluster)?;
        let wanted = (REPLICAS_DEFAULT as usize).min(nodes.len());
        let ranked = candidates(&cid, &nodes, REPLICAS_DEFAULT as usize);
        let replicas = Replicas {
            cid,
            wanted,
            ranked: &ranked,
            tried: 0,
            stored: Vec::with_capacity(wanted),
            failures: Vec::new(),
        };
        self.fill_replicas(replicas, bytes, cluster).await
    }

    /// Puts a chunk on its candidates after the first `replicas.tried`,
    /// as many at once as copies are missing, until it has
    /// `replicas.wanted` copies or no candidate is left.
    async fn fill_replicas(
        &self,
        mut replicas: Replicas<'_>,
        bytes: Bytes,
        cluster: Option<&ClusterId>,
    ) -> Result<Vec<NodeId>, ChunkError> {
        let Replicas {
            cid,
            wanted,
            ranked,
            ..
        } = replicas;
        while replicas.stored.len() < wanted && replicas.tried < ranked.len() {
            let take = (wanted - replicas.stored.len()).min(ranked.len() - replicas.tried);
            let batch = &ranked[replicas.tried..replicas.tried + take];
            replicas.tried += take;
            let attempts = batch.iter().map(|target| {
                let bytes = bytes.clone();
                async move {
                    let outcome = self.put_on(&target.node, cid, bytes, cluster).await;
                    (target.node, outcome)
                }
            });
            for (node, outcome) in join_all(attempts).await {
                match outcome {
                    Ok(()) => replicas.stored.push(node),
                    Err(e) => replicas.failures.push(e),
                }
            }
        }
        if replicas.stored.len() < wanted {
            return Err(ChunkError::Replicas {
                cid,
                stored: replicas.stored.len(),
                wanted,
                failures: replicas.failures,
            });
        }
        Ok(replicas.stored)
    }

    /// Stores the pieces of one erasure group, one copy each on distinct
    /// nodes ([`place_group`]), all at once; a piece whose node fails or
    /// refuses falls through to the next node of its window that the group
    /// does not use ([`group_candidate`]). Returns the node of each piece.
    /// The caller has checked every piece's bytes against its CID.
    pub(crate) async fn put_group(
        &self,
        pieces: &[(ContentId, Bytes)],
        cluster: Option<&ClusterId>,
    ) -> Result<Vec<NodeId>, ChunkError> {
        let nodes = self.placement_scope(cluster)?;
        let cids: Vec<ContentId> = pieces.iter().map(|(cid, _)| *cid).collect();
        let planned = place_group(&cids, &nodes)?;
        // Every node the group has used or tried: a piece never falls onto
        // another piece's node, even one that failed it.
        let mut used = planned.clone();
        let mut held: Vec<Option<NodeId>> = vec![None; pieces.len()];
        let mut failures: Vec<Vec<AskError>> = vec![Vec::new(); pieces.len()];
        let mut round: Vec<(usize, PlacementNode)> = planned.into_iter().enumerate().collect();
        while !round.is_empty() {
            let attempts = round.iter().map(|&(index, target)| {
                let (cid, bytes) = (pieces[index].0, pieces[index].1.clone());
                async move {
                    let outcome = self.put_on(&target.node, cid, bytes, cluster).await;
                    (index, target, outcome)
                }
            });
            let mut failed = Vec::new();
            for (index, target, outcome) in join_all(attempts).await {
                match outcome {
                    Ok(()) => held[index] = Some(target.node),
                    Err(e) => {
                        failures[index].push(e);
                        failed.push(index);
                    }
                }
            }
            round = Vec::with_capacity(failed.len());
            for index in failed {
                let Some(fallback) = group_candidate(&cids[index], &nodes, &used) else {
                    return Err(ChunkError::GroupPiece {
                        index,
                        cid: cids[index],
                        stored: held.iter().flatten().count(),
                        pieces: pieces.len(),
                        failures: std::mem::take(&mut failures[index]),
                    });
                };
                used.push(fallback);
                round.push((index, fallback));
            }
        }
        Ok(held.into_iter().flatten().collect())
    }

    /// Asks `node` alone to keep a chunk (no placement of this node's own,
    /// no fall-through): the holder's rules decide.
    pub async fn put_chunk_to(
        &self,
        node: &NodeId,
        cid: ContentId,
        bytes: Vec<u8>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), AskError> {
        self.put_on(node, cid, Bytes::from(bytes), cluster).await
    }

    /// Stores a chunk on `node`: here through the holder's rules, elsewhere
    /// as a `ChunkPut` encoded for that node alone ([`encode_chunk_put`]:
    /// one copy of the bytes, straight into the message the swarm sends).
    async fn put_on(
        &self,
        node: &NodeId,
        cid: ContentId,
        bytes: Bytes,
        cluster: Option<&ClusterId>,
    ) -> Result<(), AskError> {
        if *node == self.node_id() {
            return holder::store_here(self, *node, cid, bytes, cluster)
                .await
                .map_err(|refusal| AskError::Refused {
                    node: *node,
                    code: refusal.code(),
                    message: refusal.to_string(),
                });
        }
        let encoded = encode_chunk_put(cid, cluster.copied(), &bytes);
        drop(bytes);
        match self.ask_encoded(node, Protocol::Chunk, encoded).await? {
            Message::Ack => Ok(()),
            other => Err(AskError::Net {
                node: *node,
                reason: format!("unexpected answer to a chunk put: {other:?}"),
            }),
        }
    }

    /// Reads one chunk from the first holder that has it, verified. When
    /// none has good bytes and at least one had bad ones, the chunk is
    /// [`ChunkError::Corrupt`].
    pub async fn get_chunk(&self, cid: ContentId) -> Result<Vec<u8>, ChunkError> {
        self.get_chunk_served(cid).await.map(|(bytes, _)| bytes)
    }

    /// [`Inner::get_chunk`], naming the node whose copy answered (this node
    /// when it holds a good one): the node a reader's receipt pays.
    pub async fn get_chunk_served(&self, cid: ContentId) -> Result<(Vec<u8>, NodeId), ChunkError> {
        let mut reasons = Vec::new();
        let mut corrupt = 0usize;
        let mut actual = None;
        if self.store.has(&cid)? {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.get(&cid)).await {
                Ok(Ok(bytes)) => return Ok((bytes, self.node_id())),
                Ok(Err(e @ StoreError::Corrupt { .. })) => {
                    corrupt += 1;
                    reasons.push(format!("this node: {e}"));
                }
                Ok(Err(e)) => reasons.push(format!("this node: {e}")),
                Err(e) => reasons.push(format!("this node: read task failed: {e}")),
            }
        }
        let nodes = self.holder_nodes();
        for holder in self.nearest_first(&cid, &nodes) {
            if holder.node == self.node_id() {
                continue;
            }
            match self
                .ask(&holder.node, Protocol::Chunk, &Message::ChunkGet { cid })
                .await
            {
                Ok(Message::Chunk(Some(bytes))) => {
                    let got = ContentId::of(&bytes);
                    if got == cid {
                        return Ok((bytes, holder.node));
                    }
                    corrupt += 1;
                    actual.get_or_insert(got);
                    reasons.push(format!(
                        "node {}: sent bytes that hash to {got}",
                        holder.node
                    ));
                }
                Ok(Message::Chunk(None)) => {}
                Ok(_) => reasons.push(format!("node {}: unexpected answer", holder.node)),
                Err(
                    e @ AskError::Refused {
                        code: ErrorCode::ChunkCorrupt,
                        ..
                    },
                ) => {
                    corrupt += 1;
                    reasons.push(e.to_string());
                }
                Err(e @ (AskError::Net { .. } | AskError::Refused { .. })) => {
                    reasons.push(e.to_string())
                }
            }
        }
        if corrupt > 0 {
            return Err(ChunkError::Corrupt {
                cid,
                actual,
                reasons: reasons.join("; "),
            });
        }
        if reasons.is_empty() {
            reasons.push("no holder has it".into());
        }
        Err(ChunkError::NotFound {
            cid,
            reasons: reasons.join("; "),
        })
    }

    /// A piece from another node's edge cache (one that announced it in
    /// Kademlia), verified; for a public object's read when no holder has
    /// the piece. Waits at most [`PROVIDERS_WAIT`] for the lookup.
    async fn get_chunk_from_caches(&self, cid: ContentId) -> Option<Vec<u8>> {
        let me = peercloud_net::peer_id_of(&self.node_id());
        let providers = self.net.find_providers(cid.digest(), PROVIDERS_WAIT).await;
        let caches = providers
            .iter()
            .filter(|peer| **peer != me)
            .filter_map(peercloud_net::node_id_of);
        for node in caches {
            match self
                .ask(&node, Protocol::Chunk, &Message::ChunkGet { cid })
                .await
            {
                Ok(Message::Chunk(Some(bytes))) if cid.matches(&bytes) => return Some(bytes),
                Ok(Message::Chunk(Some(_))) => {
                    tracing::warn!(%cid, %node, "an edge cache sent bytes that do not match")
                }
                _ => {}
            }
        }
        None
    }

    /// Where a read of `cid` asks, in order: the nodes a put places it on
    /// (where it almost always is), nearest first by ping round trip (one
    /// not measured yet after those that are), then the rest of the ranking
    /// (where a fall-through or a repair may have put it).
    fn nearest_first(&self, cid: &ContentId, nodes: &[PlacementNode]) -> Vec<PlacementNode> {
        let mut picks = place(cid, nodes, REPLICAS_DEFAULT as usize);
        picks.sort_by_key(|pick| {
            self.net
                .rtt(&peercloud_net::peer_id_of(&pick.node))
                .unwrap_or(std::time::Duration::MAX)
        });
        let rest: Vec<PlacementNode> = rank(cid, nodes)
            .into_iter()
            .filter(|node| picks.iter().all(|pick| pick.node != node.node))
            .collect();
        picks.extend(rest);
        picks
    }

    /// This node no longer needs a chunk it put: asks each of the chunk's
    /// candidates (the only nodes that may hold it) to release this node's
    /// claim. A holder deletes the chunk once no other putter is left.
    pub async fn delete_chunk(&self, cid: ContentId) -> ChunkRelease {
        let nodes = self.holder_nodes();
        let asks =
            rank(&cid, &nodes)
                .into_iter()
                .take(window(REPLICAS_DEFAULT as usize))
                .map(|target| async move {
                    (target.node, self.delete_chunk_from(&target.node, cid).await)
                });
        let mut release = ChunkRelease::default();
        for (node, outcome) in join_all(asks).await {
            match outcome {
                Ok(()) => release.released.push(node),
                // Never held here, or not for this node: nothing to release.
                Err(AskError::Refused {
                    code: ErrorCode::NotFound | ErrorCode::NotPutter,
                    ..
                }) => {}
                Err(e) => release.failures.push(e),
            }
        }
        release
    }

    /// Asks `node` alone to release this node's claim on a chunk.
    pub async fn delete_chunk_from(&self, node: &NodeId, cid: ContentId) -> Result<(), AskError> {
        let me = self.node_id();
        if *node == me {
            return holder::release_here(self, me, cid)
                .await
                .map(|_| ())
                .map_err(|e| AskError::Refused {
                    node: me,
                    code: match e {
                        StoreError::NotFound { .. } => ErrorCode::NotFound,
                        StoreError::NotPutter { .. } => ErrorCode::NotPutter,
                        _ => ErrorCode::StoreFailed,
                    },
                    message: e.to_string(),
                });
        }
        match self
            .ask(node, Protocol::Chunk, &Message::ChunkDelete { cid })
            .await?
        {
            Message::Ack => Ok(()),
            other => Err(AskError::Net {
                node: *node,
                reason: format!("unexpected answer to a chunk delete: {other:?}"),
            }),
        }
    }
}

/// The network as a [`ChunkStore`], for the object pipeline. Its methods
/// block on the node's runtime: call them from a blocking thread.
#[derive(Debug, Clone)]
pub struct NetStore {
    inner: Arc<Inner>,
    runtime: tokio::runtime::Handle,
    cluster: Option<ClusterId>,
    /// Whether reads go through the node's edge cache (a public object
    /// read for web visitors).
    edge: bool,
}

/// How long a read waits for a Kademlia lookup of the caches that have a
/// piece.
const PROVIDERS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl NetStore {
    /// A store over `inner`'s network, driven by `runtime`, placing
    /// network-wide.
    pub fn new(inner: Arc<Inner>, runtime: tokio::runtime::Handle) -> NetStore {
        NetStore {
            inner,
            runtime,
            cluster: None,
            edge: false,
        }
    }

    /// A store reading a public object for web visitors: each piece from
    /// the node's edge cache when it is there, else from its holders, and
    /// then kept in the cache for the next visitor.
    pub fn for_visitors(inner: Arc<Inner>, runtime: tokio::runtime::Handle) -> NetStore {
        NetStore {
            edge: true,
            ..NetStore::new(inner, runtime)
        }
    }

    /// A store placing its puts on `cluster`'s members (a bucket's objects).
    pub fn in_cluster(
        inner: Arc<Inner>,
        runtime: tokio::runtime::Handle,
        cluster: ClusterId,
    ) -> NetStore {
        NetStore {
            inner,
            runtime,
            cluster: Some(cluster),
            edge: false,
        }
    }
}

impl ChunkStore for NetStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let owned: Vec<(ContentId, Bytes)> = chunks
            .iter()
            .map(|c| (*c.cid(), Bytes::copy_from_slice(c.bytes())))
            .collect();
        let (inner, cluster) = (self.inner.clone(), self.cluster);
        self.runtime
            .block_on(async move { inner.put_chunks(&owned, cluster.as_ref()).await })
            .map_err(|e| StoreError::Remote {
                reason: e.to_string(),
            })
    }

    /// One copy of each piece, each on its own node ([`Inner::put_group`]).
    fn put_group(&self, pieces: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let owned: Vec<(ContentId, Bytes)> = pieces
            .iter()
            .map(|c| (*c.cid(), Bytes::copy_from_slice(c.bytes())))
            .collect();
        let (inner, cluster) = (self.inner.clone(), self.cluster);
        self.runtime
            .block_on(async move { inner.put_group(&owned, cluster.as_ref()).await })
            .map(|_| ())
            .map_err(|e| StoreError::Remote {
                reason: e.to_string(),
            })
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        buf.clear();
        // A piece this node holds is read from its store; the cache is for
        // the others'.
        let edge = self.edge && !self.inner.store.has(cid)?;
        if edge && let Some(bytes) = self.inner.edge.get(cid) {
            buf.extend_from_slice(&bytes);
            return Ok(());
        }
        let inner = self.inner.clone();
        let cid = *cid;
        let bytes = self
            .runtime
            .block_on(async move {
                match inner.get_chunk(cid).await {
                    // No holder has it: a visitor's read asks the caches.
                    Err(ChunkError::NotFound { cid, reasons }) if edge => inner
                        .get_chunk_from_caches(cid)
                        .await
                        .ok_or(ChunkError::NotFound {
                            cid,
                            reasons: format!("{reasons}; no edge cache has it"),
                        }),
                    other => other,
                }
            })
            .map_err(|e| match e {
                ChunkError::NotFound { cid, .. } => StoreError::NotFound { cid },
                ChunkError::Corrupt {
                    cid,
                    actual,
                    reasons,
                } => StoreError::Corrupt {
                    cid,
                    actual,
                    path: None,
                    reported: Some(reasons),
                },
                other => StoreError::Remote {
                    reason: other.to_string(),
                },
            })?;
        // Verified by the read (its CID): fit to keep, and announced so
        // other nodes' visitors can be served from here.
        if edge {
            let (kept, dropped) = self.inner.edge.put(&cid, &bytes);
            if kept {
                self.inner.net.provide(cid.digest(), false);
            }
            for gone in dropped {
                self.inner.net.provide(gone.digest(), true);
            }
        }
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

    /// Asks the holders of each chunk to release this node's claim on it
    /// (a chunk another node put too stays for that node).
    fn abandon(&self, cids: &[ContentId]) {
        let inner = self.inner.clone();
        let cids = cids.to_vec();
        self.runtime.block_on(async move {
            for group in cids.chunks(CHUNKS_IN_FLIGHT) {
                let deletes = group.iter().map(|cid| inner.delete_chunk(*cid));
                for (cid, release) in group.iter().zip(join_all(deletes).await) {
                    for failure in &release.failures {
                        tracing::warn!(chunk = %cid, %failure, "could not release a chunk of a failed put");
                    }
                }
            }
        });
    }

    fn read_parallelism(&self) -> usize {
        peercloud_store::READ_PARALLELISM_REMOTE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    #[test]
    fn a_chunk_put_is_encoded_byte_for_byte_as_the_message_encoder_writes_it() {
        let cluster = ClusterId(Hash32::of(b"cluster"));
        // Lengths around each varint width, and a whole chunk.
        for len in [0, 1, 127, 128, 16_383, 16_384, (1 << 20) + 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let cid = ContentId::of(&bytes);
            for cluster in [None, Some(cluster)] {
                let expected = Message::ChunkPut {
                    cid,
                    cluster,
                    bytes: bytes.clone(),
                }
                .to_bytes();
                let fast = encode_chunk_put(cid, cluster, &bytes);
                assert_eq!(fast, expected, "length {len}, cluster {cluster:?}");
                assert!(
                    matches!(Message::from_bytes(&fast), Ok(Message::ChunkPut { bytes: b, .. }) if b == bytes)
                );
            }
        }
    }
}

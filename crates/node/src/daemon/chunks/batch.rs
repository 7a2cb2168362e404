//! Batch puts: the chunks of one put bound for the same holder travel in
//! one request and are stored there in one commit.
//!
//! ```text
//!  put_chunks(chunks) ─ each chunk's first `wanted` candidates, grouped by node
//!     ├─ ChunkBatch { cluster, chunks ≤ CHUNK_BATCH_BYTES_MAX } ─► holder: admit each,
//!     │      verify each, FsChunkStore::put_many_for (one fsync'd commit) ─► Ack | Error
//!     └─ a chunk whose batch failed falls through its later candidates one
//!        at a time, as a single put does (Inner::fill_replicas)
//! ```
//!
//! A batch is all or nothing on the holder: one chunk it may not hold (or
//! that does not fit) refuses the whole request, and the sender places
//! those chunks one by one. A holder decodes the request borrowed: each
//! chunk is a slice of the request's bytes, verified and written from there
//! without a copy.

use bytes::Bytes;
use std::collections::BTreeMap;

use futures::future::{join_all, try_join_all};
use peercloud_api::ErrorCode;
use peercloud_ledger::ClusterId;
use peercloud_net::{CHUNK_BATCH_BYTES_MAX, PeerId, Protocol};
use peercloud_store::{ChunkPutters, REPLICAS_DEFAULT, StoreError, VerifiedChunk, candidates};
use peercloud_types::{ContentId, Kind, NodeId, Versioned, decode_borrowed, encode};
use serde::{Deserialize, Serialize};

use super::super::{AskError, Inner};
use super::holder::{PutRefusal, admit};
use super::{ChunkError, Replicas};
use crate::wire::Message;

/// A batch put's request: chunks for one holder, placed in `cluster` (or
/// network-wide). Decoded borrowed, its chunks are slices of the request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChunkBatch<'a> {
    /// The cluster the chunks are placed in, as in a single chunk put.
    pub cluster: Option<ClusterId>,
    /// The chunks, each checked against its CID by the holder.
    #[serde(borrow)]
    pub chunks: Vec<BatchChunk<'a>>,
}

/// One chunk of a [`ChunkBatch`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BatchChunk<'a> {
    /// Its CID.
    pub cid: ContentId,
    /// The sealed bytes (raw on the wire: a length, then the bytes).
    #[serde(borrow)]
    pub bytes: &'a serde_bytes::Bytes,
}

impl Versioned for ChunkBatch<'_> {
    const KIND: u8 = Kind::ChunkBatch as u8;
    const VERSION: u8 = 1;
}

/// Whether a request on the chunk protocol is a [`ChunkBatch`] (its kind
/// byte), not a [`Message`].
pub(crate) fn is_batch(data: &[u8]) -> bool {
    data.first() == Some(&(Kind::ChunkBatch as u8))
}

/// A peer asks this node to keep several chunks.
pub(crate) async fn on_put_batch(inner: &Inner, peer: PeerId, data: Vec<u8>) -> Message {
    let Some(sender) = peercloud_net::node_id_of(&peer) else {
        let refusal = PutRefusal::NotANode {
            peer: peer.to_string(),
        };
        return Message::error(refusal.code(), refusal.to_string());
    };
    let admitted = match decode_borrowed::<ChunkBatch<'_>>(&data) {
        Ok(batch) => admit_all(
            inner,
            &sender,
            batch.cluster.as_ref(),
            batch.chunks.iter().map(|c| &c.cid),
        ),
        Err(e) => {
            return Message::error(
                ErrorCode::BadRequest,
                format!("undecodable chunk batch: {e}"),
            );
        }
    };
    // Decoded again on the blocking thread, borrowed: the chunks are
    // verified and written from the request's own bytes.
    let stored = match admitted {
        Ok(()) => {
            store_admitted(inner, move |put| {
                let batch: ChunkBatch<'_> =
                    decode_borrowed(&data).map_err(|e| StoreError::Remote {
                        reason: format!("chunk batch: {e}"),
                    })?;
                put(
                    sender,
                    &mut batch.chunks.iter().map(|c| (&c.cid, &c.bytes[..])),
                )
            })
            .await
        }
        Err(refusal) => Err(refusal),
    };
    match stored {
        Ok(()) => Message::Ack,
        Err(refusal) => {
            tracing::debug!(%sender, %refusal, "chunk batch refused");
            Message::error(refusal.code(), refusal.to_string())
        }
    }
}

/// Rules 1 and 2 of a put ([`admit`]) for every chunk of a batch.
fn admit_all<'c>(
    inner: &Inner,
    sender: &NodeId,
    cluster: Option<&ClusterId>,
    mut cids: impl Iterator<Item = &'c ContentId>,
) -> Result<(), PutRefusal> {
    cids.try_for_each(|cid| admit(inner, sender, cid, cluster))
}

/// How [`store_admitted`]'s task stores chunks: for a sender, the chunks
/// as CIDs and bytes, each verified, all in one commit.
type PutChunks<'f> =
    &'f dyn Fn(NodeId, &mut dyn Iterator<Item = (&ContentId, &[u8])>) -> Result<(), StoreError>;

/// Runs `task` on a blocking thread, handing it the function that verifies
/// chunks and stores them in one commit within this node's quota (the
/// chunks are admitted already).
pub(super) async fn store_admitted<F>(inner: &Inner, task: F) -> Result<(), PutRefusal>
where
    F: FnOnce(PutChunks<'_>) -> Result<(), StoreError> + Send + 'static,
{
    let node = inner.node_id();
    let store = inner.store.clone();
    let quota_bytes = inner.config.resources.storage_bytes;
    let outcome = tokio::task::spawn_blocking(move || {
        let put = |sender: NodeId, chunks: &mut dyn Iterator<Item = (&ContentId, &[u8])>| {
            let verified = chunks
                .map(|(cid, bytes)| VerifiedChunk::check(cid, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            store.put_many_for(&sender, &verified, quota_bytes)
        };
        task(&put)
    })
    .await;
    outcome
        .map_err(|e| PutRefusal::Task {
            node,
            reason: e.to_string(),
        })?
        .map_err(|source| PutRefusal::Store {
            node,
            source: Box::new(source),
        })
}

impl Inner {
    /// Stores sealed chunks on their replicas as [`Inner::put_chunk`]
    /// does each, with one request (and one commit) per holder for the
    /// chunks it is first asked to keep; a chunk whose batch failed falls
    /// through its later candidates on its own. The caller has checked every
    /// chunk's bytes against its CID.
    pub(crate) async fn put_chunks(
        &self,
        chunks: &[(ContentId, Bytes)],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ChunkError> {
        let nodes = self.placement_scope(cluster)?;
        let wanted = (REPLICAS_DEFAULT as usize).min(nodes.len());
        let ranked: Vec<_> = chunks
            .iter()
            .map(|(cid, _)| candidates(cid, &nodes, REPLICAS_DEFAULT as usize))
            .collect();
        let mut by_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (index, candidates) in ranked.iter().enumerate() {
            for target in candidates.iter().take(wanted) {
                by_node.entry(target.node).or_default().push(index);
            }
        }
        let mut replicas: Vec<Replicas<'_>> = chunks
            .iter()
            .zip(&ranked)
            .map(|((cid, _), ranked)| Replicas {
                cid: *cid,
                wanted,
                ranked,
                tried: wanted.min(ranked.len()),
                stored: Vec::with_capacity(wanted),
                failures: Vec::new(),
            })
            .collect();
        let requests = by_node.iter().flat_map(|(node, indexes)| {
            requests_of(chunks, indexes)
                .into_iter()
                .map(move |request| async move {
                    let outcome = self.put_batch_on(node, chunks, &request, cluster).await;
                    (*node, request, outcome)
                })
        });
        for (node, request, outcome) in join_all(requests).await {
            for index in request {
                match &outcome {
                    Ok(()) => replicas[index].stored.push(node),
                    Err(e) => replicas[index].failures.push(e.clone()),
                }
            }
        }
        let short = replicas
            .into_iter()
            .zip(chunks)
            .filter(|(replicas, _)| replicas.stored.len() < wanted)
            .map(|(replicas, (_, bytes))| self.fill_replicas(replicas, bytes.clone(), cluster));
        try_join_all(short).await.map(|_| ())
    }

    /// Stores the chunks at `indexes` of `chunks` on `node` in one batch:
    /// here through the holder's rules, elsewhere as one [`ChunkBatch`].
    async fn put_batch_on(
        &self,
        node: &NodeId,
        chunks: &[(ContentId, Bytes)],
        indexes: &[usize],
        cluster: Option<&ClusterId>,
    ) -> Result<(), AskError> {
        let me = self.node_id();
        if *node == me {
            let refused = |refusal: PutRefusal| AskError::Refused {
                node: me,
                code: refusal.code(),
                message: refusal.to_string(),
            };
            let picked: Vec<(ContentId, Bytes)> =
                indexes.iter().map(|&i| chunks[i].clone()).collect();
            admit_all(self, &me, cluster, picked.iter().map(|(cid, _)| cid)).map_err(refused)?;
            return store_admitted(self, move |put| {
                put(me, &mut picked.iter().map(|(cid, bytes)| (cid, &bytes[..])))
            })
            .await
            .map_err(refused);
        }
        let batch = ChunkBatch {
            cluster: cluster.copied(),
            chunks: indexes
                .iter()
                .map(|&i| BatchChunk {
                    cid: chunks[i].0,
                    bytes: serde_bytes::Bytes::new(&chunks[i].1),
                })
                .collect(),
        };
        let encoded = encode(&batch);
        drop(batch);
        match self.ask_encoded(node, Protocol::Chunk, encoded).await? {
            Message::Ack => Ok(()),
            other => Err(AskError::Net {
                node: *node,
                reason: format!("unexpected answer to a chunk batch: {other:?}"),
            }),
        }
    }
}

/// Cuts the chunks at `indexes` into requests of at most
/// [`CHUNK_BATCH_BYTES_MAX`] bytes each, in order (a larger chunk alone).
fn requests_of(chunks: &[(ContentId, Bytes)], indexes: &[usize]) -> Vec<Vec<usize>> {
    let mut requests: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &index in indexes {
        let len = chunks[index].1.len();
        match requests.last_mut() {
            Some(request) if bytes + len <= CHUNK_BATCH_BYTES_MAX => {
                request.push(index);
                bytes += len;
            }
            _ => {
                requests.push(vec![index]);
                bytes = len;
            }
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    fn chunk(len: usize, tag: u8) -> (ContentId, Bytes) {
        let bytes = vec![tag; len];
        (ContentId::of(&bytes), Bytes::from(bytes))
    }

    #[test]
    fn a_batch_decodes_borrowed_from_the_request_and_is_told_from_a_message() {
        let chunks = [chunk(1000, 1), chunk(0, 2), chunk(70_000, 3)];
        let cluster = Some(ClusterId(Hash32::of(b"cluster")));
        let batch = ChunkBatch {
            cluster,
            chunks: chunks
                .iter()
                .map(|(cid, bytes)| BatchChunk {
                    cid: *cid,
                    bytes: serde_bytes::Bytes::new(bytes),
                })
                .collect(),
        };
        let encoded = encode(&batch);
        assert!(is_batch(&encoded));
        assert!(!is_batch(
            &Message::ChunkGet { cid: chunks[0].0 }.to_bytes()
        ));
        let back: ChunkBatch<'_> = decode_borrowed(&encoded).unwrap();
        assert_eq!(back.cluster, cluster);
        assert_eq!(back.chunks.len(), 3);
        let within = encoded.as_ptr_range();
        for (got, (cid, bytes)) in back.chunks.iter().zip(&chunks) {
            assert_eq!((got.cid, &got.bytes[..]), (*cid, &bytes[..]));
            // A view of the request's bytes, not a copy.
            assert!(within.contains(&got.bytes.as_ptr()) || got.bytes.is_empty());
        }
        // A batch cut short or with a byte past its end is refused.
        assert!(decode_borrowed::<ChunkBatch<'_>>(&encoded[..encoded.len() - 1]).is_err());
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(decode_borrowed::<ChunkBatch<'_>>(&longer).is_err());
    }

    #[test]
    fn a_holder_s_chunks_are_cut_into_requests_within_the_batch_bound() {
        let mib = 1 << 20;
        let chunks: Vec<(ContentId, Bytes)> = (0..20u8)
            .map(|i| chunk(if i == 5 { 9 * mib } else { mib + 16 }, i))
            .collect();
        let indexes: Vec<usize> = (0..20).collect();
        let requests = requests_of(&chunks, &indexes);
        // Every chunk once, in order.
        assert_eq!(requests.concat(), indexes);
        for request in &requests {
            let bytes: usize = request.iter().map(|&i| chunks[i].1.len()).sum();
            assert!(
                bytes <= CHUNK_BATCH_BYTES_MAX || request.len() == 1,
                "{request:?}: {bytes} bytes"
            );
        }
        // The 9 MiB chunk travels alone; 1 MiB + 16 chunks go seven at a time.
        assert!(requests.contains(&vec![5]));
        assert_eq!(requests[0], vec![0, 1, 2, 3, 4]);
        assert_eq!(requests[2].len(), 7);
    }
}

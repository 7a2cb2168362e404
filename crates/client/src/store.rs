//! [`ApiStore`]: the network store, as one client sees it, behind the
//! [`ChunkStore`] trait — so `peercloud_store::put_object` / `get_object` seal,
//! chunk and verify exactly as they do on a local disk while the node places
//! each chunk on three nodes.
//!
//! An erasure group goes in one request (`POST /v1/chunk-groups`): the node
//! places its pieces on distinct nodes, which it alone can see, with the
//! same code as a node's own `NetStore`.
//!
//! A put of many chunks runs up to [`PUT_CONCURRENCY_MAX`] requests at once
//! (each chunk's put waits on remote nodes, so one at a time would leave the
//! link idle); every chunk read back is checked against its CID by the client
//! before the store pipeline sees it. The network store keeps no per-client
//! inventory, so it is a `ChunkStore` only (no list, delete or usage).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use peercloud_api::ErrorCode;
use peercloud_ledger::ClusterId;
use peercloud_store::{ChunkStore, StoreError, VerifiedChunk};
use peercloud_types::{ContentId, NodeId};

use crate::{ClientError, NodeApi, NodeClient};

/// Chunk puts in flight at once per `put_many`: each waits on the node's
/// placement on three remote nodes, so a few overlap the round trips; eight
/// of 1 MiB keep a 100 MB/s link busy at 80 ms per put while bounding the
/// client's threads and the node's buffered bytes (the store pipeline runs
/// two `put_many` at once, so at most 16 requests).
pub const PUT_CONCURRENCY_MAX: usize = 8;

/// The network's chunk store, reached through one node's API (over HTTP
/// with [`NodeClient`], or in process).
#[derive(Debug, Clone)]
pub struct ApiStore<A = NodeClient> {
    client: A,
    cluster: Option<ClusterId>,
    /// Bytes read through this store, by the node whose copy served them.
    served: Arc<Mutex<BTreeMap<NodeId, u64>>>,
}

impl<A: NodeApi> ApiStore<A> {
    /// A store that reads and writes chunks through `client`'s node.
    pub fn new(client: A) -> Self {
        ApiStore {
            client,
            cluster: None,
            served: Arc::default(),
        }
    }

    /// A store whose puts go on `cluster`'s members (a bucket's objects).
    pub fn in_cluster(client: A, cluster: ClusterId) -> Self {
        ApiStore {
            client,
            cluster: Some(cluster),
            served: Arc::default(),
        }
    }

    /// Bytes read through this store so far, by the node that served them
    /// (what the reader's bandwidth receipts acknowledge).
    pub fn served(&self) -> BTreeMap<NodeId, u64> {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The client underneath.
    pub fn client(&self) -> &A {
        &self.client
    }

    /// Maps a client error met on `cid` to the store's error: a node that
    /// found only bad copies (`chunk_corrupt`), like bytes that reach the
    /// client and fail its own check, is [`StoreError::Corrupt`].
    fn store_error(err: ClientError, cid: &ContentId) -> StoreError {
        match err {
            err if err.is_not_found() => StoreError::NotFound { cid: *cid },
            ClientError::ChunkMismatch { cid, actual } => StoreError::Corrupt {
                cid,
                actual: Some(actual),
                path: None,
                reported: None,
            },
            ClientError::Api {
                code: ErrorCode::ChunkCorrupt,
                message,
                ..
            } => StoreError::Corrupt {
                cid: *cid,
                actual: None,
                path: None,
                reported: Some(message),
            },
            other => StoreError::Remote {
                reason: other.to_string(),
            },
        }
    }

    fn put_one(&self, chunk: &VerifiedChunk<'_>) -> Result<(), StoreError> {
        self.client
            .put_chunk(chunk, self.cluster.as_ref())
            .map_err(|err| Self::store_error(err, chunk.cid()))
    }
}

impl<A: NodeApi> ChunkStore for ApiStore<A> {
    /// Asks the node to release each chunk of a put that failed part way.
    fn abandon(&self, cids: &[ContentId]) {
        for cid in cids {
            if let Err(e) = self.client.delete_chunk(cid) {
                tracing::warn!(chunk = %cid, %e, "could not release a chunk of a failed put");
            }
        }
    }

    /// The whole group in one request: the node places each piece on its
    /// own node.
    fn put_group(&self, pieces: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let Some(first) = pieces.first() else {
            return Ok(());
        };
        self.client
            .put_chunk_group(pieces, self.cluster.as_ref())
            .map_err(|err| Self::store_error(err, first.cid()))
    }

    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let workers = chunks.len().min(PUT_CONCURRENCY_MAX);
        if workers <= 1 {
            return chunks.iter().try_for_each(|chunk| self.put_one(chunk));
        }
        // Workers take the next chunk from a shared index and stop at the
        // first failure anywhere; the first error is returned.
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        while !failed.load(Ordering::Relaxed) {
                            let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed))
                            else {
                                break;
                            };
                            if let Err(err) = self.put_one(chunk) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(err);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            let mut first = Ok(());
            for handle in handles {
                let result = handle.join().unwrap_or(Err(StoreError::ThreadPanicked {
                    thread: "chunk upload",
                }));
                if first.is_ok() {
                    first = result;
                }
            }
            first
        })
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let served_by = self
            .client
            .get_chunk_into(cid, buf)
            .map_err(|err| Self::store_error(err, cid))?;
        if let Some(node) = served_by {
            let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            *served.entry(node).or_default() += buf.len() as u64;
        }
        Ok(())
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        self.client
            .has_chunk(cid)
            .map_err(|err| Self::store_error(err, cid))
    }

    fn read_parallelism(&self) -> usize {
        peercloud_store::READ_PARALLELISM_REMOTE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reporting_only_bad_copies_is_corrupt_not_missing() {
        let cid = ContentId::of(b"chunk");
        let err = ApiStore::<NodeClient>::store_error(
            ClientError::Api {
                status: 502,
                code: ErrorCode::ChunkCorrupt,
                message: "chunk is corrupt on every holder that has it".into(),
            },
            &cid,
        );
        assert!(
            matches!(&err, StoreError::Corrupt { cid: c, reported: Some(r), .. } if *c == cid && r.contains("every holder")),
            "{err:?}"
        );
        let err = ApiStore::<NodeClient>::store_error(
            ClientError::Api {
                status: 404,
                code: ErrorCode::NotFound,
                message: "no holder has it".into(),
            },
            &cid,
        );
        assert!(matches!(err, StoreError::NotFound { cid: c } if c == cid));
    }
}

//! [`ApiStore`]: the network store, as one client sees it, behind the
//! [`ChunkStore`] trait — so `peercloud_store::put_object` / `get_object` seal,
//! chunk and verify exactly as they do on a local disk while the node places
//! each chunk on three nodes.
//!
//! An erasure group goes in one request (`POST /v1/chunk-groups`): the node
//! places its pieces on distinct nodes, which it alone can see, with the
//! same code as a node's own `NetStore`.
//!
//! A put of many chunks goes in batch requests ([`batch_requests`]: the
//! node sends each holder all of its chunks of a request at once), up to
//! [`PUT_CONCURRENCY_MAX`] at a time (each waits on remote nodes, so one at
//! a time would leave the link idle); every chunk read back is checked
//! against its CID by the client before the store pipeline sees it, except a
//! sealed one (`get_sealed_into`), which its seal authenticates when opened
//! (the node checked its CID before answering). The network store keeps no per-client
//! inventory, so it is a `ChunkStore` only (no list, delete or usage).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use peercloud_api::{CHUNK_BATCH_BODY_BYTES_MAX, CHUNK_BATCH_CHUNKS_MAX, ErrorCode};
use peercloud_ledger::ClusterId;
use peercloud_store::{ChunkStore, StoreError, VerifiedChunk};
use peercloud_types::{ContentId, NodeId};

use crate::{ClientError, NodeApi, NodeClient};

/// Requests in flight at once per `put_many`: each waits on the node's
/// placement on remote nodes, so a few overlap the round trips while
/// bounding the client's threads and the node's buffered bytes.
pub const PUT_CONCURRENCY_MAX: usize = 8;

/// Chunk bytes one batch request carries at most: a pipeline's 8 MiB batch
/// goes as two, so the node forwards one while the other arrives.
pub const BATCH_REQUEST_BYTES: usize = 4 << 20;

/// Cuts `chunks` into the requests of a put, in order: up to
/// [`BATCH_REQUEST_BYTES`] and [`CHUNK_BATCH_CHUNKS_MAX`] chunks each (a
/// chunk larger than that alone).
fn batch_requests<'c, 'b>(chunks: &'c [VerifiedChunk<'b>]) -> Vec<&'c [VerifiedChunk<'b>]> {
    let mut requests = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, chunk) in chunks.iter().enumerate() {
        let len = chunk.bytes().len();
        let full = index - start == CHUNK_BATCH_CHUNKS_MAX
            || bytes + len > BATCH_REQUEST_BYTES.min(CHUNK_BATCH_BODY_BYTES_MAX);
        if index > start && full {
            requests.push(&chunks[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += len;
    }
    if start < chunks.len() {
        requests.push(&chunks[start..]);
    }
    requests
}

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

    /// Counts `bytes` of a read of `cid` for the node whose copy served
    /// them (when the node said), or maps the read's error.
    fn record_read(
        &self,
        cid: &ContentId,
        served_by: Result<Option<NodeId>, ClientError>,
        bytes: usize,
    ) -> Result<(), StoreError> {
        let served_by = served_by.map_err(|err| Self::store_error(err, cid))?;
        if let Some(node) = served_by {
            let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            *served.entry(node).or_default() += bytes as u64;
        }
        Ok(())
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
        let requests = batch_requests(chunks);
        let workers = requests.len().min(PUT_CONCURRENCY_MAX);
        let put = |request: &[VerifiedChunk<'_>]| match request {
            [chunk] => self.put_one(chunk),
            _ => self
                .client
                .put_chunk_batch(request, self.cluster.as_ref())
                .map_err(|err| Self::store_error(err, request[0].cid())),
        };
        if workers <= 1 {
            return requests.into_iter().try_for_each(put);
        }
        // Workers take the next request from a shared index and stop at the
        // first failure anywhere; the first error is returned.
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        while !failed.load(Ordering::Relaxed) {
                            let Some(request) = requests.get(next.fetch_add(1, Ordering::Relaxed))
                            else {
                                break;
                            };
                            if let Err(err) = put(request) {
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
        let served_by = self.client.get_chunk_into(cid, buf);
        self.record_read(cid, served_by, buf.len())
    }

    /// Not hashed again here: the node checked it against its CID before
    /// answering, and its seal authenticates it when the caller opens it.
    fn get_sealed_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let served_by = self.client.get_sealed_chunk_into(cid, buf);
        self.record_read(cid, served_by, buf.len())
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
    fn a_put_s_chunks_go_in_requests_of_at_most_the_request_bound_in_order() {
        let mib = 1 << 20;
        let sizes = [mib + 16, mib + 16, mib + 16, 9 * mib, mib + 16, 16, 16];
        let bytes: Vec<Vec<u8>> = sizes.iter().map(|&len| vec![7u8; len]).collect();
        let chunks: Vec<VerifiedChunk<'_>> = bytes.iter().map(|b| VerifiedChunk::new(b)).collect();
        let requests = batch_requests(&chunks);
        let lens: Vec<usize> = requests.iter().map(|r| r.len()).collect();
        // Three 1 MiB chunks fill 4 MiB; the 9 MiB one goes alone; the rest together.
        assert_eq!(lens, vec![3, 1, 3]);
        assert_eq!(lens.iter().sum::<usize>(), chunks.len());
        // Many small chunks: at most CHUNK_BATCH_CHUNKS_MAX a request.
        let small: Vec<Vec<u8>> = (0..150u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let chunks: Vec<VerifiedChunk<'_>> = small.iter().map(|b| VerifiedChunk::new(b)).collect();
        let lens: Vec<usize> = batch_requests(&chunks).iter().map(|r| r.len()).collect();
        assert_eq!(lens, vec![64, 64, 22]);
        assert!(batch_requests(&[]).is_empty());
    }

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

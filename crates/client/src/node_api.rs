//! [`NodeApi`]: what the user-side flows need of a node, typed. The HTTP
//! client ([`crate::NodeClient`]) implements it over a node's API; an
//! in-process grid implements it by calling the node's service directly.
//! The flows (`flow.rs`) and the chunk store ([`crate::ApiStore`]) are
//! written once, over this trait.

use peercloud_api::{
    AccountView, BucketView, ClusterView, DispatchRequest, DispatchResponse, EarningsView,
    EvidenceQuery, EvidenceView, HealthView, IndexView, IndexWrite, IndexWriteReceipt, JobView,
    LeaseOffersResponse, LeaseView, LedgerView, ListQuery, OffersRequest, OffersResponse,
    SpaceCommandResponse, TxReceipt, WaitQuery,
};
use peercloud_ledger::{BucketId, ClusterId, Tx};
use peercloud_store::VerifiedChunk;
use peercloud_types::{
    AccountId, ContentId, JobId, LeaseId, LeaseRequest, NodeId, Signed, SpaceCommand,
};

use crate::ClientError;

/// A node as a user's client sees it. Blocking: the flows are sequences of
/// calls and the store pipeline they feed is thread-based.
pub trait NodeApi: Send + Sync {
    /// The chain as the node sees it.
    fn ledger(&self) -> Result<LedgerView, ClientError>;

    /// An account's balance, stake, next nonce and the fee to pay.
    fn account(&self, account: &AccountId) -> Result<AccountView, ClientError>;

    /// Submits a signed transaction; with `wait`, answers once it is in a block.
    fn submit(&self, tx: &Signed<Tx>, wait: bool) -> Result<TxReceipt, ClientError>;

    /// Stores a sealed chunk on the network (three nodes), on `cluster`'s
    /// members when given (a bucket's chunk).
    fn put_chunk(
        &self,
        chunk: &VerifiedChunk<'_>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError>;

    /// Stores several sealed chunks as [`NodeApi::put_chunk`] stores each,
    /// in one request (at most [`peercloud_api::CHUNK_BATCH_CHUNKS_MAX`]
    /// chunks and [`peercloud_api::CHUNK_BATCH_BODY_BYTES_MAX`] bytes): the
    /// node sends each holder all of its chunks at once. By default, one
    /// put each.
    fn put_chunk_batch(
        &self,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        chunks
            .iter()
            .try_for_each(|chunk| self.put_chunk(chunk, cluster))
    }

    /// Stores the pieces of one erasure group (data, then parity chunks) on
    /// the network: one copy each, each on its own node (of `cluster` when given).
    fn put_chunk_group(
        &self,
        pieces: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError>;

    /// Reads a chunk into `buf` (cleared first), checked against `cid`.
    /// Answers the node whose copy served it, when the node says (the node
    /// a bandwidth receipt pays).
    fn get_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError>;

    /// Reads a sealed chunk into `buf` for a caller that authenticates it
    /// itself when it opens the seal (see `ChunkStore::get_sealed_into`): a
    /// client of the user's own node, which checked the chunk against its
    /// CID before answering, may skip hashing it again. By default
    /// [`NodeApi::get_chunk_into`].
    fn get_sealed_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        self.get_chunk_into(cid, buf)
    }

    /// Asks the network to release a chunk this node put (one of a put that
    /// failed part way); a chunk another node put too stays.
    fn delete_chunk(&self, cid: &ContentId) -> Result<(), ClientError>;

    /// Whether the network holds the chunk. By default a get; a client that
    /// can ask without moving the bytes (HTTP `HEAD`) does so.
    fn has_chunk(&self, cid: &ContentId) -> Result<bool, ClientError> {
        let mut buf = Vec::new();
        match self.get_chunk_into(cid, &mut buf) {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The job as the ledger records it; with `wait.after`, once the node's
    /// tip is past that height (or the wait bound passed): the push form a
    /// flow follows a job with, block by block.
    fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ClientError>;

    /// Broadcasts the job's capacity request and collects offers.
    fn offers(&self, job: &JobId, request: &OffersRequest) -> Result<OffersResponse, ClientError>;

    /// Hands an awarded job to its nodes; answers when each has reported.
    fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ClientError>;

    /// A storage cluster as the ledger records it (`not_found` naming it
    /// when there is none).
    fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ClientError>;

    /// Every storage cluster on the ledger.
    fn clusters(&self) -> Result<Vec<ClusterView>, ClientError>;

    /// A bucket and its deposit (`not_found` naming it when there is none).
    fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ClientError>;

    /// The buckets `owner` owns, closed ones included.
    fn buckets_of(&self, owner: &AccountId) -> Result<Vec<BucketView>, ClientError>;

    /// Writes owner-signed index entries of `bucket` (and the owner's
    /// usage) to a quorum of its index replicas.
    fn index_write(
        &self,
        bucket: &BucketId,
        write: &IndexWrite,
    ) -> Result<IndexWriteReceipt, ClientError>;

    /// The newest entry of `key` in `bucket` a quorum knows.
    fn index_get(&self, bucket: &BucketId, key: &str) -> Result<IndexView, ClientError>;

    /// The newest entry of each of `keys` (1..=[`peercloud_api::INDEX_KEYS_MAX`],
    /// each once) in `bucket` a quorum knows, in one request.
    fn index_get_many(&self, bucket: &BucketId, keys: &[String]) -> Result<IndexView, ClientError>;

    /// A page of `bucket`'s entries under a prefix.
    fn index_list(&self, bucket: &BucketId, query: &ListQuery) -> Result<IndexView, ClientError>;

    /// What a quorum of `bucket`'s index replicas holds for a bill of one
    /// period: the usage and the owner's receipts.
    fn index_evidence(
        &self,
        bucket: &BucketId,
        query: &EvidenceQuery,
    ) -> Result<EvidenceView, ClientError>;

    /// What the node earned from storage (totals, per bucket, the newest
    /// `limit` payments; the node's default when `None`) and how it stands:
    /// reputation, stake, stake locked in clusters.
    fn earnings(&self, limit: Option<u32>) -> Result<EarningsView, ClientError>;

    /// Every live object of `bucket` checked where the cluster placed its
    /// pieces: how many are lost now.
    fn bucket_health(&self, bucket: &BucketId) -> Result<HealthView, ClientError>;

    /// Broadcasts a lease request; the sealed bids that came before its
    /// offer window closed, cheapest first.
    fn lease_offers(&self, request: &LeaseRequest) -> Result<LeaseOffersResponse, ClientError>;

    /// Runs a lease user's signed command in the lease's space.
    fn space_command(
        &self,
        command: &Signed<SpaceCommand>,
    ) -> Result<SpaceCommandResponse, ClientError>;

    /// A lease as the ledger has it.
    fn lease(&self, lease: &LeaseId) -> Result<LeaseView, ClientError>;

    /// A user's leases.
    fn leases_of(&self, user: &AccountId) -> Result<Vec<LeaseView>, ClientError>;
}

impl<T: NodeApi + ?Sized> NodeApi for &T {
    fn ledger(&self) -> Result<LedgerView, ClientError> {
        (**self).ledger()
    }
    fn account(&self, account: &AccountId) -> Result<AccountView, ClientError> {
        (**self).account(account)
    }
    fn submit(&self, tx: &Signed<Tx>, wait: bool) -> Result<TxReceipt, ClientError> {
        (**self).submit(tx, wait)
    }
    fn put_chunk(
        &self,
        chunk: &VerifiedChunk<'_>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        (**self).put_chunk(chunk, cluster)
    }
    fn put_chunk_batch(
        &self,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        (**self).put_chunk_batch(chunks, cluster)
    }
    fn put_chunk_group(
        &self,
        pieces: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        (**self).put_chunk_group(pieces, cluster)
    }
    fn get_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        (**self).get_chunk_into(cid, buf)
    }
    fn get_sealed_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        (**self).get_sealed_chunk_into(cid, buf)
    }
    fn delete_chunk(&self, cid: &ContentId) -> Result<(), ClientError> {
        (**self).delete_chunk(cid)
    }
    fn has_chunk(&self, cid: &ContentId) -> Result<bool, ClientError> {
        (**self).has_chunk(cid)
    }
    fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ClientError> {
        (**self).job(job, wait)
    }
    fn offers(&self, job: &JobId, request: &OffersRequest) -> Result<OffersResponse, ClientError> {
        (**self).offers(job, request)
    }
    fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ClientError> {
        (**self).dispatch(job, request)
    }
    fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ClientError> {
        (**self).cluster(cluster)
    }
    fn clusters(&self) -> Result<Vec<ClusterView>, ClientError> {
        (**self).clusters()
    }
    fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ClientError> {
        (**self).bucket(bucket)
    }
    fn buckets_of(&self, owner: &AccountId) -> Result<Vec<BucketView>, ClientError> {
        (**self).buckets_of(owner)
    }
    fn index_write(
        &self,
        bucket: &BucketId,
        write: &IndexWrite,
    ) -> Result<IndexWriteReceipt, ClientError> {
        (**self).index_write(bucket, write)
    }
    fn index_get(&self, bucket: &BucketId, key: &str) -> Result<IndexView, ClientError> {
        (**self).index_get(bucket, key)
    }
    fn index_get_many(&self, bucket: &BucketId, keys: &[String]) -> Result<IndexView, ClientError> {
        (**self).index_get_many(bucket, keys)
    }
    fn index_list(&self, bucket: &BucketId, query: &ListQuery) -> Result<IndexView, ClientError> {
        (**self).index_list(bucket, query)
    }
    fn index_evidence(
        &self,
        bucket: &BucketId,
        query: &EvidenceQuery,
    ) -> Result<EvidenceView, ClientError> {
        (**self).index_evidence(bucket, query)
    }
    fn earnings(&self, limit: Option<u32>) -> Result<EarningsView, ClientError> {
        (**self).earnings(limit)
    }
    fn bucket_health(&self, bucket: &BucketId) -> Result<HealthView, ClientError> {
        (**self).bucket_health(bucket)
    }
    fn lease_offers(&self, request: &LeaseRequest) -> Result<LeaseOffersResponse, ClientError> {
        (**self).lease_offers(request)
    }
    fn space_command(
        &self,
        command: &Signed<SpaceCommand>,
    ) -> Result<SpaceCommandResponse, ClientError> {
        (**self).space_command(command)
    }
    fn lease(&self, lease: &LeaseId) -> Result<LeaseView, ClientError> {
        (**self).lease(lease)
    }
    fn leases_of(&self, user: &AccountId) -> Result<Vec<LeaseView>, ClientError> {
        (**self).leases_of(user)
    }
}

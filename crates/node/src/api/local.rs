//! [`InProcessNode`]: the client's [`NodeApi`] over a node's API
//! [`Service`] in the same process, without HTTP: a devnet's grid reaches
//! its daemons through it, and the node's own gateways (S3) run the
//! client's flows through it.

use bytes::Bytes;
use peercloud_api::*;
use peercloud_client::{ClientError, NodeApi};
use peercloud_ledger::{BucketId, ClusterId, Tx};
use peercloud_store::VerifiedChunk;
use peercloud_types::{AccountId, ContentId, JobId, NodeId, Signed};

use super::Service;

/// A node reached through its API service in this process.
/// Blocking, like the HTTP client: call it from outside the grid's runtime.
#[derive(Debug, Clone)]
pub struct InProcessNode {
    service: Service,
    runtime: tokio::runtime::Handle,
}

impl InProcessNode {
    /// The node behind `service`, its async calls run on `runtime`.
    pub fn new(service: Service, runtime: tokio::runtime::Handle) -> InProcessNode {
        InProcessNode { service, runtime }
    }

    /// The node's service.
    pub fn service(&self) -> &Service {
        &self.service
    }
}

impl NodeApi for InProcessNode {
    fn ledger(&self) -> Result<LedgerView, ClientError> {
        Ok(self.service.ledger()?)
    }

    fn account(&self, account: &AccountId) -> Result<AccountView, ClientError> {
        Ok(self.service.account(account))
    }

    fn submit(&self, tx: &Signed<Tx>, wait: bool) -> Result<TxReceipt, ClientError> {
        Ok(self
            .runtime
            .block_on(self.service.submit(tx.clone(), wait))?)
    }

    fn put_chunk(
        &self,
        chunk: &VerifiedChunk<'_>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        let (cid, bytes) = (*chunk.cid(), chunk.bytes().to_vec());
        Ok(self
            .runtime
            .block_on(self.service.put_chunk(cid, bytes, cluster.copied()))?)
    }

    fn put_chunk_batch(
        &self,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        let chunks = chunks
            .iter()
            .map(|chunk| (*chunk.cid(), Bytes::copy_from_slice(chunk.bytes())))
            .collect();
        Ok(self
            .runtime
            .block_on(self.service.put_chunks(chunks, cluster.copied()))?)
    }

    fn put_chunk_group(
        &self,
        pieces: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        let pieces = pieces
            .iter()
            .map(|piece| (*piece.cid(), Bytes::copy_from_slice(piece.bytes())))
            .collect();
        Ok(self
            .runtime
            .block_on(self.service.put_chunk_group(pieces, cluster.copied()))?)
    }

    fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ClientError> {
        Ok(self.service.cluster(cluster)?)
    }

    fn clusters(&self) -> Result<Vec<ClusterView>, ClientError> {
        Ok(self.service.clusters())
    }

    fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ClientError> {
        Ok(self.service.bucket(bucket)?)
    }

    fn buckets_of(&self, owner: &AccountId) -> Result<Vec<BucketView>, ClientError> {
        Ok(self.service.buckets_of(owner))
    }

    fn index_write(
        &self,
        bucket: &BucketId,
        write: &IndexWrite,
    ) -> Result<IndexWriteReceipt, ClientError> {
        Ok(self
            .runtime
            .block_on(self.service.index_write(*bucket, write.clone()))?)
    }

    fn index_get(&self, bucket: &BucketId, key: &str) -> Result<IndexView, ClientError> {
        Ok(self
            .runtime
            .block_on(self.service.index_get(*bucket, key.to_owned()))?)
    }

    fn index_get_many(&self, bucket: &BucketId, keys: &[String]) -> Result<IndexView, ClientError> {
        let keys = IndexKeys {
            keys: keys.to_vec(),
        };
        Ok(self
            .runtime
            .block_on(self.service.index_get_many(*bucket, keys))?)
    }

    fn index_list(&self, bucket: &BucketId, query: &ListQuery) -> Result<IndexView, ClientError> {
        Ok(self
            .runtime
            .block_on(self.service.index_list(*bucket, query.clone()))?)
    }

    fn index_evidence(
        &self,
        bucket: &BucketId,
        query: &EvidenceQuery,
    ) -> Result<EvidenceView, ClientError> {
        Ok(self
            .runtime
            .block_on(self.service.index_evidence(*bucket, *query))?)
    }

    fn bucket_health(&self, bucket: &BucketId) -> Result<HealthView, ClientError> {
        Ok(self.runtime.block_on(self.service.bucket_health(*bucket))?)
    }

    fn earnings(&self, limit: Option<u32>) -> Result<peercloud_api::EarningsView, ClientError> {
        Ok(self
            .service
            .earnings(peercloud_api::EarningsQuery { limit })?)
    }

    fn delete_chunk(&self, cid: &ContentId) -> Result<(), ClientError> {
        Ok(self.runtime.block_on(self.service.delete_chunk(*cid))?)
    }

    fn get_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        let (bytes, served_by) = self.runtime.block_on(self.service.get_chunk(*cid))?;
        let actual = ContentId::of(&bytes);
        if actual != *cid {
            buf.clear();
            return Err(ClientError::ChunkMismatch { cid: *cid, actual });
        }
        buf.clear();
        buf.extend_from_slice(&bytes);
        Ok(Some(served_by))
    }

    fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ClientError> {
        Ok(self.runtime.block_on(self.service.job(job, wait))?)
    }

    fn offers(&self, job: &JobId, request: &OffersRequest) -> Result<OffersResponse, ClientError> {
        Ok(self.runtime.block_on(self.service.offers(job, request))?)
    }

    fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ClientError> {
        Ok(self.runtime.block_on(self.service.dispatch(job, request))?)
    }

    fn lease_offers(
        &self,
        request: &peercloud_types::LeaseRequest,
    ) -> Result<peercloud_api::LeaseOffersResponse, ClientError> {
        let body = peercloud_api::LeaseOffersRequest {
            request: peercloud_api::Canonical(request.clone()),
        };
        Ok(self.runtime.block_on(self.service.lease_offers(body))?)
    }

    fn space_command(
        &self,
        command: &peercloud_types::Signed<peercloud_types::SpaceCommand>,
    ) -> Result<peercloud_api::SpaceCommandResponse, ClientError> {
        let body = peercloud_api::SpaceCommandRequest {
            command: peercloud_api::Canonical(command.clone()),
        };
        Ok(self.runtime.block_on(self.service.space_command(body))?)
    }

    fn lease(
        &self,
        lease: &peercloud_types::LeaseId,
    ) -> Result<peercloud_api::LeaseView, ClientError> {
        Ok(self.service.lease(lease)?)
    }

    fn leases_of(
        &self,
        user: &peercloud_types::AccountId,
    ) -> Result<Vec<peercloud_api::LeaseView>, ClientError> {
        Ok(self.service.leases_of(user))
    }
}

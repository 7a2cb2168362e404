//! The storage calls of the API: clusters and buckets as the ledger records
//! them. The [`Service`] methods are what each call does (the in-process
//! client calls them directly); the axum handlers below only parse the path
//! and answer JSON, refusals going through [`Failure`] like every route's.
//!
//! ```text
//!   GET /v1/clusters                 ─► Service::clusters    [ClusterView]
//!   GET /v1/clusters/{id}            ─► Service::cluster     ClusterView | not_found
//!   GET /v1/buckets/{id}             ─► Service::bucket      BucketView  | not_found
//!   GET /v1/accounts/{id}/buckets    ─► Service::buckets_of  [BucketView]
//! ```

use axum::extract::{Path, State};
use peercloud_api::{ApiError, BucketView, ClusterView};
use peercloud_ledger::{BucketId, ClusterId};
use peercloud_types::AccountId;

use super::server::{Failure, parse};
use super::service::Service;

impl Service {
    /// `GET /v1/clusters`: every cluster on the ledger, in id order.
    pub fn clusters(&self) -> Vec<ClusterView> {
        let chain = self.inner().chain();
        chain
            .state()
            .clusters()
            .map(|(id, record)| ClusterView::new(*id, record))
            .collect()
    }

    /// `GET /v1/clusters/{id}`: `not_found` naming the id when there is none.
    pub fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ApiError> {
        let chain = self.inner().chain();
        chain
            .state()
            .cluster(cluster)
            .map(|record| ClusterView::new(*cluster, record))
            .ok_or_else(|| ApiError::not_found(format!("no {cluster} on the ledger")))
    }

    /// `GET /v1/buckets/{id}`: `not_found` naming the id when there is none.
    pub fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ApiError> {
        let chain = self.inner().chain();
        let state = chain.state();
        let record = state
            .bucket(bucket)
            .ok_or_else(|| ApiError::not_found(format!("no {bucket} on the ledger")))?;
        let terms = state.cluster(&record.cluster).map(|c| &c.terms);
        Ok(BucketView::new(*bucket, record, terms))
    }

    /// `GET /v1/accounts/{id}/buckets`: the buckets `owner` owns, closed and
    /// expired ones included, in id order (none: an empty list).
    pub fn buckets_of(&self, owner: &AccountId) -> Vec<BucketView> {
        let chain = self.inner().chain();
        let state = chain.state();
        state
            .buckets()
            .filter(|(_, record)| record.owner == *owner)
            .map(|(id, record)| {
                let terms = state.cluster(&record.cluster).map(|c| &c.terms);
                BucketView::new(*id, record, terms)
            })
            .collect()
    }
}

type Answer<T> = Result<axum::Json<T>, Failure>;

pub(super) async fn clusters(State(service): State<Service>) -> Answer<Vec<ClusterView>> {
    Ok(axum::Json(service.clusters()))
}

pub(super) async fn cluster(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Answer<ClusterView> {
    let cluster: ClusterId = parse(&id, "a cluster id")?;
    Ok(axum::Json(service.cluster(&cluster)?))
}

pub(super) async fn bucket(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Answer<BucketView> {
    let bucket: BucketId = parse(&id, "a bucket id")?;
    Ok(axum::Json(service.bucket(&bucket)?))
}

pub(super) async fn buckets_of(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Answer<Vec<BucketView>> {
    let owner: AccountId = parse(&id, "an account id")?;
    Ok(axum::Json(service.buckets_of(&owner)))
}

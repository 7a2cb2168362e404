//! The object index calls of the API: a bucket's entries, written and read
//! by quorum on its cluster's index replicas ([`crate::daemon::Inner::index_write`]).
//!
//! ```text
//!   POST /v1/buckets/{id}/index          IndexWrite ─► Service::index_write ─► IndexWriteReceipt
//!   GET  /v1/buckets/{id}/objects/{key}             ─► Service::index_get   ─► IndexView (one entry or none)
//!   POST /v1/buckets/{id}/index/keys     IndexKeys  ─► Service::index_get_many ─► IndexView (each key's entry)
//!   GET  /v1/buckets/{id}/objects?prefix&after&limit ─► Service::index_list ─► IndexView (a page)
//!   GET  /v1/buckets/{id}/evidence?period&until_ms    ─► Service::index_evidence ─► EvidenceView
//!   GET  /v1/buckets/{id}/health                     ─► Service::bucket_health ─► HealthView
//! ```

use axum::extract::{Path, Query, State};
use peercloud_api::{
    ApiError, Canonical, EvidenceQuery, EvidenceView, HealthView, INDEX_KEYS_MAX, IndexKeys,
    IndexView, IndexWrite, IndexWriteReceipt, ListQuery,
};
use peercloud_ledger::BucketId;
use tracing::Instrument;

use super::server::{Body, Failure, parse, rejection};
use super::service::Service;
use crate::daemon::{Batch, INDEX_PAGE_MAX, IndexError, IndexRead, RepairMemory, RepairMode};

/// Largest index write body: a batch of 1,000 entries of long keys, or
/// of inline objects up to the index's limit, hex.
pub const INDEX_WRITE_BODY_BYTES_MAX: usize = 4 << 20;

fn api_error(err: IndexError) -> ApiError {
    ApiError::new(err.code(), err.to_string())
}

fn view(read: IndexRead) -> IndexView {
    IndexView {
        entries: read.entries.into_iter().map(Canonical).collect(),
        usage: read.usage.map(Canonical),
        more: read.more,
        inline: read.inline.into_iter().map(Canonical).collect(),
        bucket: None,
    }
}

impl Service {
    /// `POST /v1/buckets/{id}/index`: the entries must all be of `bucket`
    /// and signed by its owner, the bucket writable; answers once a quorum
    /// of the bucket's index replicas committed them.
    pub async fn index_write(
        &self,
        bucket: BucketId,
        write: IndexWrite,
    ) -> Result<IndexWriteReceipt, ApiError> {
        let batch = Batch {
            entries: write.entries.into_iter().map(|e| e.0).collect(),
            usages: write.usage.into_iter().map(|u| u.0).collect(),
            receipts: write.receipts.into_iter().map(|r| r.0).collect(),
            repairs: Vec::new(),
            inline: write.inline.into_iter().map(|i| i.0).collect(),
        };
        let buckets = batch
            .entries
            .iter()
            .map(|e| e.body.bucket)
            .chain(batch.usages.iter().map(|u| u.body.bucket))
            .chain(batch.receipts.iter().map(|r| r.body.bucket));
        if let Some(other) = buckets.into_iter().find(|b| *b != bucket) {
            return Err(ApiError::bad_request(format!(
                "a write to {bucket} holds a record of {other}"
            )));
        }
        let count = batch.entries.len();
        self.inner()
            .index_write(batch)
            .instrument(tracing::debug_span!("index_write", %bucket, entries = count))
            .await
            .map(|replicas| IndexWriteReceipt { replicas })
            .map_err(api_error)
    }

    /// `GET /v1/buckets/{id}/objects/{key}`: the key's newest entry a
    /// quorum knows (none: an empty list), and the bucket's usage.
    pub async fn index_get(&self, bucket: BucketId, key: String) -> Result<IndexView, ApiError> {
        self.inner()
            .index_get(bucket, key)
            .instrument(tracing::debug_span!("index_get", %bucket))
            .await
            .map(|read| IndexView {
                bucket: self.bucket(&bucket).ok(),
                ..view(read)
            })
            .map_err(api_error)
    }

    /// `POST /v1/buckets/{id}/index/keys`: each key's newest entry a quorum
    /// knows (keys without one are left out), the bucket's usage and view.
    /// The keys' gets go to the bucket's rounds together, so they travel
    /// as one or a few `IndexGet`s of many keys.
    pub async fn index_get_many(
        &self,
        bucket: BucketId,
        keys: IndexKeys,
    ) -> Result<IndexView, ApiError> {
        let mut keys = keys.keys;
        if keys.is_empty() || keys.len() > INDEX_KEYS_MAX {
            return Err(ApiError::bad_request(format!(
                "{} keys asked for: a get of many keys asks for 1..={INDEX_KEYS_MAX}",
                keys.len()
            )));
        }
        keys.sort_unstable();
        if let Some(twice) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ApiError::bad_request(format!(
                "key {:?} is asked for twice",
                twice[0]
            )));
        }
        let inner = self.inner();
        let reads =
            futures::future::try_join_all(keys.into_iter().map(|key| inner.index_get(bucket, key)))
                .instrument(tracing::debug_span!("index_get_many", %bucket))
                .await
                .map_err(api_error)?;
        let mut merged = IndexRead::default();
        for read in reads {
            merged.entries.extend(read.entries);
            merged.inline.extend(read.inline);
            if read.usage.as_ref().map(|u| u.body.seq) > merged.usage.as_ref().map(|u| u.body.seq) {
                merged.usage = read.usage;
            }
        }
        Ok(IndexView {
            bucket: self.bucket(&bucket).ok(),
            ..view(merged)
        })
    }

    /// `GET /v1/buckets/{id}/evidence`: what a bill of `period` would carry.
    pub async fn index_evidence(
        &self,
        bucket: BucketId,
        query: EvidenceQuery,
    ) -> Result<EvidenceView, ApiError> {
        self.inner()
            .index_evidence(bucket, query.period, query.until_ms.unwrap_or(u64::MAX))
            .instrument(tracing::debug_span!("index_evidence", %bucket))
            .await
            .map(|e| EvidenceView {
                usage: e.usage.map(Canonical),
                receipts: e.receipts.into_iter().map(Canonical).collect(),
            })
            .map_err(api_error)
    }

    /// `GET /v1/buckets/{id}/health`: every live object's pieces checked
    /// where the cluster placed them (nothing rebuilt by this call).
    pub async fn bucket_health(&self, bucket: BucketId) -> Result<HealthView, ApiError> {
        let mut down = RepairMemory::default();
        self.inner()
            .repair_bucket(bucket, &mut down, RepairMode::Check)
            .instrument(tracing::debug_span!("bucket_health", %bucket))
            .await
            .map(|report| HealthView {
                objects: report.objects,
                pieces: report.pieces,
                lost: report.lost,
                problems: report.unrepaired,
            })
            .map_err(api_error)
    }

    /// `GET /v1/buckets/{id}/objects`: a page of the keys under a prefix.
    pub async fn index_list(
        &self,
        bucket: BucketId,
        query: ListQuery,
    ) -> Result<IndexView, ApiError> {
        let limit = query.limit.unwrap_or(INDEX_PAGE_MAX);
        if limit == 0 || limit > INDEX_PAGE_MAX {
            return Err(ApiError::bad_request(format!(
                "limit {limit}: a page holds 1..={INDEX_PAGE_MAX} keys"
            )));
        }
        self.inner()
            .index_list(bucket, query.prefix.unwrap_or_default(), query.after, limit)
            .instrument(tracing::debug_span!("index_list", %bucket))
            .await
            .map(view)
            .map_err(api_error)
    }
}

pub(super) async fn write(
    State(service): State<Service>,
    Path(bucket): Path<String>,
    Body(body): Body<IndexWrite>,
) -> Result<axum::Json<IndexWriteReceipt>, Failure> {
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.index_write(bucket, body).await?))
}

pub(super) async fn get(
    State(service): State<Service>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<axum::Json<IndexView>, Failure> {
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.index_get(bucket, key).await?))
}

pub(super) async fn get_many(
    State(service): State<Service>,
    Path(bucket): Path<String>,
    Body(body): Body<IndexKeys>,
) -> Result<axum::Json<IndexView>, Failure> {
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.index_get_many(bucket, body).await?))
}

pub(super) async fn evidence(
    State(service): State<Service>,
    Path(bucket): Path<String>,
    query: Result<Query<EvidenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<EvidenceView>, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.index_evidence(bucket, query).await?))
}

pub(super) async fn health(
    State(service): State<Service>,
    Path(bucket): Path<String>,
) -> Result<axum::Json<HealthView>, Failure> {
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.bucket_health(bucket).await?))
}

pub(super) async fn list(
    State(service): State<Service>,
    Path(bucket): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<IndexView>, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    let bucket: BucketId = parse(&bucket, "a bucket id")?;
    Ok(axum::Json(service.index_list(bucket, query).await?))
}

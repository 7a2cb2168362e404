//! The object index calls of [`NodeClient`] (`/v1/buckets/{id}/index` and
//! `/v1/buckets/{id}/objects…`). Keys go in the path percent-encoded (their
//! `/` kept), prefixes and markers in the query.

use peercloud_api::{
    EvidenceQuery, EvidenceView, HealthView, IndexKeys, IndexView, IndexWrite, IndexWriteReceipt,
    ListQuery,
};
use peercloud_ledger::{BucketId, ClusterId};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{ClientError, NodeClient, REQUEST_TIMEOUT};

/// What a key's path segment escapes: everything but unreserved characters
/// and the `/` that separates its parts.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// What a query value escapes: everything but unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How long a bucket's health check may take (it audits every piece).
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `{sep}cluster=ID` when a cluster is given, else nothing.
pub(crate) fn scope_query(sep: char, cluster: Option<&ClusterId>) -> String {
    cluster.map_or_else(String::new, |c| format!("{sep}cluster={}", c.0))
}

impl NodeClient {
    /// `POST /v1/buckets/{id}/index`: owner-signed entries, committed by a
    /// quorum of the bucket's index replicas before the answer.
    pub fn index_write(
        &self,
        bucket: &BucketId,
        write: &IndexWrite,
    ) -> Result<IndexWriteReceipt, ClientError> {
        self.post_json(
            &format!("/buckets/{}/index", bucket.0),
            write,
            REQUEST_TIMEOUT,
        )
    }

    /// `GET /v1/buckets/{id}/objects/{key}`: the key's newest entry.
    pub fn index_get(&self, bucket: &BucketId, key: &str) -> Result<IndexView, ClientError> {
        self.get_json(&format!(
            "/buckets/{}/objects/{}",
            bucket.0,
            utf8_percent_encode(key, KEY_PATH)
        ))
    }

    /// `POST /v1/buckets/{id}/index/keys`: the newest entry of each key.
    pub fn index_get_many(
        &self,
        bucket: &BucketId,
        keys: &[String],
    ) -> Result<IndexView, ClientError> {
        self.post_json(
            &format!("/buckets/{}/index/keys", bucket.0),
            &IndexKeys {
                keys: keys.to_vec(),
            },
            REQUEST_TIMEOUT,
        )
    }

    /// `GET /v1/buckets/{id}/evidence?period=…[&until_ms=…]`: what a bill
    /// of the period would carry.
    pub fn index_evidence(
        &self,
        bucket: &BucketId,
        query: &EvidenceQuery,
    ) -> Result<EvidenceView, ClientError> {
        let mut route = format!("/buckets/{}/evidence?period={}", bucket.0, query.period);
        if let Some(until) = query.until_ms {
            route.push_str(&format!("&until_ms={until}"));
        }
        self.get_json(&route)
    }

    /// `GET /v1/buckets/{id}/health`: every live object's pieces checked.
    /// Slow for a large bucket (an audit per piece), so it waits longer.
    pub fn bucket_health(&self, bucket: &BucketId) -> Result<HealthView, ClientError> {
        let url = self.url(&format!("/buckets/{}/health", bucket.0));
        let response = self.send(self.http.get(&url), &url, HEALTH_TIMEOUT)?;
        crate::decode_json(response, &url, HEALTH_TIMEOUT)
    }

    /// `GET /v1/buckets/{id}/objects?prefix=…&after=…&limit=…`: a page.
    pub fn index_list(
        &self,
        bucket: &BucketId,
        query: &ListQuery,
    ) -> Result<IndexView, ClientError> {
        let mut route = format!("/buckets/{}/objects", bucket.0);
        let mut sep = '?';
        for (name, value) in [("prefix", &query.prefix), ("after", &query.after)] {
            if let Some(value) = value {
                route.push_str(&format!(
                    "{sep}{name}={}",
                    utf8_percent_encode(value, QUERY_VALUE)
                ));
                sep = '&';
            }
        }
        if let Some(limit) = query.limit {
            route.push_str(&format!("{sep}limit={limit}"));
        }
        self.get_json(&route)
    }
}

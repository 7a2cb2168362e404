//! The client of a node's HTTP API: what the `peercloud` CLI (and any Rust
//! program) uses to talk to a running `peercloud node` on this machine.
//!
//! ```text
//!   CLI ──NodeClient (blocking reqwest, bearer token)──► node /v1/... (api::model JSON)
//!    │                                                     │
//!    ├─ ApiStore: ChunkStore over PUT/GET /v1/chunks ──────┤ the node places each chunk
//!    │    so store::put_object / get_object run unchanged   │ on 3 nodes of the network,
//!    │    (erasure groups: POST /v1/chunk-groups) ──────────┤ or a group's pieces on distinct nodes
//!    └─ submit_signed: account() → nonce → Signed<Tx> ─────┘ POST /v1/tx
//! ```
//!
//! - [`NodeClient`] (this file): one typed method per route, each with a
//!   timeout fitted to what the node does behind it.
//! - [`ApiStore`] (`store.rs`): the network store as a [`peercloud_store::ChunkStore`].
//! - [`submit_signed`] (`tx.rs`): sign a transaction with a wallet and submit it.
//! - [`ClientError`] (`error.rs`): unreachable, refused (with the node's
//!   `ApiError`), undecodable, timed out.
//!
//! The client is blocking on purpose: the CLI is a sequence of calls, and the
//! store pipeline it feeds is thread-based. Every answer is read with a size
//! bound, and every chunk read back is checked against its CID here, so
//! nothing unverified leaves the client.

pub mod bucket;
mod earnings_http;
mod error;
pub mod flow;
mod index_http;
pub mod lease;
mod lease_http;
mod node_api;
mod report;
mod store;
#[cfg(test)]
mod test_server;
mod tx;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use peercloud_ledger::{BucketId, ClusterId, Tx};
use peercloud_store::VerifiedChunk;
use peercloud_types::{AccountId, ContentId, JobId, NodeId, Signed};
use reqwest::blocking::{RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use peercloud_api::{
    API_ADDR_FILE, API_PREFIX, AccountView, ApiError, BucketView, Canonical, ClusterView,
    DispatchRequest, DispatchResponse, ErrorCode, EvidenceQuery, EvidenceView, HealthView,
    IndexView, IndexWrite, IndexWriteReceipt, JobView, LedgerView, ListQuery, OffersRequest,
    OffersResponse, SERVED_BY_HEADER, StatusView, SubmitTx, TOKEN_FILE, TxReceipt, WaitQuery,
};

pub use bucket::{BucketError, ObjectItem, ObjectPut};
pub use error::ClientError;
pub use flow::{Content, JobBundle, RemoteError, RunOptions, close_job, run_job};
pub use node_api::NodeApi;
pub use report::{FailedJob, JobReport, Phase};
pub use store::{ApiStore, PUT_CONCURRENCY_MAX};
pub use tx::{submit_signed, submit_signed_at};

use index_http::scope_query;

/// Time to open a TCP connection: the node is on this machine or its LAN, so
/// anything slower than 3 s means it is not there.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for a plain call (status, ledger, account, job, submit without
/// waiting): the node answers these from memory, 30 s only absorbs a busy host.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for a submit that waits for its block: the node answers once the
/// transaction is in a committed block; a devnet commits every second or so,
/// and a minute covers a busy validator and a retry of its gossip.
pub const TX_WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for a chunk put or get: the node answers a put only once three nodes
/// hold the chunk and may fetch a get from a remote node; a 16 MiB chunk over
/// a home uplink of ~1 MB/s takes ~20 s per copy.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(120);
/// Time a dispatch may take besides the job's own wall-time bound: staging
/// the inputs on every node, storing the outputs, submitting the results.
pub const DISPATCH_ALLOWANCE: Duration = Duration::from_secs(15 * 60);
/// Largest JSON answer read: the ledger view lists every node, and 16 MiB
/// holds tens of thousands of them; anything larger is not a valid answer.
pub const JSON_BODY_BYTES_MAX: u64 = 16 << 20;
/// Largest chunk read: a sealed data chunk is at most 16 MiB + tag, a
/// manifest of the largest object (1 Mi chunks × ~37 bytes) about 37 MiB.
pub const CHUNK_BODY_BYTES_MAX: u64 = 64 << 20;
/// Largest error body read: an `ApiError` is a code and a sentence.
const ERROR_BODY_BYTES_MAX: u64 = 64 << 10;

/// A connection to one node's HTTP API. Cheap to clone (the connection pool
/// is shared); usable from many threads at once.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::blocking::Client,
    /// `http://host:port`, no trailing slash.
    base: String,
    /// Bearer token; empty sends no `Authorization` header.
    token: String,
}

impl NodeClient {
    /// A client of the node whose API listens at `base` (`http://127.0.0.1:PORT`;
    /// a bare `host:port` means http), authenticating with `token` (empty: none).
    pub fn new(base: &str, token: String) -> Result<Self, ClientError> {
        let base = normalise_base(base)?;
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The API is on this machine: a proxy from the environment would
            // only intercept (and leak the token to) a third party.
            .no_proxy()
            // Small request/response exchanges: never wait for Nagle.
            .tcp_nodelay(true)
            .build()
            .map_err(|err| ClientError::BadUrl {
                url: base.clone(),
                reason: format!("the HTTP client could not start: {}", root_cause(&err)),
            })?;
        Ok(NodeClient {
            http,
            base,
            token: token.trim().to_owned(),
        })
    }

    /// A client of the node whose data directory is `dir`: reads the address
    /// the running node wrote to `api.addr` and its token from `api.token`.
    pub fn from_node_dir(dir: &Path) -> Result<Self, ClientError> {
        let addr = read_api_addr(dir)?;
        let token = read_token_file(&dir.join(TOKEN_FILE))?;
        NodeClient::new(&addr, token)
    }

    /// The API's base address (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v1/status`: who the node is and how it is doing.
    pub fn status(&self) -> Result<StatusView, ClientError> {
        self.get_json("/status")
    }

    /// `GET /v1/ledger`: the chain as the node sees it.
    pub fn ledger(&self) -> Result<LedgerView, ClientError> {
        self.get_json("/ledger")
    }

    /// `GET /v1/accounts/{id}`: balance, stake and next nonce.
    pub fn account(&self, account: &AccountId) -> Result<AccountView, ClientError> {
        self.get_json(&format!("/accounts/{account}"))
    }

    /// `POST /v1/tx`: submits a signed transaction. The node dry-runs it and
    /// refuses it (`tx_refused`, with the ledger's reason) or gossips it to the
    /// validator; with `wait` it answers once the transaction is in a block.
    pub fn submit(&self, tx: &Signed<Tx>, wait: bool) -> Result<TxReceipt, ClientError> {
        let body = SubmitTx {
            tx: Canonical(tx.clone()),
            wait,
        };
        let timeout = if wait {
            TX_WAIT_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        self.post_json("/tx", &body, timeout)
    }

    /// `PUT /v1/chunks/{cid}`: the node places the sealed chunk on three
    /// distinct nodes (of `cluster` when given) and answers once they hold it.
    pub fn put_chunk(
        &self,
        chunk: &VerifiedChunk<'_>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        let url = self.url(&format!(
            "/chunks/{}{}",
            chunk.cid(),
            scope_query('?', cluster)
        ));
        let request = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            // reqwest's blocking body must own its bytes: one copy of a chunk
            // (~0.1 ms per MiB) against a network round trip.
            .body(chunk.bytes().to_vec());
        self.send(request, &url, CHUNK_TIMEOUT)?;
        Ok(())
    }

    /// `POST /v1/chunk-groups?pieces=CID:BYTES,…`: the pieces of one erasure
    /// group (data, then parity) in one body; the node puts one copy of each
    /// on distinct nodes and answers once they all hold theirs.
    pub fn put_chunk_group(
        &self,
        pieces: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        self.post_chunks("/chunk-groups?pieces=", pieces, cluster)
    }

    /// `POST /v1/chunk-batches?chunks=CID:BYTES,…`: several chunks in one
    /// body; the node places each on its replicas as a single put would
    /// (one request to each holder for all of its chunks) and answers once
    /// they all hold theirs.
    pub fn put_chunk_batch(
        &self,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        self.post_chunks("/chunk-batches?chunks=", chunks, cluster)
    }

    /// Posts `chunks` in one body to `route` (ending in the query key that
    /// lists them as `CID:BYTES,…`).
    fn post_chunks(
        &self,
        route: &str,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        let listed: Vec<String> = chunks
            .iter()
            .map(|chunk| format!("{}:{}", chunk.cid(), chunk.bytes().len()))
            .collect();
        let url = self.url(&format!(
            "{route}{}{}",
            listed.join(","),
            scope_query('&', cluster)
        ));
        let mut body = Vec::with_capacity(chunks.iter().map(|c| c.bytes().len()).sum());
        for chunk in chunks {
            body.extend_from_slice(chunk.bytes());
        }
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.send(request, &url, CHUNK_TIMEOUT)?;
        Ok(())
    }

    /// `DELETE /v1/chunks/{cid}`: releases the chunk this node put.
    pub fn delete_chunk(&self, cid: &ContentId) -> Result<(), ClientError> {
        let url = self.url(&format!("/chunks/{cid}"));
        self.send(self.http.delete(&url), &url, CHUNK_TIMEOUT)?;
        Ok(())
    }

    /// `GET /v1/chunks/{cid}`: the chunk's bytes, checked against `cid`.
    pub fn get_chunk(&self, cid: &ContentId) -> Result<Vec<u8>, ClientError> {
        let mut buf = Vec::new();
        self.get_chunk_into(cid, &mut buf)?;
        Ok(buf)
    }

    /// Like [`NodeClient::get_chunk`] into `buf` (cleared first, its allocation
    /// reused). On a CID mismatch `buf` is cleared and the error names both
    /// CIDs. Answers the node whose copy served it, when the node says.
    pub fn get_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        let served_by = self.get_sealed_chunk_into(cid, buf)?;
        let actual = ContentId::of(buf);
        if actual != *cid {
            buf.clear();
            return Err(ClientError::ChunkMismatch { cid: *cid, actual });
        }
        Ok(served_by)
    }

    /// `GET /v1/chunks/{cid}` without hashing the bytes here: for a sealed
    /// chunk the caller authenticates when it opens it (the node checked
    /// the chunk against its CID before answering; a node that lies cannot
    /// forge the seal).
    pub fn get_sealed_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        buf.clear();
        let url = self.url(&format!("/chunks/{cid}"));
        let response = self.send(self.http.get(&url), &url, CHUNK_TIMEOUT)?;
        let served_by = response
            .headers()
            .get(SERVED_BY_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        read_body_into(response, &url, CHUNK_BODY_BYTES_MAX, CHUNK_TIMEOUT, buf)?;
        Ok(served_by)
    }

    /// Whether the network holds the chunk (`HEAD /v1/chunks/{cid}`, or a GET
    /// when the node does not answer HEAD).
    pub fn has_chunk(&self, cid: &ContentId) -> Result<bool, ClientError> {
        let url = self.url(&format!("/chunks/{cid}"));
        match self.send(self.http.head(&url), &url, CHUNK_TIMEOUT) {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(ClientError::Api { status: 405, .. }) => match self.get_chunk(cid) {
                Ok(_) => Ok(true),
                Err(err) if err.is_not_found() => Ok(false),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        }
    }

    /// `GET /v1/jobs/{id}`: the job as the ledger records it; with
    /// `wait.after`, the node answers once its tip is past that height (a
    /// long poll, bound by the node under [`REQUEST_TIMEOUT`]).
    pub fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ClientError> {
        let mut route = format!("/jobs/{job}");
        if let Some(after) = wait.after {
            route.push_str(&format!("?after={after}"));
            if let Some(wait_ms) = wait.wait_ms {
                route.push_str(&format!("&wait_ms={wait_ms}"));
            }
        }
        self.get_json(&route)
    }

    /// `POST /v1/jobs/{id}/offers`: broadcasts the job's capacity request and
    /// collects offers for `request.window_ms`.
    pub fn offers(
        &self,
        job: &JobId,
        request: &OffersRequest,
    ) -> Result<OffersResponse, ClientError> {
        let timeout = Duration::from_millis(request.window_ms).saturating_add(REQUEST_TIMEOUT);
        self.post_json(&format!("/jobs/{job}/offers"), request, timeout)
    }

    /// `POST /v1/jobs/{id}/dispatch`: hands an awarded job to its nodes and
    /// answers when every node has reported (runs take minutes: the timeout is
    /// the job's wall-time bound plus [`DISPATCH_ALLOWANCE`]).
    pub fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ClientError> {
        let timeout = Duration::from_millis(request.spec.limits.wall_time_ms)
            .saturating_add(DISPATCH_ALLOWANCE);
        self.post_json(&format!("/jobs/{job}/dispatch"), request, timeout)
    }

    /// `GET /v1/clusters/{id}`: a storage cluster (`not_found` naming it
    /// when there is none).
    pub fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ClientError> {
        self.get_json(&format!("/clusters/{}", cluster.0))
    }

    /// `GET /v1/clusters`: every storage cluster on the ledger.
    pub fn clusters(&self) -> Result<Vec<ClusterView>, ClientError> {
        self.get_json("/clusters")
    }

    /// `GET /v1/buckets/{id}`: a bucket and its deposit (`not_found` naming
    /// it when there is none).
    pub fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ClientError> {
        self.get_json(&format!("/buckets/{}", bucket.0))
    }

    /// `GET /v1/accounts/{id}/buckets`: the buckets `owner` owns.
    pub fn buckets_of(&self, owner: &AccountId) -> Result<Vec<BucketView>, ClientError> {
        self.get_json(&format!("/accounts/{owner}/buckets"))
    }

    fn url(&self, route: &str) -> String {
        format!("{}{API_PREFIX}{route}", self.base)
    }

    fn get_json<T: DeserializeOwned>(&self, route: &str) -> Result<T, ClientError> {
        let url = self.url(route);
        let response = self.send(self.http.get(&url), &url, REQUEST_TIMEOUT)?;
        decode_json(response, &url, REQUEST_TIMEOUT)
    }

    fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let url = self.url(route);
        let response = self.send(self.http.post(&url).json(body), &url, timeout)?;
        decode_json(response, &url, timeout)
    }

    /// Sends with the token and `timeout`; a non-success status becomes
    /// [`ClientError::Api`].
    fn send(
        &self,
        request: RequestBuilder,
        url: &str,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let request = if self.token.is_empty() {
            request
        } else {
            request.bearer_auth(&self.token)
        };
        let response = request
            .timeout(timeout)
            .send()
            .map_err(|err| self.request_error(&err, url, timeout))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response))
        }
    }

    fn request_error(&self, err: &reqwest::Error, url: &str, timeout: Duration) -> ClientError {
        if err.is_connect() {
            ClientError::Unreachable {
                url: self.base.clone(),
                reason: root_cause(err),
            }
        } else if err.is_timeout() {
            ClientError::Timeout {
                url: url.to_owned(),
                timeout_secs: timeout.as_secs(),
            }
        } else {
            ClientError::Transport {
                url: url.to_owned(),
                reason: root_cause(err),
            }
        }
    }
}

impl NodeApi for NodeClient {
    fn ledger(&self) -> Result<LedgerView, ClientError> {
        NodeClient::ledger(self)
    }
    fn account(&self, account: &AccountId) -> Result<AccountView, ClientError> {
        NodeClient::account(self, account)
    }
    fn submit(&self, tx: &Signed<Tx>, wait: bool) -> Result<TxReceipt, ClientError> {
        NodeClient::submit(self, tx, wait)
    }
    fn put_chunk(
        &self,
        chunk: &VerifiedChunk<'_>,
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        NodeClient::put_chunk(self, chunk, cluster)
    }
    fn put_chunk_batch(
        &self,
        chunks: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        NodeClient::put_chunk_batch(self, chunks, cluster)
    }
    fn put_chunk_group(
        &self,
        pieces: &[VerifiedChunk<'_>],
        cluster: Option<&ClusterId>,
    ) -> Result<(), ClientError> {
        NodeClient::put_chunk_group(self, pieces, cluster)
    }
    fn get_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        NodeClient::get_chunk_into(self, cid, buf)
    }
    fn get_sealed_chunk_into(
        &self,
        cid: &ContentId,
        buf: &mut Vec<u8>,
    ) -> Result<Option<NodeId>, ClientError> {
        NodeClient::get_sealed_chunk_into(self, cid, buf)
    }
    fn delete_chunk(&self, cid: &ContentId) -> Result<(), ClientError> {
        NodeClient::delete_chunk(self, cid)
    }
    fn has_chunk(&self, cid: &ContentId) -> Result<bool, ClientError> {
        NodeClient::has_chunk(self, cid)
    }
    fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ClientError> {
        NodeClient::job(self, job, wait)
    }
    fn offers(&self, job: &JobId, request: &OffersRequest) -> Result<OffersResponse, ClientError> {
        NodeClient::offers(self, job, request)
    }
    fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ClientError> {
        NodeClient::dispatch(self, job, request)
    }
    fn cluster(&self, cluster: &ClusterId) -> Result<ClusterView, ClientError> {
        NodeClient::cluster(self, cluster)
    }
    fn clusters(&self) -> Result<Vec<ClusterView>, ClientError> {
        NodeClient::clusters(self)
    }
    fn bucket(&self, bucket: &BucketId) -> Result<BucketView, ClientError> {
        NodeClient::bucket(self, bucket)
    }
    fn buckets_of(&self, owner: &AccountId) -> Result<Vec<BucketView>, ClientError> {
        NodeClient::buckets_of(self, owner)
    }
    fn index_write(
        &self,
        bucket: &BucketId,
        write: &IndexWrite,
    ) -> Result<IndexWriteReceipt, ClientError> {
        NodeClient::index_write(self, bucket, write)
    }
    fn index_get(&self, bucket: &BucketId, key: &str) -> Result<IndexView, ClientError> {
        NodeClient::index_get(self, bucket, key)
    }
    fn index_get_many(&self, bucket: &BucketId, keys: &[String]) -> Result<IndexView, ClientError> {
        NodeClient::index_get_many(self, bucket, keys)
    }
    fn index_list(&self, bucket: &BucketId, query: &ListQuery) -> Result<IndexView, ClientError> {
        NodeClient::index_list(self, bucket, query)
    }
    fn index_evidence(
        &self,
        bucket: &BucketId,
        query: &EvidenceQuery,
    ) -> Result<EvidenceView, ClientError> {
        NodeClient::index_evidence(self, bucket, query)
    }
    fn earnings(&self, limit: Option<u32>) -> Result<peercloud_api::EarningsView, ClientError> {
        NodeClient::earnings(self, limit)
    }
    fn bucket_health(&self, bucket: &BucketId) -> Result<HealthView, ClientError> {
        NodeClient::bucket_health(self, bucket)
    }
    fn lease_offers(
        &self,
        request: &peercloud_types::LeaseRequest,
    ) -> Result<peercloud_api::LeaseOffersResponse, ClientError> {
        NodeClient::lease_offers(self, request)
    }
    fn space_command(
        &self,
        command: &Signed<peercloud_types::SpaceCommand>,
    ) -> Result<peercloud_api::SpaceCommandResponse, ClientError> {
        NodeClient::space_command(self, command)
    }
    fn lease(
        &self,
        lease: &peercloud_types::LeaseId,
    ) -> Result<peercloud_api::LeaseView, ClientError> {
        NodeClient::lease(self, lease)
    }
    fn leases_of(&self, user: &AccountId) -> Result<Vec<peercloud_api::LeaseView>, ClientError> {
        NodeClient::leases_of(self, user)
    }
}

/// `http://host:port` from what a user or `api.addr` wrote.
fn normalise_base(text: &str) -> Result<String, ClientError> {
    let text = text.trim();
    let bad = |reason: &str| ClientError::BadUrl {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|err| bad(&err.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(bad(
                "https is not supported: the node API is plain HTTP on this machine",
            ));
        }
        other => return Err(bad(&format!("scheme {other:?} is not http"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The API address a running node wrote to `api.addr` in its data directory.
pub fn read_api_addr(dir: &Path) -> Result<String, ClientError> {
    let path = dir.join(API_ADDR_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(ClientError::NoApiAddress {
            path,
            dir: dir.to_owned(),
        }),
        Err(source) => Err(ClientError::Io { path, source }),
    }
}

/// Reads a bearer token from `path` (a node's `api.token`, or a file given
/// with `--token-file`). A token readable by others lets them drive the node,
/// so that is reported (not refused: the node chose the file's mode).
pub fn read_token_file(path: &Path) -> Result<String, ClientError> {
    let token = std::fs::read_to_string(path).map_err(|source| ClientError::Io {
        path: path.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the node's API token is readable by other users (chmod 600 it)"
            );
        }
    }
    Ok(token.trim().to_owned())
}

/// Turns a non-success answer into [`ClientError::Api`], from its `ApiError`
/// body when it has one.
fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let mut body = Vec::new();
    // A body cut short only loses detail: the status is already known.
    let _ = response.take(ERROR_BODY_BYTES_MAX).read_to_end(&mut body);
    if let Ok(ApiError { code, message }) = serde_json::from_slice::<ApiError>(&body) {
        return ClientError::Api {
            status: status.as_u16(),
            code,
            message,
        };
    }
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        text
    };
    ClientError::Api {
        status: status.as_u16(),
        code: ErrorCode::from_http_status(status.as_u16()),
        message,
    }
}

fn decode_json<T: DeserializeOwned>(
    response: Response,
    url: &str,
    timeout: Duration,
) -> Result<T, ClientError> {
    let mut body = Vec::new();
    read_body_into(response, url, JSON_BODY_BYTES_MAX, timeout, &mut body)?;
    serde_json::from_slice(&body).map_err(|err| ClientError::Decode {
        url: url.to_owned(),
        reason: err.to_string(),
    })
}

/// Reads the whole body into `buf`, refusing more than `limit_bytes`.
fn read_body_into(
    response: Response,
    url: &str,
    limit_bytes: u64,
    timeout: Duration,
    buf: &mut Vec<u8>,
) -> Result<(), ClientError> {
    let too_large = || ClientError::TooLarge {
        url: url.to_owned(),
        limit_bytes,
    };
    if let Some(length) = response.content_length() {
        if length > limit_bytes {
            return Err(too_large());
        }
        buf.reserve(usize::try_from(length).unwrap_or(0));
    }
    // Through a small buffer rather than `read_to_end`, which would zero
    // the whole chunk-sized buffer before every read (the response cannot
    // read into uninitialised memory).
    let mut response = response.take(limit_bytes.saturating_add(1));
    let mut scratch = [0u8; 64 << 10];
    let start = buf.len();
    loop {
        let read = match response.read(&mut scratch) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(body_error(&err, url, timeout)),
        };
        buf.extend_from_slice(&scratch[..read]);
    }
    if (buf.len() - start) as u64 > limit_bytes {
        buf.clear();
        return Err(too_large());
    }
    Ok(())
}

fn body_error(err: &std::io::Error, url: &str, timeout: Duration) -> ClientError {
    let timed_out = err.kind() == std::io::ErrorKind::TimedOut
        || err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout);
    if timed_out {
        ClientError::Timeout {
            url: url.to_owned(),
            timeout_secs: timeout.as_secs(),
        }
    } else {
        ClientError::Transport {
            url: url.to_owned(),
            reason: root_cause(err),
        }
    }
}

/// The innermost error's message: "Connection refused (os error 111)" rather
/// than "error sending request for url (...)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests;

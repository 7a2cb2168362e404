//! The HTTP API server: axum on a loopback listener, every route behind the
//! bearer token. Handlers only translate: path and body in, a [`Service`]
//! call, JSON out. Every refusal, axum's own included (bad JSON, a body too
//! large, a wrong method or route), leaves as `{code, message}` with the
//! status [`ErrorCode::http_status`] gives it, decided in [`Failure`] alone.
//!
//! The connections themselves are bounded ([`serve_with`], [`Limits`]): a
//! connection that has not sent a complete request header within
//! [`HEADER_READ_TIMEOUT`] is closed, and at most [`MAX_CONNECTIONS`] are
//! served at once, so clients that open connections and send nothing (or
//! half a header) cannot exhaust the process's file descriptors. A request
//! body must arrive whole within [`BODY_READ_TIMEOUT`] and a response must be
//! taken by the client within [`WRITE_TIMEOUT`] of each write, so a client
//! that dribbles its body or stops reading does not hold a slot either.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::{Listener, ListenerExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use peercloud_api::*;
use peercloud_net::protocol::CHUNK_MESSAGE_BYTES_MAX;
use peercloud_store::GROUP_PIECES_MAX;
use peercloud_types::{AccountId, JobId};
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, TryAcquireError};
use tracing::Instrument;

use super::service::Service;
use super::{chunks, earnings, leases, objects, storage};
use crate::daemon::Inner;

/// An API refusal, answered as `{code, message}` with its code's status.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

/// The code for one of axum's own refusals, by its status.
pub(super) fn rejection(status: StatusCode, text: String) -> Failure {
    Failure(ApiError::new(
        ErrorCode::from_http_status(status.as_u16()),
        text,
    ))
}

/// A JSON body whose refusal (not JSON, wrong fields, too large, wrong
/// content type) is an [`ApiError`] like every other.
pub(super) struct Body<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(e @ JsonRejection::JsonDataError(_)) => {
                Err(Failure(ApiError::bad_request(e.body_text())))
            }
            Err(e) => Err(rejection(e.status(), e.body_text())),
        }
    }
}

/// Raw bytes (a chunk) whose refusal is an [`ApiError`].
pub(super) struct Raw(pub(super) Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        Bytes::from_request(request, state)
            .await
            .map(Raw)
            .map_err(|e: BytesRejection| rejection(e.status(), e.body_text()))
    }
}

type Shared = Service;
type Answer<T> = Result<axum::Json<T>, Failure>;

/// How long a connection may take to send a complete request header,
/// counted from when it is accepted or from when its previous response was
/// written (so an idle keep-alive connection is closed after this long too).
/// Clients are on this machine or its LAN and send a header in one write,
/// well within a millisecond; 10 s leaves ample slack for a loaded host
/// while bounding how long a silent or half-sent connection holds a slot,
/// and it is well under the client's `REQUEST_TIMEOUT` (30 s), so a request
/// waiting for a slot behind such connections is still answered in time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest read buffer of one connection. hyper grows it up to 400 KiB
/// while a large body streams in, and a kept-alive connection holds it
/// until it closes: a dozen chunk uploaders left an idle node some 5 MB
/// heavier. 64 KiB still reads a megabyte body in 16 calls.
const READ_BUFFER_BYTES_MAX: usize = 64 * 1024;

/// Connections served at once. A user's client keeps a handful open (its
/// pool, at most eight parallel chunk uploads), a devnet a few per node, so
/// 256 is far above legitimate use; it is also far below the common soft
/// limit of 1024 open files, so even there the node keeps descriptors for
/// its chunk files, its databases and its libp2p sockets.
pub const MAX_CONNECTIONS: usize = 256;

/// At most one warning per this long while the connection cap holds: an
/// attack of thousands of connections leaves one line per interval (with
/// how many connections had to wait), not one per connection.
pub const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// How long a request's whole body may take to arrive once its header has.
/// Bodies are at most a chunk (1.1 MiB) from this machine or its LAN:
/// milliseconds. Past it the answer is `timeout` (504) and the connection
/// closes.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one write of a response may wait for the client to take bytes.
/// A client that stops reading (its socket buffer full) is cut after this
/// long; one that reads, however slowly, is not. Long answers (a dispatch
/// waits for its job) are unaffected: the time counts only once bytes are
/// being written.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds one API server keeps on its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CONNECTIONS`]; at least one is always served.
    pub max_connections: usize,
    /// See [`BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
}

impl Default for Limits {
    /// The node's bounds: [`HEADER_READ_TIMEOUT`], [`MAX_CONNECTIONS`],
    /// [`BODY_READ_TIMEOUT`] and [`WRITE_TIMEOUT`].
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            body_read_timeout: BODY_READ_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// The route a user's client puts an erasure group through.
pub const CHUNK_GROUPS_ROUTE: &str = "/v1/chunk-groups";

/// Largest body of [`CHUNK_GROUPS_ROUTE`]: the widest erasure group the
/// network places ([`GROUP_PIECES_MAX`] pieces), each a chunk message at most.
pub const CHUNK_GROUP_BODY_BYTES_MAX: usize = GROUP_PIECES_MAX * CHUNK_MESSAGE_BYTES_MAX;

/// Chunk-group and chunk-batch bodies held at once; more wait for one to finish (within
/// [`BODY_READ_TIMEOUT`]). A user's put sends four at a time (two writers,
/// two groups of RS(4+2) each), so eight keep two users busy while the
/// buffered bodies stay under 8 × [`CHUNK_GROUP_BODY_BYTES_MAX`] (~180 MB),
/// whatever the number of connections.
pub const CHUNK_GROUPS_IN_FLIGHT: usize = 8;

/// Largest body a request to `path` may carry (other than a chunk group's):
/// a bucket's index write or get of many keys takes up to
/// [`objects::INDEX_WRITE_BODY_BYTES_MAX`], every other request a chunk
/// message at most.
fn body_limit(path: &str) -> usize {
    let index_route = path
        .strip_prefix("/v1/buckets/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, route)| route == "index" || route == "index/keys");
    if index_route {
        objects::INDEX_WRITE_BODY_BYTES_MAX
    } else {
        CHUNK_MESSAGE_BYTES_MAX
    }
}

/// The route a user's client puts a batch of chunks through.
pub const CHUNK_BATCHES_ROUTE: &str = "/v1/chunk-batches";

/// The body limit of a route whose body is many chunks (a chunk group's,
/// a chunk batch's); `None` for any other.
fn bulk_body_limit(path: &str) -> Option<usize> {
    match path {
        CHUNK_GROUPS_ROUTE => Some(CHUNK_GROUP_BODY_BYTES_MAX),
        CHUNK_BATCHES_ROUTE => Some(CHUNK_BATCH_BODY_BYTES_MAX),
        _ => None,
    }
}

/// Reads the request's body whole within `timeout` before any handler sees
/// it: at most [`body_limit`], or the [`bulk_body_limit`] of a chunk group
/// or batch once one of the `groups` slots is free (held until the
/// answer).
async fn body_within(
    timeout: Duration,
    groups: Arc<Semaphore>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bulk = bulk_body_limit(parts.uri.path());
    let read = async {
        let slot = match bulk {
            Some(_) => groups.acquire_owned().await.ok(),
            None => None,
        };
        let limit = bulk.unwrap_or_else(|| body_limit(parts.uri.path()));
        axum::body::to_bytes(body, limit)
            .await
            .map(|bytes| (bytes, slot))
    };
    let (bytes, _slot) = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            return rejection(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}"))
                .into_response();
        }
        Err(_) => {
            let mut refused = Failure(ApiError::new(
                ErrorCode::Timeout,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f32()
                ),
            ))
            .into_response();
            // The rest of the body may still be on its way: do not read it.
            refused.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return refused;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Serves the API until the process ends, with the node's [`Limits`].
pub async fn serve(inner: Arc<Inner>, listener: tokio::net::TcpListener) {
    serve_with(listener, router(Service::new(inner)), Limits::default()).await;
}

/// Serves `app` on `listener` (HTTP/1.1, `TCP_NODELAY`) within `limits`,
/// until the process ends.
///
/// Past the cap a connection is not accepted until a slot frees: it waits,
/// complete, in the kernel's listen backlog, costing this process nothing.
/// Closing it at once instead would refuse every legitimate client for as
/// long as an attacker keeps the slots full; waiting serves it as soon as a
/// slot frees, and a slot held without sending a header frees within
/// [`Limits::header_read_timeout`]. Only when the backlog itself is full
/// does the kernel drop new connection attempts (the client retries them).
/// Reaching the cap is logged at warn, at most once per
/// [`CAP_WARNING_INTERVAL`].
pub async fn serve_with(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    let body_read_timeout = limits.body_read_timeout;
    let groups = Arc::new(Semaphore::new(CHUNK_GROUPS_IN_FLIGHT));
    let app = app.layer(middleware::from_fn(move |request, next| {
        body_within(body_read_timeout, groups.clone(), request, next)
    }));
    serve_streaming(listener, app, limits).await;
}

/// [`serve_with`] without reading bodies whole first: the handlers stream
/// them (the S3 gateway's objects, gigabytes each). The connection bounds
/// are the same.
pub async fn serve_streaming(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    // Request/response traffic: never wait for Nagle.
    let mut listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(%e, "cannot set TCP_NODELAY");
        }
    });
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(READ_BUFFER_BYTES_MAX);
    let mut last_warning: Option<tokio::time::Instant> = None;
    let mut waited: u64 = 0;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::NoPermits) => {
                waited += 1;
                if last_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                    tracing::warn!(
                        cap,
                        waited,
                        "API connection cap reached: new connections wait in the listen backlog until one closes"
                    );
                    last_warning = Some(tokio::time::Instant::now());
                    waited = 0;
                }
                match slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(e) => {
                        tracing::error!(%e, "API server stopped");
                        return;
                    }
                }
            }
            Err(e @ TryAcquireError::Closed) => {
                tracing::error!(%e, "API server stopped");
                return;
            }
        };
        // Accept errors (a reset connection, too many open files) are
        // handled, and logged, by axum's listener, as under `axum::serve`.
        let (tcp, peer) = listener.accept().await;
        let mut tcp = tokio_io_timeout::TimeoutStream::new(tcp);
        tcp.set_write_timeout(Some(limits.write_timeout));
        let connection = http.serve_connection(
            TokioIo::new(Box::pin(tcp)),
            TowerToHyperService::new(app.clone()),
        );
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, %e, "API connection closed");
            }
            drop(slot);
        });
    }
}

/// The routes.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/ledger", get(ledger))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/earnings", get(earnings::earnings))
        .route("/v1/accounts/{id}/buckets", get(storage::buckets_of))
        .route("/v1/clusters", get(storage::clusters))
        .route("/v1/clusters/{id}", get(storage::cluster))
        .route("/v1/buckets/{id}", get(storage::bucket))
        .route(
            "/v1/buckets/{id}/index",
            post(objects::write).layer(DefaultBodyLimit::max(objects::INDEX_WRITE_BODY_BYTES_MAX)),
        )
        .route(
            "/v1/buckets/{id}/index/keys",
            post(objects::get_many)
                .layer(DefaultBodyLimit::max(objects::INDEX_WRITE_BODY_BYTES_MAX)),
        )
        .route("/v1/buckets/{id}/objects", get(objects::list))
        .route("/v1/buckets/{id}/evidence", get(objects::evidence))
        .route("/v1/buckets/{id}/health", get(objects::health))
        .route("/v1/buckets/{id}/objects/{*key}", get(objects::get))
        .route("/v1/tx", post(submit_tx))
        .route(
            "/v1/chunks/{cid}",
            put(chunks::put_chunk)
                .get(chunks::get_chunk)
                .delete(chunks::delete_chunk),
        )
        .route(
            CHUNK_GROUPS_ROUTE,
            post(chunks::put_chunk_group).layer(DefaultBodyLimit::max(CHUNK_GROUP_BODY_BYTES_MAX)),
        )
        .route(
            CHUNK_BATCHES_ROUTE,
            post(chunks::put_chunk_batch).layer(DefaultBodyLimit::max(CHUNK_BATCH_BODY_BYTES_MAX)),
        )
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/jobs/{id}/offers", post(offers))
        .route("/v1/jobs/{id}/dispatch", post(dispatch))
        .route("/v1/leases", get(leases::of_user))
        .route("/v1/leases/offers", post(leases::offers))
        .route("/v1/leases/command", post(leases::command))
        .route("/v1/leases/{id}", get(leases::one))
        .fallback(|| async { Failure(ApiError::not_found("no such route")) })
        .method_not_allowed_fallback(|| async {
            Failure(ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            ))
        })
        .layer(DefaultBodyLimit::max(CHUNK_MESSAGE_BYTES_MAX))
        .layer(middleware::from_fn_with_state(service.clone(), authorize))
        .layer(middleware::from_fn(trace))
        .with_state(service)
}

/// One span per request, named by method and path (which carries the job id
/// or CID), with its status and time logged when it ends.
async fn trace(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    response
}

async fn authorize(
    State(service): State<Shared>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|t| {
        let (a, b) = (t.as_bytes(), service.inner().token().as_bytes());
        // Length first, then every byte, so the time does not leak a prefix.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if !ok {
        return Failure(ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "missing or wrong bearer token (it is in the node's data directory, file {TOKEN_FILE})"
            ),
        ))
        .into_response();
    }
    next.run(request).await
}

/// Parses a path segment, naming what it should have been.
pub(super) fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Failure>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| {
        Failure(ApiError::bad_request(format!(
            "{text:?} is not {what}: {e}"
        )))
    })
}

async fn status(State(service): State<Shared>) -> Answer<StatusView> {
    Ok(axum::Json(service.status().await))
}

async fn ledger(State(service): State<Shared>) -> Answer<LedgerView> {
    Ok(axum::Json(service.ledger()?))
}

async fn account(State(service): State<Shared>, Path(id): Path<String>) -> Answer<AccountView> {
    let account: AccountId = parse(&id, "an account id")?;
    Ok(axum::Json(service.account(&account)))
}

async fn submit_tx(State(service): State<Shared>, Body(body): Body<SubmitTx>) -> Answer<TxReceipt> {
    Ok(axum::Json(service.submit(body.tx.0, body.wait).await?))
}

async fn job(
    State(service): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<JobView> {
    let job: JobId = parse(&id, "a job id")?;
    let Query(wait) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    Ok(axum::Json(service.job(&job, wait).await?))
}

async fn offers(
    State(service): State<Shared>,
    Path(id): Path<String>,
    Body(body): Body<OffersRequest>,
) -> Answer<OffersResponse> {
    let job: JobId = parse(&id, "a job id")?;
    Ok(axum::Json(service.offers(&job, &body).await?))
}

async fn dispatch(
    State(service): State<Shared>,
    Path(id): Path<String>,
    Body(body): Body<DispatchRequest>,
) -> Answer<DispatchResponse> {
    let job: JobId = parse(&id, "a job id")?;
    Ok(axum::Json(service.dispatch(&job, &body).await?))
}

#[cfg(test)]
mod tests {
    //! The connection bounds, on a tiny router and with shortened limits;
    //! every wait is bounded by [`BOUND`], so a broken limit fails, never hangs.

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{Limits, serve_with};

    /// The shortened header-read timeout of these tests.
    const TIMEOUT: Duration = Duration::from_millis(400);
    /// The longest any step may take before the test fails.
    const BOUND: Duration = Duration::from_secs(5);
    /// The size of `/big`'s answer: far more than loopback socket buffers hold.
    const BIG: usize = 64 << 20;
    /// A request line and a header, without the blank line that ends them.
    const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost: node\r\n";

    async fn start(max_connections: usize) -> SocketAddr {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(TIMEOUT * 3).await;
                    "slow"
                }),
            )
            .route(
                "/echo",
                post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }),
            )
            .route("/big", get(|| async { vec![7u8; BIG] }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            header_read_timeout: TIMEOUT,
            max_connections,
            body_read_timeout: TIMEOUT,
            write_timeout: TIMEOUT,
        };
        tokio::spawn(serve_with(listener, app, limits));
        addr
    }

    /// One request on a fresh connection, answered in full.
    async fn request(addr: SocketAddr, path: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(BOUND, tcp.read_to_end(&mut answer))
            .await
            .expect("the answer came within the bound")
            .unwrap();
        String::from_utf8(answer).unwrap()
    }

    /// Reads until the server closes the connection (an end of stream or a
    /// reset); panics if it is still open after [`BOUND`].
    async fn until_closed(tcp: &mut TcpStream) {
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(BOUND, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the connection is still open after {BOUND:?}"
        );
    }

    #[tokio::test]
    async fn partial_header_is_closed_after_the_timeout() {
        let addr = start(8).await;
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(PARTIAL).await.unwrap();
        until_closed(&mut tcp).await;
        assert!(
            started.elapsed() >= TIMEOUT,
            "closed after {:?}, before the timeout",
            started.elapsed()
        );
        // The server still answers.
        assert!(request(addr, "/").await.ends_with("ok"));
    }

    #[tokio::test]
    async fn header_sent_a_byte_at_a_time_is_closed_at_the_deadline() {
        let addr = start(8).await;
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // Never-ending header lines, one byte every 20 ms: each byte is
        // progress, but the deadline covers the whole header.
        let dribble = async {
            for byte in PARTIAL
                .iter()
                .chain(b"X-Slow: ".iter())
                .chain([b'a'; 4096].iter())
            {
                if tcp.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        assert!(
            tokio::time::timeout(BOUND, dribble).await.is_ok(),
            "the server still took header bytes after {BOUND:?}"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= TIMEOUT,
            "closed after {elapsed:?}, before the timeout"
        );
    }

    #[tokio::test]
    async fn idle_keep_alive_connection_is_closed_after_the_timeout() {
        let addr = start(8).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = tokio::time::timeout(BOUND, tcp.read(&mut buf))
                .await
                .expect("the answer came within the bound")
                .unwrap();
            assert!(n > 0, "closed before answering");
            answer.extend_from_slice(&buf[..n]);
        }
        let answered = Instant::now();
        until_closed(&mut tcp).await;
        assert!(answered.elapsed() >= TIMEOUT / 2);
    }

    #[tokio::test]
    async fn a_slow_answer_is_not_cut_by_the_header_timeout() {
        let addr = start(8).await;
        let answer = request(addr, "/slow").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("slow"), "{answer}");
    }

    #[tokio::test]
    async fn past_the_cap_a_request_waits_for_a_slot_and_is_answered() {
        const CAP: usize = 4;
        let addr = start(CAP).await;
        // The cap's worth of connections that never finish their header; the
        // listen backlog is first in, first out, so these take the slots.
        let mut silent = Vec::new();
        for _ in 0..CAP {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(PARTIAL).await.unwrap();
            silent.push(tcp);
        }
        let asked = Instant::now();
        let answer = request(addr, "/").await;
        let waited = asked.elapsed();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        // Not served while the silent ones held every slot: answered only
        // once their header timeout freed one.
        assert!(
            waited >= TIMEOUT / 2,
            "answered after {waited:?}, past the cap"
        );
        for tcp in &mut silent {
            until_closed(tcp).await;
        }
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_refused_after_the_timeout_and_frees_its_slot() {
        let addr = start(1).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // 100 bytes announced, 10 sent.
        tcp.write_all(
            b"POST /echo HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        tokio::time::timeout(BOUND, tcp.read_to_end(&mut answer))
            .await
            .expect("answered and closed within the bound")
            .unwrap();
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
        assert!(answer.contains(r#""code":"timeout""#), "{answer}");
        assert!(started.elapsed() >= TIMEOUT / 2);
        // The only slot is free again: a whole request is answered.
        assert!(request(addr, "/").await.ends_with("ok"));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_after_the_write_timeout() {
        let addr = start(1).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"GET /big HTTP/1.1\r\nHost: node\r\n\r\n")
            .await
            .unwrap();
        // Not reading: the server's writes fill the socket buffers and stall.
        // The only slot frees once the write timeout cuts the connection.
        let asked = Instant::now();
        let answer = request(addr, "/").await;
        assert!(answer.ends_with("ok"), "{answer}");
        assert!(asked.elapsed() >= TIMEOUT / 2, "served past the cap");
        // What reached the stalled client is cut short of the whole answer.
        let mut received = Vec::new();
        let _ = tokio::time::timeout(BOUND, stalled.read_to_end(&mut received)).await;
        assert!(
            received.len() < BIG,
            "the whole answer arrived: nothing was cut"
        );
    }

    #[test]
    fn a_chunk_group_body_is_cut_as_its_query_lists_it_or_refused_saying_why() {
        use peercloud_types::ContentId;
        let (a, b) = (b"first piece".to_vec(), b"second".to_vec());
        let (ca, cb) = (ContentId::of(&a), ContentId::of(&b));
        let body = axum::body::Bytes::from([a.clone(), b.clone()].concat());
        let spec = format!("{ca}:{},{cb}:{}", a.len(), b.len());
        assert_eq!(
            super::super::chunks::split_group(&spec, &body).unwrap(),
            vec![(ca, a.clone().into()), (cb, b.into())]
        );
        for (bad, says) in [
            (format!("{ca}:{}", a.len()), "past the pieces"),
            (format!("{ca}:999"), "only 17 bytes"),
            (format!("{ca}"), "not CID:BYTES"),
            (format!("{ca}:x"), "not a whole number"),
            (String::new(), "1..=20 pieces"),
        ] {
            let super::Failure(err) = super::super::chunks::split_group(&bad, &body).unwrap_err();
            assert!(err.message.contains(says), "{bad:?}: {}", err.message);
        }
    }

    #[test]
    fn only_a_bucket_s_index_routes_take_bodies_past_a_chunk_message() {
        use super::{CHUNK_MESSAGE_BYTES_MAX, body_limit};
        use crate::api::objects::INDEX_WRITE_BODY_BYTES_MAX;
        const { assert!(INDEX_WRITE_BODY_BYTES_MAX > CHUNK_MESSAGE_BYTES_MAX) };
        for path in ["/v1/buckets/abc/index", "/v1/buckets/abc/index/keys"] {
            assert_eq!(body_limit(path), INDEX_WRITE_BODY_BYTES_MAX, "{path}");
        }
        for path in [
            "/v1/buckets/abc/objects/index",
            "/v1/buckets/index",
            "/v1/buckets/abc/index/keys/more",
            "/v1/tx",
            "/v1/chunks/abc",
        ] {
            assert_eq!(body_limit(path), CHUNK_MESSAGE_BYTES_MAX, "{path}");
        }
    }
}

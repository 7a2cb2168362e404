//! A tiny HTTP server speaking the API's JSON, for the client's unit tests:
//! it answers the way the contract in `api::model` says a node answers
//! (`ApiError` bodies, 404 for unknown chunks) and records what it saw, so the
//! tests check the client's side of the contract, error mapping first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use peercloud_ledger::Tx;
use peercloud_store::{ChunkStore, MemChunkStore, StoreError};
use peercloud_types::{ContentId, Resources, Signed};

use peercloud_api::{AccountView, ApiError, ErrorCode, Role, StatusView, SubmitTx, TxReceipt};
use peercloud_types::{AccountId, Amount, Hash32, Keypair};

/// The token the server expects.
pub const TOKEN: &str = "test-token";
/// The nonce every account's next transaction must carry here.
pub const NEXT_NONCE: u64 = 7;
/// The height a waited-for transaction lands at here.
pub const TX_HEIGHT: u64 = 3;
/// The chain this ledger is.
pub const CHAIN: Hash32 = Hash32::ZERO;
/// The fee this ledger asks.
pub const FEE: Amount = Amount::from_base_units(100_000);
/// How long a chunk put takes here, so concurrent puts overlap.
const PUT_DELAY: Duration = Duration::from_millis(40);

/// What the server holds and saw.
#[derive(Debug, Default)]
pub struct Shared {
    /// The chunks put.
    pub chunks: MemChunkStore,
    /// When set, every chunk is served with its first byte flipped.
    pub tamper: AtomicBool,
    /// Chunk puts running now.
    in_flight: AtomicUsize,
    /// Most chunk puts seen running at once.
    pub in_flight_max: AtomicUsize,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state.
    pub shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the server on a free loopback port.
pub fn start() -> TestServer {
    let shared = Arc::new(Shared::default());
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/ledger", get(|| async { "this is not json" }))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/tx", post(submit))
        .route("/v1/chunks/{cid}", get(get_chunk).put(put_chunk))
        .route(
            "/v1/chunk-batches",
            post(put_chunk_batch).layer(axum::extract::DefaultBodyLimit::max(
                peercloud_api::CHUNK_BATCH_BODY_BYTES_MAX,
            )),
        )
        .route("/v1/jobs/{job}", get(job))
        .with_state(shared.clone());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    TestServer {
        base: format!("http://{addr}"),
        shared,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    }
}

fn api_error(code: ErrorCode, message: String) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(ApiError { code, message })).into_response()
}

/// The refusal a request without the right bearer token gets, if it lacks it.
fn refuse_without_token(headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(&format!("Bearer {TOKEN}")) {
        None
    } else {
        Some(api_error(
            ErrorCode::Unauthorized,
            "missing or wrong bearer token".to_owned(),
        ))
    }
}

async fn status(headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_without_token(&headers) {
        return refused;
    }
    let key = Keypair::from_seed(&[1; 32]);
    Json(StatusView {
        node: key.node_id(),
        owner: key.account_id(),
        peer: "12D3test".to_owned(),
        role: Role::Provider,
        height: Some(TX_HEIGHT),
        peers: 2,
        p2p: Vec::new(),
        registered: true,
        resources: Resources::default(),
        web: None,
        s3: None,
        nat: peercloud_api::NatStatusView::default(),
        edge_cache: peercloud_api::EdgeCacheView::default(),
    })
    .into_response()
}

async fn account(Path(id): Path<String>) -> Response {
    let Ok(account) = id.parse::<AccountId>() else {
        return api_error(
            ErrorCode::BadRequest,
            format!("{id:?} is not an account id"),
        );
    };
    Json(AccountView {
        account,
        balance: Amount::from_base_units(12_500_000_000),
        stake: Amount::ZERO,
        next_nonce: NEXT_NONCE,
        min_fee: FEE,
        chain: CHAIN,
    })
    .into_response()
}

async fn submit(Json(body): Json<SubmitTx>) -> Response {
    let tx: Signed<Tx> = body.tx.0;
    if tx.verify().is_err() {
        return api_error(ErrorCode::BadRequest, "bad signature".into());
    }
    if tx.body.nonce != NEXT_NONCE {
        return api_error(
            ErrorCode::TxRefused,
            format!("nonce {} is not the next nonce {NEXT_NONCE}", tx.body.nonce),
        );
    }
    Json(TxReceipt {
        hash: tx.hash(),
        fee: tx.body.fee,
        height: body.wait.then_some(TX_HEIGHT),
        events: Vec::new(),
    })
    .into_response()
}

async fn put_chunk(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_without_token(&headers) {
        return refused;
    }
    let Ok(cid) = cid.parse::<ContentId>() else {
        return api_error(ErrorCode::BadRequest, "bad CID".into());
    };
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.in_flight_max.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(PUT_DELAY).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    match shared.chunks.put(&cid, &body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => api_error(ErrorCode::BadRequest, err.to_string()),
    }
}

/// The query of a batch put: `chunks=CID:BYTES,…`.
#[derive(Debug, serde::Deserialize)]
struct BatchQuery {
    chunks: String,
}

/// A batch put: the body cut as the query lists it, each chunk stored (one
/// put in flight, however many chunks it carries).
async fn put_chunk_batch(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<BatchQuery>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_without_token(&headers) {
        return refused;
    }
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.in_flight_max.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(PUT_DELAY).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut rest = &body[..];
    for listed in query.chunks.split(',') {
        let parsed = listed.split_once(':').and_then(|(cid, len)| {
            Some((cid.parse::<ContentId>().ok()?, len.parse::<usize>().ok()?))
        });
        let Some((cid, len)) = parsed.filter(|(_, len)| *len <= rest.len()) else {
            return api_error(
                ErrorCode::BadRequest,
                format!("bad chunk listing {listed:?}"),
            );
        };
        let (bytes, after) = rest.split_at(len);
        if let Err(err) = shared.chunks.put(&cid, bytes) {
            return api_error(ErrorCode::BadRequest, err.to_string());
        }
        rest = after;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_chunk(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    let Ok(cid) = cid.parse::<ContentId>() else {
        return api_error(ErrorCode::BadRequest, "bad CID".into());
    };
    match shared.chunks.get(&cid) {
        Ok(mut bytes) => {
            if shared.tamper.load(Ordering::SeqCst)
                && let Some(first) = bytes.first_mut()
            {
                *first ^= 1;
            }
            bytes.into_response()
        }
        Err(StoreError::NotFound { cid }) => api_error(
            ErrorCode::NotFound,
            format!("no chunk {cid} on the network"),
        ),
        Err(err) => api_error(ErrorCode::Internal, err.to_string()),
    }
}

async fn job(Path(job): Path<String>) -> Response {
    api_error(ErrorCode::NotFound, format!("no job {job} on the ledger"))
}

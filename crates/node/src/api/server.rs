//! The HTTP API server: axum on a loopback listener, every route behind the
//! bearer token, every error `{code, message}` with a fitting status.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use peercloud_ledger::Tx;
use peercloud_net::protocol::CHUNK_MESSAGE_BYTES_MAX;
use peercloud_types::encoding::decode;
use peercloud_types::{AccountId, Amount, ContentId, JobId, NodeId, Offer, Signed};

use super::model::*;
use crate::daemon::{Inner, SubmitError};
use crate::wire::{Dispatch, SealedObject};

type Shared = Arc<Inner>;

/// An API failure: status, code and message.
#[derive(Debug)]
pub struct Failure(StatusCode, &'static str, String);

impl Failure {
    fn bad(message: impl Into<String>) -> Failure {
        Failure(StatusCode::BAD_REQUEST, "bad_request", message.into())
    }
    fn not_found(message: impl Into<String>) -> Failure {
        Failure(StatusCode::NOT_FOUND, "not_found", message.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.1.to_owned(),
            message: self.2,
        };
        (self.0, axum::Json(body)).into_response()
    }
}

type Answer<T> = Result<axum::Json<T>, Failure>;

/// Serves the API until the process ends.
pub async fn serve(inner: Shared, listener: tokio::net::TcpListener) {
    let app = router(inner);
    // Request/response traffic: never wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(%e, "cannot set TCP_NODELAY");
        }
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(%e, "API server stopped");
    }
}

/// The routes.
pub fn router(inner: Shared) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/ledger", get(ledger))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/tx", post(submit_tx))
        .route("/v1/chunks/{cid}", put(put_chunk).get(get_chunk))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/jobs/{id}/offers", post(offers))
        .route("/v1/jobs/{id}/dispatch", post(dispatch))
        .fallback(|| async { Failure::not_found("no such route") })
        .layer(DefaultBodyLimit::max(CHUNK_MESSAGE_BYTES_MAX))
        .layer(middleware::from_fn_with_state(inner.clone(), authorize))
        .with_state(inner)
}

async fn authorize(
    State(inner): State<Shared>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|t| {
        let (a, b) = (t.as_bytes(), inner.token().as_bytes());
        // Length first, then every byte, so the time does not leak a prefix.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if !ok {
        return Failure(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "missing or wrong bearer token (it is in the node's data directory, file {TOKEN_FILE})"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

fn pcl(amount: Amount) -> String {
    amount.to_string()
}

async fn status(State(inner): State<Shared>) -> Answer<StatusView> {
    let height = inner.chain().state().tip().map(|t| t.height);
    let peers = inner.net.connected_peers().await.map_or(0, |p| p.len());
    Ok(axum::Json(StatusView {
        node: inner.node_id().to_string(),
        owner: inner.owner_key.account_id().to_string(),
        peer: inner.net.peer_id().to_string(),
        role: if inner.is_validator() {
            "validator"
        } else {
            "provider"
        }
        .into(),
        height,
        peers,
        p2p: inner
            .net
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect(),
        registered: inner.registered(),
        resources: inner.config.resources,
    }))
}

async fn ledger(State(inner): State<Shared>) -> Answer<LedgerView> {
    let chain = inner.chain();
    let state = chain.state();
    let tip = state
        .tip()
        .ok_or_else(|| Failure::not_found("the chain has no block yet"))?;
    let accounted = state.held_supply().map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the books do not add up: {e}"),
        )
    })?;
    let mut by_state: Vec<(String, usize)> = Vec::new();
    for (_, record) in state.jobs() {
        let name = record.state.to_string();
        match by_state.iter_mut().find(|(s, _)| *s == name) {
            Some((_, n)) => *n += 1,
            None => by_state.push((name, 1)),
        }
    }
    Ok(axum::Json(LedgerView {
        height: tip.height,
        tip: tip.hash.to_string(),
        state_root: tip.state_root.to_string(),
        time_ms: tip.time_ms,
        supply: pcl(state.minted_supply()),
        accounted: pcl(accounted),
        accounts: state.accounts().count(),
        nodes: state
            .nodes()
            .map(|(node, record)| NodeView {
                node: node.to_string(),
                owner: record.owner.to_string(),
                location: record.location.clone(),
                reputation: record.reputation,
                resources: record.resources,
            })
            .collect(),
        jobs: by_state,
    }))
}

async fn account(State(inner): State<Shared>, Path(id): Path<String>) -> Answer<AccountView> {
    let account: AccountId = id
        .parse()
        .map_err(|e| Failure::bad(format!("{id:?} is not an account id: {e}")))?;
    let chain = inner.chain();
    let state = chain.state();
    Ok(axum::Json(AccountView {
        account: account.to_string(),
        balance: pcl(state.balance(&account)),
        stake: pcl(state.stake(&account)),
        next_nonce: state.next_nonce(account.key()),
    }))
}

async fn submit_tx(
    State(inner): State<Shared>,
    axum::Json(body): axum::Json<SubmitTx>,
) -> Answer<TxReceipt> {
    let bytes =
        hex::decode(body.tx.trim()).map_err(|e| Failure::bad(format!("tx is not hex: {e}")))?;
    let tx: Signed<Tx> =
        decode(&bytes).map_err(|e| Failure::bad(format!("tx does not decode: {e}")))?;
    if tx.verify().is_err() {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "bad_signature",
            format!(
                "the signature does not verify for signer {}",
                AccountId(tx.signer)
            ),
        ));
    }
    let hash = tx.hash().to_string();
    match inner.submit(tx, body.wait).await {
        Ok(committed) => Ok(axum::Json(TxReceipt {
            hash,
            height: committed.as_ref().map(|c| c.block.height()),
            events: committed
                .map(|c| c.events.iter().map(|e| format!("{e:?}")).collect())
                .unwrap_or_default(),
        })),
        Err(SubmitError::Refused(e)) => Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tx_refused",
            e.to_string(),
        )),
        Err(e @ SubmitError::Timeout { .. }) => Err(Failure(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            e.to_string(),
        )),
        Err(e @ SubmitError::Net(_)) => Err(Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )),
    }
}

fn parse_cid(text: &str) -> Result<ContentId, Failure> {
    text.parse()
        .map_err(|e| Failure::bad(format!("{text:?} is not a CID: {e}")))
}

async fn put_chunk(
    State(inner): State<Shared>,
    Path(cid): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let cid = parse_cid(&cid)?;
    if ContentId::of(&body) != cid {
        return Err(Failure::bad(format!("the body does not hash to {cid}")));
    }
    inner
        .put_chunk(cid, Arc::new(body.to_vec()))
        .await
        .map_err(|e| {
            Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_chunk(
    State(inner): State<Shared>,
    Path(cid): Path<String>,
) -> Result<Response, Failure> {
    let cid = parse_cid(&cid)?;
    match inner.get_chunk(cid).await {
        Ok(bytes) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        Err(e) => Err(Failure::not_found(format!(
            "no such object or chunk {cid}: {e}"
        ))),
    }
}

fn parse_job(text: &str) -> Result<JobId, Failure> {
    text.parse()
        .map_err(|e| Failure::bad(format!("{text:?} is not a job id: {e}")))
}

async fn job(State(inner): State<Shared>, Path(id): Path<String>) -> Answer<JobView> {
    let job = parse_job(&id)?;
    let record = inner
        .chain()
        .state()
        .job(&job)
        .cloned()
        .ok_or_else(|| Failure::not_found(format!("no job {job} on the ledger")))?;
    Ok(axum::Json(JobView {
        job: job.to_string(),
        poster: record.poster.to_string(),
        state: record.state.to_string(),
        redundancy: record.redundancy,
        escrow_locked: pcl(record.escrow_locked),
        escrow_released: pcl(record.escrow_released),
        deadline_ms: record.deadline_ms,
        awards: record
            .awards
            .iter()
            .map(|a| AwardView {
                node: a.node.to_string(),
                owner: a.owner.to_string(),
                price: pcl(a.price),
                digest: a.result.map(|r| r.output_digest.to_string()),
            })
            .collect(),
        agreed: record.agreed.map(|r| r.output_digest.to_string()),
    }))
}

async fn offers(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<OffersRequest>,
) -> Answer<OffersResponse> {
    let job = parse_job(&id)?;
    body.spec
        .validate()
        .map_err(|e| Failure::bad(format!("spec: {e}")))?;
    let gathered = inner
        .gather_offers(job, &body.spec, body.window_ms, body.enough)
        .await
        .map_err(|e| Failure::bad(e.to_string()))?;
    let chain = inner.chain();
    let offers = gathered
        .offers
        .iter()
        .map(|offer: &Signed<Offer>| OfferView {
            offer: hex::encode(peercloud_types::encoding::encode(offer)),
            reputation: chain
                .state()
                .node(&offer.body.node)
                .map_or(0, |n| n.reputation),
        })
        .collect();
    Ok(axum::Json(OffersResponse {
        offers,
        declined: gathered
            .declined
            .into_iter()
            .map(|(node, why)| (node.to_string(), why))
            .collect(),
    }))
}

fn sealed(name: &str, cid: &str, key_hex: &str) -> Result<SealedObject, Failure> {
    Ok(SealedObject {
        name: name.to_owned(),
        cid: parse_cid(cid)?,
        sealed_key: hex::decode(key_hex)
            .map_err(|e| Failure::bad(format!("sealed key for {name} is not hex: {e}")))?,
    })
}

async fn dispatch(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<DispatchRequest>,
) -> Answer<DispatchResponse> {
    let job = parse_job(&id)?;
    let spec_json =
        serde_json::to_string(&body.spec).map_err(|e| Failure::bad(format!("spec: {e}")))?;
    let mut dispatches = Vec::with_capacity(body.nodes.len());
    for keys in &body.nodes {
        let node: NodeId = keys
            .node
            .parse()
            .map_err(|e| Failure::bad(format!("{:?} is not a node id: {e}", keys.node)))?;
        if keys.input_keys.len() != body.inputs.len() {
            return Err(Failure::bad(format!(
                "node {node}: {} input keys for {} inputs",
                keys.input_keys.len(),
                body.inputs.len()
            )));
        }
        let module = sealed(&body.module.name, &body.module.cid, &keys.module_key)?;
        let inputs = body
            .inputs
            .iter()
            .zip(&keys.input_keys)
            .map(|(input, key)| sealed(&input.name, &input.cid, key))
            .collect::<Result<Vec<_>, _>>()?;
        dispatches.push((
            node,
            Dispatch {
                job,
                spec_json: spec_json.clone(),
                module,
                inputs,
            },
        ));
    }
    let results = inner.dispatch(dispatches).await;
    Ok(axum::Json(DispatchResponse {
        results: results
            .into_iter()
            .map(|(node, outcome)| NodeResult {
                node: node.to_string(),
                outcome: outcome
                    .map(|r| RunReport {
                        exit_code: r.exit_code,
                        digest: r.digest.to_string(),
                        fuel: r.fuel,
                        outputs: r
                            .outputs
                            .iter()
                            .map(|o| OutputRef {
                                path: o.path.clone(),
                                size: o.size,
                                blake3: o.blake3.to_string(),
                                cid: o.cid.to_string(),
                            })
                            .collect(),
                        stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
                        staging_ms: r.staging_ms,
                        running_ms: r.running_ms,
                        storing_ms: r.storing_ms,
                    })
                    .map_err(|message| ApiError {
                        code: "dispatch_failed".into(),
                        message,
                    }),
            })
            .collect(),
    }))
}

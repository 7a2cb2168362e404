//! What the API does, apart from HTTP: one typed method per call, each
//! answering a body of `peercloud-api` or an [`ApiError`]. The axum server
//! (`server.rs`) and an in-process client (the devnet crate's) both call it,
//! so a user-side flow driven over HTTP and one driven in process run the
//! same node code.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use peercloud_api::*;
use peercloud_ledger::{ClusterId, Tx};
use peercloud_types::{AccountId, ContentId, JobId, NodeId, Signed};
use tracing::Instrument;

use crate::daemon::{ChunkError, Inner, RequesterError, SubmitError};
use crate::wire::{Dispatch, RunResult, SealedObject};

/// Longest a `GET /v1/jobs/{id}?after=H` waits for a block past `H`: under
/// the client's 30 s request bound, so a quiet chain answers with the
/// unchanged view instead of a timeout, and the client simply asks again.
pub const JOB_WAIT_MAX: Duration = Duration::from_secs(20);

/// The node's API, typed. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl Service {
    /// The API of the node behind `inner`.
    pub fn new(inner: Arc<Inner>) -> Service {
        Service { inner }
    }

    /// The node behind it.
    pub fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> StatusView {
        let inner = &self.inner;
        let height = inner.chain().state().tip().map(|t| t.height);
        let peers = inner.net.connected_peers().await.map_or(0, |p| p.len());
        StatusView {
            node: inner.node_id(),
            owner: inner.owner_key.account_id(),
            peer: inner.net.peer_id().to_string(),
            role: if inner.is_validator() {
                Role::Validator
            } else {
                Role::Provider
            },
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
            web: inner.web_url.get().cloned(),
            s3: inner.s3_url.get().cloned(),
            nat: nat_view(&inner.net.nat()),
            edge_cache: inner.edge.usage(),
        }
    }

    /// `GET /v1/ledger`.
    pub fn ledger(&self) -> Result<LedgerView, ApiError> {
        let chain = self.inner.chain();
        let state = chain.state();
        let tip = state
            .tip()
            .ok_or_else(|| ApiError::not_found("the chain has no block yet"))?;
        let accounted = state
            .held_supply()
            .map_err(|e| ApiError::internal(format!("the books do not add up: {e}")))?;
        let mut jobs: Vec<(peercloud_ledger::JobState, usize)> = Vec::new();
        for (_, record) in state.jobs() {
            match jobs.iter_mut().find(|(s, _)| *s == record.state) {
                Some((_, n)) => *n += 1,
                None => jobs.push((record.state, 1)),
            }
        }
        Ok(LedgerView {
            height: tip.height,
            tip: tip.hash,
            state_root: tip.state_root,
            time_ms: tip.time_ms,
            supply: state.minted_supply(),
            accounted,
            min_fee: state.params().min_fee,
            chain: state.chain_id(),
            accounts: state.accounts().count(),
            nodes: state
                .nodes()
                .map(|(node, record)| NodeView {
                    node: *node,
                    owner: record.owner,
                    location: record.location.clone(),
                    reputation: record.reputation,
                    resources: record.resources,
                    reputation_explained: ReputationLine::of(&record.tally),
                })
                .collect(),
            jobs,
        })
    }

    /// `GET /v1/accounts/{id}`.
    pub fn account(&self, account: &AccountId) -> AccountView {
        let chain = self.inner.chain();
        let state = chain.state();
        AccountView {
            account: *account,
            balance: state.balance(account),
            stake: state.stake(account),
            next_nonce: state.next_nonce(account.key()),
            min_fee: state.params().min_fee,
            chain: state.chain_id(),
        }
    }

    /// `POST /v1/tx`.
    pub async fn submit(&self, tx: Signed<Tx>, wait: bool) -> Result<TxReceipt, ApiError> {
        if tx.verify().is_err() {
            return Err(ApiError::new(
                ErrorCode::BadSignature,
                format!(
                    "the signature does not verify for signer {}",
                    AccountId(tx.signer)
                ),
            ));
        }
        let (hash, fee) = (tx.hash(), tx.body.fee);
        let span = tracing::info_span!("submit", tx = %hash, wait);
        let committed = self.inner.submit(tx, wait).instrument(span).await;
        match committed {
            Ok(committed) => Ok(TxReceipt {
                hash,
                fee,
                height: committed.as_ref().map(|c| c.block.height()),
                events: committed.map(|c| c.events.clone()).unwrap_or_default(),
            }),
            Err(SubmitError::Refused(e)) => Err(ApiError::new(ErrorCode::TxRefused, e.to_string())),
            Err(e @ SubmitError::Timeout { .. }) => {
                Err(ApiError::new(ErrorCode::Timeout, e.to_string()))
            }
            Err(e @ SubmitError::Net(_)) => {
                Err(ApiError::new(ErrorCode::Unavailable, e.to_string()))
            }
        }
    }

    /// `PUT /v1/chunks/{cid}`: the bytes must hash to `cid`. A put every
    /// candidate refused for one reason answers that reason's code (all
    /// full: `storage_full`); any other shortfall is `unavailable`.
    /// With `cluster`, the chunk goes on that cluster's members.
    pub async fn put_chunk(
        &self,
        cid: ContentId,
        bytes: Vec<u8>,
        cluster: Option<ClusterId>,
    ) -> Result<(), ApiError> {
        if ContentId::of(&bytes) != cid {
            return Err(ApiError::bad_request(format!(
                "the body does not hash to {cid}"
            )));
        }
        self.inner
            .put_chunk(cid, Bytes::from(bytes), cluster.as_ref())
            .instrument(tracing::debug_span!("put_chunk", %cid))
            .await
            .map(|_| ())
            .map_err(|e| ApiError::new(e.code(), e.to_string()))
    }

    /// `POST /v1/chunk-batches`: chunks, each of which must hash to its
    /// CID, each stored on its replicas as [`Service::put_chunk`] would,
    /// with one request per holder for all the chunks it keeps.
    pub async fn put_chunks(
        &self,
        chunks: Vec<(ContentId, Bytes)>,
        cluster: Option<ClusterId>,
    ) -> Result<(), ApiError> {
        let checked = checked_pieces(chunks, "chunk", "batch")?;
        self.inner
            .put_chunks(&checked, cluster.as_ref())
            .instrument(tracing::debug_span!("put_chunks", chunks = checked.len()))
            .await
            .map_err(|e| ApiError::new(e.code(), e.to_string()))
    }

    /// `POST /v1/chunk-groups`: the pieces of one erasure group (data then
    /// parity chunks), each of which must hash to its CID, go one copy each
    /// on distinct nodes. Too few nodes is `unavailable`, naming the pieces
    /// and the nodes there are.
    pub async fn put_chunk_group(
        &self,
        pieces: Vec<(ContentId, Bytes)>,
        cluster: Option<ClusterId>,
    ) -> Result<(), ApiError> {
        let checked = checked_pieces(pieces, "piece", "group")?;
        self.inner
            .put_group(&checked, cluster.as_ref())
            .instrument(tracing::debug_span!(
                "put_chunk_group",
                pieces = checked.len()
            ))
            .await
            .map(|_| ())
            .map_err(|e| ApiError::new(e.code(), e.to_string()))
    }

    /// `DELETE /v1/chunks/{cid}`: asks the chunk's holders to release this
    /// node's claim on it (a chunk another node put too stays for that one).
    /// For the chunks of a user's put that failed part way. `unavailable`
    /// only when no holder could be asked at all.
    pub async fn delete_chunk(&self, cid: ContentId) -> Result<(), ApiError> {
        let release = self
            .inner
            .delete_chunk(cid)
            .instrument(tracing::debug_span!("delete_chunk", %cid))
            .await;
        if release.released.is_empty() && !release.failures.is_empty() {
            let reasons: Vec<String> = release.failures.iter().map(ToString::to_string).collect();
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "no holder of chunk {cid} could be asked to release it: {}",
                    reasons.join("; ")
                ),
            ));
        }
        for failure in &release.failures {
            tracing::warn!(chunk = %cid, %failure, "a holder did not release the chunk");
        }
        Ok(())
    }

    /// `GET /v1/chunks/{cid}`: `not_found` when no holder has it,
    /// `chunk_corrupt` when the only copies found were bad.
    /// Answers the bytes and the node whose copy served them.
    pub async fn get_chunk(&self, cid: ContentId) -> Result<(Vec<u8>, NodeId), ApiError> {
        self.inner
            .get_chunk_served(cid)
            .instrument(tracing::debug_span!("get_chunk", %cid))
            .await
            .map_err(|e| match e {
                ChunkError::NotFound { .. } => {
                    ApiError::not_found(format!("no such object or chunk {cid}: {e}"))
                }
                other => ApiError::new(other.code(), other.to_string()),
            })
    }

    /// `GET /v1/jobs/{id}`; with `wait.after`, once the tip is past that
    /// height (or `wait.wait_ms`, at most [`JOB_WAIT_MAX`], passed).
    pub async fn job(&self, job: &JobId, wait: WaitQuery) -> Result<JobView, ApiError> {
        if let Some(after) = wait.after {
            let bound = wait
                .wait_ms
                .map_or(JOB_WAIT_MAX, Duration::from_millis)
                .min(JOB_WAIT_MAX);
            self.wait_past(after, bound).await;
        }
        let chain = self.inner.chain();
        let state = chain.state();
        let height = state.tip().map_or(0, |t| t.height);
        let record = state
            .job(job)
            .ok_or_else(|| ApiError::not_found(format!("no job {job} on the ledger")))?;
        Ok(JobView {
            job: *job,
            height,
            poster: record.poster,
            state: record.state,
            redundancy: record.redundancy,
            escrow_locked: record.escrow_locked,
            escrow_released: record.escrow_released,
            deadline_ms: record.deadline_ms,
            awards: record
                .awards
                .iter()
                .map(|a| AwardView {
                    node: a.node,
                    owner: a.owner,
                    price: a.price,
                    digest: a.result.map(|r| r.output_digest),
                    fuel: a.result.map(|r| r.fuel_used),
                    withdrawn: a.withdrawn,
                })
                .collect(),
            agreed: record.agreed.map(|r| r.output_digest),
        })
    }

    /// Returns once this node has committed a block past `height`, or after `bound`.
    async fn wait_past(&self, height: u64, bound: Duration) {
        let inner = &self.inner;
        let past = || (inner.chain().state().tip().map_or(0, |t| t.height) > height).then_some(());
        inner.watch_chain(bound, past).await;
    }

    /// `POST /v1/jobs/{id}/offers`.
    pub async fn offers(
        &self,
        job: &JobId,
        request: &OffersRequest,
    ) -> Result<OffersResponse, ApiError> {
        request
            .spec
            .validate()
            .map_err(|e| ApiError::bad_request(format!("spec: {e}")))?;
        let gathered = self
            .inner
            .gather_offers(*job, &request.spec, request.window_ms, request.enough)
            .instrument(tracing::info_span!("offers", %job))
            .await
            .map_err(|e| {
                let code = match e {
                    RequesterError::UnknownJob { .. } => ErrorCode::NotFound,
                    RequesterError::SpecMismatch { .. } | RequesterError::Window { .. } => {
                        ErrorCode::BadRequest
                    }
                    RequesterError::Net(_) => ErrorCode::Unavailable,
                };
                ApiError::new(code, e.to_string())
            })?;
        let chain = self.inner.chain();
        let offers = gathered
            .offers
            .into_iter()
            .map(|offer| OfferView {
                reputation: chain
                    .state()
                    .node(&offer.body.node)
                    .map_or(0, |n| n.reputation),
                offer: Canonical(offer),
            })
            .collect();
        Ok(OffersResponse {
            offers,
            declined: gathered
                .declined
                .into_iter()
                .map(|(node, reason)| Decline { node, reason })
                .collect(),
        })
    }

    /// `POST /v1/jobs/{id}/dispatch`.
    pub async fn dispatch(
        &self,
        job: &JobId,
        request: &DispatchRequest,
    ) -> Result<DispatchResponse, ApiError> {
        let mut dispatches: Vec<(NodeId, Dispatch)> = Vec::with_capacity(request.nodes.len());
        for keys in &request.nodes {
            if keys.input_keys.len() != request.inputs.len() {
                return Err(ApiError::bad_request(format!(
                    "node {}: {} input keys for {} inputs",
                    keys.node,
                    keys.input_keys.len(),
                    request.inputs.len()
                )));
            }
            let sealed = |object: &ObjectRef, key: &HexBytes| SealedObject {
                name: object.name.clone(),
                cid: object.cid,
                sealed_key: key.0.clone(),
            };
            dispatches.push((
                keys.node,
                Dispatch {
                    job: *job,
                    spec: request.spec.clone(),
                    module: sealed(&request.module, &keys.module_key),
                    inputs: request
                        .inputs
                        .iter()
                        .zip(&keys.input_keys)
                        .map(|(input, key)| sealed(input, key))
                        .collect(),
                },
            ));
        }
        let results = self
            .inner
            .dispatch(dispatches)
            .instrument(tracing::info_span!("dispatch", %job))
            .await;
        Ok(DispatchResponse {
            results: results
                .into_iter()
                .map(|(node, outcome)| NodeResult {
                    node,
                    outcome: outcome.map(run_report),
                })
                .collect(),
        })
    }
}

fn run_report(r: RunResult) -> RunReport {
    RunReport {
        exit_code: r.exit_code,
        digest: r.digest,
        fuel: r.fuel,
        outputs: r
            .outputs
            .into_iter()
            .map(|o| OutputRef {
                path: o.path,
                size: o.size,
                blake3: o.blake3,
                cid: o.cid,
            })
            .collect(),
        stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
        staging_ms: r.staging_ms,
        running_ms: r.running_ms,
        storing_ms: r.storing_ms,
        failure: r.failure,
    }
}

/// Each of `pieces` checked against its CID; the first that does not hash
/// to it is refused, named as `what` `index` of the `whole`.
fn checked_pieces(
    pieces: Vec<(ContentId, Bytes)>,
    what: &str,
    whole: &str,
) -> Result<Vec<(ContentId, Bytes)>, ApiError> {
    for (index, (cid, bytes)) in pieces.iter().enumerate() {
        let actual = ContentId::of(bytes);
        if actual != *cid {
            return Err(ApiError::bad_request(format!(
                "{what} {index} of the {whole} does not hash to {cid} (it hashes to {actual})"
            )));
        }
    }
    Ok(pieces)
}

/// The network layer's reachability, as the API shows it.
fn nat_view(nat: &peercloud_net::NatView) -> peercloud_api::NatStatusView {
    use peercloud_net::Reachability;
    let (reachability, public_addr) = match &nat.reachability {
        Reachability::Unknown => ("unknown", None),
        Reachability::Public { address } => ("public", Some(address.to_string())),
        Reachability::Private => ("private", None),
    };
    peercloud_api::NatStatusView {
        reachability: reachability.to_owned(),
        public_addr,
        relays: nat.relays.iter().map(ToString::to_string).collect(),
        relayed_addrs: nat.relayed_addrs.iter().map(ToString::to_string).collect(),
        relaying: nat.relaying,
        hole_punches: nat.hole_punches,
        hole_punch_failures: nat.hole_punch_failures,
    }
}

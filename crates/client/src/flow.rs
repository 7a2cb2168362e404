//! The run-once job from the user's side, written once over [`NodeApi`]: the
//! flow `peercloud job run` and `peercloud demo` drive over HTTP, and the
//! in-process grid's tests drive in process. The wallet key stays
//! here: this code signs `PostJob`, `AwardJob`, `SettleJob` (or `CancelJob`
//! / `ExpireJob`), seals each object key to the awarded nodes only, and
//! decrypts the outputs; the node broadcasts, collects and dispatches.
//!
//! queued (inputs stored encrypted, escrow locked) → matched (offers, auction,
//! award) → staging + running (on the k nodes) → verifying (digests on the
//! ledger, settlement) → settled (outputs downloaded, checked, decrypted).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use peercloud_api::{
    Decline, DispatchRequest, DispatchResponse, ErrorCode, HexBytes, JobView, NodeKeys, ObjectRef,
    OffersRequest, RunReport, WaitQuery,
};
use peercloud_ledger::{JobState, TxKind};
use peercloud_market::{Candidate, select};
use peercloud_store::{
    ObjectKey, PutOptions, StoreError, get_object, put_object, read_manifest, seal_key_to,
};
use peercloud_types::clock::now_ms;
use peercloud_types::{Amount, ContentId, Hash32, JobId, JobSpec, Keypair, NodeId};

use crate::report::{FailedJob, JobReport, Phase};
use crate::{ApiStore, ClientError, NodeApi, submit_signed};

mod bundle;

pub use bundle::{
    Content, DISPATCH_INPUT_FILES_MAX, DISPATCH_INPUT_PATH_BYTES_MAX, INPUT_BYTES_MAX, JobBundle,
};

/// How long offers are collected by default.
pub const OFFER_WINDOW_MS_DEFAULT: u64 = 2_000;
/// How long past a job's deadline (by this machine's clock) the flow waits
/// before closing it: the validator's clock decides, and may lag a little.
const DEADLINE_SLACK_MS: u64 = 500;
/// Largest output downloaded into memory.
pub const OUTPUT_BYTES_MAX: u64 = 256 << 20;

/// The user's side of a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The node or its API.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Storing or reading an object.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A spec, module or input file.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Not enough acceptable offers came; the job was cancelled and its escrow refunded.
    #[error(
        "job {job} ({name:?}): {acceptable} acceptable offers of {received} received, {wanted} \
         wanted; the job was cancelled and its escrow refunded{declines}"
    )]
    NoMatch {
        /// The job.
        job: JobId,
        /// The job's name.
        name: String,
        /// k.
        wanted: usize,
        /// Offers under the reserve.
        acceptable: usize,
        /// Offers received.
        received: usize,
        /// Why nodes declined, as text.
        declines: String,
    },
    /// The job ended without a majority: escrow refunded. It ends as soon
    /// as no majority can form (every node failed or withdrew), not only at
    /// its deadline.
    #[error(
        "job {job} ({name:?}) ended {state} without a majority result ({why}); escrow refunded"
    )]
    NoResult {
        /// The job.
        job: JobId,
        /// The job's name.
        name: String,
        /// Its final state on the ledger.
        state: JobState,
        /// What went wrong with the runs.
        why: String,
    },
    /// The majority of the nodes agreed the module failed, the same way: a
    /// result, settled and paid like any other, with no outputs.
    #[error(transparent)]
    Failed(Box<FailedJob>),
    /// A downloaded output did not match the agreed digest.
    #[error("job {job} ({name:?}): output {file} does not match what the providers agreed on")]
    OutputMismatch {
        /// The job.
        job: JobId,
        /// The job's name.
        name: String,
        /// The file.
        file: String,
    },
    /// Neither settling nor expiring applies yet.
    #[error(
        "job {job} is {state}: it has no majority result to settle on, {pending} awarded nodes \
         may still answer, and its deadline ({deadline_ms} ms since the epoch) has not passed; \
         close it after the deadline"
    )]
    NotClosable {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// Awards that have neither a result nor a withdrawal.
        pending: usize,
        /// Its deadline.
        deadline_ms: u64,
    },
    /// The node said something this client cannot read.
    #[error("bad answer from the node: {0}")]
    Answer(String),
    /// Something else failed once the job was on the ledger (or while it
    /// was being posted): the job may still be open.
    #[error("job {job}: {source}")]
    InJob {
        /// The job.
        job: JobId,
        /// What failed.
        #[source]
        source: Box<RemoteError>,
    },
}

impl RemoteError {
    /// The job the error is about, once one was posted.
    pub fn job(&self) -> Option<JobId> {
        match self {
            RemoteError::NoMatch { job, .. }
            | RemoteError::NoResult { job, .. }
            | RemoteError::OutputMismatch { job, .. }
            | RemoteError::NotClosable { job, .. }
            | RemoteError::InJob { job, .. } => Some(*job),
            RemoteError::Failed(failed) => Some(failed.job),
            RemoteError::Client(_)
            | RemoteError::Store(_)
            | RemoteError::File { .. }
            | RemoteError::Answer(_) => None,
        }
    }

    /// The error, naming `job` if it does not already name a job.
    fn in_job(self, job: JobId) -> RemoteError {
        if self.job().is_some() {
            return self;
        }
        RemoteError::InJob {
            job,
            source: Box::new(self),
        }
    }
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long offers are collected.
    pub offer_window_ms: u64,
    /// Called once the job is on the ledger, before anything else can go
    /// wrong: a CLI prints the id, so a user whose command stops can close it.
    pub on_posted: Option<fn(&JobId)>,
    /// Called when some nodes' runs failed but the job must still wait on
    /// the ledger (for the other results, for withdrawals, or for its
    /// deadline), with the nodes' errors: a CLI says why it waits instead of
    /// waiting silently.
    pub on_waiting: Option<fn(&JobId, &str)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            offer_window_ms: OFFER_WINDOW_MS_DEFAULT,
            on_posted: None,
            on_waiting: None,
        }
    }
}

/// Closes `job` as the ledger allows: settled when its results make a
/// majority, expired otherwise once no majority can form (every award
/// answered, or enough failed or withdrew) or after its deadline. Anyone
/// may close a job,
/// so a poster whose command stopped (or a node) can end it; a job someone
/// else closed first is returned as it is.
pub fn close_job(
    node: &impl NodeApi,
    wallet: &Keypair,
    job: &JobId,
) -> Result<JobView, RemoteError> {
    let view = node.job(job, WaitQuery::NOW)?;
    if view.state.is_closed() {
        return Ok(view);
    }
    for kind in [
        TxKind::SettleJob { job: *job },
        TxKind::ExpireJob { job: *job },
    ] {
        match submit_signed(node, wallet, kind, true) {
            Ok(_) => break,
            // The ledger decides which applies; the node's dry run refuses
            // the other one fee-free.
            Err(e) if e.api_code() == Some(ErrorCode::TxRefused) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let view = node.job(job, WaitQuery::NOW)?;
    if !view.state.is_closed() {
        return Err(RemoteError::NotClosable {
            job: *job,
            state: view.state,
            pending: view.pending(),
            deadline_ms: view.deadline_ms,
        });
    }
    Ok(view)
}

struct Staged {
    name: String,
    cid: ContentId,
    key: ObjectKey,
}

impl Staged {
    fn object(&self) -> ObjectRef {
        ObjectRef {
            name: self.name.clone(),
            cid: self.cid,
        }
    }
}

/// The module and inputs, stored encrypted to the wallet (or found in
/// storage and opened with it).
fn stage<A: NodeApi>(
    store: &ApiStore<A>,
    wallet: &Keypair,
    name: &str,
    content: &Content,
) -> Result<Staged, RemoteError> {
    let (cid, key) = match content {
        Content::Bytes(bytes) => {
            let options = PutOptions {
                name: Some(name.to_owned()),
                ..PutOptions::default()
            };
            let receipt = put_object(store, bytes.as_slice(), &wallet.public(), &options)?;
            let key = receipt.key.ok_or(StoreError::Sealing {
                source: peercloud_store::SealError::NoKey,
            })?;
            (receipt.manifest_cid, key)
        }
        Content::Stored(cid) => {
            let manifest = read_manifest(store, cid)?;
            let key = manifest
                .unwrap_key(&wallet.x25519_secret())
                .map_err(|source| StoreError::Sealing { source })?;
            (*cid, key)
        }
    };
    Ok(Staged {
        name: name.to_owned(),
        cid,
        key,
    })
}

/// One job on its way through the phases, as the user's side holds it.
struct Run<'a, A: NodeApi> {
    node: &'a A,
    store: ApiStore<&'a A>,
    wallet: &'a Keypair,
    spec: &'a JobSpec,
    job: JobId,
    laps: Laps,
}

/// Runs `bundle` on the grid through `node`, paying with `wallet`.
pub fn run_job<A: NodeApi>(
    node: &A,
    wallet: &Keypair,
    bundle: &JobBundle,
    options: &RunOptions,
) -> Result<JobReport, RemoteError> {
    let spec = &bundle.spec;
    let span = tracing::info_span!("job", name = %spec.name, id = tracing::field::Empty);
    let _entered = span.enter();
    let store = ApiStore::new(node);
    // queued: module and inputs stored encrypted (3 replicas); escrow locked.
    let module = stage(&store, wallet, "job.wasm", &bundle.module)?;
    let inputs = bundle
        .inputs
        .iter()
        .map(|(n, c)| stage(&store, wallet, n, c))
        .collect::<Result<Vec<_>, _>>()?;
    let nonce = node.account(&wallet.account_id())?.next_nonce;
    let mut run = Run {
        node,
        store,
        wallet,
        spec,
        job: JobId::derive(&wallet.account_id(), nonce),
        laps: Laps::new(),
    };
    span.record("id", tracing::field::display(&run.job));
    tracing::info!("posting");
    let announce = options.on_posted;
    let deadline_ms = now_ms() + spec.deadline_secs * 1_000;
    let post = TxKind::PostJob {
        spec_digest: spec.digest(),
        redundancy: spec.redundancy,
        max_price_per_node: spec.max_price,
        deadline_ms,
    };
    let job = run.job;
    submit_signed(node, wallet, post, true).map_err(|e| RemoteError::from(e).in_job(job))?;
    if let Some(announce) = announce {
        announce(&job);
    }
    run.laps.lap(Phase::Queued);
    // From here on every error names the job.
    run.posted(options, &module, &inputs, deadline_ms)
        .map_err(|e| e.in_job(job))
}

impl<A: NodeApi> Run<'_, A> {
    fn submit(&self, kind: TxKind) -> Result<(), ClientError> {
        submit_signed(self.node, self.wallet, kind, true).map(|_| ())
    }

    /// The posted job through its phases to its report.
    fn posted(
        mut self,
        options: &RunOptions,
        module: &Staged,
        inputs: &[Staged],
        deadline_ms: u64,
    ) -> Result<JobReport, RemoteError> {
        let nodes = self.award(options)?;
        self.laps.lap(Phase::Matched);
        let dispatched = self.dispatch(&nodes, module, inputs)?;
        let failures = dispatch_failures(&dispatched);
        let view = self.settle(deadline_ms, &failures, options.on_waiting)?;
        self.laps.lap(Phase::Verifying);
        self.collect(nodes, &dispatched, &failures, &view)
    }

    /// matched: the node broadcasts the request; the auction runs here; the
    /// award binds the chosen offers. Without enough offers the job is
    /// cancelled and its escrow refunded.
    fn award(&mut self, options: &RunOptions) -> Result<Vec<NodeId>, RemoteError> {
        let (job, spec) = (self.job, self.spec);
        let k = usize::from(spec.redundancy);
        let gathered = self.node.offers(
            &job,
            &OffersRequest {
                spec: spec.clone(),
                window_ms: options.offer_window_ms,
                enough: 0,
            },
        )?;
        let candidates: Vec<Candidate> = gathered
            .offers
            .into_iter()
            .filter(|view| view.offer.0.body.job == job)
            .map(|view| Candidate {
                offer: view.offer.0,
                reputation: view.reputation,
            })
            .collect();
        let chosen = match select(&candidates, k, spec.max_price, now_ms()) {
            Ok(chosen) => chosen,
            Err(e) => {
                self.submit(TxKind::CancelJob { job })?;
                return Err(RemoteError::NoMatch {
                    job,
                    name: spec.name.clone(),
                    wanted: e.wanted,
                    acceptable: e.acceptable,
                    received: e.received,
                    declines: declines_text(&gathered.declined),
                });
            }
        };
        let nodes: Vec<NodeId> = chosen.iter().map(|c| c.offer.body.node).collect();
        let offers = chosen.into_iter().map(|c| c.offer).collect();
        tracing::info!(%job, ?nodes, "awarding");
        self.submit(TxKind::AwardJob { job, offers })?;
        Ok(nodes)
    }

    /// staging + running: each node gets the keys sealed to it alone; the
    /// providers time their own staging and running, and the rest of the
    /// dispatch (storing outputs, submitting digests) counts as verifying.
    fn dispatch(
        &mut self,
        nodes: &[NodeId],
        module: &Staged,
        inputs: &[Staged],
    ) -> Result<DispatchResponse, RemoteError> {
        let keys = nodes
            .iter()
            .map(|node| sealed_keys(node, module, inputs))
            .collect::<Result<Vec<_>, _>>()?;
        let request = DispatchRequest {
            spec: self.spec.clone(),
            module: module.object(),
            inputs: inputs.iter().map(Staged::object).collect(),
            nodes: keys,
        };
        let started = Instant::now();
        let response = self.node.dispatch(&self.job, &request)?;
        let wall = started.elapsed();
        let reports = || {
            response
                .results
                .iter()
                .filter_map(|r| r.outcome.as_ref().ok())
        };
        let staging = Duration::from_millis(reports().map(|r| r.staging_ms).max().unwrap_or(0));
        let running = Duration::from_millis(reports().map(|r| r.running_ms).max().unwrap_or(0));
        self.laps.phases.push((Phase::Staging, staging));
        self.laps.phases.push((Phase::Running, running));
        self.laps.clock = Instant::now()
            .checked_sub(wall.saturating_sub(staging + running))
            .unwrap_or_else(Instant::now);
        Ok(response)
    }

    /// verifying: every award answered on the ledger (a result or a
    /// withdrawal), or no majority possible any more, or the deadline; then
    /// the ledger decides: `SettleJob` when the results allow it, else
    /// `ExpireJob` (the node's dry run refuses the one that does not apply,
    /// fee-free). Nodes whose runs failed are named to `on_waiting` when the
    /// job has to wait on.
    fn settle(
        &mut self,
        deadline_ms: u64,
        failures: &[String],
        on_waiting: Option<fn(&JobId, &str)>,
    ) -> Result<JobView, RemoteError> {
        let job = self.job;
        let view = self.node.job(&job, WaitQuery::NOW)?;
        if let Some(on_waiting) = on_waiting
            && !failures.is_empty()
            && !closable(&view, deadline_ms)
        {
            on_waiting(&job, &failures.join("; "));
        }
        wait_for_results(self.node, &job, view, deadline_ms)?;
        close_job(self.node, self.wallet, &job)
    }

    /// settled: the outputs of a node that reported the agreed digest,
    /// downloaded, checked against what it reported and decrypted; or the
    /// failure the nodes agreed on.
    fn collect(
        mut self,
        nodes: Vec<NodeId>,
        dispatched: &DispatchResponse,
        failures: &[String],
        view: &JobView,
    ) -> Result<JobReport, RemoteError> {
        let (job, name) = (self.job, self.spec.name.clone());
        let Some((agreed, fuel)) = agreed_claim(view) else {
            let disagree = view.awards.iter().filter(|a| a.digest.is_some()).count() > 1;
            let mut why = failures.to_vec();
            // A node's failed run is a result, but a lone one decides nothing.
            why.extend(dispatched.results.iter().filter_map(|r| {
                let failure = r.outcome.as_ref().ok()?.failure.as_ref()?;
                Some(format!("{}: the module failed: {failure}", r.node))
            }));
            if disagree || why.is_empty() {
                why.push("the providers' results disagree".into());
            }
            return Err(RemoteError::NoResult {
                job,
                name,
                state: view.state,
                why: why.join("; "),
            });
        };
        let paid: Vec<(NodeId, Amount)> = view
            .awards
            .iter()
            .filter(|a| a.digest == Some(agreed) && a.fuel == Some(fuel))
            .map(|a| (a.node, a.price))
            .collect();
        let paid_total = paid
            .iter()
            .try_fold(Amount::ZERO, |sum, (_, price)| sum.checked_add(*price))
            .ok_or_else(|| RemoteError::Answer("the payments overflow".into()))?;
        let refunded = view
            .escrow_locked
            .checked_sub(paid_total)
            .unwrap_or(Amount::ZERO);
        let winner: &RunReport = dispatched
            .results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok())
            .find(|r| r.digest == agreed && r.fuel == fuel)
            .ok_or_else(|| RemoteError::NoResult {
                job,
                name: name.clone(),
                state: view.state,
                why: "no reachable node reported the agreed outputs".into(),
            })?;
        if let Some(failure) = &winner.failure {
            return Err(RemoteError::Failed(Box::new(FailedJob {
                job,
                name,
                agreeing: paid.len(),
                redundancy: view.redundancy,
                paid,
                refunded,
                failure: failure.clone(),
            })));
        }
        let outputs = self.download(winner)?;
        self.laps.lap(Phase::Settled);
        Ok(JobReport {
            job,
            name,
            phases: self.laps.phases,
            nodes,
            paid,
            refunded,
            digest: agreed,
            fuel: winner.fuel,
            exit_code: winner.exit_code,
            stderr: winner.stderr.clone(),
            outputs,
        })
    }

    fn download(&self, winner: &RunReport) -> Result<Vec<(String, Vec<u8>)>, RemoteError> {
        let secret = self.wallet.x25519_secret();
        let mut outputs = Vec::with_capacity(winner.outputs.len());
        for file in &winner.outputs {
            let mut bytes = Vec::with_capacity(file.size.min(OUTPUT_BYTES_MAX) as usize);
            get_object(&self.store, &file.cid, &secret, &mut bytes)?;
            if Hash32::of(&bytes) != file.blake3 {
                return Err(RemoteError::OutputMismatch {
                    job: self.job,
                    name: self.spec.name.clone(),
                    file: file.path.clone(),
                });
            }
            outputs.push((file.path.clone(), bytes));
        }
        Ok(outputs)
    }
}

/// The object keys of a job sealed (X25519) to `node` alone.
fn sealed_keys(node: &NodeId, module: &Staged, inputs: &[Staged]) -> Result<NodeKeys, RemoteError> {
    let x25519 = node
        .key()
        .x25519()
        .ok_or_else(|| RemoteError::Answer(format!("node {node} has no X25519 key")))?;
    let seal = |s: &Staged| -> Result<HexBytes, RemoteError> {
        seal_key_to(&s.key, &x25519)
            .map(HexBytes)
            .map_err(|source| RemoteError::Store(StoreError::Sealing { source }))
    };
    Ok(NodeKeys {
        node: *node,
        module_key: seal(module)?,
        input_keys: inputs.iter().map(seal).collect::<Result<_, _>>()?,
    })
}

fn declines_text(declined: &[Decline]) -> String {
    if declined.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = declined
        .iter()
        .map(|d| {
            let node = d.node.to_string();
            format!("{}…: {}", node.get(..12).unwrap_or(&node), d.reason)
        })
        .collect();
    format!("; declined: {}", lines.join("; "))
}

/// Time per phase.
struct Laps {
    phases: Vec<(Phase, Duration)>,
    clock: Instant,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            phases: Vec::with_capacity(Phase::ALL.len()),
            clock: Instant::now(),
        }
    }

    fn lap(&mut self, phase: Phase) {
        self.phases.push((phase, self.clock.elapsed()));
        self.clock = Instant::now();
    }
}

/// Each failed dispatch as `node: error`.
fn dispatch_failures(dispatched: &DispatchResponse) -> Vec<String> {
    dispatched
        .results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| format!("{}: {}", r.node, e.message))
        })
        .collect()
}

/// The (digest, fuel) claim the settlement paid: of the awards that
/// submitted the agreed digest, the claim most of them made.
fn agreed_claim(view: &JobView) -> Option<(Hash32, u64)> {
    let agreed = view.agreed?;
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for fuel in view
        .awards
        .iter()
        .filter(|a| a.digest == Some(agreed))
        .filter_map(|a| a.fuel)
    {
        match counts.iter_mut().find(|(f, _)| *f == fuel) {
            Some((_, count)) => *count += 1,
            None => counts.push((fuel, 1)),
        }
    }
    let (fuel, _) = counts.into_iter().max_by_key(|(_, count)| *count)?;
    Some((agreed, fuel))
}

/// Whether waiting on `view` can change nothing: the job is closed, every
/// award answered (a result or a withdrawal), no majority can form any
/// more, or its deadline has passed (by this machine's clock, with slack:
/// the validator's decides).
fn closable(view: &JobView, deadline_ms: u64) -> bool {
    view.state.is_closed()
        || view.pending() == 0
        || !view.majority_possible()
        || now_ms() > deadline_ms + DEADLINE_SLACK_MS
}

/// Follows the job block by block from `view` (the node answers each long
/// poll when a new block is committed) until it is [`closable`].
fn wait_for_results(
    node: &impl NodeApi,
    job: &JobId,
    mut view: JobView,
    deadline_ms: u64,
) -> Result<JobView, RemoteError> {
    loop {
        if closable(&view, deadline_ms) {
            return Ok(view);
        }
        let left_ms = (deadline_ms + DEADLINE_SLACK_MS).saturating_sub(now_ms());
        view = node.job(job, WaitQuery::past(view.height, left_ms))?;
    }
}

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

use std::path::{Path, PathBuf};
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
use peercloud_types::job::{MODULE_BYTES_MAX, Source};
use peercloud_types::{Amount, ContentId, Hash32, JobId, JobSpec, Keypair, NodeId};

use crate::report::{JobReport, Phase};
use crate::{ApiStore, ClientError, NodeApi, submit_signed};

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
        "job {name:?}: {acceptable} acceptable offers of {received} received, {wanted} wanted; \
         the job was cancelled and its escrow refunded{declines}"
    )]
    NoMatch {
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
    /// The job ended without a majority: escrow refunded.
    #[error("job {name:?} ended {state} without a majority result ({why}); escrow refunded")]
    NoResult {
        /// The job's name.
        name: String,
        /// Its final state on the ledger.
        state: JobState,
        /// What went wrong with the runs.
        why: String,
    },
    /// A downloaded output did not match the agreed digest.
    #[error("job {name:?}: output {file} does not match what the providers agreed on")]
    OutputMismatch {
        /// The job's name.
        name: String,
        /// The file.
        file: String,
    },
    /// Neither settling nor expiring applies yet.
    #[error(
        "job {job} is {state}: it has no majority result to settle on and its deadline \
         ({deadline_ms} ms since the epoch) has not passed; close it after the deadline"
    )]
    NotClosable {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// Its deadline.
        deadline_ms: u64,
    },
    /// The node said something this client cannot read.
    #[error("bad answer from the node: {0}")]
    Answer(String),
}

/// A job ready to send: the spec, the module and the inputs' bytes (or
/// objects already in storage).
#[derive(Debug, Clone)]
pub struct JobBundle {
    /// The spec.
    pub spec: JobSpec,
    /// The module.
    pub module: Content,
    /// The inputs, by file name.
    pub inputs: Vec<(String, Content)>,
}

/// Where a module or input comes from.
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes to upload.
    Bytes(Vec<u8>),
    /// An object already stored (owned by the wallet).
    Stored(ContentId),
}

impl JobBundle {
    /// Reads a spec file and the local files it names (paths relative to it).
    pub fn load(spec_path: &Path) -> Result<JobBundle, RemoteError> {
        let file_err = |path: &Path, reason: String| RemoteError::File {
            path: path.to_owned(),
            reason,
        };
        let text =
            std::fs::read_to_string(spec_path).map_err(|e| file_err(spec_path, e.to_string()))?;
        let spec = JobSpec::from_json(&text).map_err(|e| file_err(spec_path, e.to_string()))?;
        let base = spec_path.parent().unwrap_or(Path::new("."));
        let content = |field: &str, source: &Source, cap: u64| -> Result<Content, RemoteError> {
            match source {
                Source::Cid(cid) => Ok(Content::Stored(*cid)),
                Source::Path(p) => read_capped(&base.join(p), field, cap).map(Content::Bytes),
            }
        };
        let module = content("module", &spec.module, MODULE_BYTES_MAX as u64)?;
        let inputs = spec
            .inputs
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let field = format!("inputs[{n}].source");
                Ok((i.name.clone(), content(&field, &i.source, INPUT_BYTES_MAX)?))
            })
            .collect::<Result<Vec<_>, RemoteError>>()?;
        Ok(JobBundle {
            spec,
            module,
            inputs,
        })
    }
}

/// Largest input a spec may name as a local file: the bundle holds it in
/// memory while it is sealed and sent. Larger data goes into storage first
/// (`peercloud store put`) and the spec names its CID.
pub const INPUT_BYTES_MAX: u64 = 1 << 30;

/// Reads the file `field` of a spec names, refusing a directory and anything
/// over `cap` bytes before holding more than `cap + 1` of it (a device such as
/// `/dev/zero` never ends).
fn read_capped(path: &Path, field: &str, cap: u64) -> Result<Vec<u8>, RemoteError> {
    use std::io::Read;
    let refuse = |reason: String| RemoteError::File {
        path: path.to_owned(),
        reason: format!("`{field}`: {reason}"),
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if meta.is_dir() {
        return Err(refuse(
            "is a directory; a spec names one file here (or the CID of a stored object)".into(),
        ));
    }
    if meta.is_file() && meta.len() > cap {
        return Err(refuse(format!(
            "is {} bytes, at most {cap} allowed",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| refuse(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(refuse(format!(
            "holds more than {cap} bytes, the most allowed"
        )));
    }
    Ok(bytes)
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long offers are collected.
    pub offer_window_ms: u64,
    /// Called once the job is on the ledger, before anything else can go
    /// wrong: a CLI prints the id, so a user whose command stops can close it.
    pub on_posted: Option<fn(&JobId)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            offer_window_ms: OFFER_WINDOW_MS_DEFAULT,
            on_posted: None,
        }
    }
}

/// Closes `job` as the ledger allows: settled when its results make a
/// majority, expired after its deadline otherwise. Anyone may close a job,
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
            (receipt.manifest_cid, receipt.key)
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
    submit_signed(node, wallet, post, true)?;
    if let Some(announce) = announce {
        announce(&run.job);
    }
    run.laps.lap(Phase::Queued);

    let nodes = run.award(options)?;
    run.laps.lap(Phase::Matched);
    let dispatched = run.dispatch(&nodes, &module, &inputs)?;
    let view = run.settle(deadline_ms)?;
    run.laps.lap(Phase::Verifying);
    let report = run.collect(nodes, &dispatched, &view)?;
    Ok(report)
}

impl<A: NodeApi> Run<'_, A> {
    fn submit(&self, kind: TxKind) -> Result<(), ClientError> {
        submit_signed(self.node, self.wallet, kind, true).map(|_| ())
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

    /// verifying: every digest on the ledger (or the deadline), then the
    /// ledger decides: `SettleJob` when the results allow it, else
    /// `ExpireJob` (the node's dry run refuses the one that does not apply,
    /// fee-free).
    fn settle(&mut self, deadline_ms: u64) -> Result<JobView, RemoteError> {
        let job = self.job;
        wait_for_results(
            self.node,
            &job,
            usize::from(self.spec.redundancy),
            deadline_ms,
        )?;
        close_job(self.node, self.wallet, &job)
    }

    /// settled: the outputs of a node that reported the agreed digest,
    /// downloaded, checked against what it reported and decrypted.
    fn collect(
        mut self,
        nodes: Vec<NodeId>,
        dispatched: &DispatchResponse,
        view: &JobView,
    ) -> Result<JobReport, RemoteError> {
        let name = self.spec.name.clone();
        let failures: Vec<String> = dispatched
            .results
            .iter()
            .filter_map(|r| {
                r.outcome
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {}", r.node, e.message))
            })
            .collect();
        let Some(agreed) = view.agreed else {
            return Err(RemoteError::NoResult {
                name,
                state: view.state,
                why: if failures.is_empty() {
                    "the providers' digests disagree".into()
                } else {
                    failures.join("; ")
                },
            });
        };
        let paid: Vec<(NodeId, Amount)> = view
            .awards
            .iter()
            .filter(|a| a.digest == Some(agreed))
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
            .find(|r| r.digest == agreed)
            .ok_or_else(|| RemoteError::NoResult {
                name: name.clone(),
                state: view.state,
                why: "no reachable node reported the agreed outputs".into(),
            })?;
        let outputs = self.download(winner)?;
        self.laps.lap(Phase::Settled);
        Ok(JobReport {
            job: self.job,
            name,
            phases: self.laps.phases,
            nodes,
            paid,
            refunded,
            digest: agreed,
            fuel: winner.fuel,
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

/// Follows the job block by block (the node answers each long poll when a
/// new block is committed) until all k results are in, or its deadline
/// has passed.
fn wait_for_results(
    node: &impl NodeApi,
    job: &JobId,
    k: usize,
    deadline_ms: u64,
) -> Result<JobView, RemoteError> {
    let mut view = node.job(job, WaitQuery::NOW)?;
    loop {
        let in_count = view.awards.iter().filter(|a| a.digest.is_some()).count();
        // The ledger's clock is the validator's: allow it a moment past ours.
        if in_count >= k || view.state.is_closed() || now_ms() > deadline_ms + DEADLINE_SLACK_MS {
            return Ok(view);
        }
        let left_ms = (deadline_ms + DEADLINE_SLACK_MS).saturating_sub(now_ms());
        view = node.job(job, WaitQuery::past(view.height, left_ms))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_naming(dir: &Path, module: &str, input: &str) -> PathBuf {
        let spec = serde_json::json!({
            "version": 1,
            "name": "bounded reads",
            "module": module,
            "inputs": [{"name": "data", "source": input}],
            "max_price": "0.01",
        });
        let path = dir.join("spec.json");
        std::fs::write(&path, spec.to_string()).unwrap();
        path
    }

    #[test]
    fn a_never_ending_module_is_refused_at_the_cap_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), b"hello").unwrap();
        let spec = spec_naming(dir.path(), "/dev/zero", "data");
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`module`") && err.contains("more than"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_as_input_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("job.wasm"), b"\0asm").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        let spec = spec_naming(dir.path(), "job.wasm", "folder");
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`inputs[0].source`") && err.contains("is a directory"),
            "{err}"
        );
        let ok = spec_naming(dir.path(), "job.wasm", "job.wasm");
        let bundle = JobBundle::load(&ok).unwrap();
        assert!(matches!(&bundle.inputs[0].1, Content::Bytes(b) if b == b"\0asm"));
    }
}

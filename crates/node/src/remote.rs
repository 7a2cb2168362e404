//! The run-once job from the user's side, over a node's HTTP API: the flow
//! `peercloud job run` and `peercloud demo` drive. The wallet key stays
//! here: this code signs `PostJob`, `AwardJob`, `SettleJob` (or `CancelJob`
//! / `ExpireJob`), seals each object key to the awarded nodes only, and
//! decrypts the outputs; the node broadcasts, collects and dispatches.
//!
//! queued (inputs stored encrypted, escrow locked) → matched (offers, auction,
//! award) → staging + running (on the k nodes) → verifying (digests on the
//! ledger, settlement) → settled (outputs downloaded, checked, decrypted).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peercloud_ledger::TxKind;
use peercloud_market::{Candidate, select};
use peercloud_store::{
    ObjectKey, PutOptions, StoreError, get_object, put_object, read_manifest, seal_key_to,
};
use peercloud_types::encoding::decode;
use peercloud_types::job::Source;
use peercloud_types::{Amount, ContentId, Hash32, JobId, JobSpec, Keypair, NodeId, Offer, Signed};

use crate::api::model::{DispatchRequest, JobView, NodeKeys, ObjectRef, OffersRequest};
use crate::client::{ApiStore, ClientError, NodeClient, submit_signed};
use crate::flow::{JobReport, PHASES};
use crate::grid::TX_FEE;

/// How long offers are collected by default.
pub const OFFER_WINDOW_MS_DEFAULT: u64 = 2_000;
/// How often the ledger is polled while waiting for results or a deadline.
const POLL: Duration = Duration::from_millis(2);
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
        state: String,
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
        let content = |source: &Source| -> Result<Content, RemoteError> {
            match source {
                Source::Cid(cid) => Ok(Content::Stored(*cid)),
                Source::Path(p) => {
                    let path = base.join(p);
                    std::fs::read(&path)
                        .map(Content::Bytes)
                        .map_err(|e| file_err(&path, e.to_string()))
                }
            }
        };
        let module = content(&spec.module)?;
        let inputs = spec
            .inputs
            .iter()
            .map(|i| Ok((i.name.clone(), content(&i.source)?)))
            .collect::<Result<Vec<_>, RemoteError>>()?;
        Ok(JobBundle {
            spec,
            module,
            inputs,
        })
    }
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long offers are collected.
    pub offer_window_ms: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            offer_window_ms: OFFER_WINDOW_MS_DEFAULT,
        }
    }
}

struct Staged {
    name: String,
    cid: ContentId,
    key: ObjectKey,
}

fn stage(
    store: &ApiStore,
    wallet: &Keypair,
    name: &str,
    content: &Content,
) -> Result<Staged, RemoteError> {
    match content {
        Content::Bytes(bytes) => {
            let options = PutOptions {
                name: Some(name.to_owned()),
                ..PutOptions::default()
            };
            let receipt = put_object(store, bytes.as_slice(), &wallet.public(), &options)?;
            Ok(Staged {
                name: name.to_owned(),
                cid: receipt.manifest_cid,
                key: receipt.key,
            })
        }
        Content::Stored(cid) => {
            let manifest = read_manifest(store, cid)?;
            let key = manifest
                .unwrap_key(&wallet.x25519_secret())
                .map_err(|source| StoreError::Sealing { source })?;
            Ok(Staged {
                name: name.to_owned(),
                cid: *cid,
                key,
            })
        }
    }
}

fn amount(text: &str) -> Result<Amount, RemoteError> {
    text.parse()
        .map_err(|e| RemoteError::Answer(format!("amount {text:?}: {e}")))
}

/// Runs `bundle` on the grid through `client`'s node, paying with `wallet`.
pub fn run_job(
    client: &NodeClient,
    wallet: &Keypair,
    bundle: &JobBundle,
    options: &RunOptions,
) -> Result<JobReport, RemoteError> {
    let spec = &bundle.spec;
    let name = spec.name.clone();
    let mut laps = Laps::new();

    // queued: module and inputs stored encrypted (3 replicas); escrow locked.
    let store = ApiStore::new(client.clone());
    let module = stage(&store, wallet, "job.wasm", &bundle.module)?;
    let inputs = bundle
        .inputs
        .iter()
        .map(|(n, c)| stage(&store, wallet, n, c))
        .collect::<Result<Vec<_>, _>>()?;
    let nonce = client.account(&wallet.account_id())?.next_nonce;
    let job = JobId::derive(&wallet.account_id(), nonce);
    let deadline_ms = crate::daemon::now_ms() + spec.deadline_secs * 1_000;
    let post = TxKind::PostJob {
        spec_digest: spec.digest(),
        redundancy: spec.redundancy,
        max_price_per_node: spec.max_price,
        deadline_ms,
    };
    submit_signed(client, wallet, post, TX_FEE, true)?;
    laps.lap(PHASES[0]);

    // matched: the node broadcasts the request; the auction runs here.
    let k = usize::from(spec.redundancy);
    let gathered = client.offers(
        &job,
        &OffersRequest {
            spec: spec.clone(),
            window_ms: options.offer_window_ms,
            enough: 0,
        },
    )?;
    let mut candidates = Vec::with_capacity(gathered.offers.len());
    for view in &gathered.offers {
        let bytes = hex::decode(&view.offer).map_err(|e| RemoteError::Answer(e.to_string()))?;
        let offer: Signed<Offer> =
            decode(&bytes).map_err(|e| RemoteError::Answer(e.to_string()))?;
        if offer.body.job == job {
            candidates.push(Candidate {
                offer,
                reputation: view.reputation,
            });
        }
    }
    let chosen = match select(&candidates, k, spec.max_price, crate::daemon::now_ms()) {
        Ok(chosen) => chosen,
        Err(e) => {
            submit_signed(client, wallet, TxKind::CancelJob { job }, TX_FEE, true)?;
            let declines: Vec<String> = gathered
                .declined
                .iter()
                .map(|(node, why)| format!("{}…: {why}", node.get(..12).unwrap_or(node)))
                .collect();
            return Err(RemoteError::NoMatch {
                name,
                wanted: e.wanted,
                acceptable: e.acceptable,
                received: e.received,
                declines: if declines.is_empty() {
                    String::new()
                } else {
                    format!("; declined: {}", declines.join("; "))
                },
            });
        }
    };
    let nodes: Vec<NodeId> = chosen.iter().map(|c| c.offer.body.node).collect();
    let offers = chosen.into_iter().map(|c| c.offer).collect();
    submit_signed(
        client,
        wallet,
        TxKind::AwardJob { job, offers },
        TX_FEE,
        true,
    )?;
    laps.lap(PHASES[1]);

    // staging + running: each node gets the keys sealed to it alone.
    let mut keys = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let x25519 = node
            .key()
            .x25519()
            .ok_or_else(|| RemoteError::Answer(format!("node {node} has no X25519 key")))?;
        let seal = |s: &Staged| -> Result<String, RemoteError> {
            seal_key_to(&s.key, &x25519)
                .map(hex::encode)
                .map_err(|source| RemoteError::Store(StoreError::Sealing { source }))
        };
        keys.push(NodeKeys {
            node: node.to_string(),
            module_key: seal(&module)?,
            input_keys: inputs.iter().map(seal).collect::<Result<_, _>>()?,
        });
    }
    let request = DispatchRequest {
        spec: spec.clone(),
        module: ObjectRef {
            name: module.name.clone(),
            cid: module.cid.to_string(),
        },
        inputs: inputs
            .iter()
            .map(|s| ObjectRef {
                name: s.name.clone(),
                cid: s.cid.to_string(),
            })
            .collect(),
        nodes: keys,
    };
    let dispatched = Instant::now();
    let results = client.dispatch(&job, &request)?.results;
    let wall = dispatched.elapsed();
    let reports: Vec<_> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r.node.clone(), o.clone())))
        .collect();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| format!("{}: {}", r.node, e.message))
        })
        .collect();
    // The providers time their own staging and running; the rest of the
    // dispatch (storing outputs, submitting digests) counts as verifying.
    let staging = reports.iter().map(|(_, r)| r.staging_ms).max().unwrap_or(0);
    let running = reports.iter().map(|(_, r)| r.running_ms).max().unwrap_or(0);
    let staging = Duration::from_millis(staging);
    let running = Duration::from_millis(running);
    laps.phases.push((PHASES[2], staging));
    laps.phases.push((PHASES[3], running));
    laps.clock = Instant::now()
        .checked_sub(wall.saturating_sub(staging + running))
        .unwrap_or_else(Instant::now);

    // verifying: every digest on the ledger (or the deadline), then settle.
    wait_for_results(client, &job, k, deadline_ms)?;
    // The ledger decides: SettleJob when the results allow it, else ExpireJob
    // (the node's dry run refuses the one that does not apply, fee-free).
    match submit_signed(client, wallet, TxKind::SettleJob { job }, TX_FEE, true) {
        Err(e) if e.api_code() == Some("tx_refused") => {
            submit_signed(client, wallet, TxKind::ExpireJob { job }, TX_FEE, true)?;
        }
        other => {
            other?;
        }
    }
    let view = client.job(&job)?;
    laps.lap(PHASES[4]);
    let Some(agreed) = view.agreed.clone() else {
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
    let mut paid = Vec::new();
    let mut paid_total = Amount::ZERO;
    for award in &view.awards {
        if award.digest.as_deref() == Some(agreed.as_str()) {
            let node: NodeId = award
                .node
                .parse()
                .map_err(|e| RemoteError::Answer(format!("node id: {e}")))?;
            let price = amount(&award.price)?;
            paid_total = paid_total.checked_add(price).unwrap_or(paid_total);
            paid.push((node, price));
        }
    }
    let refunded = amount(&view.escrow_locked)?
        .checked_sub(paid_total)
        .unwrap_or(Amount::ZERO);

    // settled: download from a paid node's outputs, check, decrypt.
    let (_, winner) = reports
        .iter()
        .find(|(_, r)| r.digest == agreed)
        .ok_or_else(|| RemoteError::NoResult {
            name: name.clone(),
            state: view.state.clone(),
            why: "no reachable node reported the agreed outputs".into(),
        })?;
    let secret = wallet.x25519_secret();
    let mut outputs = Vec::with_capacity(winner.outputs.len());
    for file in &winner.outputs {
        let cid: ContentId = file
            .cid
            .parse()
            .map_err(|e| RemoteError::Answer(format!("output CID: {e}")))?;
        let mut bytes = Vec::with_capacity(file.size.min(OUTPUT_BYTES_MAX) as usize);
        get_object(&store, &cid, &secret, &mut bytes)?;
        if Hash32::of(&bytes).to_string() != file.blake3 {
            return Err(RemoteError::OutputMismatch {
                name,
                file: file.path.clone(),
            });
        }
        outputs.push((file.path.clone(), bytes));
    }
    laps.lap(PHASES[5]);
    let digest: Hash32 = agreed
        .parse()
        .map_err(|e| RemoteError::Answer(format!("digest: {e}")))?;
    Ok(JobReport {
        job,
        name,
        phases: laps.phases,
        nodes,
        paid,
        refunded,
        digest,
        fuel: winner.fuel,
        outputs,
    })
}

/// Time per phase.
struct Laps {
    phases: Vec<(&'static str, Duration)>,
    clock: Instant,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            phases: Vec::with_capacity(PHASES.len()),
            clock: Instant::now(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        self.phases.push((phase, self.clock.elapsed()));
        self.clock = Instant::now();
    }
}

/// Polls the job until all k results are in, or its deadline has passed.
fn wait_for_results(
    client: &NodeClient,
    job: &JobId,
    k: usize,
    deadline_ms: u64,
) -> Result<JobView, RemoteError> {
    loop {
        let view = client.job(job)?;
        let in_count = view.awards.iter().filter(|a| a.digest.is_some()).count();
        // The ledger's clock is the validator's: allow it a moment past ours.
        if in_count >= k || crate::daemon::now_ms() > deadline_ms + 500 {
            return Ok(view);
        }
        std::thread::sleep(POLL);
    }
}

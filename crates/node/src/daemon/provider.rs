//! The provider agent: answers capacity requests with signed offers priced
//! by the market (its base prices, surged by its load), and runs the jobs it
//! is awarded — fetch and decrypt the inputs with the keys sealed to it,
//! run the module in the sandbox, store the outputs encrypted to the poster
//! with three replicas, and put its output digest on the ledger. A run that
//! failed the same way every node's would (out of fuel, a trap, ...) is a
//! result too: its failed-run digest goes on the ledger, without outputs.
//! Any other failure once awarded is withdrawn on the ledger
//! (`WithdrawResult`), so the job need not wait for its deadline.

use std::io::BufReader;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use peercloud_api::ErrorCode;
use peercloud_compute::{RunEnd, RunRequest};
use peercloud_ledger::{JobState, TxKind};
use peercloud_market::{JobAsk, NodeProfile, PricePolicy, evaluate};
use peercloud_net::{PeerId, Protocol};
use peercloud_store::{PutOptions, get_object_with_key, open_sealed_key, put_object};
use peercloud_types::{Decline, Hash32, JobId, JobSpec, Offer, Signed};
use tracing::Instrument;

use super::{Inner, NetStore, now_ms, utilisation_bps};
use crate::wire::{CapacityRequest, Dispatch, Message, RunResult, SealedObject, StoredOutput};

/// How long an offer stays valid.
pub const OFFER_VALID_MS: u64 = 60_000;
/// How long a dispatched node waits for the award to reach its chain.
const AWARD_WAIT: Duration = Duration::from_secs(10);
/// Bytes of stderr a result carries.
const STDERR_BYTES_MAX: usize = 4 << 10;

/// How long a provider waits for a requested job's PostJob block to reach
/// it (the request and the block race through gossip).
const POSTED_JOB_WAIT: Duration = Duration::from_secs(5);

/// Judges a capacity request and sends an offer (or a decline) to its
/// requester, for a job posted on the ledger with this very spec only: a
/// request for a job that does not exist costs a provider no work and sends
/// nothing to the node it names.
pub(crate) async fn on_capacity_request(inner: Arc<Inner>, request: CapacityRequest) {
    if inner.is_validator() || !inner.registered() || now_ms() > request.offers_until_ms {
        return;
    }
    if let Err(why) = posted_with_spec(&inner, &request).await {
        tracing::info!(job = %request.job, %why, "capacity request ignored");
        return;
    }
    let answer = match offer_for(&inner, &request) {
        Ok(offer) => Message::Offer(Signed::new(offer, &inner.node_key)),
        Err(reason) => Message::Decline(Signed::new(
            Decline {
                job: request.job,
                node: inner.node_id(),
                reason,
            },
            &inner.node_key,
        )),
    };
    if request.requester == inner.node_id() {
        // This node collects the offers itself: no network round trip.
        super::requester::on_offer(&inner, answer);
    } else if let Err(e) = inner
        .ask(&request.requester, Protocol::Offer, &answer)
        .await
    {
        tracing::debug!(job = %request.job, %e, "offer not delivered");
    }
}

/// Waits (up to [`POSTED_JOB_WAIT`]) until the request's job is on this
/// node's ledger, then checks it is still open and posted with this spec.
async fn posted_with_spec(inner: &Inner, request: &CapacityRequest) -> Result<(), String> {
    let judged = inner
        .watch_chain(POSTED_JOB_WAIT, || {
            let chain = inner.chain();
            let job = chain.state().job(&request.job)?;
            Some(if job.spec_digest != request.spec.digest() {
                Err("its spec is not the one posted".to_owned())
            } else if job.state != JobState::Posted {
                Err(format!("the job is {:?}, not open", job.state))
            } else {
                Ok(())
            })
        })
        .await;
    judged.unwrap_or_else(|| {
        Err(format!(
            "no such job on the ledger after {} s",
            POSTED_JOB_WAIT.as_secs()
        ))
    })
}

fn offer_for(inner: &Inner, request: &CapacityRequest) -> Result<Offer, String> {
    let spec = &request.spec;
    spec.validate().map_err(|e| format!("bad spec: {e}"))?;
    let reputation = inner
        .chain()
        .state()
        .node(&inner.node_id())
        .map_or(0, |n| n.reputation);
    let total = inner.config.resources;
    let free = peercloud_types::Resources {
        cpu_millicores: total
            .cpu_millicores
            .saturating_sub(inner.reserved_cpu.load(Ordering::Relaxed)),
        memory_bytes: total
            .memory_bytes
            .saturating_sub(inner.reserved_memory.load(Ordering::Relaxed)),
        ..total
    };
    let profile = NodeProfile {
        owner: inner.owner_key.account_id(),
        location: inner.config.location.clone(),
        reputation,
        free,
        utilisation_bps: utilisation_bps(inner),
        policy: PricePolicy::new(inner.config.prices),
    };
    let price = evaluate(&JobAsk::from(spec), &profile).map_err(|d| d.to_string())?;
    Ok(Offer {
        job: request.job,
        node: inner.node_id(),
        price,
        valid_until_ms: now_ms() + OFFER_VALID_MS,
    })
}

/// Holds a job's resources while it runs; gives them back when dropped.
struct Reservation {
    inner: Arc<Inner>,
    cpu: u64,
    memory: u64,
}

impl Reservation {
    fn take(inner: &Arc<Inner>, spec: &JobSpec) -> Reservation {
        let (cpu, memory) = (spec.resources.cpu_millicores, spec.resources.memory_bytes);
        inner.reserved_cpu.fetch_add(cpu, Ordering::Relaxed);
        inner.reserved_memory.fetch_add(memory, Ordering::Relaxed);
        Reservation {
            inner: inner.clone(),
            cpu,
            memory,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.inner
            .reserved_cpu
            .fetch_sub(self.cpu, Ordering::Relaxed);
        self.inner
            .reserved_memory
            .fetch_sub(self.memory, Ordering::Relaxed);
    }
}

/// Runs an awarded job and answers with its result.
pub(crate) async fn on_dispatch(inner: Arc<Inner>, peer: PeerId, dispatch: Dispatch) -> Message {
    let span = tracing::info_span!("dispatch", job = %dispatch.job, %peer);
    match run_dispatch(&inner, dispatch)
        .instrument(span.clone())
        .await
    {
        Ok(result) => Message::Result(result),
        Err((code, message)) => {
            span.in_scope(|| tracing::warn!(%code, %message, "dispatch failed"));
            Message::error(code, message)
        }
    }
}

type Refusal = (ErrorCode, String);

/// A job this node is running; released when the run ends, whatever its outcome.
struct Running<'a> {
    inner: &'a Inner,
    job: JobId,
}

impl<'a> Running<'a> {
    fn claim(inner: &'a Inner, job: JobId) -> Result<Running<'a>, Refusal> {
        #[allow(clippy::expect_used)]
        let mut running = inner.running.lock().expect("running-jobs lock poisoned");
        if !running.insert(job) {
            return Err((
                ErrorCode::NotAwarded,
                format!("job {job} is already running on this node"),
            ));
        }
        Ok(Running { inner, job })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        #[allow(clippy::expect_used)]
        self.inner
            .running
            .lock()
            .expect("running-jobs lock poisoned")
            .remove(&self.job);
    }
}

/// A job's working directory on this node: `input/` and `output/`.
struct WorkDir {
    root: std::path::PathBuf,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
}

impl WorkDir {
    /// A fresh, empty working directory for `job`.
    fn create(inner: &Inner, job: &JobId) -> Result<WorkDir, Refusal> {
        let root = inner
            .config
            .data_dir
            .join("jobs")
            .join(job.to_string().get(..16).unwrap_or("job"));
        let work = WorkDir {
            input: root.join("input"),
            output: root.join("output"),
            root,
        };
        let _ = std::fs::remove_dir_all(&work.root);
        for dir in [&work.input, &work.output] {
            std::fs::create_dir_all(dir)
                .map_err(|e| (ErrorCode::Internal, format!("{}: {e}", dir.display())))?;
        }
        Ok(work)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Whatever the outcome: the decrypted inputs must not stay on disk.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn run_dispatch(inner: &Arc<Inner>, dispatch: Dispatch) -> Result<RunResult, Refusal> {
    let job = dispatch.job;
    let spec = dispatch.spec.clone();
    spec.validate()
        .map_err(|e| (ErrorCode::BadRequest, format!("bad spec: {e}")))?;
    let (poster, deadline_ms) = wait_for_award(inner, &job, &spec).await?;
    // One run per job on this node: a second dispatch (a retry, or anyone
    // replaying the first) neither runs it again nor shares its directory.
    let _running = Running::claim(inner, job)?;
    // Awarded, and this dispatch is the one running it: a failure that is
    // no result (staging, wall time, storing, the host) is withdrawn on the
    // ledger, so the job need not wait for its deadline.
    match run_awarded(inner, dispatch, poster, deadline_ms).await {
        Ok(result) => Ok(result),
        Err(refusal) => {
            if withdraws(refusal.0) {
                withdraw(inner, job, &refusal).await;
            }
            Err(refusal)
        }
    }
}

/// Whether a run refused with `code` is withdrawn on the ledger. Not a
/// failed submit (the result may still land), nor a dispatch this node
/// cannot read (a bad request, keys that do not open): dispatches are not
/// signed by the poster, so a correct one may still follow a broken one.
fn withdraws(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::SubmitFailed | ErrorCode::BadRequest | ErrorCode::BadKey
    )
}

/// Stages, runs and reports an awarded job: outputs stored and the digest
/// on the ledger, or, for a run that failed the same way every node's would,
/// the failed run's digest (no outputs) and how it failed.
async fn run_awarded(
    inner: &Arc<Inner>,
    dispatch: Dispatch,
    poster: peercloud_types::AccountId,
    deadline_ms: u64,
) -> Result<RunResult, Refusal> {
    let job = dispatch.job;
    let spec = dispatch.spec.clone();
    let _reservation = Reservation::take(inner, &spec);
    let work = WorkDir::create(inner, &job)?;
    let store = NetStore::new(inner.clone(), tokio::runtime::Handle::current());

    // staging: the keys sealed to this node open the module and inputs.
    let started = Instant::now();
    let module = {
        let (inner, store, input) = (inner.clone(), store.clone(), work.input.clone());
        blocking(move || stage(&inner, &store, &dispatch, &input)).await??
    };
    let staging_ms = started.elapsed().as_millis() as u64;

    // running: the sandbox, stopped by the deadline at the latest.
    let started = Instant::now();
    let ended = run_module(inner, &spec, module, &work, deadline_ms).await?;
    let running_ms = started.elapsed().as_millis() as u64;

    // storing: outputs encrypted to the poster, three replicas (a failed
    // run has none); digest on the ledger.
    let started = Instant::now();
    let (exit_code, stored, stderr, failure) = match &ended {
        RunEnd::Exited(outcome) => {
            let (files, output) = (outcome.outputs.clone(), work.output.clone());
            let owner = *poster.key();
            let stored = blocking(move || store_outputs(&store, &files, &output, &owner)).await??;
            let mut stderr = outcome.stderr.clone();
            stderr.truncate(STDERR_BYTES_MAX);
            (outcome.exit_code, stored, stderr, None)
        }
        RunEnd::Failed(failed) => {
            // The end of stderr, where a panic message is.
            let from = failed.stderr.len().saturating_sub(STDERR_BYTES_MAX);
            let stderr = failed.stderr.get(from..).unwrap_or_default().to_vec();
            (0, Vec::new(), stderr, Some(failed.message()))
        }
    };
    let digest = reported_digest(ended.output_digest());
    let fuel = ended.fuel_consumed();
    let kind = TxKind::SubmitResult {
        job,
        output_digest: digest,
        fuel_used: fuel,
    };
    inner
        .sign_and_submit(&inner.node_key, kind, true)
        .await
        .map_err(|e| (ErrorCode::SubmitFailed, e.to_string()))?;
    let storing_ms = started.elapsed().as_millis() as u64;
    Ok(RunResult {
        job,
        exit_code,
        digest,
        fuel,
        outputs: stored,
        stderr,
        staging_ms,
        running_ms,
        storing_ms,
        failure,
    })
}

/// Tells the ledger this node will not deliver `job` (`WithdrawResult`,
/// signed by the node key, the fee paid by its owner). Not withdrawing is
/// only logged: the refusal is answered either way, and the job still ends
/// at its deadline.
async fn withdraw(inner: &Inner, job: JobId, why: &Refusal) {
    let (code, reason) = why;
    match inner
        .sign_and_submit(&inner.node_key, TxKind::WithdrawResult { job }, true)
        .await
    {
        Ok(_) => tracing::info!(%job, %code, %reason, "withdrew from the job"),
        Err(e) => tracing::warn!(%job, %code, %reason, %e, "could not withdraw from the job"),
    }
}

/// Fetches, verifies and decrypts the module (returned) and the inputs
/// (written into `input_dir`) with the keys sealed to this node. Each input
/// object is one file at its path under `/input`: a file input's name, or
/// `name/sub/file` for a file of a directory input. The paths are checked
/// against the spec first (relative, no `.`-prefixed or empty components,
/// bounded depth and length, under one of the spec's inputs, no clashes),
/// and the directories they need are created.
fn stage(
    inner: &Inner,
    store: &NetStore,
    dispatch: &Dispatch,
    input_dir: &std::path::Path,
) -> Result<Vec<u8>, Refusal> {
    let secret = inner.node_key.x25519_secret();
    let open = |object: &SealedObject| {
        open_sealed_key(&object.sealed_key, &secret).map_err(|e| {
            (
                ErrorCode::BadKey,
                format!("the key for {} does not open: {e}", object.name),
            )
        })
    };
    let module = &dispatch.module;
    let mut module_bytes = Vec::new();
    get_object_with_key(store, &module.cid, &open(module)?, &mut module_bytes).map_err(|e| {
        (
            ErrorCode::StagingFailed,
            format!("module {}: {e}", module.cid),
        )
    })?;
    let paths = dispatch.inputs.iter().map(|input| input.name.as_str());
    peercloud_types::job::check_staged_paths(&dispatch.spec, paths)
        .map_err(|e| (ErrorCode::BadRequest, format!("bad dispatch: {e}")))?;
    for input in &dispatch.inputs {
        let path = input_dir.join(&input.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| (ErrorCode::Internal, format!("{}: {e}", parent.display())))?;
        }
        let file = std::fs::File::create_new(&path)
            .map_err(|e| (ErrorCode::Internal, format!("{}: {e}", path.display())))?;
        get_object_with_key(
            store,
            &input.cid,
            &open(input)?,
            std::io::BufWriter::new(file),
        )
        .map_err(|e| {
            (
                ErrorCode::StagingFailed,
                format!("input {}: {e}", input.name),
            )
        })?;
    }
    Ok(module_bytes)
}

/// Runs the module in the sandbox; a result after the deadline would be
/// refused, so the run stops by then. A failure every node reproduces (out
/// of fuel, a trap, ...) is a result; any other is refused.
async fn run_module(
    inner: &Inner,
    spec: &JobSpec,
    module: Vec<u8>,
    work: &WorkDir,
    deadline_ms: u64,
) -> Result<RunEnd, Refusal> {
    let mut request =
        RunRequest::for_job(spec, module, Some(work.input.clone()), work.output.clone());
    // On the grid the spec's module CID names the stored object (its
    // manifest), whose pipeline has already verified every byte read.
    request.module_cid = None;
    let left_ms = deadline_ms.saturating_sub(now_ms());
    request.limits.wall_time_ms = request.limits.wall_time_ms.min(left_ms.max(1));
    let executor = inner.executor.clone();
    blocking(move || executor.run_to_end(&request))
        .await?
        .map_err(|e| (ErrorCode::RunFailed, e.to_string()))
}

/// Stores each output file encrypted to `owner` (three replicas).
fn store_outputs(
    store: &NetStore,
    files: &[peercloud_compute::OutputFile],
    output_dir: &std::path::Path,
    owner: &peercloud_types::PublicKey,
) -> Result<Vec<StoredOutput>, Refusal> {
    let mut stored = Vec::with_capacity(files.len());
    for file in files {
        let path = output_dir.join(&file.path);
        let reader = std::fs::File::open(&path)
            .map_err(|e| (ErrorCode::Internal, format!("{}: {e}", path.display())))?;
        let options = PutOptions {
            name: Some(file.path.clone()),
            ..PutOptions::default()
        };
        let receipt = put_object(store, BufReader::new(reader), owner, &options)
            .map_err(|e| (ErrorCode::StoreFailed, format!("output {}: {e}", file.path)))?;
        stored.push(StoredOutput {
            path: file.path.clone(),
            size: file.size,
            blake3: file.blake3,
            cid: receipt.manifest_cid,
        });
    }
    Ok(stored)
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| (ErrorCode::Internal, format!("worker thread: {e}")))
}

/// Waits until the chain shows `job` awarded to this node for this spec;
/// returns its poster and deadline.
async fn wait_for_award(
    inner: &Inner,
    job: &JobId,
    spec: &JobSpec,
) -> Result<(peercloud_types::AccountId, u64), Refusal> {
    inner
        .watch_chain(AWARD_WAIT, || award_for(inner, job, spec))
        .await
        .unwrap_or_else(|| {
            Err((
                ErrorCode::NotAwarded,
                format!("job {job} has no award for this node on the ledger"),
            ))
        })
}

/// What the chain says now of running `job` on this node: its poster and
/// deadline when awarded here and not yet answered, a refusal, or `None`
/// while the job is still posted (its award may be on its way).
fn award_for(
    inner: &Inner,
    job: &JobId,
    spec: &JobSpec,
) -> Option<Result<(peercloud_types::AccountId, u64), Refusal>> {
    let Some(record) = inner.chain().state().job(job).cloned() else {
        // The job is posted long before its award (the offer window lies
        // between): a dispatch for a job the ledger does not know is
        // refused at once rather than waited on.
        return Some(Err((
            ErrorCode::NotFound,
            format!("no job {job} on this node's ledger"),
        )));
    };
    let refuse = |reason: String| Some(Err((ErrorCode::NotAwarded, reason)));
    if record.spec_digest != spec.digest() {
        return Some(Err((
            ErrorCode::BadRequest,
            format!("the spec sent does not match job {job}'s posted digest"),
        )));
    }
    if record.state.is_closed() {
        return refuse(format!("job {job} is {}", record.state));
    }
    if record.state != JobState::Awarded {
        return None;
    }
    match record.awards.iter().find(|a| a.node == inner.node_id()) {
        Some(award) if award.result.is_some() => refuse(format!(
            "this node already reported its result for job {job}"
        )),
        Some(award) if award.withdrawn => refuse(format!("this node withdrew from job {job}")),
        Some(_) => Some(Ok((record.poster, record.deadline_ms))),
        None => refuse(format!("job {job} is not awarded to this node")),
    }
}

/// The digest this node reports. In builds with the `faults` feature,
/// `PEERCLOUD_FAULT=wrong-digest` makes it lie (to test that lying is outvoted
/// and slashed); release builds have no such switch.
fn reported_digest(digest: Hash32) -> Hash32 {
    #[cfg(feature = "faults")]
    if std::env::var("PEERCLOUD_FAULT").as_deref() == Ok("wrong-digest") {
        tracing::warn!("fault switch: reporting a wrong digest");
        let mut bytes = b"wrong ".to_vec();
        bytes.extend_from_slice(digest.as_bytes());
        return Hash32::of(&bytes);
    }
    digest
}

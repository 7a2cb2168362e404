//! The run-once job flow on a [`LocalGrid`], phase by phase:
//! queued → matched → staging → running → verifying → settled.
//!
//! Each phase does what its name says with the real parts: inputs stored
//! encrypted on three nodes, a `PostJob` locking escrow, offers priced by each
//! provider and ranked by the auction, an `AwardJob` binding k of them, the
//! object keys sealed to the awarded nodes only, k sandboxed runs, outputs
//! stored encrypted to the user, `SubmitResult`s compared by `SettleJob`, and
//! the user reading back and verifying the outputs.

use std::time::{Duration, Instant};

use peercloud_compute::{OutputFile, RunOutcome, RunRequest};
use peercloud_ledger::{Event, TxKind};
use peercloud_market::{Candidate, JobAsk, NodeProfile, SelectionError, evaluate, select};
use peercloud_store::{
    ObjectKey, PutOptions, get_object, get_object_with_key, open_sealed_key, put_object,
    seal_key_to,
};
use peercloud_types::{Amount, ContentId, Hash32, JobId, JobSpec, NodeId, Offer, Signed};

use crate::grid::{GridError, LOAD_DECAY_BPS, LOAD_PER_AWARD_BPS, LocalGrid, now_ms};

/// How long a provider's offer stays valid.
pub const OFFER_VALID_MS: u64 = 60_000;
/// Most bytes of one output file the user downloads into memory here.
pub const OUTPUT_BYTES_MAX: u64 = 256 << 20;

/// The phases of a job, in order.
pub const PHASES: [&str; 6] = [
    "queued",
    "matched",
    "staging",
    "running",
    "verifying",
    "settled",
];

/// What happened to one job.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id on the ledger.
    pub job: JobId,
    /// The spec's name.
    pub name: String,
    /// Time spent in each phase, in [`PHASES`] order.
    pub phases: Vec<(&'static str, Duration)>,
    /// The awarded nodes.
    pub nodes: Vec<NodeId>,
    /// Payments made by the settlement.
    pub paid: Vec<(NodeId, Amount)>,
    /// Escrow returned to the user.
    pub refunded: Amount,
    /// The agreed output digest.
    pub digest: Hash32,
    /// Fuel the module burned.
    pub fuel: u64,
    /// The outputs, downloaded, verified and decrypted by the user.
    pub outputs: Vec<(String, Vec<u8>)>,
}

/// Extra failure modes of the flow.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The grid failed.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// Not enough providers offered.
    #[error("job {name:?}: {source}")]
    NoMatch {
        /// The job's name.
        name: String,
        /// What the auction saw.
        source: SelectionError,
    },
    /// The sandbox refused or stopped the run on a provider.
    #[error("job {name:?} on {node}: {source}")]
    Run {
        /// The job's name.
        name: String,
        /// The provider.
        node: NodeId,
        /// Why.
        source: Box<peercloud_compute::ComputeError>,
    },
    /// The module exited with an error code.
    #[error("job {name:?}: the module exited with code {code}: {stderr}")]
    Exit {
        /// The job's name.
        name: String,
        /// Its exit code.
        code: i32,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The settlement paid nobody: the providers did not agree.
    #[error("job {name:?}: no majority among the providers' results; escrow refunded")]
    NoMajority {
        /// The job's name.
        name: String,
    },
    /// A downloaded output did not match what the provider reported.
    #[error("job {name:?}: output {file} does not match the digest the providers agreed on")]
    OutputMismatch {
        /// The job's name.
        name: String,
        /// The file.
        file: String,
    },
}

impl From<peercloud_store::StoreError> for FlowError {
    fn from(e: peercloud_store::StoreError) -> Self {
        FlowError::Grid(GridError::Store(e))
    }
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FlowError + '_ {
    move |source| {
        FlowError::Grid(GridError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

struct Staged {
    name: String,
    cid: ContentId,
    key: ObjectKey,
}

struct Run {
    node: NodeId,
    outcome: RunOutcome,
    stored: Vec<(OutputFile, ContentId)>,
}

impl LocalGrid {
    /// Runs `spec` with `module` and `inputs` (name, bytes) through the whole flow.
    pub fn run_job(
        &mut self,
        spec: &JobSpec,
        module: &[u8],
        inputs: &[(String, Vec<u8>)],
    ) -> Result<JobReport, FlowError> {
        let name = spec.name.clone();
        let mut phases = Vec::with_capacity(PHASES.len());
        let mut clock = Instant::now();
        let mut lap = |phase: &'static str, phases: &mut Vec<(&'static str, Duration)>| {
            phases.push((phase, clock.elapsed()));
            clock = Instant::now();
        };

        // queued: module and inputs stored encrypted (3 replicas); escrow locked.
        let user_key = self.user.public();
        let mut staged = Vec::with_capacity(inputs.len() + 1);
        let put = |grid: &LocalGrid, name: &str, bytes: &[u8]| -> Result<Staged, FlowError> {
            let options = PutOptions {
                name: Some(name.to_owned()),
                ..PutOptions::default()
            };
            let receipt = put_object(grid.store(), bytes, &user_key, &options)?;
            Ok(Staged {
                name: name.to_owned(),
                cid: receipt.manifest_cid,
                key: receipt.key,
            })
        };
        let module_staged = put(self, "job.wasm", module)?;
        for (input_name, bytes) in inputs {
            staged.push(put(self, input_name, bytes)?);
        }
        let deadline_ms = now_ms() + spec.deadline_secs * 1_000;
        let user = self.user.clone();
        self.submit(
            format!("post {name}"),
            &user,
            TxKind::PostJob {
                spec_digest: spec.digest(),
                redundancy: spec.redundancy,
                max_price_per_node: spec.max_price,
                deadline_ms,
            },
        );
        let events = self.seal_block()?;
        let job = events
            .iter()
            .find_map(|e| match e {
                Event::JobPosted { job, .. } => Some(*job),
                _ => None,
            })
            .ok_or_else(|| FlowError::NoMajority { name: name.clone() })?;
        lap(PHASES[0], &mut phases);

        // matched: every provider judges the ask; the auction picks k.
        for p in &mut self.providers {
            p.load_bps = p.load_bps.saturating_sub(LOAD_DECAY_BPS);
        }
        let ask = JobAsk::from(spec);
        let now = now_ms();
        let mut candidates = Vec::new();
        for p in &self.providers {
            let reputation = self
                .state()
                .node(&p.node.node_id())
                .map_or(0, |n| n.reputation);
            let profile = NodeProfile {
                owner: p.owner.account_id(),
                location: p.location.clone(),
                reputation,
                free: p.free,
                utilisation_bps: p.load_bps,
                policy: p.policy,
            };
            match evaluate(&ask, &profile) {
                Ok(price) => {
                    let offer = Offer {
                        job,
                        node: p.node.node_id(),
                        price,
                        valid_until_ms: now + OFFER_VALID_MS,
                    };
                    candidates.push(Candidate {
                        offer: Signed::new(offer, &p.node),
                        reputation,
                    });
                }
                Err(why) => tracing::info!(node = %p.node.node_id(), %why, "declined"),
            }
        }
        let chosen = select(
            &candidates,
            usize::from(spec.redundancy),
            spec.max_price,
            now,
        )
        .map_err(|source| FlowError::NoMatch {
            name: name.clone(),
            source,
        })?;
        let nodes: Vec<NodeId> = chosen.iter().map(|c| c.offer.body.node).collect();
        let offers = chosen.into_iter().map(|c| c.offer).collect();
        for p in &mut self.providers {
            if nodes.contains(&p.node.node_id()) {
                p.load_bps = (p.load_bps + LOAD_PER_AWARD_BPS).min(10_000);
            }
        }
        self.submit(
            format!("award {name}"),
            &user,
            TxKind::AwardJob { job, offers },
        );
        self.seal_block()?;
        lap(PHASES[1], &mut phases);

        // staging: keys sealed to the awarded nodes only; each fetches and verifies.
        let mut workspaces = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let p = self.provider(node);
            let x25519 = node.key().x25519().ok_or(GridError::Store(
                peercloud_store::StoreError::InvalidOwnerKey { owner: *node.key() },
            ))?;
            let dir = p.work_dir.join(format!("job-{}", &job.to_string()[..16]));
            let (input_dir, output_dir) = (dir.join("input"), dir.join("output"));
            for d in [&input_dir, &output_dir] {
                std::fs::create_dir_all(d).map_err(io_err(d))?;
            }
            let secret = p.node.x25519_secret();
            let open = |s: &Staged| -> Result<ObjectKey, FlowError> {
                let sealing = |source| peercloud_store::StoreError::Sealing { source };
                let sealed = seal_key_to(&s.key, &x25519).map_err(sealing)?;
                Ok(open_sealed_key(&sealed, &secret).map_err(sealing)?)
            };
            let mut module_bytes = Vec::with_capacity(module.len());
            get_object_with_key(
                self.store(),
                &module_staged.cid,
                &open(&module_staged)?,
                &mut module_bytes,
            )?;
            for s in &staged {
                let path = input_dir.join(&s.name);
                let file = std::fs::File::create(&path).map_err(io_err(&path))?;
                get_object_with_key(
                    self.store(),
                    &s.cid,
                    &open(s)?,
                    std::io::BufWriter::new(file),
                )?;
            }
            workspaces.push((*node, module_bytes, input_dir, output_dir));
        }
        lap(PHASES[2], &mut phases);

        // running: k independent runs in the sandbox.
        let mut runs = Vec::with_capacity(workspaces.len());
        for (node, module_bytes, input_dir, output_dir) in workspaces {
            let request =
                RunRequest::for_job(spec, module_bytes, Some(input_dir), output_dir.clone());
            let outcome = self
                .executor
                .run(&request)
                .map_err(|source| FlowError::Run {
                    name: name.clone(),
                    node,
                    source: Box::new(source),
                })?;
            if outcome.exit_code != 0 {
                return Err(FlowError::Exit {
                    name,
                    code: outcome.exit_code,
                    stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
                });
            }
            runs.push((node, outcome, output_dir));
        }
        lap(PHASES[3], &mut phases);

        // verifying: outputs stored encrypted to the user; digests on the ledger.
        let mut stored_runs = Vec::with_capacity(runs.len());
        for (node, outcome, output_dir) in runs {
            let mut stored = Vec::with_capacity(outcome.outputs.len());
            for file in &outcome.outputs {
                let path = output_dir.join(&file.path);
                let reader = std::fs::File::open(&path).map_err(io_err(&path))?;
                let options = PutOptions {
                    name: Some(file.path.clone()),
                    ..PutOptions::default()
                };
                let receipt = put_object(
                    self.store(),
                    std::io::BufReader::new(reader),
                    &user_key,
                    &options,
                )?;
                stored.push((file.clone(), receipt.manifest_cid));
            }
            let node_key = self.provider(&node).node.clone();
            self.submit(
                format!("result of {name} from {node}"),
                &node_key,
                TxKind::SubmitResult {
                    job,
                    output_digest: outcome.output_digest,
                    fuel_used: outcome.fuel_consumed,
                },
            );
            stored_runs.push(Run {
                node,
                outcome,
                stored,
            });
        }
        self.seal_block()?;
        self.submit(format!("settle {name}"), &user, TxKind::SettleJob { job });
        let events = self.seal_block()?;
        let mut paid = Vec::new();
        let mut refunded = Amount::ZERO;
        for event in &events {
            match event {
                Event::Paid { node, amount, .. } => paid.push((*node, *amount)),
                Event::Refunded { amount, .. } => {
                    refunded = refunded.checked_add(*amount).unwrap_or(refunded)
                }
                _ => {}
            }
        }
        lap(PHASES[4], &mut phases);

        // settled: the user downloads from a paid node's outputs and checks them.
        let winner = stored_runs
            .iter()
            .find(|r| paid.iter().any(|(n, _)| *n == r.node))
            .ok_or_else(|| FlowError::NoMajority { name: name.clone() })?;
        let secret = self.user.x25519_secret();
        let mut outputs = Vec::with_capacity(winner.stored.len());
        for (file, cid) in &winner.stored {
            let mut bytes = Vec::with_capacity(file.size.min(OUTPUT_BYTES_MAX) as usize);
            get_object(self.store(), cid, &secret, &mut bytes)?;
            if Hash32::of(&bytes) != file.blake3 {
                return Err(FlowError::OutputMismatch {
                    name,
                    file: file.path.clone(),
                });
            }
            outputs.push((file.path.clone(), bytes));
        }
        lap(PHASES[5], &mut phases);
        Ok(JobReport {
            job,
            name,
            phases,
            nodes,
            paid,
            refunded,
            digest: winner.outcome.output_digest,
            fuel: winner.outcome.fuel_consumed,
            outputs,
        })
    }
}

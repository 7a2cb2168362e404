//! What a run is asked to do ([`RunRequest`]) and what it gives back
//! ([`RunOutcome`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use peercloud_types::{ContentId, Hash32, JobSpec, Limits};
use serde::{Deserialize, Serialize};

use crate::outputs::OutputFile;

/// One run of a WASI command module.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The module: WebAssembly binary (or text, for tests and small jobs).
    pub module: Arc<[u8]>,
    /// The module's CID if the caller knows it; the run is refused if the
    /// bytes do not hash to it.
    pub module_cid: Option<ContentId>,
    /// Arguments after the program name (the module sees [`PROGRAM_NAME`] first).
    pub args: Vec<String>,
    /// The module's whole environment.
    pub env: BTreeMap<String, String>,
    /// What the module reads from stdin.
    pub stdin: Vec<u8>,
    /// Host directory mounted read-only at `/input`; `None` mounts nothing.
    pub input_dir: Option<PathBuf>,
    /// Host directory mounted writable at `/output`; must exist and be empty.
    pub output_dir: PathBuf,
    /// Fuel, memory, wall-time and output limits.
    pub limits: Limits,
    /// Seed of the module's clock and random source.
    pub seed: u64,
}

/// The name the module sees as `argv[0]`: fixed, so it is the same on every node.
pub const PROGRAM_NAME: &str = "job.wasm";

impl RunRequest {
    /// A request with no arguments, environment, stdin or inputs, default
    /// limits and seed 0.
    pub fn new(module: impl Into<Arc<[u8]>>, output_dir: impl Into<PathBuf>) -> Self {
        RunRequest {
            module: module.into(),
            module_cid: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: Vec::new(),
            input_dir: None,
            output_dir: output_dir.into(),
            limits: Limits::default(),
            seed: 0,
        }
    }

    /// The request for a job spec: its arguments, environment, limits and
    /// seed, with the module's bytes and the staged input directory (the
    /// spec's inputs, placed by name) given by the caller.
    pub fn for_job(
        spec: &JobSpec,
        module: impl Into<Arc<[u8]>>,
        input_dir: Option<PathBuf>,
        output_dir: impl Into<PathBuf>,
    ) -> Self {
        let module_cid = match &spec.module {
            peercloud_types::job::Source::Cid(cid) => Some(*cid),
            peercloud_types::job::Source::Path(_) => None,
        };
        RunRequest {
            module_cid,
            args: spec.args.clone(),
            env: spec.env.clone(),
            input_dir,
            limits: spec.limits,
            seed: spec.seed,
            ..RunRequest::new(module, output_dir)
        }
    }
}

/// How a run ended, when it ended without a [`crate::ComputeError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The module's exit code: 0 when `_start` returned, else the code given
    /// to `proc_exit`. A nonzero code is an outcome, not an error.
    pub exit_code: i32,
    /// What the module wrote to stdout (at most [`crate::STDOUT_BYTES_MAX`]).
    pub stdout: Vec<u8>,
    /// What the module wrote to stderr (at most [`crate::STDERR_BYTES_MAX`]).
    pub stderr: Vec<u8>,
    /// Fuel the module used.
    pub fuel_consumed: u64,
    /// Files under `/output`, sorted by path.
    pub outputs: Vec<OutputFile>,
    /// [`crate::output_digest`] of the exit code, streams and outputs: equal
    /// on every node that ran the same module on the same inputs and seed.
    pub output_digest: Hash32,
    /// The module's CID.
    pub module_cid: ContentId,
    /// Wall time from instantiation to exit, in milliseconds. Informational:
    /// not part of the digest.
    pub wall_time_ms: u64,
}

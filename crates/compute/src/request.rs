//! What a run is asked to do ([`RunRequest`]) and what it gives back: an
//! outcome ([`RunOutcome`]), or a failure that is itself a result
//! ([`FailedRun`]); [`RunEnd`] is either.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use peercloud_types::{ContentId, Hash32, JobSpec, Limits};
use serde::{Deserialize, Serialize};

use crate::error::{ComputeError, Failure, StderrTail};
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
    /// What the module reads from stdin (when `stdin_input` is `None`).
    pub stdin: Vec<u8>,
    /// The name of a file in `input_dir` the module reads as its stdin,
    /// instead of `stdin` (the spec's `stdin`).
    pub stdin_input: Option<String>,
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
            stdin_input: None,
            input_dir: None,
            output_dir: output_dir.into(),
            limits: Limits::default(),
            seed: 0,
        }
    }

    /// The request for a job spec: its arguments, environment, stdin input,
    /// limits and seed, with the module's bytes and the staged input directory (the
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
            stdin_input: spec.stdin.clone(),
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

/// A run that failed in a way every honest node reproduces (see
/// [`Failure`]): a result, like an outcome, whose digest the k nodes agree
/// on. Nothing under `/output` belongs to it.
#[derive(Debug)]
pub struct FailedRun {
    /// How it failed.
    pub failure: Failure,
    /// The error, as [`crate::Executor::run`] returns it.
    pub error: ComputeError,
    /// Fuel the module used up to the failure.
    pub fuel_consumed: u64,
    /// What the module wrote to stdout before failing (at most
    /// [`crate::STDOUT_BYTES_MAX`]).
    pub stdout: Vec<u8>,
    /// What the module wrote to stderr before failing (at most
    /// [`crate::STDERR_BYTES_MAX`]).
    pub stderr: Vec<u8>,
    /// [`crate::failure_digest`] of the failure, fuel and streams.
    pub output_digest: Hash32,
    /// The module's CID.
    pub module_cid: ContentId,
    /// Wall time from instantiation to the failure, in milliseconds.
    /// Informational: not part of the digest.
    pub wall_time_ms: u64,
}

/// Most bytes of [`FailedRun::message`]: the error's first lines and the
/// end of the module's stderr ([`crate::ERROR_STDERR_BYTES_MAX`]) fit, and
/// the message still travels in a node's reply to a dispatch (a trap deep
/// in recursion has a backtrace of thousands of lines).
pub const FAILURE_MESSAGE_BYTES_MAX: usize = 8 << 10;
/// Bytes of a too-long message kept from its start (the error's headline);
/// the rest of [`FAILURE_MESSAGE_BYTES_MAX`] is kept from its end.
const FAILURE_MESSAGE_HEAD_BYTES: usize = 2 << 10;
/// What stands where a too-long message was cut.
const FAILURE_MESSAGE_CUT: &str = "\n[...]\n";

impl FailedRun {
    /// The error's text, with the end of the module's stderr (where a panic
    /// message is) when the error does not already show it; at most
    /// [`FAILURE_MESSAGE_BYTES_MAX`] bytes, cut in the middle.
    pub fn message(&self) -> String {
        let mut text = self.error.to_string();
        if !self.error.shows_stderr() {
            text.push_str(&StderrTail::of(&self.stderr).to_string());
        }
        if text.len() <= FAILURE_MESSAGE_BYTES_MAX {
            return text;
        }
        let head = text.floor_char_boundary(FAILURE_MESSAGE_HEAD_BYTES);
        let tail_bytes =
            FAILURE_MESSAGE_BYTES_MAX - FAILURE_MESSAGE_HEAD_BYTES - FAILURE_MESSAGE_CUT.len();
        let tail = text.ceil_char_boundary(text.len() - tail_bytes);
        format!(
            "{}{FAILURE_MESSAGE_CUT}{}",
            text.get(..head).unwrap_or_default(),
            text.get(tail..).unwrap_or_default()
        )
    }
}

/// How a run ended when it produced a result: the module exited (with any
/// exit code), or it failed the same way every node would.
#[derive(Debug)]
pub enum RunEnd {
    /// The module exited.
    Exited(RunOutcome),
    /// The module failed reproducibly.
    Failed(FailedRun),
}

impl RunEnd {
    /// The digest the nodes compare: the outcome's or the failed run's.
    pub fn output_digest(&self) -> Hash32 {
        match self {
            RunEnd::Exited(outcome) => outcome.output_digest,
            RunEnd::Failed(failed) => failed.output_digest,
        }
    }

    /// Fuel the module used.
    pub fn fuel_consumed(&self) -> u64 {
        match self {
            RunEnd::Exited(outcome) => outcome.fuel_consumed,
            RunEnd::Failed(failed) => failed.fuel_consumed,
        }
    }
}

/// What a run that failed where the module put it left (the sandbox's
/// report to the executor): the streams as captured, the trap if the
/// failure was one, the time it took.
pub(crate) struct Ended {
    /// Stdout as captured.
    pub stdout: Vec<u8>,
    /// Stderr as captured.
    pub stderr: Vec<u8>,
    /// The WebAssembly trap that ended the run, if it was one (not a host
    /// call's error, not instantiation).
    pub trap: Option<wasmtime::Trap>,
    /// Wall time from instantiation to the failure, ms.
    pub wall_time_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(error: ComputeError, stderr: &[u8]) -> FailedRun {
        FailedRun {
            failure: Failure::InvalidModule,
            error,
            fuel_consumed: 0,
            stdout: Vec::new(),
            stderr: stderr.to_vec(),
            output_digest: Hash32::ZERO,
            module_cid: ContentId::of(b"module"),
            wall_time_ms: 0,
        }
    }

    #[test]
    fn a_message_shows_the_stderr_once_and_a_long_one_is_cut_in_the_middle() {
        let short = failed(ComputeError::OutOfFuel { fuel: 5 }, b"panicked: no input\n");
        assert_eq!(
            short.message(),
            "out of fuel: the module used all 5 units of fuel; raise limits.fuel\n\
             --- the module's stderr ---\npanicked: no input"
        );
        let long = failed(
            ComputeError::InvalidModule {
                reason: "é".repeat(10_000),
            },
            b"the last words",
        );
        let message = long.message();
        assert!(
            message.len() <= FAILURE_MESSAGE_BYTES_MAX,
            "{}",
            message.len()
        );
        assert!(message.starts_with("invalid module: é"));
        assert!(message.contains(FAILURE_MESSAGE_CUT));
        assert!(message.ends_with("--- the module's stderr ---\nthe last words"));
    }
}

//! Peercloud's WebAssembly sandbox: runs a WASI (preview 1) command module
//! under hard limits and reports a digest of what it produced that is the
//! same on every node, so k nodes running one job can be compared.
//!
//! - [`executor`]: the [`Executor`] (engine, linker, module cache by CID,
//!   epoch ticker, metrics) and its deterministic engine configuration.
//! - [`sandbox`]: one run: WASI context, limits, how a run ends.
//! - [`determinism`]: the job's virtual clocks, seeded random streams and
//!   `poll_oneoff`, so nothing of the host's time or chance leaks in; and
//!   [`failure_digest`], the digest of a run that failed reproducibly.
//! - [`outputs`]: the `/output` tree: measuring, listing, hashing, emptying,
//!   and [`output_digest`].
//! - [`request`]: [`RunRequest`], [`RunOutcome`], [`FailedRun`] and [`RunEnd`].
//! - [`error`]: [`ComputeError`], one variant per way a run fails, and
//!   [`Failure`], the failures that are a job's result rather than a node's
//!   fault ([`Executor::run_to_end`] answers them with a [`FailedRun`]).
//!
//! The sandbox knows nothing of the network: it reads a module and an input
//! directory, writes an output directory, and returns.

mod cache;
pub mod determinism;
pub mod error;
pub mod executor;
pub mod local;
mod metrics;
pub mod outputs;
pub mod request;
pub mod sandbox;
mod ticker;

pub use determinism::{CLOCK_START_SECS, CLOCK_STEP_NS, failure_digest};
pub use error::{ComputeError, ERROR_STDERR_BYTES_MAX, Failure, StderrTail};
pub use executor::{
    CONCURRENT_RUNS_MAX, EPOCH_TICK_MS, Executor, ExecutorConfig, MODULE_BYTES_MAX,
    MODULE_CACHE_ENTRIES, WASM_STACK_BYTES_MAX,
};
pub use local::{LocalRun, LocalRunError, run_local};
pub use metrics::ComputeMetrics;
pub use outputs::{OUTPUT_FILES_MAX, OutputFile, output_digest};
pub use peercloud_types::Limits;
pub use request::{
    FAILURE_MESSAGE_BYTES_MAX, FailedRun, PROGRAM_NAME, RunEnd, RunOutcome, RunRequest,
};
pub use sandbox::{STDERR_BYTES_MAX, STDOUT_BYTES_MAX};

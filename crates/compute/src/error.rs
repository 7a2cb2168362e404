//! Why a run ended without an outcome. Each variant is one way a job can
//! fail, named so the node can bill, retry or report it without parsing
//! messages; a module that *exits* with a nonzero code is not an error (see
//! [`crate::RunOutcome::exit_code`]).

use std::path::PathBuf;

use peercloud_types::ContentId;

/// A run was refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The bytes are not a WebAssembly module this sandbox can run.
    #[error("invalid module: {reason}")]
    InvalidModule {
        /// What is wrong with it.
        reason: String,
    },
    /// The request named a module CID that its bytes do not hash to.
    #[error("module bytes hash to {actual}, the request names {expected}")]
    ModuleCidMismatch {
        /// The CID the request gave.
        expected: ContentId,
        /// The CID of the bytes.
        actual: ContentId,
    },
    /// The module used all its fuel (about one unit per instruction).
    #[error("out of fuel: the module used all {fuel} units of fuel; raise limits.fuel")]
    OutOfFuel {
        /// The fuel the job was given.
        fuel: u64,
    },
    /// The module asked for more linear memory than its limit.
    #[error(
        "memory limit: the module asked for {requested_bytes} bytes of memory, \
         the limit is {limit_bytes}; raise limits.memory_bytes"
    )]
    MemoryLimit {
        /// Size the memory would have grown to.
        requested_bytes: u64,
        /// `limits.memory_bytes`.
        limit_bytes: u64,
    },
    /// The module ran longer than its wall-clock limit.
    #[error("wall time exceeded: the module ran past its {wall_time_ms} ms limit")]
    WallTimeExceeded {
        /// `limits.wall_time_ms`.
        wall_time_ms: u64,
    },
    /// The module wrote more under `/output` than its limit; the output
    /// directory has been emptied.
    #[error(
        "output too large: the module wrote at least {written_bytes} bytes under /output, \
         the limit is {limit_bytes}; the output was discarded"
    )]
    OutputTooLarge {
        /// Bytes found under `/output` when the run was stopped.
        written_bytes: u64,
        /// `limits.output_bytes`.
        limit_bytes: u64,
    },
    /// The module created more files under `/output` than any job may; the
    /// output directory has been emptied.
    #[error("too many outputs: the module created more than {files_max} entries under /output")]
    OutputTooManyFiles {
        /// [`crate::OUTPUT_FILES_MAX`].
        files_max: usize,
    },
    /// Something under `/output` is not a regular file or directory (a
    /// symbolic link, for one); the output directory has been emptied.
    #[error("invalid output {path:?}: {reason}; the output was discarded")]
    OutputInvalid {
        /// Path relative to `/output`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The module trapped (`unreachable`, out-of-bounds access, stack
    /// overflow, a Rust panic under `panic = "abort"`, ...).
    #[error("trap: {message}")]
    Trap {
        /// The trap and where it happened.
        message: String,
    },
    /// Every run slot of the executor is taken.
    #[error("busy: all {concurrent_runs_max} run slots are taken; retry later")]
    Busy {
        /// [`crate::ExecutorConfig::concurrent_runs_max`].
        concurrent_runs_max: usize,
    },
    /// A host directory the run needs is missing or unusable.
    #[error("{role} directory {path}: {reason}")]
    Directory {
        /// `"input"` or `"output"`.
        role: &'static str,
        /// The host path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The host failed at something the run needs (reading outputs, setting up WASI).
    #[error("host error: cannot {action} {path}: {reason}")]
    Host {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's error.
        reason: String,
    },
    /// The sandbox could not be set up (a bug or an unsupported host).
    #[error("sandbox setup failed: {reason}")]
    Setup {
        /// What failed.
        reason: String,
    },
}

//! Why a run ended without an outcome. Each variant is one way a job can
//! fail, named so the node can bill, retry or report it without parsing
//! messages; a module that *exits* with a nonzero code is not an error (see
//! [`crate::RunOutcome::exit_code`]).

use std::fmt;
use std::path::PathBuf;

use peercloud_types::ContentId;

/// Most bytes of a module's stderr an error keeps, from its end (where a
/// panic message is): a panic message and the lines before it, and no more
/// than a node's result carries, so the error can travel in a node's reply.
pub const ERROR_STDERR_BYTES_MAX: usize = 4 << 10;

/// The end of what a module wrote to stderr, kept in the error of a run that
/// did not finish, so whoever reads the error sees why the program died.
/// Control characters other than newline and tab are escaped (`\u{1b}`): a
/// module cannot colour or rewrite the terminal that shows the error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StderrTail {
    /// At most [`ERROR_STDERR_BYTES_MAX`] bytes of text (invalid UTF-8 replaced).
    pub text: String,
    /// Whether the start of stderr was left out.
    pub cut: bool,
}

impl StderrTail {
    /// The last [`ERROR_STDERR_BYTES_MAX`] bytes of `stderr`, escaped.
    pub fn of(stderr: &[u8]) -> StderrTail {
        let mut start = stderr.len().saturating_sub(ERROR_STDERR_BYTES_MAX);
        if start > 0 {
            // Start at a character, not inside one (a UTF-8 sequence has at
            // most three continuation bytes).
            start += stderr
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take(3)
                .take_while(|b| **b & 0xC0 == 0x80)
                .count();
        }
        let text = String::from_utf8_lossy(stderr.get(start..).unwrap_or_default());
        let escaped = |c: char| c.is_control() && c != '\n' && c != '\t';
        // Escaping lengthens the text: keep the last characters that fit.
        let mut kept = Vec::new();
        let mut bytes = 0usize;
        let mut cut = start > 0;
        for c in text.chars().rev() {
            let width = if escaped(c) {
                c.escape_default().len()
            } else {
                c.len_utf8()
            };
            if bytes + width > ERROR_STDERR_BYTES_MAX {
                cut = true;
                break;
            }
            bytes += width;
            kept.push(c);
        }
        let mut text = String::with_capacity(bytes);
        for c in kept.into_iter().rev() {
            if escaped(c) {
                text.extend(c.escape_default());
            } else {
                text.push(c);
            }
        }
        StderrTail { text, cut }
    }
}

/// Nothing when the module wrote nothing to stderr; otherwise a section on
/// lines of its own, after the error's own text.
impl fmt::Display for StderrTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            return Ok(());
        }
        let which = if self.cut {
            "the end of the module's stderr"
        } else {
            "the module's stderr"
        };
        write!(f, "\n--- {which} ---\n{}", self.text.trim_end_matches('\n'))
    }
}

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
    /// The module wrote more in its scratch (working) directory than its
    /// limit; the directory is removed with the run, as always.
    #[error(
        "scratch too large: the module wrote at least {written_bytes} bytes in its scratch \
         (working) directory, the limit is {limit_bytes}; raise limits.scratch_bytes"
    )]
    ScratchTooLarge {
        /// Bytes found in the scratch directory when the run was stopped.
        written_bytes: u64,
        /// `limits.scratch_bytes`.
        limit_bytes: u64,
    },
    /// The module created more entries in its scratch directory than any
    /// job may.
    #[error(
        "too many scratch files: the module created more than {files_max} entries \
         in its scratch (working) directory"
    )]
    ScratchTooManyFiles {
        /// [`crate::outputs::SCRATCH_FILES_MAX`].
        files_max: usize,
    },
    /// The input the spec's `stdin` names cannot be the module's stdin.
    #[error("stdin: the input {name:?} {reason}; `stdin` names a file among the inputs")]
    StdinInput {
        /// The input's name (a file in `/input`).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The module trapped (`unreachable`, out-of-bounds access, stack
    /// overflow, a Rust panic under `panic = "abort"`, ...).
    #[error("trap: {message}{stderr}")]
    Trap {
        /// The trap and where it happened.
        message: String,
        /// The end of what the module wrote to stderr (a panic message, say).
        stderr: StderrTail,
    },
    /// The module filled stdout or stderr up to the bytes the sandbox keeps
    /// ([`crate::STDOUT_BYTES_MAX`], [`crate::STDERR_BYTES_MAX`]), where its
    /// writes fail, and then trapped: a Rust program's `println!` panics
    /// when a write fails.
    #[error(
        "{stream} hit its {limit_bytes}-byte cap (writes past it fail) \
         and the module then trapped: {trap}{stderr}"
    )]
    StreamFull {
        /// `"stdout"` or `"stderr"`.
        stream: &'static str,
        /// The bytes of it the sandbox keeps.
        limit_bytes: usize,
        /// The trap that ended the run.
        trap: String,
        /// The end of what the module wrote to stderr.
        stderr: StderrTail,
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
        /// `"input"`, `"output"` or `"scratch"`.
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

/// The ways a run can fail that are a result of the job rather than of the
/// node: every honest node that runs the same module on the same inputs and
/// seed fails the same way, after the same fuel, having captured the same
/// streams, so the k nodes agree on the failed run's digest
/// ([`crate::failure_digest`]) and are paid for the work. Failures of the
/// host or of timing (wall time, a busy executor, directories, setup, host
/// I/O) are none of these: they are the node's, not the job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The bytes are not a WASI command this sandbox runs.
    InvalidModule,
    /// The fuel ran out (fuel metering counts the same work on every node).
    OutOfFuel,
    /// The module asked for more memory than its limit.
    MemoryLimit,
    /// The module trapped.
    Trap,
    /// A captured stream filled up and the module then trapped.
    StreamFull,
    /// The module left more under `/output` than its limit.
    OutputTooLarge,
    /// The module left too many entries under `/output`.
    OutputTooManyFiles,
    /// The module left something under `/output` that is no regular file.
    OutputInvalid,
    /// The module left more in its scratch directory than its limit.
    ScratchTooLarge,
    /// The module left too many entries in its scratch directory.
    ScratchTooManyFiles,
}

impl Failure {
    /// The byte [`crate::failure_digest`] commits to. Part of the protocol:
    /// a code is never renumbered or reused.
    pub const fn code(self) -> u8 {
        match self {
            Failure::InvalidModule => 1,
            Failure::OutOfFuel => 2,
            Failure::MemoryLimit => 3,
            Failure::Trap => 4,
            Failure::StreamFull => 5,
            Failure::OutputTooLarge => 6,
            Failure::OutputTooManyFiles => 7,
            Failure::OutputInvalid => 8,
            Failure::ScratchTooLarge => 9,
            Failure::ScratchTooManyFiles => 10,
        }
    }

    /// A short name, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Failure::InvalidModule => "invalid module",
            Failure::OutOfFuel => "out of fuel",
            Failure::MemoryLimit => "memory limit",
            Failure::Trap => "trap",
            Failure::StreamFull => "stream full",
            Failure::OutputTooLarge => "output too large",
            Failure::OutputTooManyFiles => "too many outputs",
            Failure::OutputInvalid => "invalid output",
            Failure::ScratchTooLarge => "scratch too large",
            Failure::ScratchTooManyFiles => "too many scratch files",
        }
    }
}

impl ComputeError {
    /// The kind of failed-run result an error of this kind is, when the run
    /// failed where the module put it; `None` for the node's own failures
    /// (wall time, busy, directories, setup, host I/O, a module that does
    /// not match its CID, a `stdin` input that is missing).
    ///
    /// The kind alone does not make a result: [`crate::Executor::run_to_end`]
    /// also leaves out a limit the epoch watch found mid-run (its moment,
    /// and so the fuel and streams, is the host clock's), a trap that is a
    /// stack overflow (the depth at which the native stack runs out depends
    /// on the CPU: [`crate::WASM_STACK_BYTES_MAX`]) or a host call failing,
    /// and a memory limit hit because the host could not map memory within
    /// the limit.
    pub fn failure(&self) -> Option<Failure> {
        Some(match self {
            ComputeError::InvalidModule { .. } => Failure::InvalidModule,
            ComputeError::OutOfFuel { .. } => Failure::OutOfFuel,
            ComputeError::MemoryLimit { .. } => Failure::MemoryLimit,
            ComputeError::Trap { .. } => Failure::Trap,
            ComputeError::StreamFull { .. } => Failure::StreamFull,
            ComputeError::OutputTooLarge { .. } => Failure::OutputTooLarge,
            ComputeError::OutputTooManyFiles { .. } => Failure::OutputTooManyFiles,
            ComputeError::OutputInvalid { .. } => Failure::OutputInvalid,
            ComputeError::ScratchTooLarge { .. } => Failure::ScratchTooLarge,
            ComputeError::ScratchTooManyFiles { .. } => Failure::ScratchTooManyFiles,
            ComputeError::ModuleCidMismatch { .. }
            | ComputeError::WallTimeExceeded { .. }
            | ComputeError::StdinInput { .. }
            | ComputeError::Busy { .. }
            | ComputeError::Directory { .. }
            | ComputeError::Host { .. }
            | ComputeError::Setup { .. } => return None,
        })
    }

    /// Whether the error's own text ends with the module's stderr (a trap's
    /// does; a limit's does not).
    pub(crate) fn shows_stderr(&self) -> bool {
        matches!(
            self,
            ComputeError::Trap { .. } | ComputeError::StreamFull { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_stderr_is_kept_whole_and_shown_on_its_own_lines() {
        let tail = StderrTail::of(b"thread 'main' panicked: no input\n");
        assert_eq!(tail.text, "thread 'main' panicked: no input\n");
        assert!(!tail.cut);
        assert_eq!(
            tail.to_string(),
            "\n--- the module's stderr ---\nthread 'main' panicked: no input"
        );
        assert_eq!(StderrTail::of(b"").to_string(), "", "no empty section");
    }

    #[test]
    fn a_long_stderr_keeps_its_end_whole_characters_and_no_control_codes() {
        // 'é' is two bytes: the cut falls inside one unless it is moved.
        let mut stderr = "é".repeat(ERROR_STDERR_BYTES_MAX).into_bytes();
        stderr.extend_from_slice(b"\x1b[31mdied\x1b[0m\r\n");
        let tail = StderrTail::of(&stderr);
        assert!(tail.cut);
        assert!(tail.text.len() <= ERROR_STDERR_BYTES_MAX);
        assert!(
            tail.text.starts_with('é'),
            "no replacement character at the cut"
        );
        assert!(
            tail.text.ends_with("\\u{1b}[31mdied\\u{1b}[0m\\r\n"),
            "the end is kept, escaped"
        );
        assert!(!tail.text.contains('\x1b'));
        assert!(tail.to_string().contains("the end of the module's stderr"));
    }
}

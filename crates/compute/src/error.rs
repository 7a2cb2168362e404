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

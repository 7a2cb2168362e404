//! Helpers shared by the integration tests: one executor per test, fresh
//! temporary directories per run, and a WAT wrapper for WASI commands.

#![allow(dead_code)]

use std::path::PathBuf;

use peercloud_compute::{ComputeError, Executor, ExecutorConfig, Limits, RunOutcome, RunRequest};
use tempfile::TempDir;

/// Directories of one run; deleted when dropped.
pub struct Dirs {
    pub root: TempDir,
    pub input: PathBuf,
    pub output: PathBuf,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("in");
        let output = root.path().join("out");
        std::fs::create_dir(&input).unwrap();
        std::fs::create_dir(&output).unwrap();
        Dirs {
            root,
            input,
            output,
        }
    }

    pub fn request(&self, module: impl Into<std::sync::Arc<[u8]>>) -> RunRequest {
        let mut request = RunRequest::new(module, &self.output);
        request.input_dir = Some(self.input.clone());
        request
    }
}

pub fn executor() -> Executor {
    Executor::new(ExecutorConfig::default()).unwrap()
}

/// Small limits for tests: a runaway module ends quickly.
pub fn small_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        memory_bytes: 16 << 20,
        wall_time_ms: 10_000,
        output_bytes: 1 << 20,
        scratch_bytes: 1 << 20,
    }
}

/// A WASI command whose `_start` is `body`, with one page of memory and the
/// WASI imports the tests use declared.
pub fn command(body: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  {extra}
  (func (export "_start") {body}))"#
    )
    .into_bytes()
}

pub fn run(executor: &Executor, request: &RunRequest) -> Result<RunOutcome, ComputeError> {
    executor.run(request)
}

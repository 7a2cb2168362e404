//! The [`Executor`]: the long-lived owner of the wasmtime engine, the WASI
//! linker, the compiled-module cache, the epoch ticker and the counters.
//! One per node; share it (`Arc<Executor>`) between the threads that run
//! jobs. [`Executor::run`] blocks for the length of the job: from async
//! code, call it inside `spawn_blocking`.
//!
//! The engine is configured for determinism, so that k nodes running the
//! same job agree on its output digest: fuel metering (a count of work that
//! is the same everywhere), NaN canonicalisation, deterministic relaxed
//! SIMD, no threads. Epoch interruption gives the wall-clock limit.
//! Instances come from a pooling allocator sized for
//! [`ExecutorConfig::concurrent_runs_max`] runs: a cached module starts in
//! microseconds.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use peercloud_types::ContentId;
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module, OptLevel,
    PoolingAllocationConfig, Trap, WasmBacktraceDetails,
};

use crate::cache::ModuleCache;
use crate::determinism::failure_digest;
use crate::error::ComputeError;
use crate::metrics::{ComputeMetrics, Counter, Counters};
use crate::request::{Ended, FailedRun, RunEnd, RunOutcome, RunRequest};
use crate::sandbox::{self, MEMORIES_MAX, RunState, TABLE_ELEMENTS_MAX, TABLES_MAX};
use crate::ticker::Ticker;

/// Period of the epoch ticker, in milliseconds: the granularity of the
/// wall-time and output-size checks. Each tick costs every running module a
/// callback (and a walk of its `/output`), so not much finer than this.
pub const EPOCH_TICK_MS: u64 = 10;
/// Compiled modules kept by default. A compiled module of a few hundred KiB
/// of wasm takes a few MiB of host memory.
pub const MODULE_CACHE_ENTRIES: usize = 64;
/// Runs at once by default. The machines this targets have two cores, and
/// each run slot reserves address space (not memory) for a 4 GiB heap.
pub const CONCURRENT_RUNS_MAX: usize = 4;
/// Largest module accepted, in bytes (the job spec's bound).
pub const MODULE_BYTES_MAX: usize = peercloud_types::job::MODULE_BYTES_MAX;
/// Native stack a module may use, in bytes (wasmtime's default, stated so
/// it is a decision): deep recursion past it is a stack-overflow trap. The
/// depth at which that happens depends on the compiled frame sizes, so it
/// can differ between CPU architectures: the one trap that is not
/// guaranteed to be identical on every node.
pub const WASM_STACK_BYTES_MAX: usize = 512 << 10;
/// The magic number every WebAssembly binary starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// How an [`Executor`] is set up. None of these change what a job computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Compiled modules kept in memory.
    pub module_cache_entries: usize,
    /// Runs allowed at once; more are refused with [`ComputeError::Busy`].
    pub concurrent_runs_max: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            module_cache_entries: MODULE_CACHE_ENTRIES,
            concurrent_runs_max: CONCURRENT_RUNS_MAX,
        }
    }
}

/// Runs WASI command modules in the sandbox; see the module documentation.
pub struct Executor {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Mutex<ModuleCache<InstancePre<RunState>>>,
    counters: Counters,
    running: AtomicUsize,
    config: ExecutorConfig,
    _ticker: Ticker,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("config", &self.config)
            .field("running", &self.running.load(Ordering::Relaxed))
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// Holds one run slot; gives it back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Executor {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: ExecutorConfig) -> Result<Executor, ComputeError> {
        let setup = |what: &str, e: wasmtime::Error| ComputeError::Setup {
            reason: format!("{what}: {}", sandbox::describe(&e)),
        };
        let engine = Engine::new(&engine_config(&config)).map_err(|e| setup("engine", e))?;
        let mut linker = Linker::new(&engine);
        sandbox::add_to_linker(&mut linker).map_err(|e| setup("WASI linker", e))?;
        let ticker =
            Ticker::start(engine.clone(), Duration::from_millis(EPOCH_TICK_MS)).map_err(|e| {
                ComputeError::Setup {
                    reason: format!("epoch ticker thread: {e}"),
                }
            })?;
        Ok(Executor {
            engine,
            linker,
            cache: Mutex::new(ModuleCache::new(config.module_cache_entries)),
            counters: Counters::default(),
            running: AtomicUsize::new(0),
            config,
            _ticker: ticker,
        })
    }

    /// The counters since this executor was created.
    pub fn metrics(&self) -> ComputeMetrics {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        self.counters.snapshot(cached)
    }

    /// Compiles `module` into the cache (if it is not there) without running
    /// it, so a node can compile while a job's inputs are still staging.
    /// Returns the module's CID.
    pub fn prepare(&self, module: &[u8]) -> Result<ContentId, ComputeError> {
        let cid = ContentId::of(module);
        self.prepared(cid, module)?;
        Ok(cid)
    }

    /// Runs `request`'s module to completion. Blocks the calling thread.
    ///
    /// An outcome is returned whatever the module's exit code; an error means
    /// the run was refused or stopped (a limit, a trap, a bad module).
    pub fn run(&self, request: &RunRequest) -> Result<RunOutcome, ComputeError> {
        match self.run_to_end(request)? {
            RunEnd::Exited(outcome) => Ok(outcome),
            RunEnd::Failed(failed) => Err(failed.error),
        }
    }

    /// Runs `request`'s module as [`Executor::run`] does, but answers a
    /// failure every honest node reproduces as a result ([`RunEnd::Failed`],
    /// with its digest) rather than an error: a module that runs out of
    /// fuel, hits its memory limit, traps, or leaves outputs over their
    /// limits after it exited, and bytes that are no module. An error is
    /// left for what is the node's or the clock's: wall time, a limit the
    /// epoch watch found mid-run, a stack overflow, busy, directories,
    /// setup, host I/O (see [`ComputeError::failure`]).
    pub fn run_to_end(&self, request: &RunRequest) -> Result<RunEnd, ComputeError> {
        let module_cid = ContentId::of(&request.module);
        let span = tracing::info_span!(
            "compute.run",
            module = %module_cid,
            seed = request.seed,
            fuel = request.limits.fuel,
        );
        let _entered = span.enter();
        let result = self.run_inner(request, module_cid);
        match &result {
            Ok(RunEnd::Exited(outcome)) => {
                self.counters.bump(Counter::RunsCompleted);
                tracing::info!(
                    exit_code = outcome.exit_code,
                    fuel = outcome.fuel_consumed,
                    wall_time_ms = outcome.wall_time_ms,
                    outputs = outcome.outputs.len(),
                    digest = %outcome.output_digest,
                    "run completed"
                );
            }
            Ok(RunEnd::Failed(failed)) => {
                self.counters.bump(Counter::RunsFailed);
                tracing::info!(
                    error = %failed.error,
                    fuel = failed.fuel_consumed,
                    digest = %failed.output_digest,
                    "run failed reproducibly"
                );
            }
            Err(error) => {
                self.counters.bump(Counter::RunsFailed);
                tracing::info!(%error, "run failed");
            }
        }
        result
    }

    fn run_inner(
        &self,
        request: &RunRequest,
        module_cid: ContentId,
    ) -> Result<RunEnd, ComputeError> {
        if let Some(expected) = request.module_cid
            && expected != module_cid
        {
            return Err(ComputeError::ModuleCidMismatch {
                expected,
                actual: module_cid,
            });
        }
        check_directories(request)?;
        let _slot = self.take_slot()?;
        let pre = match self.prepared(module_cid, &request.module) {
            Ok(pre) => pre,
            // The same bytes are refused the same way everywhere, before
            // they ran: no fuel, no streams.
            Err(error @ ComputeError::InvalidModule { .. }) => {
                let ended = Ended {
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    trap: None,
                    wall_time_ms: 0,
                };
                return failed_run(error, Some(ended), 0, module_cid).map(RunEnd::Failed);
            }
            Err(error) => return Err(error),
        };
        let (result, spent) = sandbox::execute(&pre, request, module_cid);
        self.counters.add_fuel(spent.fuel_consumed);
        match result {
            Ok(outcome) => Ok(RunEnd::Exited(outcome)),
            Err(error) => {
                failed_run(error, spent.ended, spent.fuel_consumed, module_cid).map(RunEnd::Failed)
            }
        }
    }

    fn take_slot(&self) -> Result<Slot<'_>, ComputeError> {
        let max = self.config.concurrent_runs_max;
        let taken = self.running.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.running);
        if taken >= max {
            return Err(ComputeError::Busy {
                concurrent_runs_max: max,
            });
        }
        Ok(slot)
    }

    /// The module ready to instantiate, from the cache or compiled now.
    fn prepared(
        &self,
        cid: ContentId,
        bytes: &[u8],
    ) -> Result<InstancePre<RunState>, ComputeError> {
        if let Some(pre) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cid)
        {
            self.counters.bump(Counter::CacheHits);
            return Ok(pre);
        }
        // Compiled outside the lock: other runs go on meanwhile. Two runs
        // of one new module may both compile it; the second insert wins.
        self.counters.bump(Counter::Compilations);
        let compiled = {
            let _span = tracing::debug_span!("compute.compile", module = %cid, bytes = bytes.len())
                .entered();
            compile(&self.engine, bytes)?
        };
        let pre =
            self.linker
                .instantiate_pre(&compiled)
                .map_err(|e| ComputeError::InvalidModule {
                    reason: format!(
                        "its imports cannot be met by WASI preview 1: {}",
                        sandbox::describe(&e)
                    ),
                })?;
        let evicted = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cid, pre.clone());
        if evicted {
            self.counters.bump(Counter::CacheEvictions);
        }
        Ok(pre)
    }
}

/// The failed-run result of `error`, when it is one (see
/// [`Executor::run_to_end`]); `error` itself otherwise. `ended` is what the
/// sandbox saw when the module, not the epoch watch, ended the run.
fn failed_run(
    error: ComputeError,
    ended: Option<Ended>,
    fuel_consumed: u64,
    module_cid: ContentId,
) -> Result<FailedRun, ComputeError> {
    let (Some(failure), Some(ended)) = (error.failure(), ended) else {
        return Err(error);
    };
    let a_wasm_trap = ended.trap.is_some_and(|trap| trap != Trap::StackOverflow);
    let reproducible = match &error {
        ComputeError::Trap { .. } | ComputeError::StreamFull { .. } => a_wasm_trap,
        // The limiter refuses a grow past the limit; a grow within it that
        // the host could not map is recorded at the limit itself.
        ComputeError::MemoryLimit {
            requested_bytes,
            limit_bytes,
        } => requested_bytes > limit_bytes,
        _ => true,
    };
    if !reproducible {
        return Err(error);
    }
    let output_digest = failure_digest(failure, fuel_consumed, &ended.stdout, &ended.stderr);
    Ok(FailedRun {
        failure,
        error,
        fuel_consumed,
        stdout: ended.stdout,
        stderr: ended.stderr,
        output_digest,
        module_cid,
        wall_time_ms: ended.wall_time_ms,
    })
}

/// The deterministic engine configuration (see the module documentation).
fn engine_config(config: &ExecutorConfig) -> Config {
    let runs = u32::try_from(config.concurrent_runs_max.max(1)).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(runs)
        .total_memories(runs.saturating_mul(MEMORIES_MAX as u32))
        .total_tables(runs.saturating_mul(TABLES_MAX as u32))
        .max_memories_per_module(MEMORIES_MAX as u32)
        .max_tables_per_module(TABLES_MAX as u32)
        .table_elements(TABLE_ELEMENTS_MAX)
        .max_memory_size(peercloud_types::job::MEMORY_BYTES_MAX as usize);

    let mut engine = Config::new();
    engine
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(WASM_STACK_BYTES_MAX)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .relaxed_simd_deterministic(true)
        // Backtrace details would be read from the host's environment.
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    engine
}

/// Compiles a module from its binary (or, for tests and tiny jobs, its text)
/// form, checking it is a WASI command.
fn compile(engine: &Engine, bytes: &[u8]) -> Result<Module, ComputeError> {
    let invalid = |reason: String| ComputeError::InvalidModule { reason };
    if bytes.len() > MODULE_BYTES_MAX {
        return Err(invalid(format!(
            "it is {} bytes, the largest module accepted is {MODULE_BYTES_MAX}",
            bytes.len()
        )));
    }
    let module = if bytes.starts_with(WASM_MAGIC) {
        Module::from_binary(engine, bytes)
    } else if looks_like_text(bytes) {
        Module::new(engine, bytes)
    } else {
        return Err(invalid(format!(
            "not WebAssembly: a module starts with the bytes 00 61 73 6d (\"\\0asm\"), \
             these {} bytes start with {}",
            bytes.len(),
            hex_prefix(bytes)
        )));
    };
    let module = module.map_err(|e| invalid(sandbox::describe(&e)))?;
    match module.get_export("_start") {
        Some(ExternType::Func(start))
            if start.params().len() == 0 && start.results().len() == 0 =>
        {
            Ok(module)
        }
        _ => Err(invalid(
            "it has no `_start() -> ()` function; the sandbox runs WASI commands \
             (a binary crate built for wasm32-wasip1)"
                .into(),
        )),
    }
}

/// Whether `bytes` may be the WebAssembly text format: UTF-8 whose first
/// non-blank character is `(` (or a `;;` comment).
fn looks_like_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        let text = text.trim_start();
        text.starts_with('(') || text.starts_with(";;")
    })
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if shown.is_empty() {
        "nothing (the module is empty)".into()
    } else {
        shown.join(" ")
    }
}

/// The input directory must be a directory; the output one an empty directory
/// (anything already there would be counted as the module's output).
fn check_directories(request: &RunRequest) -> Result<(), ComputeError> {
    if let Some(input) = &request.input_dir
        && !input.is_dir()
    {
        return Err(ComputeError::Directory {
            role: "input",
            path: input.clone(),
            reason: "it is not a directory".into(),
        });
    }
    let output = &request.output_dir;
    let not_usable = |reason: String| ComputeError::Directory {
        role: "output",
        path: output.clone(),
        reason,
    };
    let mut listing =
        std::fs::read_dir(output).map_err(|e| not_usable(format!("cannot list it: {e}")))?;
    if listing.next().is_some() {
        return Err(not_usable(
            "it is not empty; give each run a fresh directory".into(),
        ));
    }
    Ok(())
}

//! One run inside the sandbox: the store's state (WASI context, limiter,
//! watch), the WASI context built from the request and the seed, the epoch
//! callback that enforces wall time and output size, and the mapping of how
//! the run ended to an outcome or a [`ComputeError`].
//!
//! ```text
//!  Executor::run ──► execute(pre, request)
//!                      ├─ WasiCtxBuilder: args, env, stdin, capped stdout/stderr,
//!                      │   /input (read-only), /output (read-write),
//!                      │   virtual clocks + seeded ChaCha20 (determinism.rs)
//!                      ├─ Store: fuel = limits.fuel, limiter = JobLimiter,
//!                      │   epoch deadline 1 tick ─► Watch::check every tick
//!                      ├─ _start()  ─► Ok | I32Exit(code) | trap
//!                      └─ outputs::collect ─► RunOutcome + output_digest
//! ```
//!
//! The output limit is checked on every epoch tick while the module runs and
//! again after it exits. Between two checks a module can write for one tick
//! ([`crate::EPOCH_TICK_MS`]), and a single `fd_write` is not interrupted, so
//! the overshoot on disk is bounded by one tick of writing plus one write
//! call (at most the module's memory, `limits.memory_bytes`). Over the limit,
//! the output directory is emptied.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peercloud_types::{ContentId, Limits};
use wasmtime::{InstancePre, Linker, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::determinism::{self, HasJobClock, JobClock};
use crate::error::{ComputeError, StderrTail};
use crate::outputs;
use crate::request::{PROGRAM_NAME, RunOutcome, RunRequest};

/// Most bytes of stdout kept. Past it, writes fail with a WASI error (a Rust
/// program's `println!` then panics, and a run that then traps ends as
/// [`ComputeError::StreamFull`]). Part of the protocol: the captured bytes
/// are in the digest, so every node must cut at the same place.
pub const STDOUT_BYTES_MAX: usize = 1 << 20;
/// Most bytes of stderr kept; as [`STDOUT_BYTES_MAX`].
pub const STDERR_BYTES_MAX: usize = 1 << 20;
/// Instances per store: a job is one module.
const INSTANCES_MAX: usize = 1;
/// Linear memories per instance. The memory limit applies to each memory,
/// so allowing several would multiply it.
pub(crate) const MEMORIES_MAX: usize = 1;
/// Tables per instance; compilers emit one, reference-types code a few.
pub(crate) const TABLES_MAX: usize = 4;
/// Elements per table (8 bytes each on the host). Rust and C programs use a
/// few thousand; the cap keeps `table.grow` from taking host memory that the
/// memory limit does not count.
pub(crate) const TABLE_ELEMENTS_MAX: usize = 100_000;

/// The store's data for one run.
pub(crate) struct RunState {
    wasi: WasiP1Ctx,
    limiter: JobLimiter,
    watch: Watch,
    clock: JobClock,
}

impl HasJobClock for RunState {
    fn job_clock(&self) -> &JobClock {
        &self.clock
    }
}

/// Adds WASI preview 1 to `linker`, with `poll_oneoff` on the job's virtual clock.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut RunState| &mut state.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        determinism::poll_oneoff::<RunState>,
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Enforces the memory limit and remembers a refusal, so a trap that follows
/// (a Rust program aborts when allocation fails) is reported as
/// [`ComputeError::MemoryLimit`] rather than a bare trap. A refused grow
/// returns -1 to the module, as the WebAssembly specification says.
struct JobLimiter {
    memory_bytes: u64,
    /// The size the module asked for when it was refused.
    memory_refused: Option<u64>,
}

impl ResourceLimiter for JobLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.memory_bytes {
            self.memory_refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Within the limit but the host could not map it: still a memory
        // limit from the job's point of view.
        self.memory_refused.get_or_insert(self.memory_bytes);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }

    fn instances(&self) -> usize {
        INSTANCES_MAX
    }

    fn tables(&self) -> usize {
        TABLES_MAX
    }

    fn memories(&self) -> usize {
        MEMORIES_MAX
    }
}

/// What the epoch callback checks on every tick.
struct Watch {
    started: Instant,
    wall_time: Duration,
    wall_time_ms: u64,
    output_dir: PathBuf,
    output_bytes_max: u64,
    /// Why the run was stopped, once it was.
    stop: Option<ComputeError>,
}

impl Watch {
    /// Whether the run may go on; records why not.
    fn check(&mut self) -> bool {
        if self.started.elapsed() > self.wall_time {
            self.stop = Some(ComputeError::WallTimeExceeded {
                wall_time_ms: self.wall_time_ms,
            });
            return false;
        }
        match outputs::usage(&self.output_dir) {
            Ok(usage) if usage.bytes > self.output_bytes_max => {
                self.stop = Some(ComputeError::OutputTooLarge {
                    written_bytes: usage.bytes,
                    limit_bytes: self.output_bytes_max,
                });
                false
            }
            Ok(_) => true,
            Err(error) => {
                self.stop = Some(error);
                false
            }
        }
    }
}

/// What [`execute`] reports besides the outcome, for the executor's counters.
pub(crate) struct Spent {
    /// Fuel the module used (whether or not the run succeeded).
    pub fuel_consumed: u64,
}

/// Runs `_start` of the prepared module for `request`.
pub(crate) fn execute(
    pre: &InstancePre<RunState>,
    request: &RunRequest,
    module_cid: ContentId,
) -> (Result<RunOutcome, ComputeError>, Spent) {
    let mut spent = Spent { fuel_consumed: 0 };
    let result = execute_inner(pre, request, module_cid, &mut spent);
    (result, spent)
}

fn execute_inner(
    pre: &InstancePre<RunState>,
    request: &RunRequest,
    module_cid: ContentId,
    spent: &mut Spent,
) -> Result<RunOutcome, ComputeError> {
    let limits = &request.limits;
    let stdout = MemoryOutputPipe::new(STDOUT_BYTES_MAX);
    let stderr = MemoryOutputPipe::new(STDERR_BYTES_MAX);
    let clock = JobClock::default();
    let wasi = wasi_context(request, &clock, &stdout, &stderr)?;
    let state = RunState {
        wasi,
        limiter: JobLimiter {
            memory_bytes: limits.memory_bytes,
            memory_refused: None,
        },
        watch: Watch {
            started: Instant::now(),
            wall_time: Duration::from_millis(limits.wall_time_ms),
            wall_time_ms: limits.wall_time_ms,
            output_dir: request.output_dir.clone(),
            output_bytes_max: limits.output_bytes,
            stop: None,
        },
        clock,
    };
    let mut store = Store::new(pre.module().engine(), state);
    store.limiter(|state| &mut state.limiter);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| ComputeError::Setup {
            reason: format!("cannot set fuel: {e}"),
        })?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut context| {
        Ok(if context.data_mut().watch.check() {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Interrupt
        })
    });

    let started = Instant::now();
    let instantiated = pre.instantiate(&mut store);
    let ended = match instantiated {
        Ok(instance) => instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .and_then(|start| start.call(&mut store, ())),
        Err(error) => Err(error),
    };
    let wall_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    spent.fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let mut state = store.into_data();

    let exit_code = match ended {
        Ok(()) => 0,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(exit) => exit.0,
            None => {
                let streams = Streams {
                    stdout: stdout.contents().len(),
                    stderr: &stderr.contents(),
                };
                let failure = classify(&error, &mut state, limits, &streams);
                if matches!(failure, ComputeError::OutputTooLarge { .. }) {
                    outputs::empty(&request.output_dir)?;
                }
                return Err(failure);
            }
        },
    };
    drop(state);
    let stdout = stdout.contents().to_vec();
    let stderr = stderr.contents().to_vec();
    let outputs = outputs::collect(&request.output_dir, limits.output_bytes)?;
    let output_digest = outputs::output_digest(exit_code, &stdout, &stderr, &outputs);
    Ok(RunOutcome {
        exit_code,
        stdout,
        stderr,
        fuel_consumed: spent.fuel_consumed,
        outputs,
        output_digest,
        module_cid,
        wall_time_ms,
    })
}

/// The WASI context of a run: nothing of the host but the two directories.
fn wasi_context(
    request: &RunRequest,
    clock: &JobClock,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> Result<WasiP1Ctx, ComputeError> {
    let seed = request.seed;
    let mut builder = WasiCtxBuilder::new();
    // Set before the preopens: each directory takes the setting when opened.
    builder.allow_blocking_current_thread(true);
    builder
        .arg(PROGRAM_NAME)
        .args(&request.args)
        .stdin(MemoryInputPipe::new(request.stdin.clone()))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(clock.wall())
        .monotonic_clock(clock.monotonic())
        .secure_random(determinism::job_rng(seed, "secure"))
        .insecure_random(determinism::job_rng(seed, "insecure"))
        .insecure_random_seed(determinism::insecure_seed(seed))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (key, value) in &request.env {
        builder.env(key, value);
    }
    if let Some(input) = &request.input_dir {
        preopen(&mut builder, "input", input, "/input", FsPerms::ReadOnly)?;
    }
    preopen(
        &mut builder,
        "output",
        &request.output_dir,
        "/output",
        FsPerms::ReadWrite,
    )?;
    Ok(builder.build_p1())
}

fn preopen(
    builder: &mut WasiCtxBuilder,
    role: &'static str,
    host: &Path,
    guest: &str,
    perms: FsPerms,
) -> Result<(), ComputeError> {
    builder
        .preopened_dir(host, guest, perms)
        .map(|_| ())
        .map_err(|e| ComputeError::Directory {
            role,
            path: host.to_path_buf(),
            reason: format!("cannot open it: {e}"),
        })
}

/// What the module wrote to its output streams, as [`classify`] needs it.
struct Streams<'a> {
    /// Bytes of stdout kept.
    stdout: usize,
    /// The stderr kept.
    stderr: &'a [u8],
}

/// Why a run that did not exit ended.
fn classify(
    error: &wasmtime::Error,
    state: &mut RunState,
    limits: &Limits,
    streams: &Streams<'_>,
) -> ComputeError {
    if let Some(stop) = state.watch.stop.take() {
        return stop;
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return ComputeError::OutOfFuel { fuel: limits.fuel };
    }
    if let Some(requested_bytes) = state.limiter.memory_refused {
        return ComputeError::MemoryLimit {
            requested_bytes,
            limit_bytes: limits.memory_bytes,
        };
    }
    let stderr = StderrTail::of(streams.stderr);
    // A full stream refuses every further write, and a program whose write
    // failed usually dies of it: that is the reason to report, not the trap.
    let full = if streams.stdout >= STDOUT_BYTES_MAX {
        Some(("stdout", STDOUT_BYTES_MAX))
    } else if streams.stderr.len() >= STDERR_BYTES_MAX {
        Some(("stderr", STDERR_BYTES_MAX))
    } else {
        None
    };
    if let Some((stream, limit_bytes)) = full {
        return ComputeError::StreamFull {
            stream,
            limit_bytes,
            trap: describe(error),
            stderr,
        };
    }
    // A trap, or instantiation refusing the module (a table too large), or a
    // host call failing in a way WASI treats as fatal.
    ComputeError::Trap {
        message: describe(error),
        stderr,
    }
}

/// A wasmtime error on one line (the trap or the failing host call, then
/// its causes), followed by the wasm backtrace when there is one.
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    let mut causes: Vec<String> = error
        .chain()
        .map(ToString::to_string)
        .filter(|cause| Some(cause) != backtrace.as_ref())
        .collect();
    // An error that displays its source repeats it; say it once.
    causes.dedup();
    let mut message = causes.join(": ");
    if let Some(backtrace) = backtrace {
        message.push('\n');
        message.push_str(&backtrace);
    }
    message
}

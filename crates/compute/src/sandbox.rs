//! One run inside the sandbox: the store's state (WASI context, limiter,
//! watch), the WASI context built from the request and the seed, the epoch
//! callback that enforces wall time and output size, and the mapping of how
//! the run ended to an outcome or a [`ComputeError`].
//!
//! ```text
//!  Executor::run ──► execute(pre, request)
//!                      ├─ WasiCtxBuilder: args, env, stdin (bytes, or a file
//!                      │   of /input), capped stdout/stderr, /input (read-only),
//!                      │   /output (read-write), a fresh scratch dir at "/"
//!                      │   (read-write, where relative paths lead),
//!                      │   virtual clocks + seeded ChaCha20 (determinism.rs),
//!                      │   fd_readdir sorted by name (readdir.rs)
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
//!
//! **The scratch directory.** wasi-libc (and so Rust's std) starts a
//! program in the working directory `/` and resolves a relative path by
//! the longest preopen name that prefixes it, a preopen named `/` matching
//! every path. Each run therefore gets a fresh, empty, writable directory
//! preopened as `/` (after `/input` and `/output`, which keep descriptors 3
//! and 4): `File::create("tmp.txt")` and `std::env::current_dir()` work, and
//! `/input/...` and `/output/...` still reach their own directories. It is
//! created beside the output directory (on the disk the job's files are on),
//! measured with the output on every tick and once more after the module
//! exits (`limits.scratch_bytes`, [`crate::outputs::SCRATCH_FILES_MAX`]),
//! never part of the outputs or the digest, and removed when the run ends,
//! however it ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peercloud_types::{ContentId, Limits};
use wasmtime::{InstancePre, Linker, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::cli::InputFile;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::determinism::{self, HasJobClock, JobClock};
use crate::error::{ComputeError, StderrTail};
use crate::outputs;
use crate::request::{Ended, PROGRAM_NAME, RunOutcome, RunRequest};

mod readdir;

/// Most bytes of stdout kept. Past it, writes fail with a WASI error (a Rust
/// program's `println!` then panics, and a run that then traps ends as
/// [`ComputeError::StreamFull`]). Part of the protocol: the captured bytes
/// are in the digest, so every node must cut at the same place.
pub const STDOUT_BYTES_MAX: usize = 1 << 20;
/// Most bytes of stderr kept; as [`STDOUT_BYTES_MAX`].
pub const STDERR_BYTES_MAX: usize = 1 << 20;
/// Name prefix of a run's scratch directory (created beside the output
/// directory, removed when the run ends); named so that one left behind by
/// a killed process says what it is.
pub const SCRATCH_DIR_PREFIX: &str = ".peercloud-scratch-";
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

/// Adds WASI preview 1 to `linker`, with `poll_oneoff` on the job's virtual
/// clock and `fd_readdir` in name order.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut RunState| &mut state.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        determinism::poll_oneoff::<RunState>,
    )?;
    linker.func_wrap("wasi_snapshot_preview1", "fd_readdir", readdir::fd_readdir)?;
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
    scratch_dir: PathBuf,
    scratch_bytes_max: u64,
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
        let checked = match outputs::usage(&self.output_dir) {
            Ok(usage) if usage.bytes > self.output_bytes_max => Err(ComputeError::OutputTooLarge {
                written_bytes: usage.bytes,
                limit_bytes: self.output_bytes_max,
            }),
            Ok(_) => outputs::check_scratch(&self.scratch_dir, self.scratch_bytes_max),
            Err(error) => Err(error),
        };
        match checked {
            Ok(()) => true,
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
    /// For a run that failed where the module put it (not a stop by the
    /// epoch watch, whose moment is the host's clock's): what it left, from
    /// which the executor makes a failed-run result.
    pub ended: Option<Ended>,
}

/// Runs `_start` of the prepared module for `request`.
pub(crate) fn execute(
    pre: &InstancePre<RunState>,
    request: &RunRequest,
    module_cid: ContentId,
) -> (Result<RunOutcome, ComputeError>, Spent) {
    let mut spent = Spent {
        fuel_consumed: 0,
        ended: None,
    };
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
    // Removed when this function returns, whatever the outcome.
    let scratch = scratch_dir(&request.output_dir)?;
    let wasi = wasi_context(request, scratch.path(), &clock, &stdout, &stderr)?;
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
            scratch_dir: scratch.path().to_owned(),
            scratch_bytes_max: limits.scratch_bytes,
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
                let stopped_by_watch = state.watch.stop.is_some();
                let streams = Streams {
                    stdout: stdout.contents().len(),
                    stderr: &stderr.contents(),
                };
                let failure = classify(&error, &mut state, limits, &streams);
                if matches!(failure, ComputeError::OutputTooLarge { .. }) {
                    outputs::empty(&request.output_dir)?;
                }
                if !stopped_by_watch {
                    spent.ended = Some(Ended {
                        stdout: stdout.contents().to_vec(),
                        stderr: stderr.contents().to_vec(),
                        trap: error.downcast_ref::<Trap>().copied(),
                        wall_time_ms,
                    });
                }
                return Err(failure);
            }
        },
    };
    drop(state);
    let stdout = stdout.contents().to_vec();
    let stderr = stderr.contents().to_vec();
    let checked = outputs::check_scratch(scratch.path(), limits.scratch_bytes)
        .and_then(|()| outputs::collect(&request.output_dir, limits.output_bytes));
    let outputs = match checked {
        Ok(outputs) => outputs,
        Err(error) => {
            // Found once the module had exited: what it left is its own.
            spent.ended = Some(Ended {
                stdout,
                stderr,
                trap: None,
                wall_time_ms,
            });
            return Err(error);
        }
    };
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

/// A fresh, empty scratch directory beside `output_dir`, removed when dropped.
fn scratch_dir(output_dir: &Path) -> Result<tempfile::TempDir, ComputeError> {
    let parent = output_dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(SCRATCH_DIR_PREFIX)
        .tempdir_in(parent)
        .map_err(|e| ComputeError::Directory {
            role: "scratch",
            path: parent.to_path_buf(),
            reason: format!("cannot create the run's scratch directory in it: {e}"),
        })
}

/// The file of `/input` the request names as stdin, opened.
fn stdin_file(request: &RunRequest, name: &str) -> Result<InputFile, ComputeError> {
    let refuse = |reason: String| ComputeError::StdinInput {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(refuse("is not a file name".into()));
    }
    let Some(input_dir) = &request.input_dir else {
        return Err(refuse("is not there: the run has no /input".into()));
    };
    let path = input_dir.join(name);
    let metadata = match std::fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse("is not in /input".into()));
        }
        Err(e) => return Err(refuse(format!("cannot be read: {e}"))),
    };
    if metadata.is_dir() {
        return Err(refuse("is a directory".into()));
    }
    if !metadata.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    let file = std::fs::File::open(&path).map_err(|e| refuse(format!("cannot be opened: {e}")))?;
    Ok(InputFile::new(file))
}

/// The WASI context of a run: nothing of the host but the three directories.
fn wasi_context(
    request: &RunRequest,
    scratch: &Path,
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
    match &request.stdin_input {
        Some(name) => builder.stdin(stdin_file(request, name)?),
        None => builder.stdin(MemoryInputPipe::new(request.stdin.clone())),
    };
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
    // Last, so /input and /output keep descriptors 3 and 4.
    preopen(&mut builder, "scratch", scratch, "/", FsPerms::ReadWrite)?;
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

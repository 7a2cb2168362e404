//! Failures that are a job's result: the same module on the same inputs
//! fails the same way on every node, with the same digest, and
//! `Executor::run_to_end` answers them as a `FailedRun`; failures of the
//! node or of the clock stay errors.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dirs, command, executor, small_limits};
use peercloud_compute::{
    ComputeError, Executor, FailedRun, Failure, Limits, RunEnd, RunRequest, failure_digest,
};

fn request(dirs: &Dirs, module: &[u8], limits: Limits) -> RunRequest {
    let mut request = RunRequest::new(module.to_vec(), &dirs.output);
    request.limits = limits;
    request
}

/// Runs `module` twice, each time in fresh directories, and expects a
/// failed run both times: the two must agree.
fn fails_the_same_twice(executor: &Executor, module: &[u8], limits: Limits) -> FailedRun {
    let (first, second) = (Dirs::new(), Dirs::new());
    let first = match executor.run_to_end(&request(&first, module, limits)) {
        Ok(RunEnd::Failed(failed)) => failed,
        Ok(RunEnd::Exited(outcome)) => panic!("expected a failure, the module exited: {outcome:?}"),
        Err(error) => panic!("expected a failed-run result, got the error {error}"),
    };
    let Ok(RunEnd::Failed(second)) = executor.run_to_end(&request(&second, module, limits)) else {
        panic!("the second run did not fail as a result");
    };
    assert_eq!(first.output_digest, second.output_digest);
    assert_eq!(first.fuel_consumed, second.fuel_consumed);
    assert_eq!(
        first.output_digest,
        failure_digest(
            first.failure,
            first.fuel_consumed,
            &first.stdout,
            &first.stderr
        ),
        "the digest is the documented rule"
    );
    first
}

/// Writes `text` to stderr (fd 2), then runs `then`.
fn say_then(text: &str, then: &str) -> Vec<u8> {
    let body = format!(
        r#"
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const {len}))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
        {then}"#,
        len = text.len()
    );
    let escaped = text.replace('\n', "\\n");
    command(&body, &format!(r#"(data (i32.const 1024) "{escaped}")"#))
}

#[test]
fn running_out_of_fuel_is_a_result_committing_to_fuel_and_stderr() {
    let executor = executor();
    let limits = Limits {
        fuel: 1_000_000,
        ..small_limits()
    };
    let spin = say_then("working\n", "(loop $spin (br $spin))");
    let failed = fails_the_same_twice(&executor, &spin, limits);
    assert_eq!(failed.failure, Failure::OutOfFuel, "{}", failed.error);
    assert_eq!(failed.fuel_consumed, 1_000_000, "all of it");
    assert_eq!(failed.stderr, b"working\n");
    assert!(matches!(
        failed.error,
        ComputeError::OutOfFuel { fuel: 1_000_000 }
    ));
    let message = failed.message();
    assert!(message.starts_with("out of fuel"), "{message}");
    assert!(
        message.contains("the module's stderr ---\nworking"),
        "{message}"
    );
    // `run` still answers the error, with the text it always had.
    let dirs = Dirs::new();
    let error = executor.run(&request(&dirs, &spin, limits)).unwrap_err();
    assert_eq!(error.to_string(), failed.error.to_string());
    // Other stderr, other digest.
    let other = fails_the_same_twice(
        &executor,
        &say_then("elsewise\n", "(loop $spin (br $spin))"),
        limits,
    );
    assert_ne!(other.output_digest, failed.output_digest);
}

#[test]
fn a_trap_a_memory_limit_and_a_bad_module_are_results() {
    let executor = executor();
    let trap = fails_the_same_twice(
        &executor,
        &say_then("panicked: bad input\n", "unreachable"),
        small_limits(),
    );
    assert_eq!(trap.failure, Failure::Trap);
    assert!(trap.fuel_consumed > 0);
    let message = trap.message();
    assert_eq!(
        message.matches("panicked: bad input").count(),
        1,
        "the stderr is shown once: {message}"
    );

    let bomb = r#"
        (block $refused
          (loop $grow
            (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $grow)))
        unreachable"#;
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..small_limits()
    };
    let memory = fails_the_same_twice(&executor, &command(bomb, ""), limits);
    assert_eq!(memory.failure, Failure::MemoryLimit);

    let garbage = fails_the_same_twice(&executor, b"not a module", small_limits());
    assert_eq!(garbage.failure, Failure::InvalidModule);
    assert_eq!(garbage.fuel_consumed, 0);
    assert!(garbage.message().starts_with("invalid module"));

    let digests = [
        trap.output_digest,
        memory.output_digest,
        garbage.output_digest,
    ];
    assert!(digests[0] != digests[1] && digests[1] != digests[2] && digests[0] != digests[2]);
}

/// Opens `/output/big.bin` and writes 17 pages (just over 1 MiB) in one
/// `fd_write`, then returns: no instruction between the write and the exit
/// where the epoch watch could look, so only the check after the exit sees it.
const ONE_BIG_WRITE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 18)
  (data (i32.const 16) "big.bin")
  (func (export "_start")
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7)
          (i32.const 1) (i64.const 0x3fffffff) (i64.const 0x3fffffff) (i32.const 0) (i32.const 8))
      (then unreachable))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 1114112))
    (drop (call $fd_write (i32.load (i32.const 8)) (i32.const 0) (i32.const 1) (i32.const 12)))))"#;

#[test]
fn outputs_over_their_limit_after_the_exit_are_a_result() {
    let limits = Limits {
        output_bytes: 1 << 20,
        ..small_limits()
    };
    let failed = fails_the_same_twice(&executor(), ONE_BIG_WRITE.as_bytes(), limits);
    assert_eq!(failed.failure, Failure::OutputTooLarge);
    assert!(
        matches!(
            failed.error,
            ComputeError::OutputTooLarge {
                written_bytes: 1_114_112,
                ..
            }
        ),
        "{}",
        failed.error
    );
}

#[test]
fn failures_of_the_clock_or_the_native_stack_stay_errors() {
    let executor = executor();
    // Wall time: where the run stops is the host clock's.
    let dirs = Dirs::new();
    let limits = Limits {
        fuel: u64::MAX,
        wall_time_ms: 100,
        ..small_limits()
    };
    let spin = command("(loop $spin (br $spin))", "");
    assert!(matches!(
        executor.run_to_end(&request(&dirs, &spin, limits)),
        Err(ComputeError::WallTimeExceeded { .. })
    ));
    // A stack overflow: how deep the native stack goes depends on the CPU.
    let dirs = Dirs::new();
    let recurse = br#"(module
      (memory (export "memory") 1)
      (func $deeper (call $deeper))
      (func (export "_start") (call $deeper)))"#;
    match executor.run_to_end(&request(&dirs, recurse, small_limits())) {
        Err(ComputeError::Trap { message, .. }) => {
            assert!(message.contains("call stack exhausted"), "{message}");
        }
        other => panic!("expected a stack overflow error, got {other:?}"),
    }
}

#[test]
fn a_nonzero_exit_is_an_outcome() {
    let dirs = Dirs::new();
    let exit = command("(call $proc_exit (i32.const 3))", "");
    match executor().run_to_end(&request(&dirs, &exit, small_limits())) {
        Ok(RunEnd::Exited(outcome)) => assert_eq!(outcome.exit_code, 3),
        other => panic!("expected an outcome, got {other:?}"),
    }
}

//! The job sees the same world on every node: clocks and randomness come
//! from the seed, sleeping costs no host time, and the same module and
//! inputs give the same digest in any directory.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dirs, command, executor, small_limits};
use peercloud_compute::{CLOCK_START_SECS, CLOCK_STEP_NS, Executor, RunOutcome};

/// Prints 16 random bytes, the wall clock, then the monotonic clock after
/// `poll_oneoff` sleeps an hour (all little-endian).
fn observer() -> Vec<u8> {
    let body = r#"
        (drop (call $random_get (i32.const 104) (i32.const 16)))
        (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 120)))
        ;; subscription at 200: userdata 7, clock, monotonic, relative 3600 s
        (i64.store (i32.const 200) (i64.const 7))
        (i32.store8 (i32.const 208) (i32.const 0))
        (i32.store (i32.const 216) (i32.const 1))
        (i64.store (i32.const 224) (i64.const 3600000000000))
        (i64.store (i32.const 232) (i64.const 0))
        (i32.store16 (i32.const 240) (i32.const 0))
        (if (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 340))
          (then unreachable))
        ;; one event, for userdata 7, without error
        (if (i32.ne (i32.load (i32.const 340)) (i32.const 1)) (then unreachable))
        (if (i64.ne (i64.load (i32.const 300)) (i64.const 7)) (then unreachable))
        (if (i32.load16_u (i32.const 308)) (then unreachable))
        (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 128)))
        (i32.store (i32.const 0) (i32.const 104))
        (i32.store (i32.const 4) (i32.const 32))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))"#;
    let module = String::from_utf8(command(body, "")).unwrap();
    let imports = r#"(import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory"#;
    module.replacen("(memory", imports, 1).into_bytes()
}

fn observe(executor: &Executor, seed: u64) -> RunOutcome {
    let dirs = Dirs::new();
    let mut request = dirs.request(observer());
    request.seed = seed;
    request.limits = small_limits();
    executor.run(&request).unwrap()
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn time_and_chance_come_from_the_seed() {
    let executor = executor();
    let first = observe(&executor, 1);
    let again = observe(&executor, 1);
    let other = observe(&executor, 2);
    assert_eq!(first.stdout.len(), 32);
    assert_eq!(first.stdout, again.stdout);
    assert_eq!(first.output_digest, again.output_digest);
    assert_ne!(
        first.stdout[..16],
        other.stdout[..16],
        "another seed, other random bytes"
    );
    assert_ne!(first.output_digest, other.output_digest);

    // The first clock read is the fixed start plus one step.
    assert_eq!(
        word(&first.stdout, 16),
        CLOCK_START_SECS * 1_000_000_000 + CLOCK_STEP_NS
    );
    // Sleeping an hour moved the virtual clock an hour, at once (the run's
    // wall-time limit is 10 s).
    let monotonic = word(&first.stdout, 24);
    assert!(monotonic >= 3_600_000_000_000, "{monotonic}");
    assert!(
        monotonic < 3_600_000_000_000 + 10 * CLOCK_STEP_NS,
        "{monotonic}"
    );
}

#[test]
fn nothing_of_the_host_environment_reaches_the_module() {
    // environ_sizes_get: the module sees exactly the request's environment.
    let body = r#"
        (drop (call $environ_sizes_get (i32.const 100) (i32.const 104)))
        (call $proc_exit (i32.load (i32.const 100)))"#;
    let module = String::from_utf8(command(body, "")).unwrap().replacen(
        "(memory",
        r#"(import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (memory"#,
        1,
    );
    let dirs = Dirs::new();
    let mut request = dirs.request(module.into_bytes());
    request.limits = small_limits();
    assert_eq!(
        executor().run(&request).unwrap().exit_code,
        0,
        "no variables"
    );
    let dirs = Dirs::new();
    request.output_dir = dirs.output.clone();
    request.env.insert("LANG".into(), "C".into());
    assert_eq!(
        executor().run(&request).unwrap().exit_code,
        1,
        "one variable"
    );
}

//! Every way a hostile or broken module can end: each must end in its typed
//! error with the host unharmed.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dirs, command, executor, small_limits};
use peercloud_compute::{
    ComputeError, ERROR_STDERR_BYTES_MAX, Executor, ExecutorConfig, Limits, RunRequest,
    STDERR_BYTES_MAX, STDOUT_BYTES_MAX,
};

/// `_start` spins forever.
const SPIN: &str = "(loop $spin (br $spin))";

fn request(dirs: &Dirs, module: Vec<u8>, limits: Limits) -> RunRequest {
    let mut request = RunRequest::new(module, &dirs.output);
    request.limits = limits;
    request
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let dirs = Dirs::new();
    let limits = Limits {
        fuel: 1_000_000,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, command(SPIN, ""), limits))
        .unwrap_err();
    assert!(
        matches!(error, ComputeError::OutOfFuel { fuel: 1_000_000 }),
        "{error}"
    );
}

#[test]
fn an_infinite_loop_with_plenty_of_fuel_hits_the_wall_clock() {
    let dirs = Dirs::new();
    let limits = Limits {
        fuel: u64::MAX,
        wall_time_ms: 200,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, command(SPIN, ""), limits))
        .unwrap_err();
    assert!(
        matches!(error, ComputeError::WallTimeExceeded { wall_time_ms: 200 }),
        "{error}"
    );
}

#[test]
fn growing_memory_past_the_limit_is_a_memory_limit() {
    // Grows one page at a time until refused, then traps, as a Rust program
    // that fails to allocate would.
    let bomb = r#"
        (block $refused
          (loop $grow
            (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $grow)))
        unreachable"#;
    let dirs = Dirs::new();
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, command(bomb, ""), limits))
        .unwrap_err();
    match error {
        ComputeError::MemoryLimit {
            requested_bytes,
            limit_bytes,
        } => {
            assert_eq!(limit_bytes, 4 << 20);
            assert_eq!(
                requested_bytes,
                (4 << 20) + 65536,
                "one page past the limit"
            );
        }
        other => panic!("expected a memory limit, got {other}"),
    }
}

#[test]
fn a_refused_grow_the_module_survives_is_not_an_error() {
    let polite = "(if (i32.ne (memory.grow (i32.const 1000)) (i32.const -1)) (then unreachable))";
    let dirs = Dirs::new();
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..small_limits()
    };
    let outcome = executor()
        .run(&request(&dirs, command(polite, ""), limits))
        .unwrap();
    assert_eq!(outcome.exit_code, 0);
}

#[test]
fn a_module_declaring_too_much_memory_is_a_memory_limit() {
    let greedy = br#"(module (memory (export "memory") 1000) (func (export "_start")))"#;
    let dirs = Dirs::new();
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, greedy.to_vec(), limits))
        .unwrap_err();
    assert!(
        matches!(
            error,
            ComputeError::MemoryLimit {
                requested_bytes: 65_536_000,
                ..
            }
        ),
        "{error}"
    );
}

/// Opens `/output/big.bin` (fd 3 when there is no `/input`) and writes
/// 64 KiB of zeros `writes` times (forever if negative).
fn writer(writes: i32) -> Vec<u8> {
    let body = format!(
        r#"
        (local $fd i32) (local $left i32)
        (local.set $left (i32.const {writes}))
        (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 7)
                (i32.const 1) (i64.const 0x3fffffff) (i64.const 0x3fffffff) (i32.const 0) (i32.const 8))
          (then unreachable))
        (local.set $fd (i32.load (i32.const 8)))
        ;; iovec at 0: 64 KiB from address 0 (the whole page)
        (i32.store (i32.const 0) (i32.const 0))
        (i32.store (i32.const 4) (i32.const 65536))
        (block $done
          (loop $write
            (br_if $done (i32.eqz (local.get $left)))
            (local.set $left (i32.sub (local.get $left) (i32.const 1)))
            (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 12))
              (then unreachable))
            (i32.store (i32.const 0) (i32.const 0))
            (i32.store (i32.const 4) (i32.const 65536))
            (br $write)))"#
    );
    command(&body, r#"(data (i32.const 16) "big.bin")"#)
}

#[test]
fn a_module_writing_without_end_is_stopped_and_its_output_discarded() {
    let dirs = Dirs::new();
    let limits = Limits {
        fuel: u64::MAX,
        output_bytes: 1 << 20,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, writer(-1), limits))
        .unwrap_err();
    match error {
        ComputeError::OutputTooLarge {
            written_bytes,
            limit_bytes,
        } => {
            assert_eq!(limit_bytes, 1 << 20);
            assert!(written_bytes > 1 << 20);
        }
        other => panic!("expected output too large, got {other}"),
    }
    assert_eq!(
        std::fs::read_dir(&dirs.output).unwrap().count(),
        0,
        "output emptied"
    );
}

#[test]
fn output_over_the_cap_at_exit_is_refused_and_discarded() {
    let dirs = Dirs::new();
    // 17 x 64 KiB = 1.0625 MiB, written faster than a tick.
    let limits = Limits {
        output_bytes: 1 << 20,
        ..small_limits()
    };
    let error = executor()
        .run(&request(&dirs, writer(17), limits))
        .unwrap_err();
    assert!(
        matches!(
            error,
            ComputeError::OutputTooLarge {
                written_bytes: 1_114_112,
                limit_bytes: 1_048_576
            }
        ),
        "{error}"
    );
    assert_eq!(
        std::fs::read_dir(&dirs.output).unwrap().count(),
        0,
        "output emptied"
    );

    let dirs = Dirs::new();
    let outcome = executor().run(&request(&dirs, writer(16), limits)).unwrap();
    assert_eq!(outcome.outputs.len(), 1);
    assert_eq!(
        outcome.outputs[0].size,
        1 << 20,
        "exactly at the cap is allowed"
    );
}

#[test]
fn a_trap_is_a_trap() {
    let dirs = Dirs::new();
    let error = executor()
        .run(&request(&dirs, command("unreachable", ""), small_limits()))
        .unwrap_err();
    match error {
        ComputeError::Trap { message, .. } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other}"),
    }
    let dirs = Dirs::new();
    let oob = "(drop (i32.load (i32.const 70000)))";
    let error = executor()
        .run(&request(&dirs, command(oob, ""), small_limits()))
        .unwrap_err();
    assert!(
        matches!(&error, ComputeError::Trap { message, .. } if message.contains("out of bounds")),
        "{error}"
    );
}

/// What the flooding module writes to stderr once a write is refused, as a
/// Rust program's `println!` panic would.
const FLOOD_PANIC: &str = "failed printing to stdout: Input/output error";

/// Writes 64 KiB to `fd` until a write fails, then says so on stderr and traps.
fn flood(fd: u32) -> Vec<u8> {
    let body = format!(
        r#"
        (block $refused
          (loop $flood
            (i32.store (i32.const 0) (i32.const 0))
            (i32.store (i32.const 4) (i32.const 65536))
            (br_if $refused
              (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 12)))
            (br $flood)))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const {len}))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
        unreachable"#,
        len = FLOOD_PANIC.len()
    );
    command(
        &body,
        &format!(r#"(data (i32.const 1024) "{FLOOD_PANIC}")"#),
    )
}

#[test]
fn flooding_stdout_names_the_stdout_cap_and_keeps_stderr() {
    let dirs = Dirs::new();
    let error = executor()
        .run(&request(&dirs, flood(1), small_limits()))
        .unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("stdout hit its {STDOUT_BYTES_MAX}-byte cap")),
        "{shown}"
    );
    assert!(shown.contains("unreachable"), "the trap is named: {shown}");
    assert!(shown.contains(FLOOD_PANIC), "stderr is kept: {shown}");
    match error {
        ComputeError::StreamFull {
            stream,
            limit_bytes,
            stderr,
            ..
        } => {
            assert_eq!((stream, limit_bytes), ("stdout", STDOUT_BYTES_MAX));
            assert_eq!(stderr.text, FLOOD_PANIC);
        }
        other => panic!("expected a full stdout, got {other}"),
    }
}

#[test]
fn flooding_stderr_names_the_stderr_cap() {
    let dirs = Dirs::new();
    let error = executor()
        .run(&request(&dirs, flood(2), small_limits()))
        .unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("stderr hit its {STDERR_BYTES_MAX}-byte cap")),
        "{shown}"
    );
    match error {
        ComputeError::StreamFull { stream, stderr, .. } => {
            assert_eq!(stream, "stderr");
            assert!(stderr.cut, "the tail only");
            assert!(stderr.text.len() <= ERROR_STDERR_BYTES_MAX);
        }
        other => panic!("expected a full stderr, got {other}"),
    }
}

#[test]
fn a_trap_keeps_the_end_of_the_modules_stderr() {
    // 10 KiB of 'x' on stderr, then the reason (in red), then a trap.
    let reason = "\x1b[31mpanicked at src/main.rs: bad input\x1b[0m";
    let body = format!(
        r#"
        (local $left i32)
        (local.set $left (i32.const 10))
        (block $done
          (loop $fill
            (br_if $done (i32.eqz (local.get $left)))
            (local.set $left (i32.sub (local.get $left) (i32.const 1)))
            (i32.store (i32.const 0) (i32.const 4096))
            (i32.store (i32.const 4) (i32.const 1024))
            (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
            (br $fill)))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const {len}))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
        unreachable"#,
        len = reason.len()
    );
    let data = format!(
        r#"(data (i32.const 1024) "{}") (data (i32.const 4096) "{}")"#,
        reason.replace('\x1b', "\\1b"),
        "x".repeat(1024)
    );
    let dirs = Dirs::new();
    let error = executor()
        .run(&request(&dirs, command(&body, &data), small_limits()))
        .unwrap_err();
    let shown = error.to_string();
    assert!(shown.starts_with("trap: "), "{shown}");
    assert!(
        shown.contains("panicked at src/main.rs: bad input"),
        "{shown}"
    );
    assert!(
        !shown.contains('\x1b'),
        "control characters are escaped: {shown}"
    );
    assert!(shown.contains(r"\u{1b}[31m"), "{shown}");
    match error {
        ComputeError::Trap { stderr, .. } => {
            assert!(stderr.cut, "10 KiB of stderr is cut");
            assert!(stderr.text.len() <= ERROR_STDERR_BYTES_MAX);
            assert!(
                stderr.text.ends_with(r"bad input\u{1b}[0m"),
                "{}",
                stderr.text
            );
            assert!(stderr.text.starts_with("xxx"), "the start is the filler");
        }
        other => panic!("expected a trap, got {other}"),
    }

    // Nothing on stderr: no empty stderr section.
    let dirs = Dirs::new();
    let error = executor()
        .run(&request(&dirs, command("unreachable", ""), small_limits()))
        .unwrap_err();
    assert!(!error.to_string().contains("stderr"), "{error}");
}

#[test]
fn a_nonzero_exit_is_an_outcome() {
    let dirs = Dirs::new();
    let module = command("(call $proc_exit (i32.const 3)) unreachable", "");
    let outcome = executor()
        .run(&request(&dirs, module, small_limits()))
        .unwrap();
    assert_eq!(outcome.exit_code, 3);
}

#[test]
fn bytes_that_are_not_a_wasi_command_are_refused_with_the_reason() {
    let cases: [(&[u8], &str); 6] = [
        (b"\x7fELF\x02\x01\x01\0", "not WebAssembly"),
        (b"", "the module is empty"),
        (b"\0asm\x01\0\0\0\xff\xff", "section"),
        (
            b"(module (func (export \"_start\") (call $nowhere)))",
            "nowhere",
        ),
        (b"(module (func (export \"main\")))", "_start"),
        (
            b"(module (import \"env\" \"time\" (func)) (func (export \"_start\")))",
            "env::time",
        ),
    ];
    let executor = executor();
    for (bytes, expected) in cases {
        let dirs = Dirs::new();
        let error = executor
            .run(&request(&dirs, bytes.to_vec(), small_limits()))
            .unwrap_err();
        match error {
            ComputeError::InvalidModule { reason } => {
                assert!(
                    reason.contains(expected),
                    "{reason:?} should mention {expected:?}"
                );
            }
            other => panic!("expected an invalid module for {expected:?}, got {other}"),
        }
    }
    assert_eq!(executor.metrics().runs_failed, 6);
}

#[test]
fn a_module_cid_that_does_not_match_is_refused() {
    let dirs = Dirs::new();
    let mut request = request(&dirs, command("", ""), small_limits());
    request.module_cid = Some(peercloud_types::ContentId::of(b"another module"));
    let error = executor().run(&request).unwrap_err();
    assert!(
        matches!(error, ComputeError::ModuleCidMismatch { .. }),
        "{error}"
    );
}

#[test]
fn the_output_directory_must_exist_and_be_empty() {
    let dirs = Dirs::new();
    std::fs::write(dirs.output.join("left-over"), b"x").unwrap();
    let error = executor()
        .run(&request(&dirs, command("", ""), small_limits()))
        .unwrap_err();
    assert!(
        matches!(error, ComputeError::Directory { role: "output", .. }),
        "{error}"
    );

    let missing = RunRequest::new(command("", ""), dirs.root.path().join("missing"));
    let error = executor().run(&missing).unwrap_err();
    assert!(
        matches!(error, ComputeError::Directory { role: "output", .. }),
        "{error}"
    );
}

#[test]
fn a_second_run_of_a_module_does_not_compile_it_again() {
    let executor = executor();
    let module = command("", "");
    for _ in 0..3 {
        let dirs = Dirs::new();
        executor
            .run(&request(&dirs, module.clone(), small_limits()))
            .unwrap();
    }
    let metrics = executor.metrics();
    assert_eq!(metrics.compilations, 1);
    assert_eq!(metrics.cache_hits, 2);
    assert_eq!(metrics.cached_modules, 1);
    assert_eq!(metrics.runs_completed, 3);
}

#[test]
fn the_cache_keeps_the_most_recently_used_modules() {
    let config = ExecutorConfig {
        module_cache_entries: 2,
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(config).unwrap();
    let modules: Vec<Vec<u8>> = (0..3)
        .map(|i| command(&format!(";; module {i}\n"), ""))
        .collect();
    for index in [0, 1, 0, 2, 0, 1] {
        let dirs = Dirs::new();
        executor
            .run(&request(&dirs, modules[index].clone(), small_limits()))
            .unwrap();
    }
    // 0, 1 compiled; 0 hit; 2 compiled (evicts 1); 0 hit; 1 compiled (evicts 2).
    let metrics = executor.metrics();
    assert_eq!(
        (
            metrics.compilations,
            metrics.cache_hits,
            metrics.cache_evictions
        ),
        (4, 2, 2)
    );
}

#[test]
fn runs_past_the_slot_count_are_refused_as_busy() {
    let config = ExecutorConfig {
        concurrent_runs_max: 1,
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(config).unwrap();
    let long = Dirs::new();
    let limits = Limits {
        fuel: u64::MAX,
        wall_time_ms: 2_000,
        ..small_limits()
    };
    let long_request = request(&long, command(SPIN, ""), limits);
    std::thread::scope(|scope| {
        // The spinner retries while the short runs below hold the slot.
        let spinning = scope.spawn(|| {
            loop {
                match executor.run(&long_request) {
                    Err(ComputeError::Busy { .. }) => continue,
                    ended => return ended,
                }
            }
        });
        let mut busy = false;
        while !spinning.is_finished() && !busy {
            let dirs = Dirs::new();
            busy = matches!(
                executor.run(&request(&dirs, command("", ""), small_limits())),
                Err(ComputeError::Busy {
                    concurrent_runs_max: 1
                })
            );
        }
        assert!(busy, "a second run while the first spins is refused");
        let first = spinning.join().unwrap();
        assert!(matches!(first, Err(ComputeError::WallTimeExceeded { .. })));
    });
}

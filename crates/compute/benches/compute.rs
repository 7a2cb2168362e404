//! The cost of the sandbox: the same integer kernel (`examples/kernel`)
//! compiled natively and run as WebAssembly with fuel and epoch checks on,
//! and the start-up of a run whose module is already compiled.
//!
//! Prints one line `compute: sandbox/native = N.NNx` (target: at most 1.25x)
//! before the criterion groups.

// A bench harness: a panic is how a broken bench reports.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use peercloud_compute::{Executor, ExecutorConfig, Limits, RunRequest};

// The very source the kernel module is built from. Its unit tests are
// compiled (without a harness to run them) when clippy checks all targets.
#[path = "../../../examples/kernel/src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod kernel;

/// Kernel iterations per run: about 0.2 s natively on the machines this targets.
const ITERATIONS: u64 = 100_000_000;
/// Seed of the kernel (any value; fixed so the two builds can be compared).
const SEED: u64 = 7;
/// Timed runs of each side for the printed ratio; the fastest counts.
const RATIO_RUNS: usize = 3;
/// The smallest WASI command: `_start` returns at once.
const EMPTY: &[u8] = br#"(module (memory (export "memory") 1) (func (export "_start")))"#;

fn kernel_request(output: &std::path::Path, iterations: u64) -> RunRequest {
    let mut request = RunRequest::new(peercloud_workloads::KERNEL, output);
    request.args = vec![
        "--iterations".into(),
        iterations.to_string(),
        "--seed".into(),
        SEED.to_string(),
    ];
    request.limits = Limits {
        fuel: u64::MAX,
        wall_time_ms: 600_000,
        ..Limits::default()
    };
    request
}

fn native() -> u64 {
    kernel::mix(black_box(SEED), black_box(ITERATIONS))
}

fn sandboxed(executor: &Executor, output: &std::path::Path) -> String {
    let outcome = executor.run(&kernel_request(output, ITERATIONS)).unwrap();
    String::from_utf8(outcome.stdout).unwrap()
}

/// Times both sides a few times, interleaved, and prints the ratio of the
/// fastest runs.
fn print_ratio(executor: &Executor, output: &std::path::Path) {
    let expected = format!(
        "kernel: iterations={ITERATIONS} seed={SEED} result={:#018x}\n",
        native()
    );
    assert_eq!(
        sandboxed(executor, output),
        expected,
        "the two builds disagree"
    );
    let (mut native_best, mut sandbox_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..RATIO_RUNS {
        let started = Instant::now();
        black_box(native());
        native_best = native_best.min(started.elapsed());
        let started = Instant::now();
        black_box(sandboxed(executor, output));
        sandbox_best = sandbox_best.min(started.elapsed());
    }
    eprintln!(
        "compute: sandbox/native = {:.2}x (native {:.1} ms, sandbox {:.1} ms; {ITERATIONS} \
         iterations, fuel and epoch checks on, best of {RATIO_RUNS})",
        sandbox_best.as_secs_f64() / native_best.as_secs_f64(),
        native_best.as_secs_f64() * 1e3,
        sandbox_best.as_secs_f64() * 1e3,
    );
}

fn bench(c: &mut Criterion) {
    let executor = Executor::new(ExecutorConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Nothing the benched modules do writes an output, so one empty
    // directory serves every run.
    let output = dir.path();
    executor.prepare(peercloud_workloads::KERNEL).unwrap();
    executor.prepare(EMPTY).unwrap();
    print_ratio(&executor, output);

    let mut kernel_group = c.benchmark_group("kernel_100m");
    kernel_group.sample_size(10);
    kernel_group.bench_function("native", |b| b.iter(native));
    kernel_group.bench_function("sandbox", |b| b.iter(|| sandboxed(&executor, output)));
    kernel_group.finish();

    let mut startup = c.benchmark_group("startup_cached");
    let empty = RunRequest::new(EMPTY, output);
    startup.bench_function("empty_module", |b| b.iter(|| executor.run(&empty).unwrap()));
    let kernel_zero = kernel_request(output, 0);
    startup.bench_function("kernel_0_iterations", |b| {
        b.iter(|| executor.run(&kernel_zero).unwrap())
    });
    startup.finish();

    let metrics = executor.metrics();
    assert_eq!(
        metrics.compilations, 2,
        "every run after the first used the cache"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

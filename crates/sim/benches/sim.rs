//! The simulator's speed target: 10,000 farmers and 100,000 users over 30
//! simulated days in under a minute, ledger sample included (the default
//! config: every 100th lease, about 2,500 of them, runs on the real ledger
//! on a second thread). Runs it a few times and prints each time and the
//! median; fails if the median misses the target.
//!
//! `cargo bench -p peercloud-sim --bench sim` (about a minute on 2 cores).

use std::time::{Duration, Instant};

use peercloud_sim::{SimConfig, run};

/// Runs timed.
const RUNS: usize = 3;
/// The target.
const TARGET: Duration = Duration::from_secs(60);

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test` of benches passes
    // nothing to run, so do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let config = SimConfig::default();
    println!(
        "sim: {} farmers, {} users, {} days, ledger sample every {} leases",
        config.farmers, config.users, config.days, config.ledger_every
    );
    let mut times = Vec::with_capacity(RUNS);
    for index in 0..RUNS {
        let started = Instant::now();
        let report = match run(&config) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("sim: run failed: {error}");
                std::process::exit(1);
            }
        };
        let took = started.elapsed();
        println!(
            "run {}: {:.2} s ({} leases, {} on the ledger in {} transactions)",
            index + 1,
            took.as_secs_f64(),
            report.summary.leases,
            report.ledger.leases,
            report.ledger.transactions
        );
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "sim: median {:.2} s (target < {} s)",
        median.as_secs_f64(),
        TARGET.as_secs()
    );
    if median > TARGET {
        eprintln!("sim: the median missed the target");
        std::process::exit(1);
    }
}

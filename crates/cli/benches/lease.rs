//! Lease start: from a request to verified access and activation, on a
//! devnet of `peercloud node` processes (a validator and four providers on
//! loopback, each with the machine's Docker engine), through node-1's HTTP
//! API the way `peercloud lease request` goes: bids gathered (sealed, every
//! provider answering ends the window), the award signed and committed, the
//! space made, a secret echoed through it, the activation committed.
//!
//! Prints each step's median over 20 leases (each closed after it starts)
//! and the whole start's median, against the target of 2 s (Akash's console
//! waits about 30 s for bids alone).
//!
//! Run: `cargo bench -p peercloud-cli --bench lease` (needs a Docker engine).
//! `PEERCLOUD_BENCH_RUNS` changes the number of leases.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use peercloud_client::NodeClient;
use peercloud_client::lease::{self, LeaseAsk, LeaseTimings};
use peercloud_devnet::{Devnet, UpOptions, init, node_dir};
use peercloud_types::{Amount, Keypair, LeaseFilters, Resources, SpaceKind};

const PROVIDERS: usize = 4;
const RUNS_DEFAULT: usize = 20;
const TARGET: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lease bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn run() -> anyhow::Result<()> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_peercloud"));
    let runs: usize = match std::env::var("PEERCLOUD_BENCH_RUNS") {
        Ok(v) => v.parse().context("PEERCLOUD_BENCH_RUNS")?,
        Err(_) => RUNS_DEFAULT,
    };
    let temp = tempfile::Builder::new()
        .prefix("peercloud-lease-bench-")
        .tempdir()?;
    let wallet = Keypair::generate();
    let devnet_dir = temp.path().join("devnet");
    init(&devnet_dir, PROVIDERS, &wallet.account_id())?;
    let options = UpOptions {
        exe,
        env: Vec::new(),
        log: std::env::var("PEERCLOUD_LOG").ok(),
        netns: Vec::new(),
    };
    let _devnet = Devnet::up(&devnet_dir, PROVIDERS, &options)?;
    let client = NodeClient::from_node_dir(&node_dir(&devnet_dir, 1))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.ledger()?.nodes.len() < PROVIDERS {
        ensure!(
            Instant::now() < deadline,
            "the providers did not register within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ask = LeaseAsk {
        kind: SpaceKind::Container,
        resources: Resources {
            cpu_millicores: 250,
            memory_bytes: 32 << 20,
            storage_bytes: 8 << 20,
            ..Resources::default()
        },
        period_ms: 10_000,
        periods: Some(6),
        max_price_per_period: Amount::from_tokens(1),
        filters: LeaseFilters::default(),
        offer_window_ms: 2_000,
        activate_within_ms: 30_000,
        fund_periods: 6,
    };
    let mut timings: Vec<LeaseTimings> = Vec::with_capacity(runs);
    for run in 0..runs {
        let opened = lease::open_lease(&client, &wallet, &ask)
            .with_context(|| format!("lease {} of {runs}", run + 1))?;
        timings.push(opened.timings);
        lease::close(&client, &wallet, opened.lease)?;
    }
    let step = |f: fn(&LeaseTimings) -> Duration| median(timings.iter().map(f).collect());
    let total = step(LeaseTimings::total);
    println!("lease start, container, {runs} leases on {PROVIDERS} providers (medians):");
    println!(
        "  bids gathered      {:>8.1} ms",
        step(|t| t.offers).as_secs_f64() * 1e3
    );
    println!(
        "  award committed    {:>8.1} ms",
        step(|t| t.award).as_secs_f64() * 1e3
    );
    println!(
        "  space verified     {:>8.1} ms",
        step(|t| t.ready).as_secs_f64() * 1e3
    );
    println!(
        "  activation         {:>8.1} ms",
        step(|t| t.activate).as_secs_f64() * 1e3
    );
    println!(
        "  request to access  {:>8.1} ms  (target {} ms: {})",
        total.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        if total <= TARGET { "met" } else { "not met" }
    );
    Ok(())
}

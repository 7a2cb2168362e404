//! `peercloud sim`: the economics simulator (`crates/sim`), an agent-based
//! lease market run on the real market and ledger code. Writes `days.csv`,
//! `summary.json` and SVG charts into `--out`; with `--sweep`, also the
//! grid of smaller runs that answers whether the incentives are sufficient
//! to attract and retain providers (`sweep.csv`, `sweep_*.svg`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use peercloud_sim::{
    CloudPrices, SimConfig, SweepGrid, SweepReport, sweep, write_outputs, write_sweep_outputs,
};

/// Simulation options (the rest of the parameters keep the defaults the
/// README's plots come from: see `peercloud_sim::SimConfig`).
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Farmers at the start.
    #[arg(long, default_value_t = 10_000)]
    farmers: usize,
    /// Users at the start.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Simulated days (one step is an hour).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// The random seed: the same seed and options give the same outputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A cloud price list (TOML, or JSON when the name ends in .json) with
    /// `name`, `vcpu_hour`, `ram_gib_hour` and `disk_gib_month` in USD;
    /// default: GCP E2 on-demand, us-central1 (crates/sim/prices/).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Electricity price, USD per kWh (each farmer's varies ±40% around it).
    #[arg(long, default_value_t = 0.20)]
    electricity: f64,
    /// Demand relative to the default (1.0: 0.55 leases per user at once).
    #[arg(long, default_value_t = 1.0)]
    demand: f64,
    /// Hardware prices relative to the catalogue's.
    #[arg(long, default_value_t = 1.0)]
    hardware_cost: f64,
    /// Months a farmer writes its hardware off over.
    #[arg(long, default_value_t = 36.0)]
    hardware_life_months: f64,
    /// Run every Nth lease on the real ledger too and check it against the
    /// fast path (0: none).
    #[arg(long, default_value_t = 100)]
    ledger_every: u64,
    /// Where the CSV, JSON and SVG files go.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// Also run the parameter sweep (electricity × demand, and the cloud
    /// list's price level; 50 runs of 400 farmers and 4,000 users).
    #[arg(long)]
    sweep: bool,
}

/// Runs the simulation (and the sweep), writes the outputs, prints a summary.
pub fn run(args: SimArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut config = SimConfig {
        seed: args.seed,
        farmers: args.farmers,
        users: args.users,
        days: args.days,
        electricity_usd_kwh: args.electricity,
        demand: args.demand,
        hardware_cost_scale: args.hardware_cost,
        hardware_life_months: args.hardware_life_months,
        ledger_every: args.ledger_every,
        ..SimConfig::default()
    };
    if let Some(path) = &args.prices {
        config.prices = CloudPrices::load(path)
            .with_context(|| format!("reading the price list {}", path.display()))?;
    }
    let started = Instant::now();
    let report = peercloud_sim::run(&config).context("the simulation failed")?;
    let run_secs = started.elapsed().as_secs_f64();
    let mut files = write_outputs(&report, &args.out)
        .with_context(|| format!("writing the outputs to {}", args.out.display()))?;
    let swept: Option<SweepReport> = if args.sweep {
        let swept = sweep(&config, &SweepGrid::default()).context("the sweep failed")?;
        files.extend(
            write_sweep_outputs(&swept, &args.out)
                .with_context(|| format!("writing the sweep to {}", args.out.display()))?,
        );
        Some(swept)
    } else {
        None
    };
    if json {
        let value = serde_json::json!({
            "seconds": run_secs,
            "summary": report.summary,
            "money": report.money,
            "ledger": report.ledger,
            "sweep": swept.as_ref().map(|s| &s.points),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &report.summary;
    println!(
        "simulated {} farmers and {} users for {} days in {run_secs:.1} s (seed {})",
        config.farmers, config.users, config.days, config.seed
    );
    println!(
        "farmers: {} at the end ({} joined, {} quit); {:.0}% of the starting ones stayed, {:.0}% of those in the market profitable",
        s.farmers_end,
        s.farmers_joined,
        s.farmers_quit,
        s.initial_retained_share * 100.0,
        s.profitable_share_end * 100.0
    );
    for class in &s.by_hardware {
        println!(
            "  {:<12} {:>6} → {:>6} farmers, {:.0}% stayed, {:.0}% profitable, ${:.2} a month each",
            class.hardware,
            class.start,
            class.end,
            class.retained_share * 100.0,
            class.profitable_share * 100.0,
            class.profit_per_farmer_month_usd
        );
    }
    println!(
        "market: {} leases, {:.1}% of requests served, CPU {:.0}% used; a vCPU-hour clears at ${:.4} (cloud list ${:.4}); users paid {:.0}% of the cloud list ({})",
        s.leases,
        s.served_share * 100.0,
        s.utilisation_cpu * 100.0,
        s.price_core_hour_median_usd,
        s.cloud_vcpu_hour_usd,
        s.user_cost_vs_cloud * 100.0,
        s.prices
    );
    println!(
        "ledger: {} sampled leases in {} transactions match the fast path; invariants hold",
        report.ledger.leases, report.ledger.transactions
    );
    if let Some(swept) = &swept {
        let failing: Vec<String> = swept
            .points
            .iter()
            .filter(|p| !p.sufficient)
            .map(|p| {
                format!(
                    "electricity ${:.2}/kWh, demand {}x, cloud prices {}x",
                    p.electricity, p.demand, p.price_scale
                )
            })
            .collect();
        println!(
            "sweep: incentives insufficient at {} of {} points",
            failing.len(),
            swept.points.len()
        );
        for point in failing {
            println!("  {point}");
        }
    }
    for file in &files {
        println!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

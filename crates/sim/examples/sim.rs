//! Runs one simulation and writes its outputs, without the CLI:
//! `cargo run --release -p peercloud-sim --example sim -- [farmers] [users] [days] [out] [--sweep]`.

use std::path::PathBuf;

use peercloud_sim::{SimConfig, SweepGrid, run, sweep, write_outputs, write_sweep_outputs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |at: usize, default: usize| args.get(at).and_then(|a| a.parse().ok()).unwrap_or(default);
    let mut config = SimConfig::default().with_agents(number(0, 10_000), number(1, 100_000));
    config.days = number(2, 30) as u32;
    if let Ok(every) = std::env::var("SIM_LEDGER_EVERY") {
        config.ledger_every = every.parse()?;
    }
    let out = PathBuf::from(args.get(3).cloned().unwrap_or_else(|| "sim-out".into()));
    let started = std::time::Instant::now();
    let report = run(&config)?;
    let took = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&report.summary)?);
    println!("ledger: {:?}", report.ledger);
    println!("money balanced: {}", report.money.balanced());
    println!("took {took:.2} s");
    for path in write_outputs(&report, &out)? {
        println!("wrote {}", path.display());
    }
    if args.iter().any(|a| a == "--sweep") {
        let started = std::time::Instant::now();
        let swept = sweep(&config, &SweepGrid::default())?;
        for point in &swept.points {
            println!("{point:?}");
        }
        for path in write_sweep_outputs(&swept, &out)? {
            println!("wrote {}", path.display());
        }
        println!("sweep took {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

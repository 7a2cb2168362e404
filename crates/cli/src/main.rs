//! `peercloud`: the one program farmers and users run. Thin by design — it
//! parses arguments, calls the library crates and prints; the logic lives in
//! the crates below it (see ARCHITECTURE.md).

mod demo;
mod job;
mod paths;
mod wallet;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Peercloud: the people's cloud. Share your machine's idle capacity and be
/// paid for it; rent the grid's capacity and pay only for what you use.
#[derive(Debug, Parser)]
#[command(name = "peercloud", version, about, long_about = None)]
struct Cli {
    /// Where keys and local state live (default: $XDG_DATA_HOME/peercloud or ~/.local/share/peercloud).
    #[arg(long, global = true, env = "PEERCLOUD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show Peercloud working end to end on this machine: jobs in the sandbox,
    /// paid through the ledger, outputs stored encrypted; writes render.png.
    Demo(demo::DemoArgs),
    /// Write, check and run job specs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Your account key: create it, show its id.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEERCLOUD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let data_dir = paths::data_dir(cli.data_dir.as_deref());
    let result = match cli.command {
        Command::Demo(args) => demo::run(args, cli.json),
        Command::Job(cmd) => job::run(cmd, cli.json),
        Command::Wallet(cmd) => data_dir.and_then(|dir| wallet::run(cmd, &dir, cli.json)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

//! `peercloud`: the one program farmers and users run. Thin by design — it
//! parses arguments, calls the library crates and prints; the logic lives in
//! the crates below it (see ARCHITECTURE.md).

mod bucket;
mod cluster;
mod color;
mod demo;
mod devnet;
mod display;
mod earnings;
mod job;
mod lease;
mod ledger;
mod node;
mod node_api;
mod node_status;
mod objects;
mod paths;
mod s3;
mod sim;
mod site;
mod store;
mod tiles;
mod upload;
mod wallet;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// jemalloc, returning freed memory to the system within about a second
/// (`background_thread`, dirty decay 1 s; set in `.cargo/config.toml`): a
/// node that moved a few hundred MiB of chunks goes back to its idle size
/// instead of keeping glibc's arenas resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Which node's API the commands that need one talk to.
    #[command(flatten)]
    node_api: node_api::NodeArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show Peercloud working end to end on this machine: jobs in the sandbox,
    /// paid through the ledger, outputs stored encrypted; writes render.png.
    Demo(demo::DemoArgs),
    /// Run this machine as a grid member: offer capacity, run jobs, store chunks.
    Node(node::NodeArgs),
    /// A local network of node processes for trying Peercloud out.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// Write, check and run job specs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Your account key: create it, show its id, its balance; send tokens.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Store files on the network, encrypted to your wallet; get them back.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// The ledger as the node sees it.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Storage clusters: create one, join it with your node, admit and remove members.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Buckets in a storage cluster: create and fund one, put, get, list and remove
    /// its objects, see its deposit, close it.
    #[command(subcommand)]
    Bucket(bucket::BucketCommand),
    /// Websites: deploy a folder to a public bucket; every node serves it.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// S3: access keys for S3 clients (awscli, rclone, s3cmd, boto3) at the node's S3 gateway.
    #[command(subcommand)]
    S3(s3::S3Command),
    /// Leases: rent a container space over time, run commands in it, close it.
    #[command(subcommand)]
    Lease(lease::LeaseCommand),
    /// Simulate the lease market's economics (farmers, users, auctions, billing)
    /// on the real market and ledger code; writes CSV and SVG charts.
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    let color = color::stderr_color();
    let cli = parse(color);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEERCLOUD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
    let data_dir = paths::data_dir(cli.data_dir.as_deref());
    let result = match cli.command {
        Command::Demo(args) => demo::run(args, cli.json),
        Command::Node(node::NodeArgs {
            command: Some(node::NodeCommand::Earnings { limit }),
            ..
        }) => earnings::run(limit, cli.data_dir.as_deref(), &cli.node_api, cli.json),
        Command::Node(node::NodeArgs {
            command: Some(node::NodeCommand::Status),
            ..
        }) => node_status::run(cli.data_dir.as_deref(), &cli.node_api, cli.json),
        Command::Node(args) => {
            let dir = match cli.data_dir.clone() {
                Some(dir) => Ok(dir),
                None => data_dir.map(|d| d.join("node")),
            };
            dir.and_then(|dir| node::run(args, &dir))
        }
        Command::Devnet(cmd) => data_dir.and_then(|dir| devnet::run(cmd, &dir, cli.json)),
        Command::Job(cmd) => job::run(cmd, cli.data_dir.as_deref(), &cli.node_api, cli.json),
        Command::Wallet(cmd) => {
            data_dir.and_then(|dir| wallet::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::Store(cmd) => {
            data_dir.and_then(|dir| store::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::Ledger(cmd) => ledger::run(cmd, cli.data_dir.as_deref(), &cli.node_api, cli.json),
        Command::Cluster(cmd) => {
            data_dir.and_then(|dir| cluster::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::Bucket(cmd) => {
            data_dir.and_then(|dir| bucket::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::Site(cmd) => {
            data_dir.and_then(|dir| site::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::S3(cmd) => data_dir.and_then(|dir| s3::run(cmd, &dir, &cli.node_api, cli.json)),
        Command::Lease(cmd) => {
            data_dir.and_then(|dir| lease::run(cmd, &dir, &cli.node_api, cli.json))
        }
        Command::Sim(args) => sim::run(args, cli.json),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// The command line, parsed with clap colouring only when `color` says so;
/// exits with clap's message (and status) on bad arguments, `--help`, `--version`.
fn parse(color: bool) -> Cli {
    let mut command = Cli::command().color(color::clap_choice(color));
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(cli) => cli,
        Err(error) => error.format(&mut command).exit(),
    }
}

/// The error and its causes on one line, leaving out a cause whose text the
/// message already carries (many errors name their source in their message).
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

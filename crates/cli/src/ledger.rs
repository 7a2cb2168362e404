//! `peercloud ledger`: the chain as the node sees it — its tip, its state
//! root, whether every token is accounted for, the registered nodes, the jobs.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use peercloud_api::LedgerView;
use peercloud_types::Amount;

use crate::display;
use crate::node_api::{NodeArgs, explain};

/// Ledger commands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Height, tip, state root, supply against what is accounted for, the
    /// registered nodes and the jobs by state.
    Status,
}

/// Runs a ledger command. `data_dir_flag` only locates the default node.
pub fn run(
    cmd: LedgerCommand,
    data_dir_flag: Option<&Path>,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        LedgerCommand::Status => {
            let view = node.connect(data_dir_flag)?.ledger().map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print_status(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_status(view: &LedgerView) {
    println!("height      {}", view.height);
    println!("tip         {}", view.tip);
    println!("state root  {}", view.state_root);
    println!(
        "block time  {} ({})",
        view.time_ms,
        display::relative_time(view.time_ms)
    );
    println!("supply      {}", display::pcl(&view.supply));
    println!(
        "accounted   {} ({})",
        display::pcl(&view.accounted),
        balance_check(&view.supply, &view.accounted)
    );
    println!("accounts    {}", view.accounts);
    println!("nodes       {}", view.nodes.len());
    if !view.nodes.is_empty() {
        println!(
            "  {:<64}  {:<10}  {:>10}  resources",
            "node", "location", "reputation"
        );
        for node in &view.nodes {
            println!(
                "  {:<64}  {:<10}  {:>10}  {}",
                node.node,
                node.location,
                node.reputation,
                display::resources(&node.resources)
            );
            println!("    owner {}", node.owner);
        }
    }
    if view.jobs.is_empty() {
        println!("jobs        none");
    } else {
        let jobs: Vec<String> = view
            .jobs
            .iter()
            .map(|(state, count)| format!("{count} {state}"))
            .collect();
        println!("jobs        {}", jobs.join(", "));
    }
}

/// Whether supply equals what is accounted for.
fn balance_check(supply: &Amount, accounted: &Amount) -> &'static str {
    if supply == accounted {
        "balanced: equals the supply"
    } else {
        "MISMATCH: differs from the supply"
    }
}

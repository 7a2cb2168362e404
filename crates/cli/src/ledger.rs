//! `peercloud ledger`: the chain as the node sees it — its tip, its state
//! root, whether every token is accounted for, the registered nodes, the jobs,
//! and why a node's reputation is what it is.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use peercloud_api::LedgerView;
use peercloud_ledger::params::REPUTATION_START;
use peercloud_types::{Amount, NodeId};

use crate::display;
use crate::node_api::{NodeArgs, explain};

/// Ledger commands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Height, tip, state root, supply against what is accounted for, the
    /// registered nodes and the jobs by state.
    Status,
    /// Why a node's reputation is what it is: each reason, how many times,
    /// at what weight.
    Reputation {
        /// The node (`pcn1…`).
        node: NodeId,
    },
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
        LedgerCommand::Reputation { node: id } => {
            let view = node.connect(data_dir_flag)?.ledger().map_err(explain)?;
            let Some(found) = view.nodes.iter().find(|n| n.node == id) else {
                anyhow::bail!("{id} is not registered on this ledger");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(found)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("node        {}", found.node);
            println!(
                "reputation  {} of 10000 (every node starts at {})",
                found.reputation, REPUTATION_START
            );
            for line in found.reputation_explained.iter().filter(|l| l.count > 0) {
                println!(
                    "  {:>+7}  {:>5} × {:>+5}  {}",
                    line.total, line.count, line.weight, line.reason
                );
            }
            if found.reputation_explained.iter().all(|l| l.count == 0) {
                println!("  nothing has moved it yet");
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

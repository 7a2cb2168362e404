//! `peercloud devnet up --nodes N`: a validator and N providers as separate
//! `peercloud node` processes on loopback with a shared genesis that funds
//! your wallet, and a storage cluster every provider is a member of; prints
//! their addresses, the cluster and a ready line, stops them on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use peercloud_devnet::{Devnet, UpOptions, init};
use peercloud_types::Keypair;

use crate::paths;

/// Devnet commands.
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Start a validator and N providers on this machine until Ctrl-C.
    Up(UpArgs),
}

/// Options of `devnet up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Providers to start (plus one validator).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Where the devnet lives (default: <data-dir>/devnet).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Start from a new genesis even if the directory holds a devnet.
    #[arg(long)]
    fresh: bool,
}

/// The user's wallet, created if missing.
pub fn wallet(data_dir: &Path) -> anyhow::Result<Keypair> {
    let path = paths::wallet_key(data_dir);
    if !path.exists() {
        Keypair::generate()
            .save(&path)
            .with_context(|| format!("creating wallet {}", path.display()))?;
    }
    Keypair::load(&path).with_context(|| format!("loading wallet {}", path.display()))
}

/// Runs `devnet` commands.
pub fn run(command: DevnetCommand, data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let DevnetCommand::Up(args) = command;
    let dir = args.dir.unwrap_or_else(|| data_dir.join("devnet"));
    if args.fresh && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let user = wallet(data_dir)?;
    let created = init(&dir, args.nodes, &user.account_id())?;
    let options = UpOptions {
        exe: std::env::current_exe().context("finding the peercloud executable")?,
        env: Vec::new(),
        log: std::env::var("PEERCLOUD_LOG").ok(),
        netns: Vec::new(),
    };
    eprintln!(
        "{} devnet in {} ({} providers)…",
        if created {
            "starting a new"
        } else {
            "restarting the"
        },
        dir.display(),
        args.nodes
    );
    let mut devnet = Devnet::up(&dir, args.nodes, &options)?;
    if json {
        let nodes: Vec<_> = devnet
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.name, "node": n.ready.node, "role": n.ready.role,
                    "p2p": n.ready.p2p, "api": n.ready.api, "web": n.ready.web, "dir": n.dir,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "dir": dir, "nodes": nodes, "cluster": devnet.cluster })
        );
    } else {
        for n in &devnet.nodes {
            println!(
                "{:<7} {:<9} api {}  web {}  p2p {}",
                n.name,
                n.ready.role,
                n.ready.api,
                n.ready.web.as_deref().unwrap_or("-"),
                n.ready.p2p
            );
        }
        println!("cluster {} (every provider a member)", devnet.cluster);
        println!(
            "ready: {} nodes; wallet {} funded; try `peercloud wallet balance` or \
             `peercloud bucket create {} --deposit 10`",
            devnet.nodes.len(),
            user.account_id(),
            devnet.cluster
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    eprintln!("stopping…");
    devnet.stop();
    Ok(ExitCode::SUCCESS)
}

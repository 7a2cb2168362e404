//! `peercloud wallet`: the account key. It is created on this machine and
//! never leaves it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use peercloud_types::Keypair;

use crate::paths::wallet_key;

/// Wallet commands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a new account key in the data directory (refuses to overwrite one).
    New,
    /// Show the account id (and the key file's path).
    Show,
}

/// Runs a wallet command.
pub fn run(cmd: WalletCommand, data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let path = wallet_key(data_dir);
    let key = match cmd {
        WalletCommand::New => {
            if path.exists() {
                bail!(
                    "a wallet key already exists at {}; it holds your tokens, so it is never overwritten",
                    path.display()
                );
            }
            let key = Keypair::generate();
            key.save(&path).context("saving the new wallet key")?;
            key
        }
        WalletCommand::Show => Keypair::load(&path).with_context(|| {
            format!(
                "no usable wallet key at {} (create one with `peercloud wallet new`)",
                path.display()
            )
        })?,
    };
    if json {
        let value = serde_json::json!({
            "account": key.account_id().to_string(),
            "key_file": path.display().to_string(),
        });
        println!("{value}");
    } else {
        println!("account  {}", key.account_id());
        println!("key file {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

//! `peercloud wallet`: the account key, and what the ledger holds for it. The
//! key is created on this machine and never leaves it: transfers are signed
//! here and only the signed transaction goes to the node.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use peercloud_client::submit_signed;
use peercloud_ledger::TxKind;
use peercloud_types::{AccountId, Amount, Keypair};

use crate::display;
use crate::node_api::{NodeArgs, explain};
use crate::paths::wallet_key;

/// Wallet commands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a new account key in the data directory (refuses to overwrite one).
    New,
    /// Show the account id (and the key file's path).
    Show,
    /// Show an account's balance, stake and next nonce, as the node's ledger has them.
    Balance {
        /// The account (pc1...; default: your wallet's).
        account: Option<AccountId>,
    },
    /// Send tokens from your wallet to another account; waits until the
    /// transfer is in a block. The fee is 0.0001 PCL.
    Transfer {
        /// The receiving account (pc1...).
        to: AccountId,
        /// How many PCL, like 1.5 (up to 9 decimals).
        #[arg(allow_hyphen_values = true)]
        amount: Amount,
    },
}

/// Runs a wallet command.
pub fn run(
    cmd: WalletCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = wallet_key(data_dir);
    let key = match cmd {
        WalletCommand::Balance { account } => return balance(account, data_dir, node, json),
        WalletCommand::Transfer { to, amount } => {
            return transfer(&to, amount, data_dir, node, json);
        }
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
        WalletCommand::Show => load_wallet(data_dir)?,
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

/// The wallet key in `data_dir`, or an error saying how to make one.
pub fn load_wallet(data_dir: &Path) -> anyhow::Result<Keypair> {
    let path = wallet_key(data_dir);
    Keypair::load(&path).with_context(|| {
        format!(
            "no usable wallet key at {} (create one with `peercloud wallet new`)",
            path.display()
        )
    })
}

fn balance(
    account: Option<AccountId>,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let account = match account {
        Some(account) => account,
        None => load_wallet(data_dir)?.account_id(),
    };
    let client = node.connect(Some(data_dir))?;
    let view = client.account(&account).map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("account  {}", view.account);
        println!("balance  {}", display::pcl(&view.balance));
        println!("stake    {}", display::pcl(&view.stake));
        println!("nonce    {} (next)", view.next_nonce);
    }
    Ok(ExitCode::SUCCESS)
}

fn transfer(
    to: &AccountId,
    amount: Amount,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if amount.is_zero() {
        bail!("the amount to transfer must be more than 0 PCL");
    }
    let wallet = load_wallet(data_dir)?;
    if wallet.account_id() == *to {
        bail!("{to} is your own wallet: a transfer to yourself would only pay the fee");
    }
    let client = node.connect(Some(data_dir))?;
    let kind = TxKind::Transfer { to: *to, amount };
    let receipt = submit_signed(&client, &wallet, kind, true)
        .map_err(explain)
        .with_context(|| format!("transferring {amount} PCL to {to}"))?;
    if json {
        let value = serde_json::json!({
            "from": wallet.account_id().to_string(),
            "to": to.to_string(),
            "amount": amount.to_string(),
            "fee": receipt.fee.to_string(),
            "tx": receipt.hash.to_string(),
            "height": receipt.height,
            "events": receipt.events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("sent     {amount} PCL to {to} (fee {} PCL)", receipt.fee);
        println!("tx       {}", receipt.hash);
        match receipt.height {
            Some(height) => println!("block    {height}"),
            None => println!("block    not yet (the node accepted it for the next block)"),
        }
        for event in &receipt.events {
            println!("  {event:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

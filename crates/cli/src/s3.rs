//! `peercloud s3 key create|list|delete`: the access keys S3 clients sign
//! with at a node's S3 gateway. A key acts as this wallet: the node keeps
//! it (with the wallet's secret) in its data directory, mode 0600, and
//! seals, signs and pays with it for whoever holds the key's secret.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use peercloud_ledger::ClusterId;
use peercloud_node::s3::keys::{S3_KEYS_FILE, S3Key, S3Keys};
use peercloud_types::Amount;

use crate::node_api::{NodeArgs, explain};
use crate::paths;
use crate::wallet::load_wallet;

/// What a bucket created through a key is funded with unless the key says.
const DEPOSIT_DEFAULT: &str = "10";

/// `peercloud s3 …`.
#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// Access keys for S3 clients at this node's S3 gateway.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `peercloud s3 key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an access key acting as this wallet; prints its secret (once)
    /// and how to point awscli at the gateway.
    Create {
        /// Where buckets created through the key go (default: the only
        /// cluster on the ledger).
        #[arg(long)]
        cluster: Option<ClusterId>,
        /// What each bucket created through the key is funded with, PCL.
        #[arg(long, default_value = DEPOSIT_DEFAULT)]
        deposit: Amount,
    },
    /// The node's access keys (ids and wallets, never secrets).
    List,
    /// Delete an access key: requests signed with it are refused at once.
    Delete {
        /// The access key id.
        access_key: String,
    },
}

/// Runs an `s3` command.
pub fn run(
    cmd: S3Command,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let S3Command::Key(cmd) = cmd;
    let node_dir = node_dir(node, data_dir)?;
    let keys_file = node_dir.join(S3_KEYS_FILE);
    let mut keys = S3Keys::load(&keys_file)?;
    match cmd {
        KeyCommand::Create { cluster, deposit } => {
            let client = node.connect(Some(data_dir))?;
            let wallet = load_wallet(data_dir)?;
            let cluster = match cluster {
                Some(cluster) => cluster,
                None => {
                    let clusters = client.clusters().map_err(explain)?;
                    match clusters.as_slice() {
                        [one] => one.id,
                        [] => bail!(
                            "the ledger has no storage cluster yet: create one (`peercloud cluster create`)"
                        ),
                        _ => bail!(
                            "the ledger has {} clusters: say which with --cluster",
                            clusters.len()
                        ),
                    }
                }
            };
            let key = S3Key::generate(&wallet, cluster, deposit)?;
            keys.keys.push(key.clone());
            keys.save(&keys_file)?;
            let endpoint = client.status().map_err(explain)?.s3;
            if json {
                let fields = serde_json::json!({
                    "access_key": key.access_key,
                    "secret_key": key.secret_key,
                    "wallet": wallet.account_id(),
                    "cluster": cluster,
                    "deposit": deposit,
                    "endpoint": endpoint,
                    "file": keys_file,
                });
                println!("{}", serde_json::to_string_pretty(&fields)?);
            } else {
                println!("access key  {}", key.access_key);
                println!(
                    "secret key  {}   (shown once: the node keeps it in {})",
                    key.secret_key,
                    keys_file.display()
                );
                println!("wallet      {}", wallet.account_id());
                println!(
                    "new buckets {cluster}, {} each",
                    crate::display::pcl(&deposit)
                );
                if let Some(endpoint) = &endpoint {
                    println!("endpoint    {endpoint}");
                    println!();
                    println!(
                        "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
                        key.access_key, key.secret_key
                    );
                    println!(
                        "  aws --endpoint-url {endpoint} --region us-east-1 s3 mb s3://my-bucket"
                    );
                }
            }
        }
        KeyCommand::List => {
            if json {
                let listed: Vec<_> = keys
                    .keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "access_key": k.access_key,
                            "wallet": k.wallet().account_id(),
                            "cluster": k.cluster,
                            "deposit": k.deposit,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else if keys.keys.is_empty() {
                println!("no access keys: `peercloud s3 key create` makes one");
            } else {
                for k in &keys.keys {
                    println!(
                        "{}  {}  {}",
                        k.access_key,
                        k.wallet().account_id(),
                        k.cluster
                    );
                }
            }
        }
        KeyCommand::Delete { access_key } => {
            let before = keys.keys.len();
            keys.keys.retain(|k| k.access_key != access_key);
            if keys.keys.len() == before {
                bail!("no access key {access_key:?} in {}", keys_file.display());
            }
            keys.save(&keys_file)?;
            if json {
                println!("{}", serde_json::json!({ "deleted": access_key }));
            } else {
                println!("deleted {access_key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The data directory of the node whose gateway the keys are for.
fn node_dir(node: &NodeArgs, data_dir: &Path) -> anyhow::Result<PathBuf> {
    match (&node.node_dir, &node.node_url) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(url)) => bail!(
            "the keys live in the node's data directory, which {url} does not say: pass --node-dir DIR"
        ),
        (None, None) => Ok(paths::default_node_dir(data_dir)),
    }
    .and_then(|dir| {
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(anyhow::anyhow!("{} is not a node's data directory", dir.display()))
                .context("finding the node's S3 keys")
        }
    })
}

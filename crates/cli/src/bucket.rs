//! `peercloud bucket`: buckets in a storage cluster, funded by a deposit the
//! cluster bills period by period. Create one (and fund it), top it up, see
//! how long its deposit lasts, close it (the rest comes back), list yours.
//! Every transaction is signed here with the wallet and waits for its block.
//! The objects in a bucket (put, get, ls, rm, head) are `objects.rs`'s.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use peercloud_api::{BucketState, BucketView};
use peercloud_client::NodeClient;
use peercloud_ledger::{BucketId, ClusterId, StorageEvent, TxKind};
use peercloud_types::{Amount, Keypair};

use crate::cluster::{block_line, duration_text, print_json, storage_events, submit};
use crate::display;
use crate::node_api::{NodeArgs, explain};
use crate::objects::{self, GetArgs, KeyArgs, LsArgs, PutArgs};
use crate::wallet::load_wallet;

/// Bucket commands: the bucket itself, then the objects in it.
#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// Create a bucket in a cluster, owned by your wallet, and print its id;
    /// with --deposit, fund it too.
    Create {
        /// The cluster (cluster:<hex>, or the hex alone; `peercloud cluster ls`).
        cluster: ClusterId,
        /// Objects readable by anyone (plaintext) instead of sealed to you.
        #[arg(long)]
        public: bool,
        /// PCL to deposit into it at once.
        #[arg(long, value_name = "PCL")]
        deposit: Option<Amount>,
    },
    /// Add PCL to a bucket's deposit (anyone may fund any bucket).
    Deposit {
        /// The bucket (bucket:<hex>, or the hex alone).
        bucket: BucketId,
        /// How many PCL, like 5 or 0.5.
        amount: Amount,
    },
    /// Show a bucket: its deposit, status and how long the deposit lasts.
    Info {
        /// The bucket.
        bucket: BucketId,
    },
    /// Close your bucket: its storage is billed up to now and the rest of
    /// the deposit comes back to you.
    Close {
        /// The bucket.
        bucket: BucketId,
    },
    /// List the buckets your wallet owns.
    Mine,
    /// Store a file (or standard input, `-`) in your bucket under a key,
    /// encrypted to your wallet (in the clear in a public bucket); replaces
    /// what the key named before.
    Put(PutArgs),
    /// Fetch an object of your bucket (or of anyone's public bucket, no
    /// wallet needed) by its key, verify and decrypt it.
    Get(GetArgs),
    /// List the objects of a bucket (under a prefix): size, time, key.
    Ls(LsArgs),
    /// Remove an object from your bucket.
    Rm(KeyArgs),
    /// Show what a key names: size, manifest, when it was written.
    Head(KeyArgs),
}

/// Runs a bucket command.
pub fn run(
    cmd: BucketCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = node.connect(Some(data_dir))?;
    match cmd {
        BucketCommand::Create {
            cluster,
            public,
            deposit,
        } => create(
            &client,
            &load_wallet(data_dir)?,
            &cluster,
            public,
            deposit,
            json,
        ),
        BucketCommand::Deposit { bucket, amount } => {
            deposit(&client, &load_wallet(data_dir)?, &bucket, amount, json)
        }
        BucketCommand::Info { bucket } => {
            let view = client.bucket(&bucket).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
                for line in warnings(&view) {
                    eprintln!("warning: {line}");
                }
            } else {
                print_bucket(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
        BucketCommand::Close { bucket } => close(&client, &load_wallet(data_dir)?, &bucket, json),
        BucketCommand::Mine => mine(&client, &load_wallet(data_dir)?, json),
        BucketCommand::Put(args) => objects::put(&client, data_dir, args, json),
        BucketCommand::Get(args) => objects::get(&client, data_dir, args, json),
        BucketCommand::Ls(args) => objects::ls(&client, args, json),
        BucketCommand::Rm(args) => objects::rm(&client, data_dir, args, json),
        BucketCommand::Head(args) => objects::head(&client, args, json),
    }
}

fn create(
    client: &NodeClient,
    wallet: &Keypair,
    cluster: &ClusterId,
    public: bool,
    deposit: Option<Amount>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if deposit.is_some_and(Amount::is_zero) {
        bail!("a deposit must be more than 0 PCL (leave --deposit out to fund the bucket later)");
    }
    let what = format!("creating a bucket in {cluster}");
    // Said here in the user's words before anything is signed.
    client
        .cluster(cluster)
        .map_err(explain)
        .with_context(|| what.clone())?;
    let kind = TxKind::CreateBucket {
        cluster: *cluster,
        public,
    };
    let (nonce, receipt) = submit(client, wallet, kind, &what)?;
    let bucket = BucketId::derive(&wallet.account_id(), nonce);
    let created = storage_events(&receipt)
        .any(|e| matches!(e, StorageEvent::BucketCreated { bucket: b, .. } if *b == bucket));
    if !created {
        bail!(
            "the block holding the transaction shows no new {bucket}: another transaction of \
             this wallet took nonce {nonce}; `peercloud bucket mine` lists your buckets"
        );
    }
    let funded = match deposit {
        Some(amount) => {
            let kind = TxKind::DepositBucket { bucket, amount };
            let what = format!("depositing {amount} PCL into the new {bucket}");
            Some(submit(client, wallet, kind, &what)?.1)
        }
        None => None,
    };
    let view = client.bucket(&bucket).map_err(explain)?;
    if json {
        let fields = serde_json::json!({
            "bucket": bucket,
            "cluster": cluster,
            "owner": wallet.account_id(),
            "public": public,
            "deposit": view.deposit,
            "deposit_tx": funded.as_ref().map(|r| r.hash.to_string()),
        });
        print_json(fields, &receipt)?;
    } else {
        println!("created  {bucket}");
        println!("cluster  {cluster}");
        println!("access   {}", access(public));
        println!("{}", block_line(&receipt));
        match &funded {
            Some(funded) => {
                println!("deposit  {}", display::pcl(&view.deposit));
                println!("{}", block_line(funded));
            }
            None => println!(
                "fund it with `peercloud bucket deposit {bucket} PCL` before storing anything"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn deposit(
    client: &NodeClient,
    wallet: &Keypair,
    bucket: &BucketId,
    amount: Amount,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if amount.is_zero() {
        bail!("the amount to deposit must be more than 0 PCL");
    }
    let kind = TxKind::DepositBucket {
        bucket: *bucket,
        amount,
    };
    let what = format!("depositing {amount} PCL into {bucket}");
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    let view = client.bucket(bucket).map_err(explain)?;
    if json {
        let fields = serde_json::json!({
            "bucket": bucket,
            "deposited": amount,
            "deposit": view.deposit,
            "status": view.status,
        });
        print_json(fields, &receipt)?;
    } else {
        println!("deposited {} into {bucket}", display::pcl(&amount));
        println!("deposit  {} now", display::pcl(&view.deposit));
        println!("{}", block_line(&receipt));
        for line in warnings(&view) {
            println!("warning: {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn close(
    client: &NodeClient,
    wallet: &Keypair,
    bucket: &BucketId,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let kind = TxKind::CloseBucket { bucket: *bucket };
    let what = format!("closing {bucket}");
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    let mut refund = Amount::ZERO;
    let mut charged = Amount::ZERO;
    for event in storage_events(&receipt) {
        match event {
            StorageEvent::BucketEnded {
                bucket: b,
                refund: r,
                ..
            } if b == bucket => refund = *r,
            StorageEvent::BucketBilled {
                bucket: b,
                period: None,
                paid,
                ..
            } if b == bucket => charged = *paid,
            _ => {}
        }
    }
    if json {
        let fields = serde_json::json!({ "bucket": bucket, "billed": charged, "refund": refund });
        print_json(fields, &receipt)?;
    } else {
        println!("closed   {bucket}");
        println!("billed   {} for storage up to now", display::pcl(&charged));
        println!("refund   {} back to you", display::pcl(&refund));
        println!("{}", block_line(&receipt));
    }
    Ok(ExitCode::SUCCESS)
}

fn mine(client: &NodeClient, wallet: &Keypair, json: bool) -> anyhow::Result<ExitCode> {
    let owner = wallet.account_id();
    let buckets = client.buckets_of(&owner).map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&buckets)?);
        return Ok(ExitCode::SUCCESS);
    }
    if buckets.is_empty() {
        println!("{owner} owns no buckets (create one with `peercloud bucket create CLUSTER`)");
        return Ok(ExitCode::SUCCESS);
    }
    for view in &buckets {
        println!("{}", view.id);
        println!(
            "  {}, {}, deposit {}, {} stored, in {}",
            view.status,
            access(view.public),
            display::pcl(&view.deposit),
            display::bytes(view.stored_bytes),
            view.cluster
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn access(public: bool) -> &'static str {
    if public {
        "public (plaintext, readable by anyone)"
    } else {
        "private (sealed to the owner)"
    }
}

/// What a bucket's owner should hear about at once: a low deposit, a
/// read-only bucket.
fn warnings(view: &BucketView) -> Vec<String> {
    let mut lines = Vec::new();
    if view.status == BucketState::ReadOnly {
        let since = view.read_only_since_ms.map_or_else(String::new, |ms| {
            format!(" since {}", display::relative_time(ms))
        });
        let grace = view.grace_ends_ms.map_or_else(String::new, |ms| {
            format!("; it may expire {}", display::relative_time(ms))
        });
        lines.push(format!(
            "the bucket is read-only{since}: its deposit ran short, so writes are refused until a \
             deposit covers a period (`peercloud bucket deposit {} PCL`){grace}",
            view.id
        ));
    }
    if view.low_warned {
        lines.push(format!(
            "the deposit is low: {} covers fewer than 3 periods at {} per period; top it up with \
             `peercloud bucket deposit {} PCL`",
            display::pcl(&view.deposit),
            display::pcl(&view.period_charge),
            view.id
        ));
    }
    lines
}

fn print_bucket(view: &BucketView) {
    println!("bucket   {}", view.id);
    println!("owner    {}", view.owner);
    println!("cluster  {}", view.cluster);
    println!("access   {}", access(view.public));
    println!("status   {}", view.status);
    println!(
        "deposit  {} (deposited {}, paid out {})",
        display::pcl(&view.deposit),
        display::pcl(&view.deposited),
        display::pcl(&view.released)
    );
    println!("stored   {}", display::bytes(view.stored_bytes));
    let ended = matches!(view.status, BucketState::Closed | BucketState::Expired);
    if !ended {
        let period = duration_text(view.billing_period_ms);
        println!(
            "charge   {} per period of {period} (last bill {})",
            display::pcl(&view.period_charge),
            display::pcl(&view.last_charge)
        );
        match view.periods_covered {
            Some(periods) => println!("covers   {periods} more periods at that charge"),
            None => println!("covers   nothing to charge yet"),
        }
    }
    println!(
        "billed   up to {} (period {} next)",
        display::relative_time(view.billed_until_ms),
        view.next_period
    );
    for line in warnings(view) {
        println!("warning: {line}");
    }
}

//! `peercloud cluster`: storage clusters on the ledger. A manager creates
//! one with its terms; a farmer offers a node to it (locking the cluster's
//! node stake); the managers admit or remove members, together when the
//! cluster's threshold asks for several. Every transaction is signed here
//! with the wallet and waits for its block; the ledger's refusals (unknown
//! cluster, not a manager, not enough PCL) come back in its own words.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use peercloud_api::{ClusterView, TxReceipt};
use peercloud_client::{NodeClient, submit_signed};
use peercloud_devnet::amounts::{
    CLUSTER_BILLING_PERIOD_MS, CLUSTER_GRACE_MS, CLUSTER_MANAGER_FEE_BPS,
    CLUSTER_NODE_STAKE_TOKENS, CLUSTER_PRICE_PER_GIB_MONTH, CLUSTER_PRICE_PER_GIB_SERVED,
};
use peercloud_ledger::{
    ClusterAction, ClusterId, ClusterTerms, Event, Redundancy, StorageEvent, TxKind,
};
use peercloud_types::{AccountId, Amount, Keypair, NodeId};

use crate::display;
use crate::node_api::{NodeArgs, explain};
use crate::wallet::load_wallet;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a storage cluster run by managers (by default your wallet
    /// alone) and print its id. The creator receives the managers' fee.
    Create(CreateArgs),
    /// Offer a node to a cluster, signed by your wallet (the node's owner):
    /// locks the cluster's node stake; the node is pending until the
    /// managers admit it.
    Join {
        /// The cluster (cluster:<hex>, or the hex alone).
        cluster: ClusterId,
        /// Bytes the node offers, like 20GiB or 1073741824 (default: the
        /// storage it registered).
        #[arg(long, value_name = "BYTES", value_parser = parse_capacity)]
        capacity: Option<u64>,
        /// The node (pcn1…; default: the node the API options point at).
        #[arg(long, value_name = "NODE")]
        node_id: Option<NodeId>,
    },
    /// Propose admitting a pending node (managers only); it executes once
    /// the cluster's threshold of managers approved.
    Admit {
        /// The cluster.
        cluster: ClusterId,
        /// The pending node (pcn1…).
        node: NodeId,
    },
    /// Propose removing a member (managers only); its stake goes back to its owner.
    Remove {
        /// The cluster.
        cluster: ClusterId,
        /// The member (pcn1…).
        node: NodeId,
    },
    /// Approve another manager's proposal (managers only).
    Approve {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal's id, as `cluster admit` or `cluster status` printed it.
        proposal: u64,
    },
    /// Take your node out of a cluster; its stake comes back to you.
    Leave {
        /// The cluster.
        cluster: ClusterId,
        /// Your node (pcn1…).
        node: NodeId,
    },
    /// Show a cluster: managers, terms, members, open proposals.
    Status {
        /// The cluster.
        cluster: ClusterId,
    },
    /// List the clusters on the ledger.
    Ls,
}

/// Options of `cluster create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("redundancy").required(true).args(["replicas", "erasure"])))]
pub struct CreateArgs {
    /// A manager account (pc1…); repeat for several (default: your wallet alone).
    #[arg(long = "manager", value_name = "ACCOUNT")]
    managers: Vec<AccountId>,
    /// Approvals a decision needs.
    #[arg(long, default_value_t = 1)]
    threshold: u8,
    /// Keep whole copies on N nodes.
    #[arg(long, value_name = "N")]
    replicas: Option<u8>,
    /// Reed-Solomon K+M: any K of K+M pieces rebuild a segment (4+2 survives two lost nodes).
    #[arg(long, value_name = "K+M", value_parser = parse_erasure)]
    erasure: Option<Redundancy>,
    /// Price of a GiB stored for a month (30 days), PCL.
    #[arg(long, value_name = "PCL", default_value_t = CLUSTER_PRICE_PER_GIB_MONTH)]
    price_gib_month: Amount,
    /// Price of a GiB served, PCL.
    #[arg(long, value_name = "PCL", default_value_t = CLUSTER_PRICE_PER_GIB_SERVED)]
    price_gib_served: Amount,
    /// The managers' fee on every bill, basis points (500 = 5%).
    #[arg(long, value_name = "N", default_value_t = CLUSTER_MANAGER_FEE_BPS)]
    fee_bps: u32,
    /// Stake a node locks to join, PCL.
    #[arg(long, value_name = "PCL", default_value_t = Amount::from_tokens(CLUSTER_NODE_STAKE_TOKENS))]
    node_stake: Amount,
    /// Length of a billing period, like 1m, 1h or 30d (default: 1m, the devnet's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    period: Option<u64>,
    /// How long a bucket that ran out stays read-only before it may expire,
    /// at least one period (default: 10m, the devnet's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    grace: Option<u64>,
}

/// Runs a cluster command.
pub fn run(
    cmd: ClusterCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = node.connect(Some(data_dir))?;
    match cmd {
        ClusterCommand::Create(args) => create(&client, &load_wallet(data_dir)?, args, json),
        ClusterCommand::Join {
            cluster,
            capacity,
            node_id,
        } => join(
            &client,
            &load_wallet(data_dir)?,
            &cluster,
            capacity,
            node_id,
            json,
        ),
        ClusterCommand::Admit { cluster, node } => propose(
            &client,
            &load_wallet(data_dir)?,
            &cluster,
            ClusterAction::Admit(node),
            json,
        ),
        ClusterCommand::Remove { cluster, node } => propose(
            &client,
            &load_wallet(data_dir)?,
            &cluster,
            ClusterAction::Remove(node),
            json,
        ),
        ClusterCommand::Approve { cluster, proposal } => {
            approve(&client, &load_wallet(data_dir)?, &cluster, proposal, json)
        }
        ClusterCommand::Leave { cluster, node } => {
            leave(&client, &load_wallet(data_dir)?, &cluster, &node, json)
        }
        ClusterCommand::Status { cluster } => {
            let view = client.cluster(&cluster).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print_cluster(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Ls => list(&client, json),
    }
}

/// Signs `kind` with `wallet`, submits it and waits for its block; returns
/// the nonce it carried (ids derive from it) and the receipt. `what` says
/// what it was for in an error.
pub fn submit(
    client: &NodeClient,
    wallet: &Keypair,
    kind: TxKind,
    what: &str,
) -> anyhow::Result<(u64, TxReceipt)> {
    let nonce = client
        .account(&wallet.account_id())
        .map_err(explain)
        .with_context(|| what.to_owned())?
        .next_nonce;
    let receipt = submit_signed(client, wallet, kind, true)
        .map_err(explain)
        .with_context(|| what.to_owned())?;
    Ok((nonce, receipt))
}

/// The storage events of a receipt's block.
pub fn storage_events(receipt: &TxReceipt) -> impl Iterator<Item = &StorageEvent> {
    receipt.events.iter().filter_map(|event| match event {
        Event::Storage(storage) => Some(storage),
        _ => None,
    })
}

/// The transaction's hash and block, for JSON output.
pub fn tx_json(receipt: &TxReceipt) -> serde_json::Value {
    serde_json::json!({
        "tx": receipt.hash.to_string(),
        "fee": receipt.fee.to_string(),
        "height": receipt.height,
    })
}

/// Prints `fields` (and the receipt's transaction) as one JSON object.
pub fn print_json(mut fields: serde_json::Value, receipt: &TxReceipt) -> anyhow::Result<()> {
    if let (Some(object), serde_json::Value::Object(tx)) =
        (fields.as_object_mut(), tx_json(receipt))
    {
        object.extend(tx);
    }
    println!("{}", serde_json::to_string_pretty(&fields)?);
    Ok(())
}

/// The block line of a receipt's text output.
pub fn block_line(receipt: &TxReceipt) -> String {
    match receipt.height {
        Some(height) => format!("tx       {} in block {height}", receipt.hash),
        None => format!("tx       {} (not in a block yet)", receipt.hash),
    }
}

fn create(
    client: &NodeClient,
    wallet: &Keypair,
    args: CreateArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let redundancy = match (args.replicas, args.erasure) {
        (Some(copies), _) => Redundancy::Replicas(copies),
        (None, Some(erasure)) => erasure,
        (None, None) => bail!("say how the cluster keeps data: --replicas N or --erasure K+M"),
    };
    let managers = if args.managers.is_empty() {
        vec![wallet.account_id()]
    } else {
        args.managers
    };
    let terms = ClusterTerms {
        redundancy,
        price_per_gib_month: args.price_gib_month,
        price_per_gib_served: args.price_gib_served,
        manager_fee_bps: args.fee_bps,
        node_stake: args.node_stake,
        billing_period_ms: args.period.unwrap_or(CLUSTER_BILLING_PERIOD_MS),
        grace_ms: args.grace.unwrap_or(CLUSTER_GRACE_MS),
    };
    let kind = TxKind::CreateCluster {
        managers: managers.clone(),
        threshold: args.threshold,
        terms,
    };
    let (nonce, receipt) = submit(client, wallet, kind, "creating a cluster")?;
    let cluster = ClusterId::derive(&wallet.account_id(), nonce);
    let created = storage_events(&receipt)
        .any(|e| matches!(e, StorageEvent::ClusterCreated { cluster: c, .. } if *c == cluster));
    if !created {
        bail!(
            "the block holding the transaction shows no new {cluster}: another transaction of \
             this wallet took nonce {nonce}; `peercloud cluster ls` lists the clusters there are"
        );
    }
    let view = client.cluster(&cluster).map_err(explain)?;
    if json {
        let fields = serde_json::json!({
            "cluster": view.id,
            "creator": view.creator,
            "managers": view.managers,
            "threshold": view.threshold,
            "terms": view.terms,
        });
        print_json(fields, &receipt)?;
    } else {
        println!("created  {cluster}");
        println!(
            "managers {} of {}",
            view.threshold,
            join_ids(&view.managers)
        );
        print_terms(&view);
        println!("{}", block_line(&receipt));
        println!("farmers join it with `peercloud cluster join {cluster}`");
    }
    Ok(ExitCode::SUCCESS)
}

fn join(
    client: &NodeClient,
    wallet: &Keypair,
    cluster: &ClusterId,
    capacity: Option<u64>,
    node_id: Option<NodeId>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let view = client.cluster(cluster).map_err(explain)?;
    let node = match node_id {
        Some(node) => node,
        None => client.status().map_err(explain)?.node,
    };
    let capacity_bytes = match capacity {
        Some(bytes) => bytes,
        None => {
            let ledger = client.ledger().map_err(explain)?;
            ledger
                .nodes
                .iter()
                .find(|n| n.node == node)
                .map(|n| n.resources.storage_bytes)
                .with_context(|| {
                    format!("node {node} is not registered on the ledger: register it first (run `peercloud node`)")
                })?
        }
    };
    let kind = TxKind::JoinCluster {
        cluster: *cluster,
        node,
        capacity_bytes,
    };
    let what = format!("joining node {node} to {cluster}");
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    if json {
        let fields = serde_json::json!({
            "cluster": cluster,
            "node": node,
            "capacity_bytes": capacity_bytes,
            "stake": view.terms.node_stake,
            "status": "pending",
        });
        print_json(fields, &receipt)?;
    } else {
        println!("joined   {cluster}");
        println!(
            "node     {node} ({} offered)",
            display::bytes(capacity_bytes)
        );
        println!("stake    {} locked", display::pcl(&view.terms.node_stake));
        println!("{}", block_line(&receipt));
        println!("pending: a manager admits it with `peercloud cluster admit {cluster} {node}`");
    }
    Ok(ExitCode::SUCCESS)
}

fn propose(
    client: &NodeClient,
    wallet: &Keypair,
    cluster: &ClusterId,
    action: ClusterAction,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let what = match action {
        ClusterAction::Admit(node) => format!("proposing to admit node {node} to {cluster}"),
        ClusterAction::Remove(node) => format!("proposing to remove node {node} from {cluster}"),
        ClusterAction::SetTerms(_) => format!("proposing new terms for {cluster}"),
    };
    let kind = TxKind::ProposeCluster {
        cluster: *cluster,
        action,
    };
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    let proposal = storage_events(&receipt)
        .find_map(|e| match e {
            StorageEvent::ClusterProposed {
                cluster: c,
                proposal,
                action: a,
            } if c == cluster && *a == action => Some(*proposal),
            _ => None,
        })
        .with_context(|| {
            format!("the block holding the proposal shows no proposal of {cluster}")
        })?;
    decision(client, cluster, proposal, &receipt, json)
}

fn approve(
    client: &NodeClient,
    wallet: &Keypair,
    cluster: &ClusterId,
    proposal: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let kind = TxKind::ApproveCluster {
        cluster: *cluster,
        proposal,
    };
    let what = format!("approving proposal {proposal} of {cluster}");
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    decision(client, cluster, proposal, &receipt, json)
}

/// Prints whether `proposal` executed in `receipt`'s block or how many
/// approvals it still waits for.
fn decision(
    client: &NodeClient,
    cluster: &ClusterId,
    proposal: u64,
    receipt: &TxReceipt,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let executed = storage_events(receipt).any(|e| {
        matches!(e, StorageEvent::ClusterDecided { cluster: c, proposal: p, .. }
            if c == cluster && *p == proposal)
    });
    let view = client.cluster(cluster).map_err(explain)?;
    let open = view.proposals.iter().find(|p| p.id == proposal);
    let approvals = open.map_or(usize::from(view.threshold), |p| p.approvals.len());
    let threshold = usize::from(view.threshold);
    if json {
        let fields = serde_json::json!({
            "cluster": cluster,
            "proposal": proposal,
            "executed": executed,
            "approvals": approvals,
            "threshold": threshold,
            "action": open.map(|p| p.action),
        });
        print_json(fields, receipt)?;
    } else if executed {
        println!("proposal {proposal} of {cluster}: executed");
        println!("{}", block_line(receipt));
    } else {
        println!(
            "proposal {proposal} of {cluster}: {approvals} of {threshold} approvals; waits for {} more",
            threshold.saturating_sub(approvals)
        );
        println!("{}", block_line(receipt));
        println!("other managers approve it with `peercloud cluster approve {cluster} {proposal}`");
    }
    Ok(ExitCode::SUCCESS)
}

fn leave(
    client: &NodeClient,
    wallet: &Keypair,
    cluster: &ClusterId,
    node: &NodeId,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let kind = TxKind::LeaveCluster {
        cluster: *cluster,
        node: *node,
    };
    let what = format!("taking node {node} out of {cluster}");
    let (_, receipt) = submit(client, wallet, kind, &what)?;
    let stake = storage_events(&receipt).find_map(|e| match e {
        StorageEvent::MemberLeft {
            cluster: c,
            node: n,
            stake,
        } if c == cluster && n == node => Some(*stake),
        _ => None,
    });
    if json {
        let fields =
            serde_json::json!({ "cluster": cluster, "node": node, "stake_returned": stake });
        print_json(fields, &receipt)?;
    } else {
        println!("left     {cluster}");
        println!("node     {node}");
        if let Some(stake) = stake {
            println!("stake    {} back to you", display::pcl(&stake));
        }
        println!("{}", block_line(&receipt));
    }
    Ok(ExitCode::SUCCESS)
}

fn list(client: &NodeClient, json: bool) -> anyhow::Result<ExitCode> {
    let clusters = client.clusters().map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&clusters)?);
        return Ok(ExitCode::SUCCESS);
    }
    if clusters.is_empty() {
        println!("no clusters on the ledger yet (create one with `peercloud cluster create`)");
        return Ok(ExitCode::SUCCESS);
    }
    for view in &clusters {
        println!("{}", view.id);
        println!(
            "  {}, {} per GiB-month, {} of {} members active, {} open buckets",
            view.terms.redundancy,
            display::pcl(&view.terms.price_per_gib_month),
            view.active(),
            view.members.len(),
            view.open_buckets
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_cluster(view: &ClusterView) {
    println!("cluster  {}", view.id);
    println!("creator  {}", view.creator);
    println!(
        "managers {} of {}",
        view.threshold,
        join_ids(&view.managers)
    );
    print_terms(view);
    println!("buckets  {} open", view.open_buckets);
    println!("members  {} ({} active)", view.members.len(), view.active());
    for member in &view.members {
        println!(
            "  {}  {:<7}  {:>10}  stake {}",
            member.node,
            member.status,
            display::bytes(member.capacity_bytes),
            display::pcl(&member.stake)
        );
        println!("    owner {}", member.owner);
    }
    if view.proposals.is_empty() {
        println!("proposals none open");
    } else {
        println!("proposals");
        for proposal in &view.proposals {
            println!(
                "  {}: {} ({} of {} approvals)",
                proposal.id,
                proposal.action,
                proposal.approvals.len(),
                view.threshold
            );
        }
    }
}

fn print_terms(view: &ClusterView) {
    let terms = &view.terms;
    println!("keeps    {}", terms.redundancy);
    println!(
        "prices   {} per GiB-month, {} per GiB served; managers' fee {} bps",
        display::pcl(&terms.price_per_gib_month),
        display::pcl(&terms.price_per_gib_served),
        terms.manager_fee_bps
    );
    println!("stake    {} per node", display::pcl(&terms.node_stake));
    println!(
        "billing  every {}, grace {}",
        duration_text(terms.billing_period_ms),
        duration_text(terms.grace_ms)
    );
}

fn join_ids(ids: &[AccountId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `K+M` (e.g. `4+2`) as a Reed-Solomon code; the ledger checks the bounds.
fn parse_erasure(text: &str) -> Result<Redundancy, String> {
    let (data, parity) = text
        .split_once('+')
        .ok_or_else(|| format!("{text:?} is not K+M (data + parity pieces, e.g. 4+2)"))?;
    let number = |part: &str, what: &str| -> Result<u8, String> {
        part.trim()
            .parse()
            .map_err(|_| format!("{what} {part:?} in {text:?} is not a number from 0 to 255"))
    };
    Ok(Redundancy::ReedSolomon {
        data: number(data, "K")?,
        parity: number(parity, "M")?,
    })
}

/// Binary units a capacity may be written in.
const BYTE_UNITS: [(&str, u32); 5] = [("tib", 40), ("gib", 30), ("mib", 20), ("kib", 10), ("b", 0)];

/// Bytes, plain (`1073741824`) or in binary units (`20GiB`, `512 MiB`).
pub fn parse_capacity(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, shift) = BYTE_UNITS
        .iter()
        .find_map(|(unit, shift)| lower.strip_suffix(unit).map(|n| (n.trim(), *shift)))
        .unwrap_or((lower.as_str(), 0));
    let count: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a size: write bytes, or a whole number of KiB, MiB, GiB or TiB (like 20GiB)")
    })?;
    count
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large a size"))
}

/// Units a duration may be written in, with their length in ms.
const DURATION_UNITS: [(&str, u64); 6] = [
    ("ms", 1),
    ("s", 1_000),
    ("min", 60_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// A duration like `90s`, `10m`, `1h` or `30d`, in ms.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a duration: write a whole number and a unit, like 90s, 10m, 1h or 30d"
        )
    };
    let (number, unit_ms) = DURATION_UNITS
        .iter()
        .find_map(|(unit, ms)| trimmed.strip_suffix(unit).map(|n| (n.trim(), *ms)))
        .ok_or_else(bad)?;
    let count: u64 = number.parse().map_err(|_| bad())?;
    count
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// A duration in ms as its largest whole unit: `1 min`, `30 days`, `90 s`.
pub fn duration_text(ms: u64) -> String {
    for (unit, length) in [
        ("days", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1_000),
    ] {
        if ms >= length && ms.is_multiple_of(length) {
            let count = ms / length;
            return match (unit, count) {
                ("days", 1) => "1 day".to_owned(),
                _ => format!("{count} {unit}"),
            };
        }
    }
    format!("{ms} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_read_in_bytes_or_binary_units() {
        assert_eq!(parse_capacity("1073741824"), Ok(1 << 30));
        assert_eq!(parse_capacity("20GiB"), Ok(20 << 30));
        assert_eq!(parse_capacity("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_capacity("1tib"), Ok(1 << 40));
        assert_eq!(parse_capacity("300B"), Ok(300));
        assert!(parse_capacity("20GB").unwrap_err().contains("20GiB"));
        assert!(parse_capacity("1.5GiB").unwrap_err().contains("not a size"));
        assert!(
            parse_capacity("99999999TiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations_read_with_their_unit_and_print_back() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("10min"), Ok(600_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("30d"), Ok(30 * 86_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("30").unwrap_err().contains("90s, 10m"));
        assert!(parse_duration_ms("xs").is_err());
        assert_eq!(duration_text(60_000), "1 min");
        assert_eq!(duration_text(30 * 86_400_000), "30 days");
        assert_eq!(duration_text(86_400_000), "1 day");
        assert_eq!(duration_text(90_000), "90 s");
        assert_eq!(duration_text(1_500), "1500 ms");
    }

    #[test]
    fn erasure_codes_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_erasure("4+2"),
            Ok(Redundancy::ReedSolomon { data: 4, parity: 2 })
        );
        assert!(parse_erasure("4-2").unwrap_err().contains("K+M"));
        assert!(parse_erasure("4+x").unwrap_err().contains("M \"x\""));
    }
}

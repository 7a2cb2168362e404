//! `peercloud node earnings`: what a node earned from storage and how it
//! stands, from `GET /v1/earnings`: the totals (storage, bandwidth, per
//! bucket), its reputation and stakes, then its most recent payments.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use peercloud_api::EarningsView;

use crate::display;
use crate::node_api::{NodeArgs, explain};

/// Shows the earnings of the node `node` names, with `limit` recent payments.
/// `data_dir_flag` only locates the default node.
pub fn run(
    limit: u32,
    data_dir_flag: Option<&Path>,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let view = node
        .connect(data_dir_flag)?
        .earnings(Some(limit))
        .map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of an earnings view.
fn render(view: &EarningsView) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("node        {}", view.node));
    line(format!("owner       {}", view.owner));
    line(format!(
        "earned      {} in {} payment{}",
        display::pcl(&view.total),
        view.payments,
        plural(view.payments)
    ));
    line(format!("  storage   {}", display::pcl(&view.storage)));
    line(format!("  bandwidth {}", display::pcl(&view.bandwidth)));
    if view.behind() {
        line(format!(
            "  (recorded through block {}, the node is at {}: restart the node to count the rest)",
            height(view.recorded_height),
            height(view.height)
        ));
    }
    let standing = &view.standing;
    line(match standing.reputation {
        Some(score) => format!(
            "reputation  {score} ({} jobs agreed, {} faulted)",
            standing.jobs_agreed, standing.jobs_faulted
        ),
        None => "reputation  none: the node is not registered".to_owned(),
    });
    line(format!("balance     {}", display::pcl(&standing.balance)));
    line(format!(
        "stake       {} to serve, {} in {} cluster{}",
        display::pcl(&standing.stake),
        display::pcl(&standing.cluster_stake),
        standing.clusters.len(),
        plural(standing.clusters.len() as u64)
    ));
    for cluster in &standing.clusters {
        line(format!(
            "  {}  {:<7}  {}  {} offered",
            cluster.cluster,
            cluster.status,
            display::pcl(&cluster.stake),
            display::bytes(cluster.capacity_bytes)
        ));
    }
    if view.buckets.is_empty() {
        line("buckets     none has paid this node yet".to_owned());
    } else {
        line(format!("buckets     {}", view.buckets.len()));
        for bucket in &view.buckets {
            line(format!("  {}", bucket.bucket));
            line(format!(
                "    storage {}, bandwidth {}, {} payment{}",
                display::pcl(&bucket.storage),
                display::pcl(&bucket.bandwidth),
                bucket.payments,
                plural(bucket.payments)
            ));
        }
    }
    if !view.recent.is_empty() {
        line(format!("recent      {}, newest first", view.recent.len()));
        let mut table = String::new();
        let _ = writeln!(
            table,
            "  {:>8}  {:<23}  {:<9}  {:>18}  bucket",
            "height", "time", "kind", "amount"
        );
        for payment in &view.recent {
            let _ = writeln!(
                table,
                "  {:>8}  {:<23}  {:<9}  {:>18}  {}",
                payment.height,
                display::utc(payment.time_ms),
                payment.kind,
                display::pcl(&payment.amount),
                payment.bucket
            );
        }
        out.push_str(&table);
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn height(h: Option<u64>) -> String {
    h.map_or_else(|| "none".to_owned(), |h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_api::{
        BucketEarningsView, ClusterStakeView, MemberState, PaymentKind, PaymentView, StandingView,
    };
    use peercloud_ledger::{BucketId, ClusterId};
    use peercloud_types::{Amount, Hash32, Keypair};

    #[test]
    fn node_earnings_is_a_subcommand_and_node_alone_still_runs_the_node() {
        use crate::node::{NodeArgs, NodeCommand};
        use crate::{Cli, Command};
        use clap::Parser;
        let parse = |args: &[&str]| Cli::try_parse_from(args);
        let cli = parse(&["peercloud", "node", "earnings", "--limit", "3", "--json"])
            .expect("earnings with a limit");
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Node(NodeArgs {
                command: Some(NodeCommand::Earnings { limit: 3 }),
                ..
            })
        ));
        let cli = parse(&["peercloud", "node", "earnings"]).expect("the default limit");
        assert!(matches!(
            cli.command,
            Command::Node(NodeArgs {
                command: Some(NodeCommand::Earnings { limit: 20 }),
                ..
            })
        ));
        let over = parse(&["peercloud", "node", "earnings", "--limit", "10001"]);
        assert!(over.is_err(), "a limit past what a node keeps");
        let cli = parse(&["peercloud", "node", "--location", "DE"]).expect("running a node");
        assert!(matches!(
            cli.command,
            Command::Node(NodeArgs { command: None, .. })
        ));
        let mixed = parse(&["peercloud", "node", "--location", "DE", "earnings"]);
        assert!(
            mixed.is_err(),
            "a node's settings do not go with a question"
        );
    }

    #[test]
    fn shows_totals_standing_and_recent_payments_in_utc() {
        let key = Keypair::from_seed(&[4; 32]);
        let bucket = BucketId(Hash32([1; 32]));
        let pcl = |s: &str| s.parse::<Amount>().expect("an amount");
        let view = EarningsView {
            node: key.node_id(),
            owner: key.account_id(),
            height: Some(42),
            recorded_height: Some(40),
            storage: pcl("1.25"),
            bandwidth: pcl("0.5"),
            total: pcl("1.75"),
            payments: 3,
            buckets: vec![BucketEarningsView {
                bucket,
                storage: pcl("1.25"),
                bandwidth: pcl("0.5"),
                payments: 3,
            }],
            recent: vec![PaymentView {
                height: 40,
                time_ms: 1_772_373_909_000,
                bucket,
                kind: PaymentKind::Bandwidth,
                amount: pcl("0.5"),
            }],
            standing: StandingView {
                registered: true,
                reputation: Some(510),
                jobs_agreed: 2,
                jobs_faulted: 0,
                balance: pcl("41"),
                stake: pcl("50"),
                cluster_stake: pcl("10"),
                clusters: vec![ClusterStakeView {
                    cluster: ClusterId(Hash32([2; 32])),
                    status: MemberState::Active,
                    capacity_bytes: 1 << 30,
                    stake: pcl("10"),
                }],
            },
        };
        let text = render(&view);
        for wanted in [
            "earned      1.75 PCL in 3 payments",
            "  storage   1.25 PCL",
            "  bandwidth 0.5 PCL",
            "recorded through block 40, the node is at 42",
            "reputation  510 (2 jobs agreed, 0 faulted)",
            "stake       50 PCL to serve, 10 PCL in 1 cluster\n",
            "active   10 PCL  1.0 GiB offered",
            "storage 1.25 PCL, bandwidth 0.5 PCL, 3 payments",
            "2026-03-01 14:05:09 UTC",
            "bandwidth",
            &bucket.to_string(),
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
        }
    }
}

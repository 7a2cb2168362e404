//! `peercloud node earnings`: what a node earned from storage and how it
//! stands, from `GET /v1/earnings`: the totals (storage, bandwidth, per
//! bucket), its reputation and stakes, its most recent payments, then its
//! audits: passed and failed counts, the last few it answered, and the
//! ledger's reports and judgements of it (in red on a terminal).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use peercloud_api::{AuditsView, EarningsView};

use crate::node_api::{NodeArgs, explain};
use crate::{color, display};

/// Audits answered the text form lists (the JSON form has all the view's).
const AUDITS_SHOWN: usize = 5;

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
        let red = color::use_color(
            std::io::stdout().is_terminal(),
            std::env::var_os(color::NO_COLOR).as_deref(),
        );
        print!("{}", render(&view, red));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of an earnings view; `red` colours what counts against
/// the node.
fn render(view: &EarningsView, red: bool) -> String {
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
    line(format!("  repair    {}", display::pcl(&view.repair)));
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
                "    storage {}, bandwidth {}, repair {}, {} payment{}",
                display::pcl(&bucket.storage),
                display::pcl(&bucket.bandwidth),
                display::pcl(&bucket.repair),
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
    out.push_str(&render_audits(&view.audits, red));
    out
}

/// The audits section: counts, the last answers, reports and judgements.
fn render_audits(audits: &AuditsView, red: bool) -> String {
    let paint = |text: String| {
        if red {
            format!("\x1b[31m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let counts = &audits.answered;
    let _ = writeln!(
        out,
        "audits      {} passed, {} failed (missing {}, corrupt {}, error {})",
        counts.passed(),
        counts.failed(),
        counts.missing,
        counts.corrupt,
        counts.error
    );
    if !audits.recent.is_empty() {
        let shown = audits.recent.len().min(AUDITS_SHOWN);
        let _ = writeln!(out, "  last {shown}, newest first");
        for audit in audits.recent.iter().take(AUDITS_SHOWN) {
            let auditor = audit
                .auditor
                .map_or_else(|| "an unknown peer".to_owned(), |n| n.to_string());
            let line = format!(
                "  {}  {:<7}  {}  by {}",
                display::utc(audit.time_ms),
                audit.outcome,
                audit.cid,
                auditor
            );
            let line = if audit.outcome.passed() {
                line
            } else {
                paint(line)
            };
            let _ = writeln!(out, "{line}");
        }
    }
    if audits.reports_total > 0 {
        let _ = writeln!(
            out,
            "{}",
            paint(format!(
                "reported    {} time{} on the ledger for failed audits",
                audits.reports_total,
                plural(audits.reports_total)
            ))
        );
        for report in &audits.reports {
            let _ = writeln!(
                out,
                "{}",
                paint(format!(
                    "  block {}  {}  epoch {}  piece {}  by {}",
                    report.height,
                    display::utc(report.time_ms),
                    report.epoch,
                    report.cid,
                    report.auditor
                ))
            );
        }
    }
    for judgement in &audits.judgements {
        let _ = writeln!(
            out,
            "{}",
            paint(format!(
                "judged      block {}  {}  epoch {}: {} slashed, {} returned, removed from {}",
                judgement.height,
                display::utc(judgement.time_ms),
                judgement.epoch,
                display::pcl(&judgement.slashed),
                display::pcl(&judgement.returned),
                judgement.cluster
            ))
        );
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
        AnsweredAuditView, AuditAnswerKind, AuditCountsView, AuditJudgementView, AuditReportView,
        BucketEarningsView, ClusterStakeView, MemberState, PaymentKind, PaymentView, StandingView,
    };
    use peercloud_ledger::{BucketId, ClusterId};
    use peercloud_types::{Amount, ContentId, Hash32, Keypair};

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
            repair: pcl("0.25"),
            total: pcl("2"),
            payments: 3,
            buckets: vec![BucketEarningsView {
                bucket,
                storage: pcl("1.25"),
                bandwidth: pcl("0.5"),
                repair: pcl("0.25"),
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
            audits: AuditsView::default(),
        };
        let text = render(&view, false);
        for wanted in [
            "earned      2 PCL in 3 payments",
            "  storage   1.25 PCL",
            "  bandwidth 0.5 PCL",
            "  repair    0.25 PCL",
            "recorded through block 40, the node is at 42",
            "reputation  510 (2 jobs agreed, 0 faulted)",
            "stake       50 PCL to serve, 10 PCL in 1 cluster\n",
            "active   10 PCL  1.0 GiB offered",
            "storage 1.25 PCL, bandwidth 0.5 PCL, repair 0.25 PCL, 3 payments",
            "2026-03-01 14:05:09 UTC",
            "bandwidth",
            &bucket.to_string(),
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
        }
        assert!(text.contains("audits      0 passed, 0 failed"), "{text}");
        assert!(!text.contains("reported") && !text.contains("judged"));
    }

    #[test]
    fn shows_audit_counts_the_last_answers_and_reports_and_judgements_in_red() {
        let auditor = Keypair::from_seed(&[5; 32]).node_id();
        let piece = ContentId::of(b"piece");
        let cluster = ClusterId(Hash32([2; 32]));
        let answered = |i: u64, outcome| AnsweredAuditView {
            time_ms: 1_772_373_909_000 + i * 1_000,
            cid: piece,
            auditor: Some(auditor),
            outcome,
        };
        let mut recent = vec![answered(9, AuditAnswerKind::Corrupt)];
        recent.extend((0..8).map(|i| answered(i, AuditAnswerKind::Proved)));
        let audits = AuditsView {
            answered: AuditCountsView {
                proved: 40,
                missing: 0,
                corrupt: 1,
                error: 0,
            },
            recent,
            reports_total: 2,
            reports: vec![AuditReportView {
                height: 50,
                time_ms: 1_772_373_920_000,
                cluster,
                auditor,
                epoch: 7,
                cid: piece,
            }],
            judgements_total: 1,
            judgements: vec![AuditJudgementView {
                height: 51,
                time_ms: 1_772_373_921_000,
                cluster,
                epoch: 7,
                slashed: "1.5".parse().expect("an amount"),
                returned: "13.5".parse().expect("an amount"),
            }],
        };
        let plain = render_audits(&audits, false);
        for wanted in [
            "audits      40 passed, 1 failed (missing 0, corrupt 1, error 0)",
            "last 5, newest first",
            "2026-03-01 14:05:18 UTC  corrupt",
            &format!("{piece}  by {auditor}"),
            "reported    2 times on the ledger for failed audits",
            "block 50  2026-03-01 14:05:20 UTC  epoch 7",
            "judged      block 51",
            "1.5 PCL slashed, 13.5 PCL returned",
            &cluster.to_string(),
        ] {
            assert!(plain.contains(wanted), "{wanted:?} missing from:\n{plain}");
        }
        assert_eq!(plain.matches(" by ").count(), 5 + 1, "five answers shown");
        assert!(!plain.contains('\x1b'), "no colour unless asked");
        let red = render_audits(&audits, true);
        let painted: Vec<&str> = red.lines().filter(|l| l.contains("\x1b[31m")).collect();
        // The corrupt answer, the reports heading and line, the judgement.
        assert_eq!(painted.len(), 4, "{red}");
        assert!(painted.iter().all(|l| l.ends_with("\x1b[0m")));
        assert!(painted[0].contains("corrupt"));
    }
}

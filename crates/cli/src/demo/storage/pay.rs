//! The storage act's money: waiting until the bucket's periods are billed,
//! the bytes the owner acknowledged each node served (its signed receipts,
//! as the bucket's index replicas hold them), and what each farmer earned
//! from the bucket by its own node's record (`GET /v1/earnings`), checked:
//! every running member paid for storage, only nodes that served paid for
//! bandwidth.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use peercloud_api::{Canonical, EarningsView, EvidenceQuery};
use peercloud_client::{NodeClient, bucket};
use peercloud_devnet::Devnet;
use peercloud_ledger::BucketId;
use peercloud_types::clock::now_ms;
use peercloud_types::{Amount, Keypair, NodeId};

use super::{Fault, Names, Out};
use crate::display;

/// Billing periods billed before the earnings are read: "a few".
const PERIODS_BILLED_MIN: u64 = 3;
/// Time past the last awaited period's end for its bill to land: the
/// runner bills within a second of the end, its backup one period late
/// when the runner is the killed node, and a block takes milliseconds.
const BILLING_SLACK: Duration = Duration::from_secs(10);
/// How often the bucket is asked while its periods are billed.
const BILLING_POLL: Duration = Duration::from_millis(200);
/// How long a farmer's node may take to record a block's payments: it has
/// the block within milliseconds by gossip, within 2 s by sync.
const EARNINGS_WAIT: Duration = Duration::from_secs(10);
/// How often a farmer's node is asked while it catches up.
const EARNINGS_POLL: Duration = Duration::from_millis(100);

/// What the billing came to.
pub(super) struct Billed {
    /// Periods billed.
    pub(super) periods: u64,
    /// Paid out of the deposit, ever (members and managers).
    pub(super) paid_out: Amount,
    /// Node 1's height once it showed them billed: every farmer's record
    /// must reach it before it is read.
    pub(super) height: u64,
}

/// What one farmer earned from the bucket, by its own node's record.
pub(super) struct FarmerEarnings {
    /// The provider's index (`farmer-i` owns `node-i`).
    pub(super) index: usize,
    /// Its node.
    pub(super) node: NodeId,
    /// Bytes of the reads the owner acknowledged it served.
    pub(super) served_bytes: u64,
    /// Storage, bandwidth and repair paid by the bucket; `None` for the
    /// killed node, whose API is gone.
    pub(super) earned: Option<(Amount, Amount, Amount)>,
}

/// Waits until the bucket is billed for at least [`PERIODS_BILLED_MIN`]
/// periods and for the period of `reads_until_ms` (its reads' receipts).
pub(super) fn wait_billed(
    client: &NodeClient,
    bucket: &BucketId,
    reads_until_ms: u64,
    out: Out,
) -> anyhow::Result<Billed> {
    let view = client.bucket(bucket).context("reading the bucket")?;
    let period_ms = view.billing_period_ms;
    let last_read = bucket::period_at(view.created_ms, period_ms, reads_until_ms);
    let target = (last_read + 1).max(PERIODS_BILLED_MIN);
    let ends_ms = view
        .created_ms
        .saturating_add(target.saturating_mul(period_ms));
    let deadline = Instant::now()
        + Duration::from_millis(ends_ms.saturating_sub(now_ms()).saturating_add(period_ms))
        + BILLING_SLACK;
    let bar = out.spinner("billing")?;
    loop {
        let view = client.bucket(bucket).context("reading the bucket")?;
        if view.next_period >= target {
            bar.finish_and_clear();
            let height = client.ledger().context("reading the ledger")?.height;
            out.line(format_args!(
                "  billing  {} periods of {} s billed: {} paid out of the deposit to the members and the managers",
                view.next_period,
                period_ms as f64 / 1e3,
                display::pcl(&view.released)
            ));
            return Ok(Billed {
                periods: view.next_period,
                paid_out: view.released,
                height,
            });
        }
        ensure!(
            Instant::now() < deadline,
            "{bucket} is billed for {} periods, not the {target} expected by now",
            view.next_period
        );
        bar.set_message(format!(
            "{} of {target} periods billed, {} paid out",
            view.next_period,
            display::pcl(&view.released)
        ));
        std::thread::sleep(BILLING_POLL);
    }
}

/// Bytes the owner acknowledged each node served in `reads` (ms): its
/// signed receipts of those periods, as the bucket's index replicas hold them.
pub(super) fn acknowledged(
    client: &NodeClient,
    owner: &Keypair,
    bucket: &BucketId,
    reads: RangeInclusive<u64>,
) -> anyhow::Result<BTreeMap<NodeId, u64>> {
    let view = client.bucket(bucket).context("reading the bucket")?;
    let period = |ms| bucket::period_at(view.created_ms, view.billing_period_ms, ms);
    let mut served = BTreeMap::new();
    for period in period(*reads.start())..=period(*reads.end()) {
        let query = EvidenceQuery {
            period,
            until_ms: None,
        };
        let evidence = client
            .index_evidence(bucket, &query)
            .with_context(|| format!("reading the receipts of period {period}"))?;
        for Canonical(receipt) in evidence.receipts {
            if receipt.signer == owner.public()
                && receipt.verify().is_ok()
                && receipt.body.bucket == *bucket
            {
                *served.entry(receipt.body.node).or_insert(0) += receipt.body.bytes;
            }
        }
    }
    Ok(served)
}

/// What each farmer earned from `bucket`, from its own node's record once
/// it holds the bills' block; the killed node is not asked.
pub(super) fn farmer_earnings(
    devnet: &Devnet,
    names: &Names,
    bucket: &BucketId,
    fault: &Fault,
    billed: &Billed,
    served: &BTreeMap<NodeId, u64>,
) -> anyhow::Result<Vec<FarmerEarnings>> {
    let mut farmers = Vec::new();
    for (index, process) in devnet.nodes.iter().enumerate().skip(1) {
        let node = names
            .id(index)
            .with_context(|| format!("no node key for {}", process.name))?;
        let earned = if index == fault.victim {
            None
        } else {
            let client = NodeClient::from_node_dir(&process.dir)?;
            let view = recorded(&client, billed.height)
                .with_context(|| format!("{}'s earnings", process.name))?;
            let paid = view.buckets.iter().find(|b| b.bucket == *bucket);
            Some(
                paid.map_or((Amount::ZERO, Amount::ZERO, Amount::ZERO), |b| {
                    (b.storage, b.bandwidth, b.repair)
                }),
            )
        };
        farmers.push(FarmerEarnings {
            index,
            node,
            served_bytes: served.get(&node).copied().unwrap_or(0),
            earned,
        });
    }
    Ok(farmers)
}

/// The node's earnings once it has recorded block `height`.
fn recorded(client: &NodeClient, height: u64) -> anyhow::Result<EarningsView> {
    let deadline = Instant::now() + EARNINGS_WAIT;
    loop {
        let view = client.earnings(Some(0))?;
        if view.recorded_height >= Some(height) {
            return Ok(view);
        }
        ensure!(
            Instant::now() < deadline,
            "its record is at block {:?} {} s after node 1 showed the bills at block {height}",
            view.recorded_height,
            EARNINGS_WAIT.as_secs()
        );
        std::thread::sleep(EARNINGS_POLL);
    }
}

/// Every running farmer was paid for storage; only nodes whose bytes the
/// owner acknowledged were paid for bandwidth, and at least one was. Not
/// every node that served: a receipt written as its period closes may miss
/// that period's bill, so a node that served only then may go unpaid.
pub(super) fn check_paid(farmers: &[FarmerEarnings]) -> anyhow::Result<()> {
    let mut bandwidth_paid = 0;
    for f in farmers {
        let Some((storage, bandwidth, _)) = f.earned else {
            continue;
        };
        ensure!(
            !storage.is_zero(),
            "farmer-{} was not paid for storing the bucket's pieces",
            f.index
        );
        ensure!(
            bandwidth.is_zero() || f.served_bytes > 0,
            "farmer-{} was paid {bandwidth} PCL for bandwidth the owner never acknowledged",
            f.index
        );
        bandwidth_paid += usize::from(!bandwidth.is_zero());
    }
    ensure!(
        bandwidth_paid > 0,
        "no running node was paid for serving the reads"
    );
    Ok(())
}

/// The earnings table: each farmer's storage, bandwidth and repair pay from
/// the bucket and the bytes the owner acknowledged it served.
pub(super) fn print(farmers: &[FarmerEarnings], out: Out) {
    out.line(
        "  earnings paid by the bucket, as each farmer's own node records them (GET /v1/earnings):",
    );
    out.line(format_args!(
        "  {:<10} {:<8} {:>16} {:>16} {:>16} {:>10}",
        "farmer", "node", "storage", "bandwidth", "repair", "served"
    ));
    for f in farmers {
        let served = display::bytes(f.served_bytes);
        match f.earned {
            Some((storage, bandwidth, repair)) => out.line(format_args!(
                "  farmer-{:<3} node-{:<3} {:>16} {:>16} {:>16} {served:>10}",
                f.index,
                f.index,
                display::pcl(&storage),
                display::pcl(&bandwidth),
                display::pcl(&repair)
            )),
            None => out.line(format_args!(
                "  farmer-{:<3} node-{:<3} {:>50} {served:>10}",
                f.index, f.index, "(killed: not asked)"
            )),
        }
    }
    out.line("");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn farmer(index: usize, served_bytes: u64, earned: Option<(u64, u64)>) -> FarmerEarnings {
        FarmerEarnings {
            index,
            node: Keypair::from_seed(&[u8::try_from(index).expect("small"); 32]).node_id(),
            served_bytes,
            earned: earned.map(|(s, b)| {
                (
                    Amount::from_base_units(s.into()),
                    Amount::from_base_units(b.into()),
                    Amount::ZERO,
                )
            }),
        }
    }

    #[test]
    fn every_running_member_is_paid_for_storage_and_only_servers_for_bandwidth() {
        let good = [
            farmer(1, 1 << 20, Some((5, 7))),
            farmer(2, 0, Some((5, 0))),
            farmer(3, 1 << 20, None),
        ];
        check_paid(&good).expect("a killed farmer is not asked");
        let unpaid_storage = [farmer(1, 1 << 20, Some((5, 7))), farmer(2, 0, Some((0, 0)))];
        assert!(check_paid(&unpaid_storage).is_err());
        let paid_without_serving = [farmer(1, 1 << 20, Some((5, 7))), farmer(2, 0, Some((5, 1)))];
        assert!(check_paid(&paid_without_serving).is_err());
        let nobody_paid_for_serving = [farmer(1, 1 << 20, Some((5, 0)))];
        assert!(check_paid(&nobody_paid_for_serving).is_err());
    }
}

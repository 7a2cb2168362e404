//! The cluster's bills, run by its members. After each block a member looks
//! for buckets it runs the bills of (it is the bucket's first index
//! replica; the next replica takes over a period later, and so on, so a
//! dead runner delays a bill, never loses it) whose next period has ended,
//! gathers the evidence from a quorum of the bucket's index replicas (the
//! owner's last usage signed by the period's end, and the owner's receipts
//! for the bytes each member served in it, and the receivers' receipts for
//! the pieces each member rebuilt onto them) and submits `BillBucket`,
//! signed by its owner. The ledger checks the evidence and pays every
//! active member for the bytes stored (by capacity), each serving node for
//! the bytes acknowledged and each repairer for the pieces acknowledged;
//! the managers take their fee.
//!
//! A read-only bucket whose grace is over is ended (`ExpireBucket`) by the
//! same runner.
//!
//! ```text
//!  block ─► due(): Active/ReadOnly bucket, period ended, this node its runner
//!        ─► index_evidence (quorum) ─► BillBucket { usage, receipts of active members } ─► ledger
//! ```

use std::sync::Arc;
use std::time::Duration;

use peercloud_ledger::repairs::REPAIR_RECEIPTS_PER_BILL_MAX;
use peercloud_ledger::{BucketId, BucketStatus, MemberStatus, State, TxKind};
use peercloud_store::rank;
use peercloud_types::ContentId;
use tokio::sync::broadcast::error::RecvError;

use super::index::{INDEX_REPLICAS, cluster_nodes};
use super::{Inner, now_ms};

/// The billing period `record` is in now (by the later of the tip's time
/// and this node's clock): what repairs are paid in and receipts filed for.
pub(crate) fn period_now(state: &State, record: &peercloud_ledger::BucketRecord) -> u64 {
    let (into, length) = into_bucket(state, record);
    into / length
}

/// How long `record` has existed now (by the later of the tip's time and
/// this node's clock), and its cluster's billing period (at least 1 ms).
fn into_bucket(state: &State, record: &peercloud_ledger::BucketRecord) -> (u64, u64) {
    let length = state
        .cluster(&record.cluster)
        .map_or(1, |c| c.terms.billing_period_ms.max(1));
    let now = state.tip().map_or(0, |t| t.time_ms).max(now_ms());
    (now.saturating_sub(record.created_ms), length)
}

/// The period a repair done now is dated in (and paid by that period's
/// bill): the current one, or the next once less than half of the current
/// one is left, so the repairer has at least half a period to file the
/// receipt before the bill that pays it runs. (A receiver takes a receipt
/// for the period before or after its own.)
pub(crate) fn repair_period(state: &State, record: &peercloud_ledger::BucketRecord) -> u64 {
    let (into, length) = into_bucket(state, record);
    repair_period_at(into, length)
}

/// [`repair_period`] `into` ms after the bucket's creation, for periods of
/// `length` ms.
fn repair_period_at(into: u64, length: u64) -> u64 {
    let period = into / length;
    if into % length > length / 2 {
        period.saturating_add(1)
    } else {
        period
    }
}

/// What the runner of a bucket should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Due {
    /// Bill `period`, which ended at `ends_ms`.
    Bill {
        bucket: BucketId,
        period: u64,
        ends_ms: u64,
    },
    /// End the bucket: its grace is over.
    Expire { bucket: BucketId },
}

/// Where this node stands among a bucket's bill runners: `Some(k)` when it
/// is its index replica of rank `k`.
fn runner_rank(
    state: &State,
    bucket: &BucketId,
    cluster: &peercloud_ledger::ClusterId,
    me: &peercloud_types::NodeId,
) -> Option<u64> {
    let nodes = cluster_nodes(state, cluster);
    rank(&ContentId::of(&bucket.0.0), &nodes)
        .iter()
        .take(INDEX_REPLICAS)
        .position(|n| n.node == *me)
        .map(|k| k as u64)
}

/// The bills and expiries this node runs at block time `now_ms`: a period
/// (or a grace) that ended at least `rank × period` ago.
fn due(state: &State, me: &peercloud_types::NodeId, now_ms: u64) -> Vec<Due> {
    let mut out = Vec::new();
    for (bucket, record) in state.buckets() {
        let Some(cluster) = state.cluster(&record.cluster) else {
            continue;
        };
        if cluster
            .members
            .get(me)
            .is_none_or(|m| m.status != MemberStatus::Active)
        {
            continue;
        }
        let Some(k) = runner_rank(state, bucket, &record.cluster, me) else {
            continue;
        };
        let length = cluster.terms.billing_period_ms;
        let late = k.saturating_mul(length);
        match record.status {
            BucketStatus::Closed | BucketStatus::Expired => {}
            BucketStatus::ReadOnly { since_ms }
                if since_ms
                    .saturating_add(cluster.terms.grace_ms)
                    .saturating_add(late)
                    <= now_ms =>
            {
                out.push(Due::Expire { bucket: *bucket });
            }
            BucketStatus::Active | BucketStatus::ReadOnly { .. } => {
                let period = record.next_period;
                let ends_ms = period
                    .saturating_add(1)
                    .saturating_mul(length)
                    .saturating_add(record.created_ms);
                if ends_ms.saturating_add(late) <= now_ms {
                    out.push(Due::Bill {
                        bucket: *bucket,
                        period,
                        ends_ms,
                    });
                }
            }
        }
    }
    out
}

/// How often the runner looks for due bills when no block came (blocks
/// come only with transactions; a period ends by the clock).
const BILLING_TICK: Duration = Duration::from_secs(1);

/// Runs bills after each block this node commits and every
/// [`BILLING_TICK`]; a bill whose attempt failed is tried again on a later
/// round (every round submits what is due, waiting for each to commit).
pub(crate) async fn billing_loop(inner: Arc<Inner>) {
    let mut blocks = inner.committed.subscribe();
    loop {
        tokio::select! {
            received = blocks.recv() => match received {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep(BILLING_TICK) => {}
        }
        let work = {
            let chain = inner.chain();
            let state = chain.state();
            // The block that takes a bill is stamped no earlier than now.
            let now = state.tip().map_or(0, |t| t.time_ms).max(now_ms());
            due(state, &inner.node_id(), now)
        };
        for item in work {
            run(&inner, item).await;
        }
    }
}

/// The repair receipts a bill carries: the largest ones, at most the
/// ledger's [`REPAIR_RECEIPTS_PER_BILL_MAX`], in (repairer, receiver) order.
fn largest_repairs(
    mut repairs: Vec<peercloud_types::Signed<peercloud_ledger::RepairReceipt>>,
) -> Vec<peercloud_types::Signed<peercloud_ledger::RepairReceipt>> {
    repairs.sort_by_key(|r| std::cmp::Reverse(r.body.bytes));
    repairs.truncate(REPAIR_RECEIPTS_PER_BILL_MAX);
    repairs.sort_by_key(|r| (r.body.repairer, r.body.receiver));
    repairs
}

/// Gathers the evidence and submits one bill (or expiry).
async fn run(inner: &Arc<Inner>, item: Due) {
    let kind = match item {
        Due::Expire { bucket } => TxKind::ExpireBucket { bucket },
        Due::Bill {
            bucket,
            period,
            ends_ms,
        } => match inner.index_evidence(bucket, period, ends_ms).await {
            Ok(evidence) => {
                let chain = inner.chain();
                let state = chain.state();
                let Some(record) = state.bucket(&bucket) else {
                    return;
                };
                let member = |node: &peercloud_types::NodeId| {
                    state
                        .cluster(&record.cluster)
                        .and_then(|c| c.members.get(node))
                };
                let active = |node: &peercloud_types::NodeId| {
                    member(node).is_some_and(|m| m.status == MemberStatus::Active)
                };
                // What the ledger pays: an active repairer, a member
                // receiver, two owners (else the whole bill is refused).
                let payable = |r: &peercloud_ledger::RepairReceipt| match (
                    member(&r.repairer),
                    member(&r.receiver),
                ) {
                    (Some(repairer), Some(receiver)) => {
                        repairer.status == MemberStatus::Active && repairer.owner != receiver.owner
                    }
                    _ => false,
                };
                TxKind::BillBucket {
                    bucket,
                    period,
                    // A usage the last bill already used (or older) adds nothing.
                    usage: evidence.usage.filter(|u| u.body.seq > record.usage_seq),
                    // Receipts of nodes that left are not payable.
                    receipts: evidence
                        .receipts
                        .into_iter()
                        .filter(|r| active(&r.body.node))
                        .collect(),
                    repairs: largest_repairs(
                        evidence
                            .repairs
                            .into_iter()
                            .filter(|r| payable(&r.body))
                            .collect(),
                    ),
                }
            }
            Err(err) => {
                tracing::info!(%bucket, period, %err, "bill evidence not gathered; retrying");
                return;
            }
        },
    };
    let name = kind.name();
    match inner.sign_and_submit(&inner.owner_key, kind, true).await {
        Ok(_) => tracing::info!(?item, "{name} committed"),
        Err(err) => tracing::info!(?item, %err, "{name} not committed; retrying"),
    }
}

#[cfg(test)]
mod tests {
    use super::repair_period_at;

    #[test]
    fn a_repair_late_in_a_period_is_dated_the_next() {
        assert_eq!(repair_period_at(0, 1_000), 0);
        assert_eq!(repair_period_at(500, 1_000), 0, "half a period is left");
        assert_eq!(repair_period_at(501, 1_000), 1);
        assert_eq!(repair_period_at(1_999, 1_000), 2);
        assert_eq!(repair_period_at(2_000, 1_000), 2);
    }
}

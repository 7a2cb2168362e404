//! The repair routine: every [`REPAIR_INTERVAL`] this node passes over the
//! buckets of the clusters it is an active member of. Every member audits;
//! of a bucket's index replicas, one rebuilds: the first in rank that is
//! up. A replica of rank `k` asks the replicas ranked before it (a one-key
//! index list) and repairs only once each of them has been unreachable
//! past [`super::HOLDER_GRACE`], so a lost piece is rebuilt once, not by every
//! replica at the same time, and still rebuilt when the first replica is
//! gone. Every replica also pulls the bucket's whole index once per
//! becoming one (`Inner::sync_index`).
//!
//! ```text
//!  every REPAIR_INTERVAL, for each open bucket of a cluster this node serves:
//!    index replica? ─ no ─► Audit pass
//!       │ yes: sync the index once ─► replicas ranked before me up? ─ yes ─► Audit pass
//!       │                                                          └ no ──► Repair pass
//!    └► report the holders that failed (ReportAudit)
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use peercloud_ledger::{BucketId, TxKind};
use peercloud_store::rank;
use peercloud_types::{ContentId, NodeId};

use super::super::index::{INDEX_REPLICAS, cluster_nodes};
use super::super::{AskError, Inner};
use super::{REPAIR_INTERVAL, RepairMemory, RepairMode};
use crate::wire::Message;

/// Each open bucket this node serves, with its rank among the bucket's
/// index replicas (`None`: not a replica) and the replicas ranked before it.
fn my_buckets(inner: &Inner) -> Vec<(BucketId, Option<usize>, Vec<NodeId>)> {
    let chain = inner.chain();
    let state = chain.state();
    let me = inner.node_id();
    state
        .buckets()
        .filter(|(_, b)| !b.status.is_closed())
        .filter_map(|(id, b)| {
            let nodes = cluster_nodes(state, &b.cluster);
            if nodes.iter().all(|n| n.node != me) {
                return None;
            }
            let replicas: Vec<NodeId> = rank(&ContentId::of(&id.0.0), &nodes)
                .iter()
                .take(INDEX_REPLICAS)
                .map(|n| n.node)
                .collect();
            let mine = replicas.iter().position(|n| *n == me);
            let before = mine.map_or_else(Vec::new, |k| replicas[..k].to_vec());
            Some((*id, mine, before))
        })
        .collect()
}

/// Whether `node` answers an index request now (asked once per round).
async fn answers(
    inner: &Arc<Inner>,
    bucket: BucketId,
    node: NodeId,
    round: &mut HashMap<NodeId, bool>,
) -> bool {
    if let Some(up) = round.get(&node) {
        return *up;
    }
    let probe = Message::IndexList {
        bucket,
        prefix: String::new(),
        after: None,
        limit: 1,
        inline: false,
    };
    // Any answer, a refusal too, is a node that is up.
    let up = !matches!(
        inner
            .ask(&node, peercloud_net::Protocol::Index, &probe)
            .await,
        Err(AskError::Net { .. })
    );
    round.insert(node, up);
    up
}

/// Whether this node, a replica ranked after `before`, rebuilds `bucket`
/// now: only once every replica ranked before it has been unreachable past
/// the grace.
async fn leads(
    inner: &Arc<Inner>,
    bucket: BucketId,
    before: &[NodeId],
    memory: &mut RepairMemory,
    round: &mut HashMap<NodeId, bool>,
) -> bool {
    let mut all_gone = true;
    for node in before {
        if answers(inner, bucket, *node, round).await {
            memory.leaders_down.remove(node);
            all_gone = false;
        } else {
            let since = memory
                .leaders_down
                .entry(*node)
                .or_insert_with(std::time::Instant::now);
            all_gone &= since.elapsed() >= super::HOLDER_GRACE;
        }
    }
    all_gone
}

/// Repairs, every [`REPAIR_INTERVAL`], the buckets whose index this node keeps.
pub(crate) async fn repair_loop(inner: Arc<Inner>) {
    let mut down = RepairMemory::default();
    let mut reported: HashSet<(NodeId, u64)> = HashSet::new();
    loop {
        tokio::time::sleep(REPAIR_INTERVAL).await;
        let buckets = my_buckets(&inner);
        // A replica pulls a bucket's whole index once per becoming one.
        inner
            .index_syncs
            .retain(|b| buckets.iter().any(|(x, k, _)| x == b && k.is_some()));
        for (bucket, mine, _) in &buckets {
            if mine.is_some() {
                let (inner, bucket) = (inner.clone(), *bucket);
                tokio::spawn(async move { inner.ensure_index_pulled(bucket, false).await });
            }
        }
        let mut round = HashMap::new();
        for (bucket, mine, before) in buckets {
            let mode = match mine {
                None => RepairMode::Audit,
                Some(_) if leads(&inner, bucket, &before, &mut down, &mut round).await => {
                    RepairMode::Repair
                }
                Some(_) => RepairMode::Audit,
            };
            let pass = inner.repair_bucket(bucket, &mut down, mode).await;
            if let Ok(report) = &pass {
                inner.repairs.add(report);
            }
            match pass {
                Ok(report) if report.lost > 0 || !report.unrepaired.is_empty() => {
                    tracing::info!(
                        %bucket,
                        lost = report.lost,
                        rebuilt = report.rebuilt,
                        bytes_written = report.bytes_written,
                        unrepaired = ?report.unrepaired,
                        "repaired"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::debug!(%bucket, %err, "repair pass skipped"),
            }
            inner
                .file_repair_receipts(&bucket, &mut down.receipts)
                .await;
            report_failures(&inner, &bucket, &mut down, &mut reported).await;
        }
    }
}

/// Reports on the ledger each holder that failed a piece it had proved
/// (`ReportAudit`, signed by this node's owner), once per holder and audit
/// epoch; two members' reports in one epoch get it slashed and removed.
async fn report_failures(
    inner: &Arc<Inner>,
    bucket: &BucketId,
    memory: &mut RepairMemory,
    reported: &mut HashSet<(NodeId, u64)>,
) {
    let failures = memory.take_failures();
    if failures.is_empty() {
        return;
    }
    let (cluster, epoch) = {
        let chain = inner.chain();
        let state = chain.state();
        let Some(cluster) = state.bucket(bucket).map(|b| b.cluster) else {
            return;
        };
        let Some(period) = state.cluster(&cluster).map(|c| c.terms.billing_period_ms) else {
            return;
        };
        let now = state
            .tip()
            .map_or(0, |t| t.time_ms)
            .max(super::super::now_ms());
        (cluster, now.checked_div(period).unwrap_or(0))
    };
    reported.retain(|(_, e)| e + 1 >= epoch);
    let me = inner.node_id();
    for (node, cid) in failures {
        if node == me || !reported.insert((node, epoch)) {
            continue;
        }
        let kind = TxKind::ReportAudit {
            cluster,
            auditor: me,
            node,
            epoch,
            cid,
        };
        match inner.sign_and_submit(&inner.owner_key, kind, false).await {
            Ok(_) => tracing::warn!(%node, %cid, epoch, "reported a failed audit"),
            Err(err) => {
                reported.remove(&(node, epoch));
                tracing::info!(%node, %cid, %err, "audit failure not reported; retrying");
            }
        }
    }
}

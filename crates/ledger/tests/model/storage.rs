//! The storage half of the model: cluster, bucket, billing and audit
//! operations, the transactions they become, and the live cluster the
//! genesis block sets up.

use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketStatus, BucketUsage, ClusterAction, ClusterId, ClusterRecord,
    ClusterTerms, MemberStatus, Redundancy, RepairReceipt, State, Tx, TxKind,
};
use peercloud_types::{Amount, ContentId, Keypair, NodeId, Signed};
use proptest::prelude::*;

use super::{Model, NODES, USERS};
use crate::common::*;
use peercloud_ledger::params::AUDIT_REPORTS_TO_SLASH;

#[derive(Debug, Clone)]
pub(crate) enum StorageOp {
    CreateCluster {
        who: usize,
        two_of_two: bool,
    },
    Join {
        cluster: usize,
        node: usize,
        capacity_mib: u64,
    },
    Propose {
        cluster: usize,
        by: usize,
        action: u8,
        node: usize,
    },
    Approve {
        cluster: usize,
        by: usize,
        pick: usize,
    },
    Leave {
        cluster: usize,
        node: usize,
    },
    CreateBucket {
        cluster: usize,
        who: usize,
    },
    Deposit {
        bucket: usize,
        who: usize,
        tokens: u64,
    },
    Bill {
        bucket: usize,
        by: usize,
        stored_mib: u64,
        served_mib: u64,
        stranger: bool,
    },
    Close {
        bucket: usize,
        by: usize,
    },
    Expire {
        bucket: usize,
        by: usize,
    },
    /// A failed audit, mostly between two active members of a cluster, of
    /// this epoch or the last (`epoch_back` 2 is refused); a `stranger`
    /// report names any node and is signed by any node's owner.
    ReportAudit {
        cluster: usize,
        auditor: usize,
        node: usize,
        epoch_back: u64,
        stranger: bool,
    },
}

pub(crate) fn storage_op() -> impl Strategy<Value = StorageOp> {
    let user = 0..USERS;
    prop_oneof![
        1 => (user.clone(), prop::bool::weighted(0.5)).prop_map(|(who, two_of_two)| StorageOp::CreateCluster { who, two_of_two }),
        2 => (any::<usize>(), 0..NODES, 1u64..8).prop_map(|(cluster, node, capacity_mib)| StorageOp::Join { cluster, node, capacity_mib }),
        3 => (any::<usize>(), user.clone(), 0u8..3, 0..NODES).prop_map(|(cluster, by, action, node)| StorageOp::Propose { cluster, by, action, node }),
        2 => (any::<usize>(), user.clone(), any::<usize>()).prop_map(|(cluster, by, pick)| StorageOp::Approve { cluster, by, pick }),
        1 => (any::<usize>(), 0..NODES).prop_map(|(cluster, node)| StorageOp::Leave { cluster, node }),
        2 => (any::<usize>(), user.clone()).prop_map(|(cluster, who)| StorageOp::CreateBucket { cluster, who }),
        3 => (any::<usize>(), user.clone(), 0u64..20).prop_map(|(bucket, who, tokens)| StorageOp::Deposit { bucket, who, tokens }),
        4 => (any::<usize>(), 0..NODES, 0u64..4096, 0u64..2048, prop::bool::weighted(0.1))
            .prop_map(|(bucket, by, stored_mib, served_mib, stranger)| StorageOp::Bill { bucket, by, stored_mib, served_mib, stranger }),
        1 => (any::<usize>(), user.clone()).prop_map(|(bucket, by)| StorageOp::Close { bucket, by }),
        1 => (any::<usize>(), user).prop_map(|(bucket, by)| StorageOp::Expire { bucket, by }),
        6 => (any::<usize>(), 0..NODES, 0..NODES, prop::sample::select(vec![0u64, 0, 0, 1, 1, 2]), prop::bool::weighted(0.1))
            .prop_map(|(cluster, auditor, node, epoch_back, stranger)| StorageOp::ReportAudit { cluster, auditor, node, epoch_back, stranger }),
    ]
}

impl Model {
    fn pick<T: Copy>(items: &[T], pick: usize) -> Option<T> {
        (!items.is_empty()).then(|| items[pick % items.len()])
    }

    /// Mostly one of `cluster`'s managers (who may propose and approve),
    /// one time in eight any user.
    fn manager(&self, shadow: &State, cluster: &ClusterId, by: usize) -> &Keypair {
        let managers: Vec<&Keypair> = shadow
            .cluster(cluster)
            .map(|c| {
                c.managers
                    .iter()
                    .filter_map(|m| self.users.iter().find(|u| u.account_id() == *m))
                    .collect()
            })
            .unwrap_or_default();
        match Self::pick(&managers, by) {
            Some(key) if !by.is_multiple_of(8) => key,
            _ => &self.users[by % USERS],
        }
    }

    /// The transaction for a storage op at block time `time_ms`, if it applies.
    pub(crate) fn storage_tx(
        &self,
        shadow: &State,
        op: &StorageOp,
        time_ms: u64,
    ) -> Option<Signed<Tx>> {
        let user = |i: usize| &self.users[i % USERS];
        // Users 1..=3 own nodes 0..=2.
        let owner = |node: usize| &self.users[node + 1];
        Some(match op {
            StorageOp::CreateCluster { who, two_of_two } => {
                let managers = vec![user(*who).account_id(), user(who + 1).account_id()];
                let kind = TxKind::CreateCluster {
                    managers,
                    threshold: if *two_of_two { 2 } else { 1 },
                    terms: model_terms(),
                };
                self.sign(shadow, user(*who), kind)
            }
            StorageOp::Join {
                cluster,
                node,
                capacity_mib,
            } => {
                let kind = TxKind::JoinCluster {
                    cluster: Self::pick(&self.clusters, *cluster)?,
                    node: self.nodes[*node].node_id(),
                    capacity_bytes: capacity_mib << 20,
                };
                self.sign(shadow, owner(*node), kind)
            }
            StorageOp::Propose {
                cluster,
                by,
                action,
                node,
            } => {
                let cluster = Self::pick(&self.clusters, *cluster)?;
                let record = shadow.cluster(&cluster)?;
                // Mostly a pending member (admit) or any member (remove).
                let pending: Vec<_> = record
                    .members
                    .iter()
                    .filter(|(_, m)| m.status == MemberStatus::Pending)
                    .map(|(id, _)| *id)
                    .collect();
                let node = match Self::pick(&pending, *node) {
                    Some(id) if *action == 0 && !by.is_multiple_of(8) => id,
                    _ => self.nodes[*node].node_id(),
                };
                let action = match action {
                    0 => ClusterAction::Admit(node),
                    1 => ClusterAction::Remove(node),
                    _ => ClusterAction::SetTerms(ClusterTerms {
                        manager_fee_bps: 100,
                        ..model_terms()
                    }),
                };
                let kind = TxKind::ProposeCluster { cluster, action };
                self.sign(shadow, self.manager(shadow, &cluster, *by), kind)
            }
            StorageOp::Approve { cluster, by, pick } => {
                // Mostly a cluster with an open proposal.
                let proposing: Vec<ClusterId> = self
                    .clusters
                    .iter()
                    .copied()
                    .filter(|c| shadow.cluster(c).is_some_and(|r| !r.proposals.is_empty()))
                    .collect();
                let cluster = match Self::pick(&proposing, *cluster) {
                    Some(id) if !cluster.is_multiple_of(8) => id,
                    _ => Self::pick(&self.clusters, *cluster)?,
                };
                let record = shadow.cluster(&cluster)?;
                let open: Vec<u64> = record.proposals.keys().copied().collect();
                let proposal = Self::pick(&open, *pick).unwrap_or(*pick as u64 % 4);
                let kind = TxKind::ApproveCluster { cluster, proposal };
                self.sign(shadow, self.manager(shadow, &cluster, *by), kind)
            }
            StorageOp::Leave { cluster, node } => {
                let kind = TxKind::LeaveCluster {
                    cluster: Self::pick(&self.clusters, *cluster)?,
                    node: self.nodes[*node].node_id(),
                };
                self.sign(shadow, owner(*node), kind)
            }
            StorageOp::CreateBucket { cluster, who } => {
                let kind = TxKind::CreateBucket {
                    cluster: Self::pick(&self.clusters, *cluster)?,
                    public: who.is_multiple_of(2),
                };
                self.sign(shadow, user(*who), kind)
            }
            StorageOp::Deposit {
                bucket,
                who,
                tokens,
            } => {
                let kind = TxKind::DepositBucket {
                    bucket: Self::pick(&self.buckets, *bucket)?,
                    amount: Amount::from_tokens(*tokens),
                };
                self.sign(shadow, user(*who), kind)
            }
            StorageOp::Bill {
                bucket,
                by,
                stored_mib,
                served_mib,
                stranger,
            } => {
                let bucket = Self::pick(&self.buckets, *bucket)?;
                let record = shadow.bucket(&bucket)?;
                let bucket_owner = self.users.iter().find(|u| u.account_id() == record.owner)?;
                let usage = BucketUsage {
                    bucket,
                    stored_bytes: stored_mib << 20,
                    seq: record.usage_seq + 1,
                    at_ms: record.billed_until_ms,
                };
                let receiver = if *stranger {
                    user(USERS - 1)
                } else {
                    bucket_owner
                };
                let receipts = self
                    .nodes
                    .iter()
                    .take(2)
                    .map(|node| {
                        let receipt = BandwidthReceipt {
                            bucket,
                            node: node.node_id(),
                            period: record.next_period,
                            bytes: served_mib << 20,
                            receiver: receiver.account_id(),
                        };
                        Signed::new(receipt, receiver)
                    })
                    .collect();
                // A repair of node 2's onto node 0, signed by node 0 (by node 1
                // when a stranger signs: refused).
                let repairs = match (self.nodes.get(2), self.nodes.first(), self.nodes.get(1)) {
                    (Some(repairer), Some(receiver), Some(other)) if served_mib % 2 == 0 => {
                        let receipt = RepairReceipt {
                            bucket,
                            period: record.next_period,
                            repairer: repairer.node_id(),
                            receiver: receiver.node_id(),
                            bytes: (served_mib * 3) << 20,
                        };
                        vec![Signed::new(
                            receipt,
                            if *stranger { other } else { receiver },
                        )]
                    }
                    _ => Vec::new(),
                };
                let kind = TxKind::BillBucket {
                    bucket,
                    period: record.next_period,
                    usage: Some(Signed::new(usage, bucket_owner)),
                    receipts,
                    repairs,
                };
                // Mostly the owner of an active member, sometimes anyone's node owner.
                let cluster = shadow.cluster(&record.cluster)?;
                let active: Vec<_> = cluster
                    .members
                    .values()
                    .filter(|m| m.status == MemberStatus::Active)
                    .filter_map(|m| self.users.iter().find(|u| u.account_id() == m.owner))
                    .collect();
                let signer = match Self::pick(&active, *by) {
                    Some(key) if !by.is_multiple_of(8) => key,
                    _ => owner(*by),
                };
                self.sign(shadow, signer, kind)
            }
            StorageOp::Close { bucket, by } => {
                let bucket = Self::pick(&self.buckets, *bucket)?;
                let owner_key = self
                    .users
                    .iter()
                    .find(|u| Some(u.account_id()) == shadow.bucket(&bucket).map(|b| b.owner));
                let signer = if by.is_multiple_of(4) {
                    user(*by)
                } else {
                    owner_key?
                };
                self.sign(shadow, signer, TxKind::CloseBucket { bucket })
            }
            StorageOp::Expire { bucket, by } => {
                // Mostly a read-only bucket.
                let read_only: Vec<BucketId> = self
                    .buckets
                    .iter()
                    .copied()
                    .filter(|b| {
                        shadow
                            .bucket(b)
                            .is_some_and(|r| matches!(r.status, BucketStatus::ReadOnly { .. }))
                    })
                    .collect();
                let bucket = match Self::pick(&read_only, *bucket) {
                    Some(id) if !bucket.is_multiple_of(8) => id,
                    _ => Self::pick(&self.buckets, *bucket)?,
                };
                let kind = TxKind::ExpireBucket { bucket };
                self.sign(shadow, user(*by), kind)
            }
            StorageOp::ReportAudit {
                cluster,
                auditor,
                node,
                epoch_back,
                stranger,
            } => {
                // Mostly a cluster with an auditor quorum and a node to judge.
                let judging: Vec<ClusterId> = self
                    .clusters
                    .iter()
                    .copied()
                    .filter(|c| {
                        shadow
                            .cluster(c)
                            .is_some_and(|r| r.weights().len() > AUDIT_REPORTS_TO_SLASH)
                    })
                    .collect();
                let cluster = match Self::pick(&judging, *cluster) {
                    Some(id) if !cluster.is_multiple_of(8) => id,
                    _ => Self::pick(&self.clusters, *cluster)?,
                };
                let record = shadow.cluster(&cluster)?;
                let epoch = (time_ms / record.terms.billing_period_ms).saturating_sub(*epoch_back);
                let (auditor_id, node_id) = if *stranger {
                    (self.nodes[*auditor].node_id(), self.nodes[*node].node_id())
                } else {
                    audit_pair(record, epoch, *auditor, *node)
                        .unwrap_or((self.nodes[*auditor].node_id(), self.nodes[*node].node_id()))
                };
                let signer = match self.nodes.iter().position(|n| n.node_id() == auditor_id) {
                    Some(i) if !stranger => owner(i),
                    _ => owner(*node),
                };
                let kind = TxKind::ReportAudit {
                    cluster,
                    auditor: auditor_id,
                    node: node_id,
                    epoch,
                    cid: ContentId::of(&[*node as u8]),
                };
                self.sign(shadow, signer, kind)
            }
        })
    }
}

/// An (auditor, node) pair of distinct active members of `record`: mostly
/// (unless `node` is 0) a node `epoch`'s tally names already, with an
/// auditor that has not reported it yet, so reports reach a judgement.
fn audit_pair(
    record: &ClusterRecord,
    epoch: u64,
    auditor: usize,
    node: usize,
) -> Option<(NodeId, NodeId)> {
    let active: Vec<NodeId> = record
        .members
        .iter()
        .filter(|(_, m)| m.status == MemberStatus::Active)
        .map(|(id, _)| *id)
        .collect();
    let tallied: Vec<(NodeId, Vec<NodeId>)> = record
        .audit_reports
        .get(&epoch)
        .map(|reports| {
            reports
                .iter()
                .map(|(reported, auditors)| {
                    let fresh = active
                        .iter()
                        .copied()
                        .filter(|a| a != reported && !auditors.contains(a))
                        .collect();
                    (*reported, fresh)
                })
                .filter(|(_, fresh): &(NodeId, Vec<NodeId>)| !fresh.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if node != 0
        && let Some((reported, fresh)) = tallied.get(node % tallied.len().max(1))
    {
        return Some((fresh[auditor % fresh.len()], *reported));
    }
    let auditor_id = *active.get(auditor % active.len().max(1))?;
    let others: Vec<NodeId> = active.into_iter().filter(|id| *id != auditor_id).collect();
    let node_id = *others.get(node % others.len().max(1))?;
    Some((auditor_id, node_id))
}

/// Terms of the model's clusters: short periods so blocks cross them, prices
/// that drain small deposits so buckets go read-only and expire.
fn model_terms() -> ClusterTerms {
    ClusterTerms {
        redundancy: Redundancy::Replicas(2),
        price_per_gib_month: Amount::from_tokens(100_000),
        price_per_gib_served: Amount::from_tokens(3),
        manager_fee_bps: 250,
        node_stake: Amount::from_tokens(5),
        billing_period_ms: 2_000,
        grace_ms: 4_000,
    }
}

/// Users 0 and 1 run a 2-of-2 cluster where nodes 0 and 1 are active and
/// node 2 pending; user 0 funds a bucket in it, so storage ops meet a live
/// cluster. User 2 runs a 1-of-2 cluster (with user 3) where all three
/// nodes are active, so audit reports can reach a judgement (two auditors
/// and the node they report). Appends the transactions to `extra`; returns
/// the clusters' ids and the bucket's.
pub(crate) fn genesis_storage(
    users: &[Keypair],
    nodes: &[Keypair],
    extra: &mut Vec<Signed<Tx>>,
) -> (Vec<ClusterId>, BucketId) {
    let signed = |signer: &Keypair, nonce: u64, kind: TxKind| {
        let tx = Tx {
            chain: params().digest(),
            nonce,
            fee: MIN_FEE,
            kind,
        };
        Signed::new(tx, signer)
    };
    let manager = &users[0];
    let cluster = ClusterId::derive(&manager.account_id(), 1);
    let bucket = BucketId::derive(&manager.account_id(), 4);
    let create = TxKind::CreateCluster {
        managers: vec![manager.account_id(), users[1].account_id()],
        threshold: 2,
        terms: model_terms(),
    };
    extra.push(signed(manager, 1, create));
    for (i, node) in nodes.iter().enumerate() {
        let join = TxKind::JoinCluster {
            cluster,
            node: node.node_id(),
            capacity_bytes: (i as u64 + 1) << 20,
        };
        extra.push(signed(&users[i + 1], 3, join));
    }
    for (proposal, node) in [(0, &nodes[0]), (1, &nodes[1])] {
        let action = ClusterAction::Admit(node.node_id());
        let propose = TxKind::ProposeCluster { cluster, action };
        extra.push(signed(manager, proposal + 2, propose));
        let approve = TxKind::ApproveCluster { cluster, proposal };
        extra.push(signed(&users[1], proposal + 4, approve));
    }
    let create = TxKind::CreateBucket {
        cluster,
        public: false,
    };
    extra.push(signed(manager, 4, create));
    let amount = Amount::from_tokens(20);
    extra.push(signed(manager, 5, TxKind::DepositBucket { bucket, amount }));

    // Users 1, 2 and 3 are at nonces 5, 3 and 3.
    let auditing_manager = &users[2];
    let auditing = ClusterId::derive(&auditing_manager.account_id(), 4);
    let create = TxKind::CreateCluster {
        managers: vec![auditing_manager.account_id(), users[3].account_id()],
        threshold: 1,
        terms: model_terms(),
    };
    extra.push(signed(auditing_manager, 4, create));
    for (i, (node, nonce)) in nodes.iter().zip([6, 5, 4]).enumerate() {
        let join = TxKind::JoinCluster {
            cluster: auditing,
            node: node.node_id(),
            capacity_bytes: (i as u64 + 1) << 20,
        };
        extra.push(signed(&users[i + 1], nonce, join));
    }
    for (node, nonce) in nodes.iter().zip(6..) {
        let action = ClusterAction::Admit(node.node_id());
        let propose = TxKind::ProposeCluster {
            cluster: auditing,
            action,
        };
        extra.push(signed(auditing_manager, nonce, propose));
    }
    (vec![cluster, auditing], bucket)
}

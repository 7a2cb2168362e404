//! The storage views: a cluster (`GET /v1/clusters`, `GET /v1/clusters/{id}`)
//! and a bucket (`GET /v1/buckets/{id}`, `GET /v1/accounts/{id}/buckets`) as
//! a user or a farmer reads them. Built from the ledger's records by
//! [`ClusterView::new`] and [`BucketView::new`], so the node and every
//! in-process caller show the same thing. Enums read as plain words
//! (`"active"`, `"read_only"`, `{"kind": "replicas", "copies": 3}`), amounts
//! as decimal PCL strings.

use peercloud_ledger::billing::storage_charge;
use peercloud_ledger::{
    BucketId, BucketRecord, BucketStatus, ClusterAction, ClusterId, ClusterRecord, ClusterTerms,
    MemberStatus, Redundancy,
};
use peercloud_types::{AccountId, Amount, NodeId};
use serde::{Deserialize, Serialize};

/// How a cluster keeps each segment, plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RedundancyView {
    /// Whole copies on `copies` nodes.
    Replicas {
        /// How many copies.
        copies: u8,
    },
    /// Reed-Solomon: any `data` of the `data + parity` pieces rebuild a segment.
    ReedSolomon {
        /// Data pieces (k).
        data: u8,
        /// Parity pieces (m).
        parity: u8,
    },
}

impl From<Redundancy> for RedundancyView {
    fn from(redundancy: Redundancy) -> Self {
        match redundancy {
            Redundancy::Replicas(copies) => RedundancyView::Replicas { copies },
            Redundancy::ReedSolomon { data, parity } => {
                RedundancyView::ReedSolomon { data, parity }
            }
        }
    }
}

impl std::fmt::Display for RedundancyView {
    /// `3 replicas`, `RS(4+2)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedundancyView::Replicas { copies: 1 } => f.write_str("1 replica"),
            RedundancyView::Replicas { copies } => write!(f, "{copies} replicas"),
            RedundancyView::ReedSolomon { data, parity } => write!(f, "RS({data}+{parity})"),
        }
    }
}

/// What a cluster charges and asks of its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsView {
    /// How segments are kept.
    pub redundancy: RedundancyView,
    /// Price of one GiB stored for a month (30 days).
    pub price_per_gib_month: Amount,
    /// Price of one GiB served.
    pub price_per_gib_served: Amount,
    /// The managers' fee on every bill, basis points (paid to the creator).
    pub manager_fee_bps: u32,
    /// Stake a node locks to join.
    pub node_stake: Amount,
    /// Length of a billing period, ms.
    pub billing_period_ms: u64,
    /// How long a bucket that ran out stays read-only before it may expire, ms.
    pub grace_ms: u64,
}

impl From<&ClusterTerms> for TermsView {
    fn from(terms: &ClusterTerms) -> Self {
        TermsView {
            redundancy: terms.redundancy.into(),
            price_per_gib_month: terms.price_per_gib_month,
            price_per_gib_served: terms.price_per_gib_served,
            manager_fee_bps: terms.manager_fee_bps,
            node_stake: terms.node_stake,
            billing_period_ms: terms.billing_period_ms,
            grace_ms: terms.grace_ms,
        }
    }
}

/// Whether a member may hold data and be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Joined, stake locked, waiting for the managers to admit it.
    Pending,
    /// Admitted: holds data, is paid.
    Active,
}

impl From<MemberStatus> for MemberState {
    fn from(status: MemberStatus) -> Self {
        match status {
            MemberStatus::Pending => MemberState::Pending,
            MemberStatus::Active => MemberState::Active,
        }
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            MemberState::Pending => "pending",
            MemberState::Active => "active",
        })
    }
}

/// One member node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The node.
    pub node: NodeId,
    /// Its owner (gets its stake back and its pay).
    pub owner: AccountId,
    /// Bytes it offers.
    pub capacity_bytes: u64,
    /// Stake it locked.
    pub stake: Amount,
    /// Pending or active.
    pub status: MemberState,
}

/// What an open proposal does once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionView {
    /// Make a pending member active.
    Admit {
        /// The node.
        node: NodeId,
    },
    /// Remove a member (its stake goes back to its owner).
    Remove {
        /// The node.
        node: NodeId,
    },
    /// Replace the terms.
    SetTerms {
        /// The new terms.
        terms: TermsView,
    },
}

impl From<&ClusterAction> for ActionView {
    fn from(action: &ClusterAction) -> Self {
        match action {
            ClusterAction::Admit(node) => ActionView::Admit { node: *node },
            ClusterAction::Remove(node) => ActionView::Remove { node: *node },
            ClusterAction::SetTerms(terms) => ActionView::SetTerms {
                terms: terms.into(),
            },
        }
    }
}

impl std::fmt::Display for ActionView {
    /// `admit pcn1…`, `remove pcn1…`, `set terms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionView::Admit { node } => write!(f, "admit {node}"),
            ActionView::Remove { node } => write!(f, "remove {node}"),
            ActionView::SetTerms { terms } => write!(f, "set terms ({})", terms.redundancy),
        }
    }
}

/// An open proposal of a cluster's managers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id (`cluster approve CLUSTER ID`).
    pub id: u64,
    /// What it does.
    pub action: ActionView,
    /// Managers that approved it so far, the proposer first.
    pub approvals: Vec<AccountId>,
    /// Block time it was proposed, ms since the Unix epoch (it goes stale 7 days after).
    pub proposed_ms: u64,
}

/// A cluster: managers, terms, members, open proposals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The cluster (64 hex digits; `cluster:<hex>` in text).
    pub id: ClusterId,
    /// Who created it (receives the managers' fee).
    pub creator: AccountId,
    /// The manager accounts.
    pub managers: Vec<AccountId>,
    /// Approvals a decision needs.
    pub threshold: u8,
    /// What it charges and asks of its nodes.
    pub terms: TermsView,
    /// Its member nodes, in node id order.
    pub members: Vec<MemberView>,
    /// Open proposals, in id order (stale ones until the next proposal drops them).
    pub proposals: Vec<ProposalView>,
    /// Buckets in it that are neither closed nor expired.
    pub open_buckets: u32,
}

impl ClusterView {
    /// The view of cluster `id`, as the ledger records it.
    pub fn new(id: ClusterId, record: &ClusterRecord) -> ClusterView {
        ClusterView {
            id,
            creator: record.creator,
            managers: record.managers.clone(),
            threshold: record.threshold,
            terms: (&record.terms).into(),
            members: record
                .members
                .iter()
                .map(|(node, m)| MemberView {
                    node: *node,
                    owner: m.owner,
                    capacity_bytes: m.capacity_bytes,
                    stake: m.stake,
                    status: m.status.into(),
                })
                .collect(),
            proposals: record
                .proposals
                .iter()
                .map(|(id, p)| ProposalView {
                    id: *id,
                    action: (&p.action).into(),
                    approvals: p.approvals.clone(),
                    proposed_ms: p.proposed_ms,
                })
                .collect(),
            open_buckets: record.open_buckets,
        }
    }

    /// The member `node`, if it is one.
    pub fn member(&self, node: &NodeId) -> Option<&MemberView> {
        self.members.iter().find(|m| m.node == *node)
    }

    /// How many members are active.
    pub fn active(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.status == MemberState::Active)
            .count()
    }
}

/// Where a bucket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketState {
    /// Funded: reads and writes.
    Active,
    /// A bill found the deposit short: reads only until a deposit covers a
    /// period again or the grace ends.
    ReadOnly,
    /// Closed by its owner; the rest of the deposit went back.
    Closed,
    /// Expired after its grace; the rest of the deposit went back.
    Expired,
}

impl std::fmt::Display for BucketState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            BucketState::Active => "active",
            BucketState::ReadOnly => "read-only",
            BucketState::Closed => "closed",
            BucketState::Expired => "expired",
        })
    }
}

/// A bucket and its deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketView {
    /// The bucket (64 hex digits; `bucket:<hex>` in text).
    pub id: BucketId,
    /// Its owner.
    pub owner: AccountId,
    /// The cluster that holds it.
    pub cluster: ClusterId,
    /// Readable by anyone (plaintext objects) or sealed to the owner.
    pub public: bool,
    /// Where it is in its life.
    pub status: BucketState,
    /// Block time it became read-only, when it is.
    pub read_only_since_ms: Option<u64>,
    /// When a read-only bucket's grace ends and it may expire.
    pub grace_ends_ms: Option<u64>,
    /// Block time it was created, ms since the Unix epoch.
    pub created_ms: u64,
    /// What it holds now (`deposited - released`).
    pub deposit: Amount,
    /// Deposited into it, ever.
    pub deposited: Amount,
    /// Paid or refunded out of it, ever.
    pub released: Amount,
    /// The first billing period not yet billed.
    pub next_period: u64,
    /// Time up to which its storage is billed.
    pub billed_until_ms: u64,
    /// Bytes stored, per the last bill's usage.
    pub stored_bytes: u64,
    /// What the last bill charged.
    pub last_charge: Amount,
    /// Whether the ledger has warned that the deposit runs low (fewer than
    /// three periods at the last charge).
    pub low_warned: bool,
    /// The cluster's billing period, ms.
    pub billing_period_ms: u64,
    /// The estimate of the next period's charge: the last bill's charge, or
    /// storing `stored_bytes` for a period when that is more.
    pub period_charge: Amount,
    /// How many whole periods the deposit still covers at `period_charge`
    /// (`None`: nothing to charge yet, so no end in sight).
    pub periods_covered: Option<u64>,
}

impl BucketView {
    /// The view of bucket `id`, as the ledger records it; `terms` are its
    /// cluster's (for the charge estimate; without them the estimate is the
    /// last charge alone and the period length 0).
    pub fn new(id: BucketId, record: &BucketRecord, terms: Option<&ClusterTerms>) -> BucketView {
        let (status, since) = match record.status {
            BucketStatus::Active => (BucketState::Active, None),
            BucketStatus::ReadOnly { since_ms } => (BucketState::ReadOnly, Some(since_ms)),
            BucketStatus::Closed => (BucketState::Closed, None),
            BucketStatus::Expired => (BucketState::Expired, None),
        };
        // Only a broken supply invariant makes this fail; the view then says nothing is held.
        let deposit = record.deposit().unwrap_or(Amount::ZERO);
        let billing_period_ms = terms.map_or(0, |t| t.billing_period_ms);
        let storage = terms
            .and_then(|t| {
                storage_charge(
                    record.stored_bytes,
                    t.billing_period_ms,
                    t.price_per_gib_month,
                )
            })
            .unwrap_or(Amount::ZERO);
        let period_charge = record.last_charge.max(storage);
        let periods_covered = (!period_charge.is_zero())
            .then(|| deposit.base_units() / period_charge.base_units())
            .map(|periods| u64::try_from(periods).unwrap_or(u64::MAX));
        BucketView {
            id,
            owner: record.owner,
            cluster: record.cluster,
            public: record.public,
            status,
            read_only_since_ms: since,
            grace_ends_ms: since
                .zip(terms)
                .map(|(since, t)| since.saturating_add(t.grace_ms)),
            created_ms: record.created_ms,
            deposit,
            deposited: record.deposited,
            released: record.released,
            next_period: record.next_period,
            billed_until_ms: record.billed_until_ms,
            stored_bytes: record.stored_bytes,
            last_charge: record.last_charge,
            low_warned: record.low_warned,
            billing_period_ms,
            period_charge,
            periods_covered,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use peercloud_ledger::{Member, Proposal};
    use peercloud_types::Keypair;

    use super::*;

    fn account(seed: u8) -> AccountId {
        Keypair::from_seed(&[seed; 32]).account_id()
    }

    fn terms() -> ClusterTerms {
        ClusterTerms {
            redundancy: Redundancy::ReedSolomon { data: 4, parity: 2 },
            price_per_gib_month: Amount::from_tokens(2),
            price_per_gib_served: "0.01".parse().unwrap(),
            manager_fee_bps: 500,
            node_stake: Amount::from_tokens(10),
            billing_period_ms: 30 * 86_400_000,
            grace_ms: 30 * 86_400_000,
        }
    }

    fn bucket(status: BucketStatus) -> BucketRecord {
        BucketRecord {
            owner: account(1),
            cluster: ClusterId::derive(&account(2), 1),
            public: false,
            created_ms: 1_000,
            deposited: Amount::from_tokens(7),
            released: Amount::from_tokens(1),
            next_period: 1,
            billed_until_ms: 5_000,
            usage_seq: 3,
            stored_bytes: 1 << 30,
            last_charge: Amount::from_tokens(1),
            low_warned: false,
            status,
        }
    }

    #[test]
    fn a_cluster_reads_in_plain_words() {
        let node = Keypair::from_seed(&[9; 32]).node_id();
        let mut members = BTreeMap::new();
        members.insert(
            node,
            Member {
                owner: account(3),
                capacity_bytes: 20 << 30,
                stake: Amount::from_tokens(10),
                status: MemberStatus::Pending,
            },
        );
        let mut proposals = BTreeMap::new();
        proposals.insert(
            4,
            Proposal {
                action: ClusterAction::Admit(node),
                approvals: vec![account(2)],
                proposed_ms: 77,
            },
        );
        let id = ClusterId::derive(&account(2), 1);
        let record = ClusterRecord {
            creator: account(2),
            managers: vec![account(2), account(4)],
            threshold: 2,
            terms: terms(),
            members,
            proposals,
            next_proposal: 5,
            open_buckets: 1,
            audit_reports: BTreeMap::new(),
        };
        let view = ClusterView::new(id, &record);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["id"], id.0.to_string());
        assert_eq!(
            json["terms"]["redundancy"],
            serde_json::json!({"kind": "reed_solomon", "data": 4, "parity": 2})
        );
        assert_eq!(json["terms"]["price_per_gib_served"], "0.01");
        assert_eq!(json["members"][0]["status"], "pending");
        assert_eq!(json["members"][0]["capacity_bytes"], 20u64 << 30);
        assert_eq!(json["proposals"][0]["id"], 4);
        assert_eq!(
            json["proposals"][0]["action"],
            serde_json::json!({"kind": "admit", "node": node.to_string()})
        );
        assert_eq!(view.terms.redundancy.to_string(), "RS(4+2)");
        assert_eq!(view.active(), 0);
        let back: ClusterView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
    }

    #[test]
    fn a_bucket_shows_its_deposit_and_how_long_it_lasts() {
        let id = BucketId::derive(&account(1), 2);
        let view = BucketView::new(id, &bucket(BucketStatus::Active), Some(&terms()));
        assert_eq!(view.deposit, Amount::from_tokens(6));
        // 1 GiB for a 30-day period at 2 PCL per GiB-month: 2 PCL a period, above the last charge.
        assert_eq!(view.period_charge, Amount::from_tokens(2));
        assert_eq!(view.periods_covered, Some(3));
        assert_eq!(view.status, BucketState::Active);
        assert_eq!(view.read_only_since_ms, None);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["deposit"], "6");
        assert_eq!(json["status"], "active");

        let read_only = BucketView::new(
            id,
            &bucket(BucketStatus::ReadOnly { since_ms: 9_000 }),
            Some(&terms()),
        );
        assert_eq!(read_only.status, BucketState::ReadOnly);
        assert_eq!(read_only.read_only_since_ms, Some(9_000));
        assert_eq!(read_only.grace_ends_ms, Some(9_000 + 30 * 86_400_000));
        assert_eq!(
            serde_json::to_value(&read_only).unwrap()["status"],
            "read_only"
        );
    }

    #[test]
    fn an_empty_bucket_has_no_end_in_sight() {
        let mut record = bucket(BucketStatus::Active);
        record.stored_bytes = 0;
        record.last_charge = Amount::ZERO;
        let view = BucketView::new(BucketId::derive(&account(1), 2), &record, Some(&terms()));
        assert_eq!(view.period_charge, Amount::ZERO);
        assert_eq!(view.periods_covered, None);
    }
}

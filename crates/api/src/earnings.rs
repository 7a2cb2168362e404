//! A farmer's view of its node (`GET /v1/earnings?limit=N`): what the node
//! earned from storage, for which buckets and when, and how it stands on the
//! ledger (reputation, stake to serve, stake locked in clusters), so one
//! call answers "what am I earning and how am I standing". Amounts read as
//! decimal PCL strings, kinds as plain words (`"storage"`, `"bandwidth"`).
//! It also shows how the node is audited: the audits it answered and how,
//! and the reports and judgements of it on the ledger, so every move of its
//! reputation and stake has its reason beside it.

use peercloud_ledger::{BucketId, ClusterId};
use peercloud_types::{AccountId, Amount, ContentId, NodeId};
use serde::{Deserialize, Serialize};

use crate::MemberState;

/// Most payments one view lists: every payment the node keeps in detail.
pub const EARNINGS_LIMIT_MAX: u32 = 10_000;
/// Payments a view lists when the query names no limit.
pub const EARNINGS_LIMIT_DEFAULT: u32 = 100;

/// The query of `GET /v1/earnings`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsQuery {
    /// Most recent payments to list, newest first (0..=[`EARNINGS_LIMIT_MAX`];
    /// [`EARNINGS_LIMIT_DEFAULT`] when absent; 0 lists none, totals only).
    /// The same bound applies to each list of audits.
    pub limit: Option<u32>,
}

/// What a storage payment was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// Bytes the node held for a billing period (every active member is paid, by capacity).
    Storage,
    /// Bytes the node served that the bucket's owner acknowledged.
    Bandwidth,
    /// Pieces the node rebuilt onto other nodes, which acknowledged them.
    Repair,
}

impl std::fmt::Display for PaymentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            PaymentKind::Storage => "storage",
            PaymentKind::Bandwidth => "bandwidth",
            PaymentKind::Repair => "repair",
        })
    }
}

/// One payment the node's owner received for the node's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// Height of the block that paid it.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The bucket that paid.
    pub bucket: BucketId,
    /// What it paid for.
    pub kind: PaymentKind,
    /// How much.
    pub amount: Amount,
}

/// What one bucket paid the node, ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEarningsView {
    /// The bucket.
    pub bucket: BucketId,
    /// Paid for bytes stored.
    pub storage: Amount,
    /// Paid for bytes served.
    pub bandwidth: Amount,
    /// Paid for pieces rebuilt onto other nodes.
    #[serde(default)]
    pub repair: Amount,
    /// How many payments.
    pub payments: u64,
}

impl BucketEarningsView {
    /// Storage, bandwidth and repair together (saturating: a sum of real
    /// payments is far below the supply).
    pub fn total(&self) -> Amount {
        self.storage
            .checked_add(self.bandwidth)
            .and_then(|sum| sum.checked_add(self.repair))
            .unwrap_or(Amount::from_base_units(u128::MAX))
    }
}

/// The node's place in one storage cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStakeView {
    /// The cluster.
    pub cluster: ClusterId,
    /// Pending admission or active (paid).
    pub status: MemberState,
    /// Bytes the node offers there.
    pub capacity_bytes: u64,
    /// Stake locked to be a member (back on leaving).
    pub stake: Amount,
}

/// How the node and its owner stand on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingView {
    /// Whether the node is registered.
    pub registered: bool,
    /// Its reputation score (when registered).
    pub reputation: Option<u32>,
    /// Jobs where its result agreed with the majority.
    pub jobs_agreed: u64,
    /// Jobs where it disagreed, missed its result, or there was no majority.
    pub jobs_faulted: u64,
    /// The owner's spendable balance.
    pub balance: Amount,
    /// The owner's stake to serve (jobs and chunks).
    pub stake: Amount,
    /// Stake locked in clusters for this node, all of them.
    pub cluster_stake: Amount,
    /// The clusters the node is a member of, in id order.
    pub clusters: Vec<ClusterStakeView>,
}

/// `GET /v1/earnings`: what this node earned from storage and how it stands.
/// Totals count every payment the chain made for the node (a node rebuilds
/// its record from its block log); `recent` lists the newest (the node keeps
/// the last 10,000 in detail). Read in one step with the ledger, so
/// `standing.balance` and the totals are of the same block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsView {
    /// The node (`pcn1…`).
    pub node: NodeId,
    /// Its owner, who is paid (`pc1…`).
    pub owner: AccountId,
    /// Height of the node's tip.
    pub height: Option<u64>,
    /// The last block whose payments are recorded: the tip, unless a failed
    /// write left the record behind (a restart catches it up).
    pub recorded_height: Option<u64>,
    /// Paid for bytes stored, ever.
    pub storage: Amount,
    /// Paid for bytes served, ever.
    pub bandwidth: Amount,
    /// Paid for pieces rebuilt onto other nodes, ever.
    #[serde(default)]
    pub repair: Amount,
    /// All three.
    pub total: Amount,
    /// How many payments, ever.
    pub payments: u64,
    /// Per bucket, in bucket id order.
    pub buckets: Vec<BucketEarningsView>,
    /// The newest payments, newest first.
    pub recent: Vec<PaymentView>,
    /// Reputation and stakes.
    pub standing: StandingView,
    /// How the node is audited (empty from a node that predates it).
    #[serde(default)]
    pub audits: AuditsView,
}

/// How the node answered an audit, from its own side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAnswerKind {
    /// It sent a proof.
    Proved,
    /// It does not have the piece.
    Missing,
    /// Its copy of the piece is corrupt.
    Corrupt,
    /// Its store or the proof failed.
    Error,
}

impl AuditAnswerKind {
    /// Whether the node proved the piece.
    pub fn passed(self) -> bool {
        self == AuditAnswerKind::Proved
    }
}

impl std::fmt::Display for AuditAnswerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            AuditAnswerKind::Proved => "proved",
            AuditAnswerKind::Missing => "missing",
            AuditAnswerKind::Corrupt => "corrupt",
            AuditAnswerKind::Error => "error",
        })
    }
}

/// How many audits the node answered, by outcome, ever (kept across
/// restarts; a node may lose the last seconds of them in a crash).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCountsView {
    /// Proofs sent.
    pub proved: u64,
    /// Pieces it did not have.
    pub missing: u64,
    /// Pieces whose copy was corrupt.
    pub corrupt: u64,
    /// Other failures.
    pub error: u64,
}

impl AuditCountsView {
    /// Audits passed (proved).
    pub fn passed(&self) -> u64 {
        self.proved
    }

    /// Audits failed: missing, corrupt or an error.
    pub fn failed(&self) -> u64 {
        self.missing
            .saturating_add(self.corrupt)
            .saturating_add(self.error)
    }
}

/// One audit the node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredAuditView {
    /// When, ms since the Unix epoch (the node's clock).
    pub time_ms: u64,
    /// The piece it was asked to prove.
    pub cid: ContentId,
    /// The node that asked (`None`: a peer that names no node key).
    pub auditor: Option<NodeId>,
    /// How it answered.
    pub outcome: AuditAnswerKind,
}

/// A member's report of the node's failed audit, taken by the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReportView {
    /// Height of the block that took it.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The cluster.
    pub cluster: ClusterId,
    /// The member that reported.
    pub auditor: NodeId,
    /// The audit epoch (block time / the cluster's billing period).
    pub epoch: u64,
    /// The piece.
    pub cid: ContentId,
}

/// The ledger's judgement of the node on its reports: part of its member
/// stake slashed, the rest returned, and the node removed from the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditJudgementView {
    /// Height of the block that judged it.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The cluster.
    pub cluster: ClusterId,
    /// The epoch of the reports.
    pub epoch: u64,
    /// Stake taken to the treasury.
    pub slashed: Amount,
    /// Stake given back to the owner.
    pub returned: Amount,
}

/// How the node is audited: its answers (counts ever, the newest in
/// detail) and the ledger's reports and judgements of it, newest first,
/// each list bounded by the query's limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditsView {
    /// Answers by outcome, ever.
    pub answered: AuditCountsView,
    /// The newest answers, newest first.
    pub recent: Vec<AnsweredAuditView>,
    /// Reports of the node, ever.
    pub reports_total: u64,
    /// The newest reports, newest first.
    pub reports: Vec<AuditReportView>,
    /// Judgements of the node, ever.
    pub judgements_total: u64,
    /// The newest judgements, newest first.
    pub judgements: Vec<AuditJudgementView>,
}

impl EarningsView {
    /// Whether the record is behind the node's tip (some blocks' payments
    /// are not counted yet).
    pub fn behind(&self) -> bool {
        self.recorded_height < self.height
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Hash32, Keypair};

    #[test]
    fn reads_and_writes_plain_words_and_decimal_amounts() {
        let payment = PaymentView {
            height: 7,
            time_ms: 1_000,
            bucket: BucketId(Hash32([1; 32])),
            kind: PaymentKind::Bandwidth,
            amount: Amount::from_base_units(1_500_000_000),
        };
        let json = serde_json::to_value(payment).unwrap();
        assert_eq!(json["kind"], "bandwidth");
        assert_eq!(serde_json::to_value(PaymentKind::Repair).unwrap(), "repair");
        assert_eq!(json["amount"], "1.5");
        assert_eq!(
            serde_json::from_value::<PaymentView>(json).unwrap(),
            payment
        );
        let query: EarningsQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(query.limit, None);
        let key = Keypair::from_seed(&[3; 32]);
        let view = EarningsView {
            node: key.node_id(),
            owner: key.account_id(),
            height: Some(9),
            recorded_height: Some(8),
            storage: Amount::ZERO,
            bandwidth: Amount::ZERO,
            repair: Amount::ZERO,
            total: Amount::ZERO,
            payments: 0,
            buckets: Vec::new(),
            recent: Vec::new(),
            standing: StandingView {
                registered: false,
                reputation: None,
                jobs_agreed: 0,
                jobs_faulted: 0,
                balance: Amount::ZERO,
                stake: Amount::ZERO,
                cluster_stake: Amount::ZERO,
                clusters: Vec::new(),
            },
            audits: AuditsView {
                answered: AuditCountsView {
                    proved: 5,
                    missing: 1,
                    corrupt: 2,
                    error: 0,
                },
                recent: vec![AnsweredAuditView {
                    time_ms: 2_000,
                    cid: ContentId::of(b"piece"),
                    auditor: Some(key.node_id()),
                    outcome: AuditAnswerKind::Corrupt,
                }],
                reports_total: 0,
                reports: Vec::new(),
                judgements_total: 1,
                judgements: vec![AuditJudgementView {
                    height: 9,
                    time_ms: 3_000,
                    cluster: ClusterId(Hash32([2; 32])),
                    epoch: 4,
                    slashed: Amount::from_base_units(1_000_000_000),
                    returned: Amount::ZERO,
                }],
            },
        };
        assert!(view.behind());
        assert_eq!(
            (view.audits.answered.passed(), view.audits.answered.failed()),
            (5, 3)
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["audits"]["recent"][0]["outcome"], "corrupt");
        assert_eq!(json["audits"]["judgements"][0]["slashed"], "1");
        // A view from a node without audits still reads.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("audits");
        let read: EarningsView = serde_json::from_value(old).unwrap();
        assert_eq!(read.audits, AuditsView::default());
        let again: EarningsView =
            serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
        assert_eq!(again, view);
    }
}

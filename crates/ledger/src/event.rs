//! Events: what an applied transaction did, in the order it did it.
//!
//! The node daemon feeds them to its agents (a provider learns it was awarded
//! a job, a requester that its job settled) and to the dashboard. Events are
//! derived from the state change; they are not part of the state root.

use peercloud_types::{AccountId, Amount, ContentId, Hash32, JobId, LeaseId, NodeId, SpaceKind};
use serde::{Deserialize, Serialize};

use crate::billing::PaidFor;
use crate::records::ResultClaim;
use crate::storage_records::{BucketId, ClusterAction, ClusterId};

/// One thing an applied transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Genesis minted tokens into an account.
    Minted {
        /// Receiver.
        to: AccountId,
        /// Tokens minted.
        amount: Amount,
    },
    /// A transaction's fee went to the treasury.
    FeeCharged {
        /// Who paid.
        payer: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Tokens moved between accounts.
    Transferred {
        /// Sender.
        from: AccountId,
        /// Receiver.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A node was registered.
    NodeRegistered {
        /// The node.
        node: NodeId,
        /// Its owner.
        owner: AccountId,
    },
    /// A node's resources, location or prices changed.
    NodeUpdated {
        /// The node.
        node: NodeId,
    },
    /// Balance moved into stake.
    Staked {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Stake moved back into balance.
    Unstaked {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A job was posted and its escrow locked.
    JobPosted {
        /// The job.
        job: JobId,
        /// Its poster.
        poster: AccountId,
        /// Tokens locked.
        escrow: Amount,
    },
    /// Offers were bound to a job.
    JobAwarded {
        /// The job.
        job: JobId,
        /// The awarded nodes, in offer order.
        nodes: Vec<NodeId>,
    },
    /// An awarded node submitted its result.
    ResultSubmitted {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
        /// What it claims.
        claim: ResultClaim,
    },
    /// A node's owner was paid out of a job's escrow.
    Paid {
        /// The job.
        job: JobId,
        /// The node that did the work.
        node: NodeId,
        /// Who received the tokens.
        owner: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Escrow went back to the poster.
    Refunded {
        /// The job.
        job: JobId,
        /// The poster.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Stake was slashed to the treasury because a node disagreed with the majority.
    Slashed {
        /// The job.
        job: JobId,
        /// The node that disagreed.
        node: NodeId,
        /// Whose stake.
        owner: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A node's reputation moved.
    ReputationChanged {
        /// The node.
        node: NodeId,
        /// Before.
        before: u32,
        /// After.
        after: u32,
    },
    /// A job was settled.
    JobSettled {
        /// The job.
        job: JobId,
        /// The majority's result, or `None` when all results were in without one.
        agreed: Option<ResultClaim>,
    },
    /// A job expired and its escrow was refunded.
    JobExpired {
        /// The job.
        job: JobId,
    },
    /// A posted job was withdrawn by its poster and its escrow refunded.
    JobCancelled {
        /// The job.
        job: JobId,
    },
    /// Emitted alongside [`Event::ResultSubmitted`] when a job first has all its results.
    AllResultsIn {
        /// The job.
        job: JobId,
        /// The digest of the spec the results are for.
        spec_digest: Hash32,
    },
    /// An awarded node said it will not deliver a result.
    ResultWithdrawn {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
    /// A cluster, bucket or billing event (see [`StorageEvent`]).
    Storage(StorageEvent),
    /// A lease event (see [`LeaseEvent`]). (Appended last: the variants
    /// before it keep their encoding.)
    Lease(LeaseEvent),
}

/// What a cluster, bucket, billing or audit transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageEvent {
    /// A cluster was created.
    ClusterCreated {
        /// The cluster.
        cluster: ClusterId,
        /// Its creator (receives the managers' fee).
        creator: AccountId,
    },
    /// A node joined a cluster (pending admission) and locked its stake.
    MemberJoined {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// Stake locked.
        stake: Amount,
    },
    /// A manager proposed a decision (its own approval counted).
    ClusterProposed {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal's id.
        proposal: u64,
        /// What it does.
        action: ClusterAction,
    },
    /// A manager approved a proposal.
    ClusterApproved {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
        /// The manager.
        manager: AccountId,
    },
    /// A proposal reached its threshold and took effect.
    ClusterDecided {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
        /// What it did.
        action: ClusterAction,
    },
    /// A member left or was removed; its stake went back to its owner
    /// (less a slash, when its audits were judged failed).
    MemberLeft {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// Stake returned.
        stake: Amount,
    },
    /// A bucket was created.
    BucketCreated {
        /// The bucket.
        bucket: BucketId,
        /// Its cluster.
        cluster: ClusterId,
        /// Its owner.
        owner: AccountId,
    },
    /// Tokens moved into a bucket's deposit.
    BucketDeposited {
        /// The bucket.
        bucket: BucketId,
        /// Who paid.
        from: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A billing period was billed.
    BucketBilled {
        /// The bucket.
        bucket: BucketId,
        /// The period (`None`: the partial period a close billed).
        period: Option<u64>,
        /// What the usage and receipts came to.
        charged: Amount,
        /// What the deposit paid (less than `charged` when it ran short).
        paid: Amount,
    },
    /// A provider or the managers were paid out of a bucket.
    StoragePaid {
        /// The bucket.
        bucket: BucketId,
        /// The node paid for (`None`: the managers' fee).
        node: Option<NodeId>,
        /// Who received the tokens.
        to: AccountId,
        /// How much.
        amount: Amount,
        /// What for: bytes stored, served, or rebuilt in a repair.
        paid_for: PaidFor,
    },
    /// A bucket's deposit covers fewer than `LOW_DEPOSIT_PERIODS` periods
    /// at its current charge (raised once per crossing).
    BucketLow {
        /// The bucket.
        bucket: BucketId,
        /// What it holds.
        deposit: Amount,
        /// The last period's charge.
        per_period: Amount,
    },
    /// A bucket went read-only: a bill found its deposit short.
    BucketReadOnly {
        /// The bucket.
        bucket: BucketId,
        /// When its grace ends (it may then expire).
        grace_ends_ms: u64,
    },
    /// A read-only bucket was topped up to cover a period: active again.
    BucketReactivated {
        /// The bucket.
        bucket: BucketId,
    },
    /// A bucket was closed by its owner or expired after its grace; the rest
    /// of its deposit went back to the owner.
    BucketEnded {
        /// The bucket.
        bucket: BucketId,
        /// Whether it expired (`true`) or its owner closed it.
        expired: bool,
        /// Refunded to the owner.
        refund: Amount,
    },
    /// A member reported another's failed audit (every accepted report).
    AuditReported {
        /// The cluster.
        cluster: ClusterId,
        /// The member that ran the audit.
        auditor: NodeId,
        /// The member that failed it.
        node: NodeId,
        /// The audit epoch (block time / the cluster's billing period).
        epoch: u64,
        /// The piece it was challenged for.
        cid: ContentId,
    },
    /// Enough distinct auditors reported a node in one epoch: `slashed` of
    /// its member stake went to the treasury, `returned` to its owner, and
    /// it left the cluster (a `MemberLeft` with `returned` follows).
    AuditFailed {
        /// The cluster.
        cluster: ClusterId,
        /// The node judged.
        node: NodeId,
        /// The epoch of the reports.
        epoch: u64,
        /// Stake taken to the treasury.
        slashed: Amount,
        /// Stake given back to its owner.
        returned: Amount,
    },
}

/// What a lease transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseEvent {
    /// A lease was awarded and its deposit locked; the node builds the space.
    Opened {
        /// The lease.
        lease: LeaseId,
        /// The renter.
        user: AccountId,
        /// The node that won the auction.
        node: NodeId,
        /// The kind of space.
        kind: SpaceKind,
        /// The clearing price per period.
        price_per_period: Amount,
        /// Bids the auction weighed.
        bids: usize,
        /// Locked.
        deposit: Amount,
        /// The user must verify access and activate by then.
        activate_by_ms: u64,
    },
    /// The user verified access: periods count from `since_ms`.
    Activated {
        /// The lease.
        lease: LeaseId,
        /// Start of period 0.
        since_ms: u64,
        /// When the deposit runs out (or the fixed length ends).
        end_ms: u64,
    },
    /// More deposit; the lease runs longer.
    Deposited {
        /// The lease.
        lease: LeaseId,
        /// Who paid it in.
        from: AccountId,
        /// How much.
        amount: Amount,
        /// The new end (`None` before activation).
        end_ms: Option<u64>,
    },
    /// Periods billed: those proven up paid to the node's owner, the rest
    /// credited back to the user.
    Billed {
        /// The lease.
        lease: LeaseId,
        /// Its node.
        node: NodeId,
        /// The first period billed.
        first_period: u64,
        /// Periods billed.
        periods: u64,
        /// Paid to the node's owner.
        paid: Amount,
        /// The node's owner.
        to: AccountId,
        /// Periods nobody proved up.
        down: u64,
        /// Credited back to the user for them.
        credited: Amount,
    },
    /// Fewer than `LOW_DEPOSIT_PERIODS` periods are left.
    Low {
        /// The lease.
        lease: LeaseId,
        /// Its user (who should top it up).
        user: AccountId,
        /// When it ends.
        end_ms: u64,
    },
    /// Closed early by a party; the unused part went back at once.
    Closed {
        /// The lease.
        lease: LeaseId,
        /// Who closed it.
        by: AccountId,
        /// Its end (the close's block time).
        end_ms: u64,
        /// Refunded to the user now.
        refund: Amount,
        /// Still held for periods the node has not billed yet.
        owed: Amount,
    },
    /// The bill window after the end passed: the rest went back.
    Settled {
        /// The lease.
        lease: LeaseId,
        /// Refunded to the user.
        refund: Amount,
        /// Periods never billed, counted as down time.
        down: u64,
    },
    /// Never activated: the whole deposit went back.
    Cancelled {
        /// The lease.
        lease: LeaseId,
        /// Who cancelled it.
        by: AccountId,
        /// Refunded to the user.
        refund: Amount,
    },
}

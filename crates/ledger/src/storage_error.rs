//! Why a cluster, bucket, billing or audit transaction was refused. Carried in
//! [`crate::TxError::Storage`]; like every refusal, it leaves the state untouched.

use peercloud_types::{AccountId, Amount, NodeId};

use crate::storage_records::{BucketId, ClusterId};

/// A refused cluster, bucket, billing or audit transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// A cluster needs 1..=max managers.
    #[error("a cluster has {count} managers, it needs 1..={max}")]
    ManagerCount {
        /// Managers given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A manager listed twice.
    #[error("manager {manager} is listed twice")]
    DuplicateManager {
        /// The manager.
        manager: AccountId,
    },
    /// The threshold is outside 1..=managers.
    #[error("threshold {threshold} is outside 1..={managers} (the number of managers)")]
    BadThreshold {
        /// Given.
        threshold: u8,
        /// Managers.
        managers: usize,
    },
    /// A replica count outside 1..=max.
    #[error("{replicas} replicas is outside 1..={max}")]
    BadReplicas {
        /// Given.
        replicas: u8,
        /// The limit.
        max: u8,
    },
    /// A Reed-Solomon scheme outside its bounds.
    #[error("Reed-Solomon {data}+{parity} is outside data 1..={data_max}, parity 1..={parity_max}")]
    BadReedSolomon {
        /// Data pieces.
        data: u8,
        /// Parity pieces.
        parity: u8,
        /// Most data pieces.
        data_max: u8,
        /// Most parity pieces.
        parity_max: u8,
    },
    /// A price above the bound that keeps billing arithmetic exact.
    #[error("the {what} {price:?} is above the maximum {max:?}")]
    PriceTooHigh {
        /// Which price.
        what: &'static str,
        /// Given.
        price: Amount,
        /// The limit.
        max: Amount,
    },
    /// A managers' fee above the bound.
    #[error("the managers' fee of {bps} bps is above the maximum {max} bps")]
    FeeTooHigh {
        /// Given.
        bps: u32,
        /// The limit.
        max: u32,
    },
    /// A billing period outside the bounds.
    #[error("billing period {period_ms} ms is outside {min}..={max} ms")]
    BillingPeriodOutOfRange {
        /// Given.
        period_ms: u64,
        /// Shortest.
        min: u64,
        /// Longest.
        max: u64,
    },
    /// A grace period outside the bounds.
    #[error("grace period {grace_ms} ms is outside {min}..={max} ms (at least one billing period)")]
    GraceOutOfRange {
        /// Given.
        grace_ms: u64,
        /// Shortest (the billing period).
        min: u64,
        /// Longest.
        max: u64,
    },
    /// A cluster with this id exists already.
    #[error("{cluster} exists already")]
    ClusterExists {
        /// The cluster.
        cluster: ClusterId,
    },
    /// No such cluster.
    #[error("{cluster} does not exist")]
    UnknownCluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// The node is a member already.
    #[error("node {node} is already a member of {cluster}")]
    AlreadyMember {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
    },
    /// The node is not a member.
    #[error("node {node} is not a member of {cluster}")]
    NotMember {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
    },
    /// The node is a member but not pending (admitting it again).
    #[error("node {node} of {cluster} is not pending admission")]
    MemberNotPending {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
    },
    /// Offered capacity outside the bounds.
    #[error("capacity {capacity} bytes is outside {min}..={max}")]
    CapacityOutOfRange {
        /// Given.
        capacity: u64,
        /// Least.
        min: u64,
        /// Most.
        max: u64,
    },
    /// The cluster is full.
    #[error("{cluster} has {max} members, the most a cluster may have")]
    TooManyMembers {
        /// The cluster.
        cluster: ClusterId,
        /// The limit.
        max: usize,
    },
    /// Only a manager may propose or approve.
    #[error("{signer} is not a manager of {cluster}")]
    NotManager {
        /// The cluster.
        cluster: ClusterId,
        /// Who signed.
        signer: AccountId,
    },
    /// No proposal with this id was ever made.
    #[error("{cluster} has no proposal {proposal}")]
    UnknownProposal {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
    },
    /// The proposal executed (or went stale) already.
    #[error("proposal {proposal} of {cluster} is closed (executed or stale)")]
    ProposalClosed {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
    },
    /// The proposal is older than its time to live.
    #[error(
        "proposal {proposal} of {cluster} went stale at {stale_ms} ms (block time {time_ms} ms)"
    )]
    ProposalStale {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
        /// When it went stale.
        stale_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// The manager approved this proposal already.
    #[error("{manager} already approved proposal {proposal} of {cluster}")]
    AlreadyApproved {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal.
        proposal: u64,
        /// The manager.
        manager: AccountId,
    },
    /// Too many open proposals.
    #[error("{cluster} has {max} open proposals, the most allowed")]
    TooManyProposals {
        /// The cluster.
        cluster: ClusterId,
        /// The limit.
        max: usize,
    },
    /// Terms change only while no bucket is open.
    #[error("{cluster}'s terms cannot change: {open_buckets} buckets are open")]
    TermsLocked {
        /// The cluster.
        cluster: ClusterId,
        /// Open buckets.
        open_buckets: u32,
    },
    /// The last active member cannot leave while buckets hold data.
    #[error(
        "node {node} is the last active member of {cluster}, which has {open_buckets} open buckets"
    )]
    LastMember {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// Open buckets.
        open_buckets: u32,
    },
    /// A bucket with this id exists already.
    #[error("{bucket} exists already")]
    BucketExists {
        /// The bucket.
        bucket: BucketId,
    },
    /// No such bucket.
    #[error("{bucket} does not exist")]
    UnknownBucket {
        /// The bucket.
        bucket: BucketId,
    },
    /// Only the bucket's owner may do this.
    #[error("{bucket} is owned by {owner}, not by the signer {signer}")]
    NotBucketOwner {
        /// The bucket.
        bucket: BucketId,
        /// Its owner.
        owner: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// The bucket is closed or expired.
    #[error("{bucket} is closed")]
    BucketClosed {
        /// The bucket.
        bucket: BucketId,
    },
    /// Only the owner of an active member node may bill.
    #[error("{signer} owns no active member of {cluster}")]
    NotActiveMember {
        /// The cluster.
        cluster: ClusterId,
        /// Who signed.
        signer: AccountId,
    },
    /// The period has not ended.
    #[error("period {period} of {bucket} ends at {ends_ms} ms, after the block time {time_ms} ms")]
    PeriodNotEnded {
        /// The bucket.
        bucket: BucketId,
        /// The period.
        period: u64,
        /// When it ends.
        ends_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// The period was billed already.
    #[error("period {period} of {bucket} is billed already")]
    PeriodAlreadyBilled {
        /// The bucket.
        bucket: BucketId,
        /// The period.
        period: u64,
    },
    /// Periods are billed in order.
    #[error("{bucket} bills period {next} next, not period {period}")]
    PeriodOutOfOrder {
        /// The bucket.
        bucket: BucketId,
        /// Given.
        period: u64,
        /// The next to bill.
        next: u64,
    },
    /// The usage or a receipt does not verify.
    #[error("the {what} is not signed by its claimed signer")]
    BadEvidenceSignature {
        /// Which piece of evidence.
        what: &'static str,
    },
    /// The usage is for another bucket.
    #[error("the usage is for {usage_bucket}, not {bucket}")]
    UsageForOtherBucket {
        /// The bucket billed.
        bucket: BucketId,
        /// The usage's bucket.
        usage_bucket: BucketId,
    },
    /// The usage is not signed by the bucket's owner.
    #[error("the usage of {bucket} is signed by {signer}, not its owner {owner}")]
    UsageNotFromOwner {
        /// The bucket.
        bucket: BucketId,
        /// Its owner.
        owner: AccountId,
        /// Who signed the usage.
        signer: AccountId,
    },
    /// A usage older than one a bill already used.
    #[error("usage seq {seq} of {bucket} is older than seq {last} already billed")]
    UsageStale {
        /// The bucket.
        bucket: BucketId,
        /// Given.
        seq: u64,
        /// Already used.
        last: u64,
    },
    /// A usage signed after the period it bills ended.
    #[error("usage signed at {at_ms} ms is after the billed period's end {ends_ms} ms")]
    UsageAfterPeriod {
        /// When it was signed.
        at_ms: u64,
        /// When the period ended.
        ends_ms: u64,
    },
    /// A receipt for another bucket.
    #[error("receipt {index} is for {receipt_bucket}, not {bucket}")]
    ReceiptForOtherBucket {
        /// Its position.
        index: usize,
        /// The bucket billed.
        bucket: BucketId,
        /// The receipt's bucket.
        receipt_bucket: BucketId,
    },
    /// A receipt for another period.
    #[error("receipt {index} is for period {receipt_period}, not period {period}")]
    ReceiptForOtherPeriod {
        /// Its position.
        index: usize,
        /// The period billed.
        period: u64,
        /// The receipt's period.
        receipt_period: u64,
    },
    /// A receipt not signed by an allowed receiver (the bucket owner).
    #[error("receipt {index} is signed by {signer}, the bucket's receiver is its owner {owner}")]
    ReceiptNotFromReceiver {
        /// Its position.
        index: usize,
        /// Who signed it.
        signer: AccountId,
        /// The bucket's owner.
        owner: AccountId,
    },
    /// A receipt for a node that is not an active member.
    #[error("receipt {index} pays node {node}, not an active member of {cluster}")]
    ReceiptNodeNotMember {
        /// Its position.
        index: usize,
        /// The node.
        node: NodeId,
        /// The cluster.
        cluster: ClusterId,
    },
    /// A repair receipt that is not the receiver node's signature, or whose
    /// bucket or period is not the bill's.
    #[error("repair receipt {index} {reason}")]
    BadRepairReceipt {
        /// Its position.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A repair receipt whose repairer or receiver is not a member, or
    /// whose two nodes have one owner (nobody is paid for moving bytes
    /// between its own nodes).
    #[error("repair receipt {index} pays {repairer} for pieces put on {receiver}: {reason}")]
    RepairNotPayable {
        /// Its position.
        index: usize,
        /// The repairer.
        repairer: NodeId,
        /// The receiver.
        receiver: NodeId,
        /// Why not.
        reason: &'static str,
    },
    /// Two repair receipts of one pair in one bill (they are cumulative).
    #[error(
        "two repair receipts of {repairer} to {receiver} in one bill; a receipt is cumulative per period"
    )]
    DuplicateRepairReceipt {
        /// The repairer.
        repairer: NodeId,
        /// The receiver.
        receiver: NodeId,
    },
    /// Two receipts for one node in one bill (receipts are cumulative).
    #[error("node {node} has two receipts in one bill; a receipt is cumulative per period")]
    DuplicateReceipt {
        /// The node.
        node: NodeId,
    },
    /// Expiry of a bucket that is not read-only.
    #[error("{bucket} is not read-only, so it cannot expire")]
    NotReadOnly {
        /// The bucket.
        bucket: BucketId,
    },
    /// Expiry before the grace ends.
    #[error("{bucket}'s grace ends at {ends_ms} ms, after the block time {time_ms} ms")]
    GraceNotOver {
        /// The bucket.
        bucket: BucketId,
        /// When the grace ends.
        ends_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// The auditor of a report is not an active member of the cluster.
    #[error("auditor {auditor} is not an active member of {cluster}")]
    AuditorNotActive {
        /// The cluster.
        cluster: ClusterId,
        /// The auditor named.
        auditor: NodeId,
    },
    /// The reported node is not an active member of the cluster (it never
    /// joined, is pending, left, or was already judged).
    #[error("reported node {node} is not an active member of {cluster}")]
    AuditedNotActive {
        /// The cluster.
        cluster: ClusterId,
        /// The node reported.
        node: NodeId,
    },
    /// A node reporting itself.
    #[error("node {node} cannot report its own audit in {cluster}")]
    SelfAudit {
        /// The cluster.
        cluster: ClusterId,
        /// The node, auditor and audited at once.
        node: NodeId,
    },
    /// Only the auditor's owner may report for it.
    #[error("auditor {auditor} is owned by {owner}, not by the signer {signer}")]
    NotAuditorOwner {
        /// The auditor.
        auditor: NodeId,
        /// Its owner (as the cluster recorded it when it joined).
        owner: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// A report for an epoch other than the current one or the one before.
    #[error(
        "audit epoch {epoch} of {cluster} is not reportable: the current epoch is {current}, \
         only it and the one before are accepted"
    )]
    AuditEpochOutOfRange {
        /// The cluster.
        cluster: ClusterId,
        /// The epoch the report names.
        epoch: u64,
        /// The epoch of the block (block time / the cluster's billing period).
        current: u64,
    },
    /// The auditor already reported this node in this epoch.
    #[error("auditor {auditor} already reported node {node} in audit epoch {epoch} of {cluster}")]
    AuditAlreadyReported {
        /// The cluster.
        cluster: ClusterId,
        /// The auditor.
        auditor: NodeId,
        /// The node reported.
        node: NodeId,
        /// The epoch.
        epoch: u64,
    },
}

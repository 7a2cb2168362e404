//! The records of paid storage (issue 9): clusters of nodes run by an m-of-n
//! multisig of manager accounts, the buckets accounts fund in them, and the
//! signed evidence a bill carries (the owner's running usage and each
//! receiver's bandwidth receipt).
//!
//! Cluster and bucket records are state entries (`Kind::StateEntry`;
//! clusters version 2, buckets version 1) in their own tables; `BucketUsage`, `BandwidthReceipt` and
//! `RepairReceipt` are signed off-chain and carried in `BillBucket` (their own kinds).

use std::collections::{BTreeMap, BTreeSet};

use peercloud_types::{AccountId, Amount, Hash32, Kind, NodeId, Versioned};
use serde::{Deserialize, Serialize};

use crate::table::TableKey;

/// Derives an id from `(creator, nonce)` under a domain `context`, as
/// `JobId::derive` does: unique per transaction, known before it applies.
fn derive_id(context: &str, creator: &AccountId, nonce: u64) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(&creator.key().0);
    hasher.update(&nonce.to_le_bytes());
    hasher.finalize().into()
}

/// A cluster's id: BLAKE3 of its creator and the creating transaction's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterId(pub Hash32);

impl ClusterId {
    /// The id of the cluster `creator` creates with its transaction `nonce`.
    pub fn derive(creator: &AccountId, nonce: u64) -> ClusterId {
        ClusterId(derive_id("peercloud cluster id v1", creator, nonce))
    }
}

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster:{}", self.0)
    }
}

/// A bucket's id: BLAKE3 of its owner and the creating transaction's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BucketId(pub Hash32);

impl BucketId {
    /// The id of the bucket `owner` creates with its transaction `nonce`.
    pub fn derive(owner: &AccountId, nonce: u64) -> BucketId {
        BucketId(derive_id("peercloud bucket id v1", owner, nonce))
    }
}

impl std::fmt::Display for BucketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bucket:{}", self.0)
    }
}

/// The text of a cluster or bucket id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageIdError {
    /// Not 64 hex digits (after an optional `cluster:` or `bucket:` prefix).
    #[error(
        "{text:?} is not a {what} id: write {what}:<64 hex digits>, or the 64 hex digits alone"
    )]
    NotAnId {
        /// What was expected (`cluster` or `bucket`).
        what: &'static str,
        /// The text given.
        text: String,
    },
    /// The id of the other kind (a bucket where a cluster was expected).
    #[error("{text:?} is a {found} id, not a {what} id")]
    WrongKind {
        /// What was expected.
        what: &'static str,
        /// What the prefix says it is.
        found: &'static str,
        /// The text given.
        text: String,
    },
}

/// The two kinds of storage id, by their text prefix.
const ID_KINDS: [&str; 2] = ["cluster", "bucket"];

/// Reads `<what>:<hex>` or the bare hex; a prefix of the other kind is
/// refused naming it.
fn parse_id(text: &str, what: &'static str) -> Result<Hash32, StorageIdError> {
    let trimmed = text.trim();
    let hex = match trimmed.split_once(':') {
        Some((prefix, hex)) if prefix == what => hex,
        Some((prefix, _)) => {
            return Err(match ID_KINDS.into_iter().find(|k| *k == prefix) {
                Some(found) => StorageIdError::WrongKind {
                    what,
                    found,
                    text: text.to_owned(),
                },
                None => StorageIdError::NotAnId {
                    what,
                    text: text.to_owned(),
                },
            });
        }
        None => trimmed,
    };
    hex.parse().map_err(|_| StorageIdError::NotAnId {
        what,
        text: text.to_owned(),
    })
}

impl std::str::FromStr for ClusterId {
    type Err = StorageIdError;
    /// `cluster:<64 hex digits>` (as [`ClusterId`]'s `Display` writes it)
    /// or the 64 hex digits alone (as JSON carries it).
    fn from_str(text: &str) -> Result<Self, StorageIdError> {
        parse_id(text, "cluster").map(ClusterId)
    }
}

impl std::str::FromStr for BucketId {
    type Err = StorageIdError;
    /// `bucket:<64 hex digits>` (as [`BucketId`]'s `Display` writes it) or
    /// the 64 hex digits alone (as JSON carries it).
    fn from_str(text: &str) -> Result<Self, StorageIdError> {
        parse_id(text, "bucket").map(BucketId)
    }
}

impl TableKey for ClusterId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes)
            .ok()
            .map(|k| ClusterId(Hash32(k)))
    }
}

impl TableKey for BucketId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes)
            .ok()
            .map(|k| BucketId(Hash32(k)))
    }
}

/// How a cluster keeps each segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redundancy {
    /// Whole copies on this many nodes.
    Replicas(u8),
    /// Reed-Solomon: `data` pieces any `data` of which rebuild the segment,
    /// plus `parity` pieces.
    ReedSolomon {
        /// Data pieces (k).
        data: u8,
        /// Parity pieces (m).
        parity: u8,
    },
}

/// What a cluster charges and asks of its nodes. Set at creation; changed by
/// a `SetTerms` decision only while the cluster has no open bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterTerms {
    /// How segments are kept.
    pub redundancy: Redundancy,
    /// Price of one GiB (2^30 bytes) stored for one month (30 days).
    pub price_per_gib_month: Amount,
    /// Price of one GiB served (acknowledged by a bandwidth receipt).
    pub price_per_gib_served: Amount,
    /// The managers' fee on every bill, in basis points.
    pub manager_fee_bps: u32,
    /// Stake a node locks to join.
    pub node_stake: Amount,
    /// Length of a billing period, ms.
    pub billing_period_ms: u64,
    /// How long a bucket that ran out stays read-only before it may expire, ms.
    pub grace_ms: u64,
}

/// Whether a member node may hold data and be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Joined, stake locked, waiting for the managers to admit it.
    Pending,
    /// Admitted: holds data, is paid, may bill.
    Active,
}

/// A node's membership in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's owner when it joined: its stake comes back to it, its pay goes to it.
    pub owner: AccountId,
    /// Bytes it offers: its weight in placement and in storage pay.
    pub capacity_bytes: u64,
    /// Stake locked when it joined (the terms' `node_stake` then).
    pub stake: Amount,
    /// Pending or active.
    pub status: MemberStatus,
}

/// A decision the managers take together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterAction {
    /// Make a pending member active.
    Admit(NodeId),
    /// Remove a member; its stake goes back to its owner.
    Remove(NodeId),
    /// Replace the terms (refused while the cluster has open buckets).
    SetTerms(ClusterTerms),
}

/// An open multisig proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// What it does when approved.
    pub action: ClusterAction,
    /// Managers that approved it so far (the proposer first), in approval order.
    pub approvals: Vec<AccountId>,
    /// Block time it was proposed; it goes stale `PROPOSAL_TTL_MS` after.
    pub proposed_ms: u64,
}

/// A cluster: its managers, terms, members and open proposals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Who created it: receives the managers' fee.
    pub creator: AccountId,
    /// The manager accounts (distinct, in the creator's order).
    pub managers: Vec<AccountId>,
    /// Approvals a decision needs (1..=managers).
    pub threshold: u8,
    /// Its terms.
    pub terms: ClusterTerms,
    /// Its member nodes, pending or active.
    pub members: BTreeMap<NodeId, Member>,
    /// Open proposals by id.
    pub proposals: BTreeMap<u64, Proposal>,
    /// The id the next proposal gets; ids below it not in `proposals` are closed.
    pub next_proposal: u64,
    /// Buckets in it that are not closed or expired.
    pub open_buckets: u32,
    /// Failed-audit reports by audit epoch (block time / billing period):
    /// only the current epoch and the one before are kept (older ones are
    /// pruned whenever a report applies), and a node leaves its entries when
    /// it is judged, so it stays bounded by two epochs × members.
    pub audit_reports: BTreeMap<u64, EpochReports>,
}

/// One audit epoch's failure reports: for each reported node, the distinct
/// member nodes (auditors) that reported it. A node stays here with fewer
/// than `AUDIT_REPORTS_TO_SLASH` auditors: the report that reaches it judges
/// the node and removes its entry.
pub type EpochReports = BTreeMap<NodeId, BTreeSet<NodeId>>;

impl ClusterRecord {
    /// The placement weights: each active member's capacity, in node id
    /// order (the weighted rendezvous placement reads this).
    pub fn weights(&self) -> Vec<(NodeId, u64)> {
        self.members
            .iter()
            .filter(|(_, m)| m.status == MemberStatus::Active)
            .map(|(node, m)| (*node, m.capacity_bytes))
            .collect()
    }

    /// Whether `account` is one of the managers.
    pub fn is_manager(&self, account: &AccountId) -> bool {
        self.managers.contains(account)
    }
}

impl Versioned for ClusterRecord {
    const KIND: u8 = Kind::StateEntry as u8;
    /// 2: the failed-audit tally (`audit_reports`).
    const VERSION: u8 = 2;
}

/// Where a bucket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketStatus {
    /// Funded: reads and writes.
    Active,
    /// A bill found the deposit short: reads only, nothing deleted, until a
    /// deposit covers a period again or the grace ends.
    ReadOnly {
        /// Block time it became read-only.
        since_ms: u64,
    },
    /// Closed by its owner; the rest of the deposit went back.
    Closed,
    /// Expired after its grace; the rest of the deposit went back and its data may go.
    Expired,
}

impl BucketStatus {
    /// Whether the bucket is closed or expired (holds no deposit).
    pub fn is_closed(self) -> bool {
        matches!(self, BucketStatus::Closed | BucketStatus::Expired)
    }
}

/// A bucket and its deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Its owner: signs its usage and receipts, gets refunds.
    pub owner: AccountId,
    /// The cluster that holds it.
    pub cluster: ClusterId,
    /// Readable by anyone (plaintext objects) or sealed to the owner.
    pub public: bool,
    /// Block time it was created: period `p` covers
    /// `[created_ms + p * period, created_ms + (p + 1) * period)`.
    pub created_ms: u64,
    /// Tokens deposited into it, ever.
    pub deposited: Amount,
    /// Tokens paid or refunded out of it, ever (never above `deposited`).
    pub released: Amount,
    /// The first period not yet billed.
    pub next_period: u64,
    /// Time up to which storage is billed.
    pub billed_until_ms: u64,
    /// The highest usage sequence a bill has used.
    pub usage_seq: u64,
    /// Bytes stored per that usage.
    pub stored_bytes: u64,
    /// What the last bill charged (the estimate of the next one).
    pub last_charge: Amount,
    /// Whether the low-deposit warning is raised (emitted once per crossing).
    pub low_warned: bool,
    /// Its status.
    pub status: BucketStatus,
}

impl BucketRecord {
    /// Tokens the bucket holds (`deposited - released`); `None` only if the
    /// deposit invariant is broken.
    pub fn deposit(&self) -> Option<Amount> {
        self.deposited.checked_sub(self.released)
    }
}

impl Versioned for BucketRecord {
    const KIND: u8 = Kind::StateEntry as u8;
    const VERSION: u8 = 1;
}

/// The bucket owner's running usage, signed with each write by its client.
/// A higher `seq` supersedes a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketUsage {
    /// The bucket.
    pub bucket: BucketId,
    /// Bytes the bucket holds (before redundancy).
    pub stored_bytes: u64,
    /// Running sequence number.
    pub seq: u64,
    /// When the client signed it, ms since the epoch.
    pub at_ms: u64,
}

impl Versioned for BucketUsage {
    const KIND: u8 = Kind::BucketUsage as u8;
    const VERSION: u8 = 1;
}

/// A receiver's acknowledgement of the bytes `node` served it from `bucket`
/// in billing `period`: cumulative, one signature per (node, bucket, period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthReceipt {
    /// The bucket the bytes came from.
    pub bucket: BucketId,
    /// The node that served them.
    pub node: NodeId,
    /// The billing period.
    pub period: u64,
    /// Bytes received, cumulative over the period.
    pub bytes: u64,
    /// Who received them (and signs this receipt).
    pub receiver: AccountId,
}

impl Versioned for BandwidthReceipt {
    const KIND: u8 = Kind::BandwidthReceipt as u8;
    const VERSION: u8 = 1;
}

/// A node's acknowledgement of the bytes of rebuilt pieces `repairer` put
/// on it while repairing `bucket` in billing `period`: cumulative, signed by
/// the receiving node's key. The repairer is paid for them, at the price
/// of bytes served, so rebuilding what a lost node held is paid work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReceipt {
    /// The bucket repaired.
    pub bucket: BucketId,
    /// The billing period.
    pub period: u64,
    /// The node that rebuilt the pieces and put them.
    pub repairer: NodeId,
    /// The node that received them (and signs this receipt).
    pub receiver: NodeId,
    /// Bytes received, cumulative over the period.
    pub bytes: u64,
}

impl Versioned for RepairReceipt {
    const KIND: u8 = Kind::RepairReceipt as u8;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_their_text_with_or_without_the_prefix() {
        let owner = peercloud_types::Keypair::from_seed(&[3; 32]).account_id();
        let cluster = ClusterId::derive(&owner, 1);
        let bucket = BucketId::derive(&owner, 2);
        assert_eq!(cluster.to_string().parse::<ClusterId>(), Ok(cluster));
        assert_eq!(cluster.0.to_string().parse::<ClusterId>(), Ok(cluster));
        assert_eq!(bucket.to_string().parse::<BucketId>(), Ok(bucket));
        assert_eq!(format!(" {} ", bucket.0).parse::<BucketId>(), Ok(bucket));
    }

    #[test]
    fn a_bad_id_is_refused_naming_what_is_wrong() {
        let owner = peercloud_types::Keypair::from_seed(&[3; 32]).account_id();
        let bucket = BucketId::derive(&owner, 2);
        let wrong = bucket.to_string().parse::<ClusterId>().unwrap_err();
        assert!(matches!(
            wrong,
            StorageIdError::WrongKind {
                what: "cluster",
                found: "bucket",
                ..
            }
        ));
        assert!(
            wrong
                .to_string()
                .contains("is a bucket id, not a cluster id")
        );
        for bad in ["", "cluster:", "cluster:abc", "job:00", &"g".repeat(64)] {
            let err = bad.parse::<ClusterId>().unwrap_err();
            assert!(
                matches!(
                    err,
                    StorageIdError::NotAnId {
                        what: "cluster",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("cluster:<64 hex digits>"), "{err}");
        }
    }
}

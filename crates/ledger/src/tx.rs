//! Transactions: what an account (or a node key) asks the ledger to do.
//!
//! A transaction is always carried in a [`Signed`] envelope; the envelope's
//! signer is the actor. The body holds the signer's next nonce (replays and
//! gaps are refused), the fee, and the action. The canonical encoding of
//! [`Tx`] is `Kind::Tx`, version 2 (the chain id came in 2).

use peercloud_types::{
    AccountId, Amount, ContentId, Hash32, JobId, Keypair, Kind, LeaseId, LeaseOffer, LeaseProbe,
    LeaseRequest, NodeId, Offer, PriceSheet, Resources, Signed, Versioned,
};
use serde::{Deserialize, Serialize};

use crate::storage_records::{
    BandwidthReceipt, BucketId, BucketUsage, ClusterAction, ClusterId, ClusterTerms, RepairReceipt,
};

/// Domain tag of the message a node key signs to say which account owns it.
const REGISTRATION_DOMAIN: &[u8] = b"peercloud-node-registration-v1";

/// A ledger transaction body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The chain it is for: the digest of the chain's params (its validator,
    /// treasury and fees), so a transaction signed for one network is refused
    /// on every other, even one where the same keys hold accounts.
    pub chain: Hash32,
    /// The signer's previous nonce plus one (the first transaction has nonce 1).
    pub nonce: u64,
    /// Paid to the treasury; at least `params.min_fee` (genesis: zero).
    pub fee: Amount,
    /// What to do.
    pub kind: TxKind,
}

impl Versioned for Tx {
    const KIND: u8 = Kind::Tx as u8;
    /// 2: the chain id (1 had none, so it could be replayed across networks).
    /// 3: a bill carries repair receipts.
    const VERSION: u8 = 3;
}

/// The actions a transaction can carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    /// Mints the devnet supply. Only at height 0, only by the genesis authority, no fee.
    Genesis {
        /// Who gets how much.
        allocations: Vec<(AccountId, Amount)>,
    },
    /// Moves tokens from the signer's balance to `to`.
    Transfer {
        /// The receiver.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Registers `node` as owned by the signer.
    RegisterNode {
        /// The node's key.
        node: NodeId,
        /// The node key's signature naming the owner (see [`registration_proof`]).
        #[serde(with = "bytes64")]
        proof: [u8; 64],
        /// What the node offers.
        resources: Resources,
        /// Free-text location (region, city), at most `LOCATION_BYTES_MAX` bytes.
        location: String,
        /// The node's base prices.
        prices: PriceSheet,
    },
    /// Changes a node's advertised resources, location and prices. Owner only.
    UpdateNode {
        /// The node.
        node: NodeId,
        /// New resources.
        resources: Resources,
        /// New location.
        location: String,
        /// New prices.
        prices: PriceSheet,
    },
    /// Moves `amount` from the signer's balance to its stake.
    Stake {
        /// How much.
        amount: Amount,
    },
    /// Moves `amount` from the signer's stake back to its balance.
    Unstake {
        /// How much.
        amount: Amount,
    },
    /// Posts a job; its id is `JobId::derive(signer, nonce)`. Locks
    /// `max_price_per_node * redundancy` in escrow.
    PostJob {
        /// Digest of the job spec's canonical form.
        spec_digest: Hash32,
        /// How many nodes run it (k).
        redundancy: u8,
        /// The most one node may be paid.
        max_price_per_node: Amount,
        /// Results after this time (ms since the epoch) are refused.
        deadline_ms: u64,
    },
    /// Binds exactly `redundancy` signed offers to a posted job. Poster only.
    AwardJob {
        /// The job.
        job: JobId,
        /// The nodes' signed offers.
        offers: Vec<Signed<Offer>>,
    },
    /// An awarded node's result. Signed by the node's key; the fee is paid by
    /// the node's owner.
    SubmitResult {
        /// The job.
        job: JobId,
        /// Digest of the output.
        output_digest: Hash32,
        /// Fuel the run burned.
        fuel_used: u64,
    },
    /// Pays the majority and closes the job. Anyone may send it.
    SettleJob {
        /// The job.
        job: JobId,
    },
    /// Refunds a job that cannot be settled: past its deadline, or (awarded)
    /// before it once no strict majority can form any more. Anyone may send it.
    ExpireJob {
        /// The job.
        job: JobId,
    },
    /// Withdraws a posted job that no node was awarded (no offers came, or the
    /// poster changed their mind): the whole escrow goes back. Poster only.
    CancelJob {
        /// The job.
        job: JobId,
    },
    /// An awarded node says it will not deliver a result (its staging or
    /// run failed in a way that is no result), so the job need not wait for
    /// its deadline. Signed by the node's key before it submits anything;
    /// the fee is paid by the node's owner. (Appended last: the variants
    /// before it keep their encoding.)
    WithdrawResult {
        /// The job.
        job: JobId,
    },
    /// Creates a cluster run by `threshold`-of-`managers`; its id is
    /// `ClusterId::derive(signer, nonce)`, the signer receives the managers' fee.
    CreateCluster {
        /// The manager accounts (distinct).
        managers: Vec<AccountId>,
        /// Approvals a decision needs.
        threshold: u8,
        /// What the cluster charges and asks of its nodes.
        terms: ClusterTerms,
    },
    /// Offers `node` to a cluster (pending admission), locking the terms'
    /// stake from the signer's balance. Signed by the node's owner.
    JoinCluster {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// Bytes it offers (its placement and pay weight).
        capacity_bytes: u64,
    },
    /// A manager proposes a decision (counting as its approval; it executes
    /// at once when the threshold is 1).
    ProposeCluster {
        /// The cluster.
        cluster: ClusterId,
        /// What to do.
        action: ClusterAction,
    },
    /// Another manager approves a proposal (it executes when approvals reach
    /// the threshold).
    ApproveCluster {
        /// The cluster.
        cluster: ClusterId,
        /// The proposal's id.
        proposal: u64,
    },
    /// A member's owner takes it out of a cluster; its stake comes back.
    LeaveCluster {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
    },
    /// Creates a bucket in a cluster, owned by the signer; its id is
    /// `BucketId::derive(signer, nonce)`.
    CreateBucket {
        /// The cluster.
        cluster: ClusterId,
        /// Plaintext objects readable by anyone (else sealed to the owner).
        public: bool,
    },
    /// Moves `amount` from the signer's balance into a bucket's deposit. Anyone.
    DepositBucket {
        /// The bucket.
        bucket: BucketId,
        /// How much.
        amount: Amount,
    },
    /// Bills the storage since the last billed period and refunds the rest
    /// of the deposit. Owner only.
    CloseBucket {
        /// The bucket.
        bucket: BucketId,
    },
    /// Bills an ended period from the owner's signed usage and the
    /// receivers' signed receipts. By the owner of any active member.
    BillBucket {
        /// The bucket.
        bucket: BucketId,
        /// The period (the next unbilled one).
        period: u64,
        /// The owner's running usage signed by the period's end, when there
        /// is one newer than the last bill's (none: the bucket is billed for
        /// the bytes the last bill used).
        usage: Option<Signed<BucketUsage>>,
        /// One cumulative receipt per serving node.
        receipts: Vec<Signed<BandwidthReceipt>>,
        /// One cumulative repair receipt per (repairer, receiver) pair,
        /// signed by the receiver's node key.
        repairs: Vec<Signed<RepairReceipt>>,
    },
    /// Ends a read-only bucket whose grace is over, refunding what is left.
    /// Anyone.
    ExpireBucket {
        /// The bucket.
        bucket: BucketId,
    },
    /// A failed audit: the signer's member node `auditor` challenged member
    /// `node` for piece `cid` in audit `epoch` (block time / the cluster's
    /// billing period) and the answer failed (missing, corrupt, a bad proof
    /// or none). Signed by the owner of `auditor`; for the current epoch or
    /// the one before. Reports of one node in one epoch from
    /// `AUDIT_REPORTS_TO_SLASH` distinct auditors judge it: part of its
    /// stake is slashed and it leaves the cluster. Passes are not reported.
    /// (Appended last: the variants before it keep their encoding.)
    ReportAudit {
        /// The cluster both nodes are active members of.
        cluster: ClusterId,
        /// The member node that ran the audit (its owner signs).
        auditor: NodeId,
        /// The member node that failed it.
        node: NodeId,
        /// The audit epoch: block time / the cluster's billing period.
        epoch: u64,
        /// The piece it was challenged for.
        cid: ContentId,
    },
    /// Awards a lease: the request, every bid taken (the lowest wins at the
    /// first losing bid's price) and the deposit locked from the signer,
    /// who must be the request's user. Its id is `LeaseId::derive(signer, nonce)`.
    OpenLease {
        /// The user's request, whole.
        request: LeaseRequest,
        /// The nodes' sealed bids.
        offers: Vec<Signed<LeaseOffer>>,
        /// Locked: every period of a fixed lease, at least one of an open one.
        deposit: Amount,
    },
    /// The user verified access to the space: billing starts. User only,
    /// before the request's activation window closes.
    ActivateLease {
        /// The lease.
        lease: LeaseId,
    },
    /// Ends a lease never activated and refunds it: its user or its node's
    /// owner at any time, anyone once the activation window has closed.
    CancelLease {
        /// The lease.
        lease: LeaseId,
    },
    /// Adds to a lease's deposit (a fixed lease grows by the whole periods
    /// it buys). Anyone; refunds still go to the user.
    ExtendLease {
        /// The lease.
        lease: LeaseId,
        /// How much.
        amount: Amount,
    },
    /// Bills the next `periods` ended periods of a lease: those the probes
    /// prove up are paid to the node's owner (who signs), the rest credited
    /// to the user.
    BillLease {
        /// The lease.
        lease: LeaseId,
        /// Periods billed, from the first unbilled one.
        periods: u64,
        /// Signed probes of those periods by other owners' nodes.
        probes: Vec<Signed<LeaseProbe>>,
    },
    /// Ends an active lease now, by its user or its node's owner; the
    /// unused part goes back at once.
    CloseLease {
        /// The lease.
        lease: LeaseId,
    },
    /// Settles a lease whose end and bill window have passed: whatever is
    /// left goes back to the user. Anyone.
    SettleLease {
        /// The lease.
        lease: LeaseId,
    },
}

impl TxKind {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            TxKind::Genesis { .. } => "genesis",
            TxKind::Transfer { .. } => "transfer",
            TxKind::RegisterNode { .. } => "register-node",
            TxKind::UpdateNode { .. } => "update-node",
            TxKind::Stake { .. } => "stake",
            TxKind::Unstake { .. } => "unstake",
            TxKind::PostJob { .. } => "post-job",
            TxKind::AwardJob { .. } => "award-job",
            TxKind::SubmitResult { .. } => "submit-result",
            TxKind::SettleJob { .. } => "settle-job",
            TxKind::ExpireJob { .. } => "expire-job",
            TxKind::CancelJob { .. } => "cancel-job",
            TxKind::WithdrawResult { .. } => "withdraw-result",
            TxKind::CreateCluster { .. } => "create-cluster",
            TxKind::JoinCluster { .. } => "join-cluster",
            TxKind::ProposeCluster { .. } => "propose-cluster",
            TxKind::ApproveCluster { .. } => "approve-cluster",
            TxKind::LeaveCluster { .. } => "leave-cluster",
            TxKind::CreateBucket { .. } => "create-bucket",
            TxKind::DepositBucket { .. } => "deposit-bucket",
            TxKind::CloseBucket { .. } => "close-bucket",
            TxKind::BillBucket { .. } => "bill-bucket",
            TxKind::ExpireBucket { .. } => "expire-bucket",
            TxKind::ReportAudit { .. } => "report-audit",
            TxKind::OpenLease { .. } => "open-lease",
            TxKind::ActivateLease { .. } => "activate-lease",
            TxKind::CancelLease { .. } => "cancel-lease",
            TxKind::ExtendLease { .. } => "extend-lease",
            TxKind::BillLease { .. } => "bill-lease",
            TxKind::CloseLease { .. } => "close-lease",
            TxKind::SettleLease { .. } => "settle-lease",
        }
    }
}

fn registration_message(node: &NodeId, owner: &AccountId) -> Vec<u8> {
    let mut message = Vec::with_capacity(REGISTRATION_DOMAIN.len() + 64);
    message.extend_from_slice(REGISTRATION_DOMAIN);
    message.extend_from_slice(&node.key().0);
    message.extend_from_slice(&owner.key().0);
    message
}

/// The node key's proof that `owner` may register it: a signature over a
/// domain-tagged message naming both, so nobody registers someone else's node.
pub fn registration_proof(node_key: &Keypair, owner: &AccountId) -> [u8; 64] {
    node_key.sign(&registration_message(&node_key.node_id(), owner))
}

/// Whether `proof` is `node`'s signature naming `owner`.
pub fn verify_registration_proof(node: &NodeId, owner: &AccountId, proof: &[u8; 64]) -> bool {
    node.key().verify(&registration_message(node, owner), proof)
}

/// Serde for `[u8; 64]` (serde derives arrays only up to 32): bytes in
/// binary formats, a sequence of numbers in text formats.
mod bytes64 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = [u8; 64];
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<[u8; 64], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<[u8; 64], A::Error> {
                let mut out = [0u8; 64];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(65, &self));
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{decode, encode};

    #[test]
    fn registration_proof_names_the_owner() {
        let node = Keypair::from_seed(&[7; 32]);
        let owner = Keypair::from_seed(&[8; 32]).account_id();
        let thief = Keypair::from_seed(&[9; 32]).account_id();
        let proof = registration_proof(&node, &owner);
        assert!(verify_registration_proof(&node.node_id(), &owner, &proof));
        assert!(!verify_registration_proof(&node.node_id(), &thief, &proof));
    }

    #[test]
    fn signed_tx_round_trips_with_a_proof() {
        let owner = Keypair::from_seed(&[1; 32]);
        let node = Keypair::from_seed(&[2; 32]);
        let tx = Tx {
            chain: Hash32::of(b"a chain"),
            nonce: 3,
            fee: Amount::from_base_units(10),
            kind: TxKind::RegisterNode {
                node: node.node_id(),
                proof: registration_proof(&node, &owner.account_id()),
                resources: Resources::default(),
                location: "eu-west".into(),
                prices: PriceSheet::default(),
            },
        };
        let signed = Signed::new(tx, &owner);
        let bytes = encode(&signed);
        let back: Signed<Tx> = decode(&bytes).unwrap();
        back.verify().unwrap();
        assert_eq!(back, signed);
    }
}

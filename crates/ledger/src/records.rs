//! The records the ledger keeps: accounts, nodes, jobs, and the chain-wide
//! meta record. These are the values of the state's tables; their canonical
//! encoding (`Kind::StateEntry`; version 1, job records version 2) is what is
//! hashed into the state root and written to disk.

use std::collections::BTreeMap;
use std::fmt;

use peercloud_types::{AccountId, Amount, Hash32, Kind, NodeId, PriceSheet, Resources, Versioned};
use serde::{Deserialize, Serialize};

/// An account: tokens it holds, tokens it staked, its last nonce.
///
/// Node keys get an account record too (with no balance) the first time they
/// sign: their nonce lives here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    /// Spendable tokens.
    pub balance: Amount,
    /// Tokens staked behind the account's nodes.
    pub stake: Amount,
    /// The nonce of the account's last transaction (0: none yet).
    pub nonce: u64,
    /// Awards of this account's nodes in jobs not yet settled or expired.
    /// While non-zero the stake is locked: it backs awarded work.
    pub bound_awards: u32,
}

impl Versioned for Account {
    const KIND: u8 = Kind::StateEntry as u8;
    const VERSION: u8 = 1;
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The account that registered it and is paid for its work.
    pub owner: AccountId,
    /// What it advertises.
    pub resources: Resources,
    /// Free-text location.
    pub location: String,
    /// Its base prices.
    pub prices: PriceSheet,
    /// 0..=`REPUTATION_MAX`, starting at `REPUTATION_START`.
    pub reputation: u32,
    /// Height of the block that registered it.
    pub registered_height: u64,
    /// Jobs where its result agreed with the majority.
    pub jobs_agreed: u64,
    /// Jobs where it disagreed, missed its result, or there was no majority.
    pub jobs_faulted: u64,
    /// How many times each reason moved its reputation (why it is what it is).
    pub tally: ReputationTally,
}

impl Versioned for NodeRecord {
    const KIND: u8 = Kind::StateEntry as u8;
    /// 2: the reputation tally.
    const VERSION: u8 = 2;
}

/// Why a node's reputation moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReputationReason {
    /// Its job result agreed with the majority.
    JobAgreed,
    /// Its job result was outvoted (it was also slashed).
    JobOutvoted,
    /// It gave no result for a job it was awarded.
    JobMissed,
    /// It withdrew from a job it was awarded (said it would not deliver).
    JobWithdrawn,
    /// A job it took part in ended with no majority.
    JobNoMajority,
    /// Auditors of two owners found a piece it should hold missing or corrupt.
    AuditFailed,
    /// A period of one of its leases that no probes proved up (one count
    /// per period, at most ten per bill or settlement).
    LeasePeriodDown,
    /// A lease of it ran to its end with every period proven up.
    LeaseClean,
}

impl ReputationReason {
    /// Every reason, in the tally's order.
    pub const ALL: [ReputationReason; 8] = [
        ReputationReason::JobAgreed,
        ReputationReason::JobOutvoted,
        ReputationReason::JobMissed,
        ReputationReason::JobWithdrawn,
        ReputationReason::JobNoMajority,
        ReputationReason::AuditFailed,
        ReputationReason::LeasePeriodDown,
        ReputationReason::LeaseClean,
    ];

    /// What one count moves the reputation by.
    pub fn weight(self) -> i64 {
        use crate::params::{
            REPUTATION_PENALTY_AUDIT, REPUTATION_PENALTY_DISAGREE, REPUTATION_PENALTY_LEASE_DOWN,
            REPUTATION_PENALTY_MISSING, REPUTATION_PENALTY_NO_MAJORITY,
            REPUTATION_PENALTY_WITHDRAWN, REPUTATION_REWARD,
        };
        let up = |n: u32| i64::from(n);
        let down = |n: u32| -i64::from(n);
        match self {
            ReputationReason::JobAgreed | ReputationReason::LeaseClean => up(REPUTATION_REWARD),
            ReputationReason::JobOutvoted => down(REPUTATION_PENALTY_DISAGREE),
            ReputationReason::JobMissed => down(REPUTATION_PENALTY_MISSING),
            ReputationReason::JobWithdrawn => down(REPUTATION_PENALTY_WITHDRAWN),
            ReputationReason::JobNoMajority => down(REPUTATION_PENALTY_NO_MAJORITY),
            ReputationReason::AuditFailed => down(REPUTATION_PENALTY_AUDIT),
            ReputationReason::LeasePeriodDown => down(REPUTATION_PENALTY_LEASE_DOWN),
        }
    }

    /// The reason in words.
    pub fn name(self) -> &'static str {
        match self {
            ReputationReason::JobAgreed => "job result agreed with the majority",
            ReputationReason::JobOutvoted => "job result outvoted",
            ReputationReason::JobMissed => "job result missing",
            ReputationReason::JobWithdrawn => "withdrew from a job",
            ReputationReason::JobNoMajority => "job ended with no majority",
            ReputationReason::AuditFailed => "failed a storage audit",
            ReputationReason::LeasePeriodDown => "lease period not proven up",
            ReputationReason::LeaseClean => "lease ran clean to its end",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// How many times each reason moved a node's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReputationTally {
    counts: [u64; 8],
}

impl ReputationTally {
    /// How many times `reason` moved the reputation.
    pub fn count(&self, reason: ReputationReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Every reason with its count, its weight and their product.
    pub fn lines(&self) -> Vec<(ReputationReason, u64, i64, i64)> {
        ReputationReason::ALL
            .iter()
            .map(|r| {
                let count = self.count(*r);
                let total = i64::try_from(count)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(r.weight());
                (*r, count, r.weight(), total)
            })
            .collect()
    }

    pub(crate) fn add(&mut self, reason: ReputationReason, count: u64) {
        let slot = &mut self.counts[reason.index()];
        *slot = slot.saturating_add(count);
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Escrow locked, waiting for the poster to award offers.
    Posted,
    /// Offers bound; nodes are running it and submitting results.
    Awarded,
    /// Closed by `SettleJob`: the majority was paid (if there was one).
    Settled,
    /// Closed by `ExpireJob`: the escrow went back to the poster.
    Expired,
    /// Withdrawn by its poster before any award: the escrow went back.
    Cancelled,
}

impl JobState {
    /// Whether the job is closed (escrow fully released).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            JobState::Settled | JobState::Expired | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Posted => "posted",
            JobState::Awarded => "awarded",
            JobState::Settled => "settled",
            JobState::Expired => "expired",
            JobState::Cancelled => "cancelled",
        })
    }
}

/// What a node claims its run produced. Two nodes agree when both fields match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResultClaim {
    /// Digest of the output.
    pub output_digest: Hash32,
    /// Fuel burned.
    pub fuel_used: u64,
}

/// One node bound to a job by its offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Award {
    /// The node.
    pub node: NodeId,
    /// Its owner when awarded (paid, slashed).
    pub owner: AccountId,
    /// The offer's price: what the node is paid if it agrees with the majority.
    pub price: Amount,
    /// Its result, once submitted.
    pub result: Option<ResultClaim>,
    /// Whether the node said it will not deliver (`WithdrawResult`). A node
    /// withdraws only before submitting: never both this and a result.
    pub withdrawn: bool,
}

impl Award {
    /// Whether the node may still answer: no result and not withdrawn.
    pub fn pending(&self) -> bool {
        self.result.is_none() && !self.withdrawn
    }
}

/// A job and its escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Who posted it and gets refunds.
    pub poster: AccountId,
    /// Digest of the job spec.
    pub spec_digest: Hash32,
    /// How many nodes run it (k).
    pub redundancy: u8,
    /// The most one node may be paid.
    pub max_price_per_node: Amount,
    /// Block time when it was posted.
    pub posted_ms: u64,
    /// Results after this time are refused; after it the job can be closed.
    pub deadline_ms: u64,
    /// Tokens moved into escrow when posted.
    pub escrow_locked: Amount,
    /// Tokens paid or refunded out of escrow so far.
    pub escrow_released: Amount,
    /// Where the job is in its life.
    pub state: JobState,
    /// The bound offers (empty until awarded).
    pub awards: Vec<Award>,
    /// The majority's result, once settled with one.
    pub agreed: Option<ResultClaim>,
}

impl JobRecord {
    /// Tokens still held in escrow (`locked - released`); `None` only if the
    /// escrow invariant is broken.
    pub fn escrow_held(&self) -> Option<Amount> {
        self.escrow_locked.checked_sub(self.escrow_released)
    }

    /// Results submitted so far.
    pub fn results_in(&self) -> usize {
        self.awards
            .iter()
            .filter(|award| award.result.is_some())
            .count()
    }

    /// Awarded nodes that may still answer (no result, not withdrawn).
    pub fn pending(&self) -> usize {
        self.awards.iter().filter(|award| award.pending()).count()
    }

    /// The claim more than half of the k awarded nodes made, if any.
    pub fn majority(&self) -> Option<ResultClaim> {
        let mut counts: BTreeMap<ResultClaim, usize> = BTreeMap::new();
        for claim in self.awards.iter().filter_map(|award| award.result) {
            *counts.entry(claim).or_default() += 1;
        }
        let k = usize::from(self.redundancy);
        counts
            .into_iter()
            .find(|(_, count)| count * 2 > k)
            .map(|(claim, _)| claim)
    }

    /// Whether a strict majority can still form: see [`majority_possible`].
    pub fn majority_possible(&self) -> bool {
        majority_possible(
            self.redundancy,
            self.awards.iter().filter_map(|award| award.result),
            self.pending(),
        )
    }
}

/// Whether `k` awarded nodes can still reach a strict majority on one claim,
/// given the claims made so far and the awards still `pending` (no result,
/// not withdrawn): some claim's count plus every pending award (or the
/// pending awards alone agreeing on a new claim) exceeds k/2. When false, no
/// later transaction can make the job settle with a majority: it can only
/// end (a job with every award answered settles without one, any other
/// expires).
pub fn majority_possible(
    k: u8,
    claims: impl IntoIterator<Item = ResultClaim>,
    pending: usize,
) -> bool {
    let mut counts: BTreeMap<ResultClaim, usize> = BTreeMap::new();
    for claim in claims {
        *counts.entry(claim).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    (most + pending) * 2 > usize::from(k)
}

impl Versioned for JobRecord {
    const KIND: u8 = Kind::StateEntry as u8;
    /// 2: each award records a withdrawal (`Award::withdrawn`). Version-1
    /// records are not read: the roots of the blocks that wrote them hash
    /// the version-1 bytes, so such a chain cannot continue under this
    /// layout.
    const VERSION: u8 = 2;
}

/// Chain-wide facts: whether genesis ran and what it minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Whether the genesis transaction has been applied.
    pub genesis_done: bool,
    /// The total supply genesis minted; never changes afterwards.
    pub minted: Amount,
}

impl Versioned for Meta {
    const KIND: u8 = Kind::StateEntry as u8;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_place_and_sign() {
        let mut tally = ReputationTally::default();
        for (i, reason) in ReputationReason::ALL.iter().enumerate() {
            tally.add(*reason, i as u64 + 1);
        }
        for (i, (reason, count, weight, total)) in tally.lines().into_iter().enumerate() {
            assert_eq!(count, i as u64 + 1, "{reason:?}");
            assert_eq!(total, weight * count as i64);
            let rewards = matches!(
                reason,
                ReputationReason::JobAgreed | ReputationReason::LeaseClean
            );
            assert_eq!(weight > 0, rewards, "{reason:?}");
        }
    }
}

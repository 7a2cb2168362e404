//! The chain's fixed parameters: [`Params`] (who may mint the devnet supply,
//! who proposes blocks, where fees and slashes go, the minimum fee, stake and
//! slash), their validation and their digest, and the constants every chain
//! shares: basis points, the reputation steps, the bound on a genesis, the
//! storage bounds and the audit quorum.
//!
//! Params are fixed at genesis and hashed into every state root, so two nodes
//! with different params can never agree on a root by accident.

use peercloud_types::encoding::encode_body_into;
use peercloud_types::{AccountId, Amount, Hash32, PublicKey};
use serde::{Deserialize, Serialize};

/// Basis points in one whole: `slash_bps` is a fraction of this.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// Reputation a node starts with: the middle of the 0..=10000 scale, so a new
/// node is neither trusted nor distrusted.
pub const REPUTATION_START: u32 = peercloud_types::job::REPUTATION_MAX / 2;
/// Reputation gained for a result that agreed with the majority. Small: trust
/// is earned over many jobs (50 good jobs from the start to the top).
pub const REPUTATION_REWARD: u32 = 100;
/// Reputation lost for a result that disagreed with the majority: five good
/// jobs' worth, since a wrong answer is the fault verification exists to catch.
pub const REPUTATION_PENALTY_DISAGREE: u32 = 500;
/// Reputation lost for an awarded node that never submitted: a missed job
/// costs the user time but is not a wrong answer.
pub const REPUTATION_PENALTY_MISSING: u32 = 300;
/// Reputation lost for an awarded node that withdrew (`WithdrawResult`: its
/// staging or run failed in a way that is no result): less than a missing
/// result, since the job need not wait for its deadline, but not nothing,
/// since the node took a job it could not do.
pub const REPUTATION_PENALTY_WITHDRAWN: u32 = 150;
/// Reputation lost by every node of a job whose k results had no majority:
/// nobody can tell who was wrong, so the step is small.
pub const REPUTATION_PENALTY_NO_MAJORITY: u32 = 100;
/// Reputation lost by a storage member judged to have failed its audits
/// (`ReportAudit` from [`AUDIT_REPORTS_TO_SLASH`] auditors): losing or
/// corrupting data a bucket pays to keep is nearly as bad as a wrong answer
/// (500), and worse than a missed job (300), since the data may be gone.
pub const REPUTATION_PENALTY_AUDIT: u32 = 400;

/// Distinct auditors whose failure reports of one node in one audit epoch
/// judge it (slash, removal, reputation): 2, a majority of the 3 index
/// replicas that keep each bucket's index and audit every piece of it. One
/// auditor alone (which may itself be faulty or lying) never judges a node;
/// two agreeing are the majority of the replicas that could have looked.
pub const AUDIT_REPORTS_TO_SLASH: usize = 2;

/// Most allocations one genesis may carry: bounds the genesis transaction
/// (about 60 bytes each, so at most ~6 MB).
pub const GENESIS_ALLOCATIONS_MAX: usize = 100_000;

/// Most managers a cluster may have (its multisig is m-of-n, n at most this).
pub const CLUSTER_MANAGERS_MAX: usize = 16;
/// Most whole copies a replicated cluster may keep.
pub const REPLICAS_MAX: u8 = 16;
/// Most data pieces of a Reed-Solomon cluster.
pub const RS_DATA_MAX: u8 = 64;
/// Most parity pieces of a Reed-Solomon cluster.
pub const RS_PARITY_MAX: u8 = 32;
/// Highest storage or bandwidth price per GiB (10^9 tokens): keeps every
/// bill's arithmetic inside u128 without approximation.
pub const STORAGE_PRICE_MAX: Amount = Amount::from_base_units(1_000_000_000_000_000_000);
/// Highest managers' fee: half of every bill.
pub const MANAGER_FEE_BPS_MAX: u32 = BPS_DENOMINATOR / 2;
/// Shortest billing period (1 s, for devnets).
pub const BILLING_PERIOD_MS_MIN: u64 = 1_000;
/// Longest billing period (31 days).
pub const BILLING_PERIOD_MS_MAX: u64 = 31 * DAY_MS;
/// Longest grace of a bucket that ran out (90 days); the shortest is one billing period.
pub const GRACE_MS_MAX: u64 = 90 * DAY_MS;
/// Least capacity a member may offer (1 MiB).
pub const CAPACITY_BYTES_MIN: u64 = 1 << 20;
/// Most capacity a member may offer (1 EiB).
pub const CAPACITY_BYTES_MAX: u64 = 1 << 60;
/// Most members (pending or active) a cluster may have; also the most
/// bandwidth receipts one bill may carry (one per node).
pub const CLUSTER_MEMBERS_MAX: usize = 256;
/// Most open proposals a cluster may have.
pub const PROPOSALS_OPEN_MAX: usize = 16;
/// A proposal not executed this long after it was made is stale (7 days).
pub const PROPOSAL_TTL_MS: u64 = 7 * DAY_MS;
/// A bucket whose deposit covers fewer than this many periods at its last
/// charge raises `BucketLow`.
pub const LOW_DEPOSIT_PERIODS: u128 = 3;
/// Longest node location string: enough for "region/city/datacentre" text,
/// small enough that node records stay small.
pub const LOCATION_BYTES_MAX: usize = 128;
/// Shortest lease billing period, ms (a devnet bills every few seconds).
pub const LEASE_PERIOD_MS_MIN: u64 = 1_000;
/// Longest lease billing period, ms.
pub const LEASE_PERIOD_MS_MAX: u64 = 31 * DAY_MS;
/// Most periods a fixed-length lease may buy.
pub const LEASE_PERIODS_MAX: u64 = 1_000_000;
/// Highest reserve per period: keeps `price * periods` exact in a u128.
pub const LEASE_PRICE_MAX: Amount = Amount::from_base_units(1_000_000_000_000_000_000);
/// Most offers an award may carry (the auction's bids).
pub const LEASE_OFFERS_MAX: usize = 64;
/// Most location prefixes and farmers a request's filters may list.
pub const LEASE_FILTERS_MAX: usize = 64;
/// Bounds of the time a user has to verify access and activate, ms.
pub const LEASE_ACTIVATE_MS_MIN: u64 = 1_000;
/// See [`LEASE_ACTIVATE_MS_MIN`].
pub const LEASE_ACTIVATE_MS_MAX: u64 = DAY_MS;
/// Most periods one bill may cover.
pub const LEASE_BILL_PERIODS_MAX: u64 = 1_024;
/// Probes, from nodes of distinct owners (none the leasing node's), that
/// must have seen a space up for its period to be paid.
pub const LEASE_PROBE_QUORUM: usize = 2;
/// After a lease ends its node may still bill for this many periods' time
/// (at least [`LEASE_BILL_WINDOW_MS_MIN`]); then anyone may settle it.
pub const LEASE_BILL_WINDOW_PERIODS: u64 = 3;
/// See [`LEASE_BILL_WINDOW_PERIODS`].
pub const LEASE_BILL_WINDOW_MS_MIN: u64 = 30_000;
/// Reputation lost per lease period nobody proved up.
pub const REPUTATION_PENALTY_LEASE_DOWN: u32 = 50;
/// Most reputation one bill or settlement takes for down periods.
pub const REPUTATION_PENALTY_LEASE_DOWN_MAX: u32 = 500;
/// Bytes in a GiB, the unit of storage and bandwidth prices.
pub const GIB: u128 = 1 << 30;
/// A day, ms.
pub const DAY_MS: u64 = 86_400_000;
/// A month of storage pricing: 30 days, ms.
pub const MONTH_MS: u64 = 30 * DAY_MS;

/// Domain tag of the params digest hashed into every state root.
const PARAMS_DIGEST_CONTEXT: &str = "peercloud ledger params v1";

/// The chain's fixed parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The only account allowed to sign the genesis transaction.
    pub genesis_authority: AccountId,
    /// The only key allowed to propose (sign) blocks.
    pub validator: PublicKey,
    /// Where fees and slashed stake go.
    pub treasury: AccountId,
    /// The smallest fee a transaction may carry (genesis excepted).
    pub min_fee: Amount,
    /// Stake a node's owner must hold for the node to be awarded a job.
    pub stake_min_to_serve: Amount,
    /// Fraction slashed, in basis points (at most [`BPS_DENOMINATOR`]): of
    /// an owner's stake per node that disagreed with a job's majority, and
    /// of a cluster member's stake when its audits are judged failed.
    pub slash_bps: u32,
}

/// Params that cannot run a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A slash above 100% would take more stake than exists.
    #[error("slash_bps is {slash_bps}, at most {max} (100%) is allowed")]
    SlashTooLarge {
        /// The value given.
        slash_bps: u32,
        /// The largest allowed.
        max: u32,
    },
}

impl Params {
    /// Checks the params can run a chain.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.slash_bps > BPS_DENOMINATOR {
            return Err(ParamsError::SlashTooLarge {
                slash_bps: self.slash_bps,
                max: BPS_DENOMINATOR,
            });
        }
        Ok(())
    }

    /// BLAKE3 of the params' canonical bytes, hashed into every state root.
    pub fn digest(&self) -> Hash32 {
        let mut bytes = Vec::with_capacity(160);
        encode_body_into(self, &mut bytes);
        let mut hasher = blake3::Hasher::new_derive_key(PARAMS_DIGEST_CONTEXT);
        hasher.update(&bytes);
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    fn params() -> Params {
        let key = Keypair::from_seed(&[1; 32]);
        Params {
            genesis_authority: key.account_id(),
            validator: key.public(),
            treasury: key.account_id(),
            min_fee: Amount::from_base_units(1),
            stake_min_to_serve: Amount::ZERO,
            slash_bps: 1000,
        }
    }

    #[test]
    fn slash_above_whole_is_refused() {
        let mut p = params();
        p.validate().unwrap();
        p.slash_bps = BPS_DENOMINATOR + 1;
        assert!(matches!(
            p.validate(),
            Err(ParamsError::SlashTooLarge { .. })
        ));
    }

    #[test]
    fn digest_changes_with_any_field() {
        let p = params();
        let mut q = p.clone();
        q.min_fee = Amount::from_base_units(2);
        assert_ne!(p.digest(), q.digest());
        assert_eq!(p.digest(), params().digest());
    }
}

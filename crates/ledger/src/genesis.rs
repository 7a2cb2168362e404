//! The chain's fixed parameters and its genesis: who may mint the devnet
//! supply, who proposes blocks, where fees and slashes go, and the constants
//! that move reputation.
//!
//! Params are fixed at genesis and hashed into every state root, so two nodes
//! with different params can never agree on a root by accident.

use peercloud_types::encoding::encode_body_into;
use peercloud_types::{AccountId, Amount, Hash32, Keypair, PublicKey, Signed};
use serde::{Deserialize, Serialize};

use crate::apply::BlockContext;
use crate::block::{BlockError, BuiltBlock, build_block};
use crate::state::State;
use crate::tx::{Tx, TxKind};

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
/// Reputation lost by every node of a job whose k results had no majority:
/// nobody can tell who was wrong, so the step is small.
pub const REPUTATION_PENALTY_NO_MAJORITY: u32 = 100;

/// Most allocations one genesis may carry: bounds the genesis transaction
/// (about 60 bytes each, so at most ~6 MB).
pub const GENESIS_ALLOCATIONS_MAX: usize = 100_000;

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
    /// Fraction of an owner's stake slashed per node that disagreed with a
    /// job's majority, in basis points (at most [`BPS_DENOMINATOR`]).
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

/// Everything needed to start a chain: its params, the minted supply and the
/// genesis block's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisConfig {
    /// The chain's params.
    pub params: Params,
    /// Who gets how much of the devnet supply.
    pub allocations: Vec<(AccountId, Amount)>,
    /// Time of the genesis block, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl GenesisConfig {
    /// The genesis transaction, signed by the genesis authority's key.
    pub fn genesis_tx(&self, authority: &Keypair) -> Signed<Tx> {
        let tx = Tx {
            nonce: 1,
            fee: Amount::ZERO,
            kind: TxKind::Genesis {
                allocations: self.allocations.clone(),
            },
        };
        Signed::new(tx, authority)
    }

    /// A fresh state with the genesis block (height 0) applied, and that block.
    /// `extra` transactions (node registrations, stakes) may ride in the same
    /// block after the genesis transaction.
    pub fn build(
        &self,
        authority: &Keypair,
        validator: &Keypair,
        extra: Vec<Signed<Tx>>,
    ) -> Result<(State, BuiltBlock), BlockError> {
        let mut state = State::new(self.params.clone()).map_err(BlockError::from)?;
        let mut txs = Vec::with_capacity(extra.len() + 1);
        txs.push(self.genesis_tx(authority));
        txs.extend(extra);
        let ctx = BlockContext {
            height: 0,
            time_ms: self.time_ms,
            seed: Hash32::ZERO,
        };
        let built = build_block(&mut state, txs, &ctx, validator)?;
        Ok((state, built))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

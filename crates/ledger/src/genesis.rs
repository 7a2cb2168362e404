//! The genesis: the config that starts a chain (its [`Params`], the minted
//! devnet supply, the genesis time) and the building of block 0 from it.

use peercloud_types::{AccountId, Amount, Hash32, Keypair, Signed};
use serde::{Deserialize, Serialize};

use crate::block::{BlockError, BuiltBlock, build_block};
use crate::context::BlockContext;
use crate::state::State;
use crate::tx::{Tx, TxKind};

// The params and the chain-wide constants live in `params.rs`; re-exported so
// the `genesis::` paths keep working.
pub use crate::params::{
    BPS_DENOMINATOR, GENESIS_ALLOCATIONS_MAX, Params, ParamsError, REPUTATION_PENALTY_DISAGREE,
    REPUTATION_PENALTY_MISSING, REPUTATION_PENALTY_NO_MAJORITY, REPUTATION_PENALTY_WITHDRAWN,
    REPUTATION_REWARD, REPUTATION_START,
};

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
            chain: self.params.digest(),
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

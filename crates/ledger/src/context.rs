//! The block context: what a block tells its transactions about the world.
//! The ledger reads no clock and no random source, so a block's height, time
//! and seed are its only time and entropy.

use peercloud_types::Hash32;

use crate::state::State;

/// What a block tells its transactions about the world: the ledger reads no
/// clock and no random source, so these are its only time and entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// The block's height (genesis is 0).
    pub height: u64,
    /// The block's time, ms since the Unix epoch (set by the proposer).
    pub time_ms: u64,
    /// The block's seed (set by the proposer).
    pub seed: Hash32,
}

/// Domain tag of the default block seed.
const SEED_CONTEXT: &str = "peercloud ledger block seed v1";

impl BlockContext {
    /// The context of the block after `state`'s tip at `time_ms`, with the
    /// default seed: BLAKE3 of the parent's hash and the height, which the
    /// proposer cannot choose. (Followers do not require this seed; it is
    /// what a sequencer should use unless it has better entropy.)
    pub fn next(state: &State, time_ms: u64) -> BlockContext {
        let height = state.next_height();
        let parent = state.tip().map_or(Hash32::ZERO, |tip| tip.hash);
        let mut hasher = blake3::Hasher::new_derive_key(SEED_CONTEXT);
        hasher.update(parent.as_bytes());
        hasher.update(&height.to_le_bytes());
        BlockContext {
            height,
            time_ms,
            seed: hasher.finalize().into(),
        }
    }
}

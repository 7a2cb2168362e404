//! Blocks: the ordered batches of transactions the validator signs, and the
//! two ways a state moves by one: `build_block` (the sequencer: applies
//! candidates, drops the refused) and `apply_block` (a follower: all or
//! nothing, then the state root must match the header).
//!
//! Signatures are checked with ed25519 batch verification (one multiscalar
//! multiplication per block instead of one verification per transaction);
//! when a batch fails, single checks name the bad transaction.
//!
//! Batch verification is cofactorless with randomness derived from the batch
//! itself; for signatures with small-order components (which only a key's own
//! owner can craft) its verdict could differ between two different batches.
//! So the sequencer makes sure the exact transaction list it puts in a block
//! is the list it verified as one batch; every follower verifies that same
//! list and reaches the same verdict. Weak (small-order) keys are refused.

use peercloud_types::{Hash32, Keypair, Kind, PublicKey, SignatureBatch, Signed, Versioned};
use serde::{Deserialize, Serialize};

use crate::apply::apply_verified;
use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::Event;
use crate::params::ParamsError;
use crate::state::{State, Tip};
use crate::tx::Tx;

/// Most transactions in one block: bounds a block's bytes (a few MB), the
/// time to verify and apply it (well under a second), and the undo journal.
pub const BLOCK_TXS_MAX: usize = 10_000;

/// Domain tag of the transaction root.
const TX_ROOT_CONTEXT: &str = "peercloud ledger tx root v1";

/// A block's header; the validator signs it as `Signed<BlockHeader>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Genesis is 0.
    pub height: u64,
    /// The previous block's hash (zero for genesis).
    pub parent: Hash32,
    /// The block's time, ms since the Unix epoch; never before the parent's.
    pub time_ms: u64,
    /// Entropy the proposer gives the block's transactions.
    pub seed: Hash32,
    /// [`tx_root`] of the block's transactions.
    pub tx_root: Hash32,
    /// The state root after applying the block.
    pub state_root: Hash32,
    /// The validator's key.
    pub proposer: PublicKey,
}

impl Versioned for BlockHeader {
    const KIND: u8 = Kind::Block as u8;
    const VERSION: u8 = 1;
}

/// A signed header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header, signed by the proposer.
    pub header: Signed<BlockHeader>,
    /// The transactions, in the order they were applied.
    pub txs: Vec<Signed<Tx>>,
}

impl Versioned for Block {
    const KIND: u8 = Kind::Block as u8;
    const VERSION: u8 = 1;
}

impl Block {
    /// The block's hash: the hash of its signed header.
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.header.body.height
    }

    /// The block's context for its transactions.
    pub fn context(&self) -> BlockContext {
        let header = &self.header.body;
        BlockContext {
            height: header.height,
            time_ms: header.time_ms,
            seed: header.seed,
        }
    }
}

/// BLAKE3 over the transactions' hashes, in order.
pub fn tx_root(txs: &[Signed<Tx>]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(TX_ROOT_CONTEXT);
    hasher.update(&(txs.len() as u64).to_le_bytes());
    for tx in txs {
        hasher.update(tx.hash().as_bytes());
    }
    hasher.finalize().into()
}

/// Verifies every transaction's signature as one batch. Returns the indices
/// of the transactions whose signature is bad (empty when all are good):
/// undecodable or weak keys are bad outright; if the batch of the rest fails,
/// each is checked alone (strict) to name the culprits.
pub fn verify_tx_signatures(txs: &[Signed<Tx>]) -> Vec<usize> {
    let mut batch = SignatureBatch::default();
    for tx in txs {
        batch.push(tx);
    }
    batch.bad()
}

/// Why a block could not be built or applied. A refused block leaves the
/// state exactly as before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block is not the next one.
    #[error("block at height {got} is not the next block; expected height {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The block's height.
        got: u64,
    },
    /// The block does not extend the tip.
    #[error("block {height} names parent {got:?}, the tip is {expected:?}")]
    WrongParent {
        /// The block's height.
        height: u64,
        /// The tip's hash.
        expected: Hash32,
        /// The parent named.
        got: Hash32,
    },
    /// The block's time is before its parent's.
    #[error("block {height} has time {time_ms} ms, before its parent's {parent_time_ms} ms")]
    TimeWentBackwards {
        /// The block's height.
        height: u64,
        /// The parent's time.
        parent_time_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// The proposer is not the chain's validator.
    #[error("block {height} is proposed by {got:?}, the validator is {validator:?}")]
    NotValidator {
        /// The block's height.
        height: u64,
        /// The chain's validator.
        validator: PublicKey,
        /// The proposer (or header signer).
        got: PublicKey,
    },
    /// The header's signature does not verify.
    #[error("block {height}'s header signature does not verify")]
    BadHeaderSignature {
        /// The block's height.
        height: u64,
    },
    /// More transactions than a block may carry.
    #[error("block {height} has {count} transactions, at most {max} are allowed")]
    TooManyTxs {
        /// The block's height.
        height: u64,
        /// Transactions given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The header's tx root does not match the transactions.
    #[error("block {height}'s tx root does not match its transactions")]
    TxRootMismatch {
        /// The block's height.
        height: u64,
    },
    /// A transaction's signature is bad.
    #[error("block {height}: transaction {index} is not signed by {signer:?}")]
    BadTxSignature {
        /// The block's height.
        height: u64,
        /// Position in the block.
        index: usize,
        /// Its claimed signer.
        signer: PublicKey,
    },
    /// A transaction was refused.
    #[error("block {height}: transaction {index} was refused: {source}")]
    TxRefused {
        /// The block's height.
        height: u64,
        /// Position in the block.
        index: usize,
        /// Why (boxed: keeps `Result<_, BlockError>` small).
        source: Box<TxError>,
    },
    /// The state root after the block is not the header's.
    #[error("block {height}: state root {computed:?} after applying it, header says {expected:?}")]
    StateRootMismatch {
        /// The block's height.
        height: u64,
        /// The header's root.
        expected: Hash32,
        /// The computed root.
        computed: Hash32,
    },
    /// The params cannot run a chain.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// What [`build_block`] produced.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    /// The signed block, already applied to the state.
    pub block: Block,
    /// Candidates left out, with why.
    pub rejected: Vec<(Signed<Tx>, TxError)>,
    /// The events of the included transactions, in order.
    pub events: Vec<Event>,
}

fn check_position(
    state: &State,
    height: u64,
    time_ms: u64,
    tx_count: usize,
) -> Result<(), BlockError> {
    let expected = state.next_height();
    if height != expected {
        return Err(BlockError::WrongHeight {
            expected,
            got: height,
        });
    }
    if let Some(tip) = state.tip()
        && time_ms < tip.time_ms
    {
        return Err(BlockError::TimeWentBackwards {
            height,
            parent_time_ms: tip.time_ms,
            time_ms,
        });
    }
    if tx_count > BLOCK_TXS_MAX {
        return Err(BlockError::TooManyTxs {
            height,
            count: tx_count,
            max: BLOCK_TXS_MAX,
        });
    }
    Ok(())
}

/// The sequencer's step: applies `candidates` in order on top of the tip,
/// leaves out those refused (bad signature or a [`TxError`]), signs the block
/// with `validator` and moves the state to it. Errors only when the context
/// or key cannot make the next block, or there are more than
/// [`BLOCK_TXS_MAX`] candidates (the caller takes that many at a time); the
/// state is then unchanged. A block may be empty.
pub fn build_block(
    state: &mut State,
    candidates: Vec<Signed<Tx>>,
    ctx: &BlockContext,
    validator: &Keypair,
) -> Result<BuiltBlock, BlockError> {
    check_position(state, ctx.height, ctx.time_ms, candidates.len())?;
    let validator_key = state.params().validator;
    if validator.public() != validator_key {
        return Err(BlockError::NotValidator {
            height: ctx.height,
            validator: validator_key,
            got: validator.public(),
        });
    }
    let mut rejected = Vec::new();
    let mut pool = drop_bad_signatures(candidates, &mut rejected);
    // Each pass either includes exactly the verified batch, or finds a
    // signature that a sub-batch refuses and drops it: at most one pass per
    // candidate, and almost always one pass.
    let (txs, events) = loop {
        state.begin();
        let mut included = Vec::with_capacity(pool.len());
        let mut refused = Vec::new();
        let mut events = Vec::new();
        for tx in pool {
            match apply_verified(state, &tx, ctx) {
                Ok(tx_events) => {
                    events.extend(tx_events);
                    included.push(tx);
                }
                Err(error) => refused.push((tx, error)),
            }
        }
        if refused.is_empty() || verify_tx_signatures(&included).is_empty() {
            rejected.extend(refused);
            break (included, events);
        }
        state.rollback();
        pool = drop_bad_signatures(included, &mut rejected);
        pool.extend(refused.into_iter().map(|(tx, _)| tx));
    };
    let accumulators = state.folded_accumulators();
    let state_root = state.root_of(&accumulators);
    let header = BlockHeader {
        height: ctx.height,
        parent: state.tip().map_or(Hash32::ZERO, |tip| tip.hash),
        time_ms: ctx.time_ms,
        seed: ctx.seed,
        tx_root: tx_root(&txs),
        state_root,
        proposer: validator_key,
    };
    let block = Block {
        header: Signed::new(header, validator),
        txs,
    };
    state.accept_accumulators(accumulators);
    state.commit();
    tracing::debug!(
        height = ctx.height,
        included = block.txs.len(),
        rejected = rejected.len(),
        "built block"
    );
    state.set_tip(Tip {
        height: ctx.height,
        hash: block.hash(),
        time_ms: ctx.time_ms,
        state_root,
    });
    Ok(BuiltBlock {
        block,
        rejected,
        events,
    })
}

fn drop_bad_signatures(
    txs: Vec<Signed<Tx>>,
    rejected: &mut Vec<(Signed<Tx>, TxError)>,
) -> Vec<Signed<Tx>> {
    let bad = verify_tx_signatures(&txs);
    if bad.is_empty() {
        return txs;
    }
    let mut bad = bad.into_iter().peekable();
    let mut good = Vec::with_capacity(txs.len());
    for (index, tx) in txs.into_iter().enumerate() {
        if bad.peek() == Some(&index) {
            bad.next();
            let error = TxError::BadSignature { signer: tx.signer };
            rejected.push((tx, error));
        } else {
            good.push(tx);
        }
    }
    good
}

/// A follower's step: checks the block extends the tip and is signed by the
/// validator, batch-verifies its transactions, applies them all and checks
/// the state root. Any failure leaves the state as before the block.
pub fn apply_block(state: &mut State, block: &Block) -> Result<Vec<Event>, BlockError> {
    let header = &block.header.body;
    let height = header.height;
    check_position(state, height, header.time_ms, block.txs.len())?;
    let parent = state.tip().map_or(Hash32::ZERO, |tip| tip.hash);
    if header.parent != parent {
        return Err(BlockError::WrongParent {
            height,
            expected: parent,
            got: header.parent,
        });
    }
    let validator = state.params().validator;
    for got in [header.proposer, block.header.signer] {
        if got != validator {
            return Err(BlockError::NotValidator {
                height,
                validator,
                got,
            });
        }
    }
    if block.header.verify().is_err() {
        return Err(BlockError::BadHeaderSignature { height });
    }
    if tx_root(&block.txs) != header.tx_root {
        return Err(BlockError::TxRootMismatch { height });
    }
    if let Some(&index) = verify_tx_signatures(&block.txs).first() {
        return Err(BlockError::BadTxSignature {
            height,
            index,
            signer: block.txs[index].signer,
        });
    }
    let ctx = block.context();
    state.begin();
    let mut events = Vec::new();
    for (index, tx) in block.txs.iter().enumerate() {
        match apply_verified(state, tx, &ctx) {
            Ok(tx_events) => events.extend(tx_events),
            Err(source) => {
                state.rollback();
                return Err(BlockError::TxRefused {
                    height,
                    index,
                    source: Box::new(source),
                });
            }
        }
    }
    let accumulators = state.folded_accumulators();
    let computed = state.root_of(&accumulators);
    if computed != header.state_root {
        state.rollback();
        return Err(BlockError::StateRootMismatch {
            height,
            expected: header.state_root,
            computed,
        });
    }
    state.accept_accumulators(accumulators);
    state.commit();
    state.set_tip(Tip {
        height,
        hash: block.hash(),
        time_ms: header.time_ms,
        state_root: computed,
    });
    Ok(events)
}

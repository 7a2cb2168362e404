//! This node's copy of the chain: the redb block log and the state it
//! implies. Every node follows blocks through [`Chain::apply`], which checks
//! the validator's signature, every transaction and the state root before
//! anything reaches disk; the validator makes them with [`Chain::propose`].
//! Both persist with an fsync before returning, so a block acknowledged is a
//! block that survives a crash.

use std::path::Path;

use peercloud_ledger::{
    Block, BlockContext, BlockError, DbError, Event, LedgerDb, State, Tx, TxError, apply_block,
    build_block, dry_run,
};
use peercloud_types::{Hash32, Keypair, Signed, encoding::encode};

use crate::genesis::Genesis;

/// File name of the ledger database in a node's data directory.
pub const LEDGER_FILE: &str = "ledger.redb";

/// What went wrong with the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The database failed.
    #[error(transparent)]
    Db(Box<DbError>),
    /// A block was refused.
    #[error(transparent)]
    Block(Box<BlockError>),
    /// The database holds another chain than the genesis file names.
    #[error(
        "the ledger in {path} is of chain {found}, but the genesis file names chain {expected}: \
         wrong data directory or genesis file"
    )]
    OtherChain {
        /// The database.
        path: String,
        /// The genesis file's chain id.
        expected: Hash32,
        /// The database's block 0 hash.
        found: Hash32,
    },
}

impl From<DbError> for ChainError {
    fn from(e: DbError) -> Self {
        ChainError::Db(Box::new(e))
    }
}

impl From<BlockError> for ChainError {
    fn from(e: BlockError) -> Self {
        ChainError::Block(Box::new(e))
    }
}

/// A block this node committed and what it did.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block.
    pub block: Block,
    /// Its events, in order.
    pub events: Vec<Event>,
    /// Hashes of its transactions, in order.
    pub tx_hashes: Vec<Hash32>,
}

impl Committed {
    fn new(block: Block, events: Vec<Event>) -> Committed {
        let tx_hashes = block.txs.iter().map(Signed::hash).collect();
        Committed {
            block,
            events,
            tx_hashes,
        }
    }
}

/// Candidates a proposal left out, with why.
pub type Refused = Vec<(Signed<Tx>, TxError)>;

/// The block log and the state at its tip.
#[derive(Debug)]
pub struct Chain {
    db: LedgerDb,
    state: State,
}

impl Chain {
    /// Opens the ledger in `dir`, applying the genesis block if it is new,
    /// and checks it is the chain `genesis` names.
    pub fn open(dir: &Path, genesis: &Genesis) -> Result<Chain, ChainError> {
        let path = dir.join(LEDGER_FILE);
        let (db, state) = LedgerDb::open(&path, &genesis.params)?;
        let mut chain = Chain { db, state };
        match chain.db.block(0)? {
            None => {
                chain.apply(&genesis.block)?;
            }
            Some(first) if first.hash() != genesis.chain_id() => {
                return Err(ChainError::OtherChain {
                    path: path.display().to_string(),
                    expected: genesis.chain_id(),
                    found: first.hash(),
                });
            }
            Some(_) => {}
        }
        Ok(chain)
    }

    /// The state at the tip.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Height of the next block.
    pub fn next_height(&self) -> u64 {
        self.state.next_height()
    }

    /// A follower's step: checks and applies `block`, then commits it durably.
    pub fn apply(&mut self, block: &Block) -> Result<Committed, ChainError> {
        let events = apply_block(&mut self.state, block)?;
        self.db.commit_block(block, &mut self.state)?;
        Ok(Committed::new(block.clone(), events))
    }

    /// The validator's step: a block of those `candidates` that pass, committed
    /// durably, and the ones left out with why.
    pub fn propose(
        &mut self,
        candidates: Vec<Signed<Tx>>,
        time_ms: u64,
        validator: &Keypair,
    ) -> Result<(Committed, Refused), ChainError> {
        let tip = self.state.tip();
        let ctx = BlockContext {
            height: self.state.next_height(),
            time_ms: tip.map_or(0, |t| t.time_ms).max(time_ms),
            seed: tip.map_or(Hash32::ZERO, |t| t.hash),
        };
        let built = build_block(&mut self.state, candidates, &ctx, validator)?;
        self.db.commit_block(&built.block, &mut self.state)?;
        Ok((Committed::new(built.block, built.events), built.rejected))
    }

    /// Whether `tx` would pass on top of the tip at `time_ms` (state unchanged).
    pub fn check(&mut self, tx: &Signed<Tx>, time_ms: u64) -> Result<Vec<Event>, TxError> {
        let tip = self.state.tip();
        let ctx = BlockContext {
            height: self.state.next_height(),
            time_ms: tip.map_or(0, |t| t.time_ms).max(time_ms),
            seed: tip.map_or(Hash32::ZERO, |t| t.hash),
        };
        dry_run(&mut self.state, tx, &ctx)
    }

    /// Up to `max` consecutive committed blocks from `from`, within `bytes_max`
    /// of encoding (at least one block if there is one).
    pub fn blocks_from(
        &self,
        from: u64,
        max: u32,
        bytes_max: usize,
    ) -> Result<Vec<Block>, ChainError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for height in from..from.saturating_add(u64::from(max)) {
            let Some(block) = self.db.block(height)? else {
                break;
            };
            bytes += encode(&block).len();
            if bytes > bytes_max && !out.is_empty() {
                break;
            }
            out.push(block);
        }
        Ok(out)
    }
}

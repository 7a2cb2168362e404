//! This node's copy of the chain: the redb block log and the state it
//! implies. Every node follows blocks through [`Chain::apply`], which checks
//! the validator's signature, every transaction and the state root before
//! anything reaches disk; the validator makes them with [`Chain::propose`].
//! Both persist with an fsync before returning, so a block acknowledged is a
//! block that survives a crash; a block that cannot be written (a full disk,
//! an I/O error) is undone in memory and the database reopened, so the state
//! never runs ahead of the disk and the node carries on once the disk does.

use std::path::{Path, PathBuf};

use peercloud_ledger::{
    Block, BlockContext, BlockError, DbError, Event, LedgerDb, Params, State, Tx, TxError,
    apply_block, build_block, dry_run,
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
    /// The database could not be reopened after a failed write; every block
    /// waits until it can be.
    #[error("the ledger database is closed after a failed write and cannot be reopened yet: {0}")]
    Closed(Box<DbError>),
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
    /// `None` after a failed write until it is reopened.
    db: Option<LedgerDb>,
    state: State,
    path: PathBuf,
    params: Params,
}

impl Chain {
    /// Opens the ledger in `dir`, applying the genesis block if it is new,
    /// and checks it is the chain `genesis` names.
    pub fn open(dir: &Path, genesis: &Genesis) -> Result<Chain, ChainError> {
        let path = dir.join(LEDGER_FILE);
        let (db, state) = LedgerDb::open(&path, &genesis.params)?;
        let first = db.block(0)?;
        let mut chain = Chain {
            db: Some(db),
            state,
            path: path.clone(),
            params: genesis.params.clone(),
        };
        match first {
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

    /// The database, taken out of the chain for one write; reopened first
    /// if a failed write closed it.
    fn take_db(&mut self) -> Result<LedgerDb, ChainError> {
        if let Some(db) = self.db.take() {
            return Ok(db);
        }
        let (db, stored) = LedgerDb::open(&self.path, &self.params)
            .map_err(|e| ChainError::Closed(Box::new(e)))?;
        // The memory was put back to the last block written, so the
        // reopened database must agree with it.
        if stored.tip() != self.state.tip() {
            tracing::warn!(
                memory = ?self.state.tip().map(|t| t.height),
                disk = ?stored.tip().map(|t| t.height),
                "ledger reopened at another tip than memory; following the disk"
            );
            self.state = stored;
        }
        tracing::info!(path = %self.path.display(), "ledger database reopened");
        Ok(db)
    }

    /// Applies a block with `step` and writes it; if the write fails the
    /// state is put back as it was and the database closed (reopened by the
    /// next step), so memory never runs ahead of the disk. A step that makes
    /// no block (`None`) leaves the state as it was.
    fn durably<T>(
        &mut self,
        step: impl FnOnce(&mut State) -> Result<(T, Option<Block>), ChainError>,
    ) -> Result<(T, Option<Block>), ChainError> {
        // A block is never built on a closed database.
        let mut db = self.take_db()?;
        let mark = self.state.checkpoint();
        let (out, block) = match step(&mut self.state) {
            Ok((out, Some(block))) => (out, block),
            Ok((out, None)) => {
                self.state.restore(mark);
                self.db = Some(db);
                return Ok((out, None));
            }
            Err(e) => {
                self.state.restore(mark);
                self.db = Some(db);
                return Err(e);
            }
        };
        match db.commit_block(&block, &mut self.state) {
            Ok(()) => {
                self.state.release(mark);
                self.db = Some(db);
                Ok((out, Some(block)))
            }
            Err(e) => {
                self.state.restore(mark);
                // redb refuses further writes after a failed commit until
                // the file is reopened: close it now, reopen on the next block.
                drop(db);
                tracing::error!(
                    height = block.height(),
                    %e,
                    "block not written; state put back to the last block on disk"
                );
                Err(e.into())
            }
        }
    }

    /// A follower's step: checks and applies `block`, then commits it durably.
    pub fn apply(&mut self, block: &Block) -> Result<Committed, ChainError> {
        let (events, _) = self.durably(|state| {
            let events = apply_block(state, block)?;
            Ok((events, Some(block.clone())))
        })?;
        Ok(Committed::new(block.clone(), events))
    }

    /// The validator's step: a block of those `candidates` that pass, committed
    /// durably, and the ones left out with why. When none passes no block is
    /// made (`None`): refused transactions never cost a block.
    pub fn propose(
        &mut self,
        candidates: Vec<Signed<Tx>>,
        time_ms: u64,
        validator: &Keypair,
    ) -> Result<(Option<Committed>, Refused), ChainError> {
        let tip = self.state.tip();
        let ctx = BlockContext {
            height: self.state.next_height(),
            time_ms: tip.map_or(0, |t| t.time_ms).max(time_ms),
            seed: tip.map_or(Hash32::ZERO, |t| t.hash),
        };
        let ((events, rejected), block) = self.durably(|state| {
            let built = build_block(state, candidates, &ctx, validator)?;
            let block = (!built.block.txs.is_empty()).then_some(built.block);
            Ok(((built.events, built.rejected), block))
        })?;
        Ok((block.map(|block| Committed::new(block, events)), rejected))
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
        let Some(db) = self.db.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for height in from..from.saturating_add(u64::from(max)) {
            let Some(block) = db.block(height)? else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::{GenesisConfig, TxKind};
    use peercloud_types::Amount;
    use std::io::Write;

    /// A small tmpfs, unmounted on drop: a disk that really fills up.
    struct SmallDisk(tempfile::TempDir);

    impl SmallDisk {
        fn mount(bytes: u64) -> Option<SmallDisk> {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .ok()?;
            status.success().then_some(SmallDisk(dir))
        }

        /// Grows a filler file until the disk is full.
        fn fill(&self) -> PathBuf {
            let path = self.0.path().join("filler");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let block = vec![7u8; 64 * 1024];
            while file.write_all(&block).is_ok() {}
            // The last partial write may have left a few bytes free.
            while file.write_all(&[7]).is_ok() {}
            path
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    fn transfer(chain: &Chain, from: &Keypair, to: &Keypair) -> Signed<Tx> {
        let state = chain.state();
        Signed::new(
            Tx {
                chain: state.chain_id(),
                nonce: state.next_nonce(&from.public()),
                fee: state.params().min_fee,
                kind: TxKind::Transfer {
                    to: to.account_id(),
                    amount: Amount::from_tokens(1),
                },
            },
            from,
        )
    }

    #[test]
    fn a_block_the_full_disk_refuses_is_undone_and_blocks_resume_when_space_returns() {
        // Mounting needs root (CI runs as root); elsewhere say so and stop.
        let Some(disk) = SmallDisk::mount(8 << 20) else {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return;
        };
        let dir = disk.0.path().join("node");
        std::fs::create_dir_all(&dir).unwrap();
        let validator = Keypair::generate();
        let alice = Keypair::generate();
        let bob = Keypair::generate();
        let config = GenesisConfig {
            params: Params {
                genesis_authority: validator.account_id(),
                validator: validator.public(),
                treasury: validator.account_id(),
                min_fee: Amount::from_base_units(Amount::from_tokens(1).base_units() / 10_000),
                stake_min_to_serve: Amount::from_tokens(10),
                slash_bps: 1_000,
            },
            allocations: vec![(alice.account_id(), Amount::from_tokens(1_000_000))],
            time_ms: 1_000,
        };
        let genesis = Genesis::create(&config, &validator).unwrap();
        let mut chain = Chain::open(&dir, &genesis).unwrap();
        let tx = transfer(&chain, &alice, &bob);
        let (committed, _) = chain.propose(vec![tx], 2_000, &validator).unwrap();
        assert!(committed.is_some());
        // A candidate that cannot pass makes no block.
        let replay = transfer(&chain, &alice, &bob);
        let stale = Signed::new(
            Tx {
                nonce: 1,
                ..replay.body.clone()
            },
            &alice,
        );
        let (none, refused) = chain.propose(vec![stale], 2_500, &validator).unwrap();
        assert!(none.is_none() && refused.len() == 1);
        assert_eq!(chain.next_height(), 2);

        let filler = disk.fill();
        // Free pages inside the database file may take a few blocks; the
        // disk refuses one soon after.
        let mut time = 3_000;
        let refused = loop {
            let height = chain.next_height();
            let root = chain.state().state_root();
            let balance = chain.state().balance(&bob.account_id());
            let tx = transfer(&chain, &alice, &bob);
            time += 1_000;
            match chain.propose(vec![tx], time, &validator) {
                Ok(_) => assert!(height < 1_000, "the full disk never refused a block"),
                Err(e) => break (height, root, balance, e),
            }
        };
        let (height, root, balance, error) = refused;
        assert!(matches!(error, ChainError::Db(_)), "{error}");
        assert_eq!(chain.next_height(), height, "memory ran ahead of the disk");
        assert_eq!(chain.state().state_root(), root);
        assert_eq!(
            chain.state().state_root(),
            chain.state().root_from_scratch()
        );
        assert_eq!(chain.state().balance(&bob.account_id()), balance);

        // Space returns: the next block is the one that was refused.
        std::fs::remove_file(&filler).unwrap();
        let tx = transfer(&chain, &alice, &bob);
        let (committed, rejected) = chain.propose(vec![tx], time + 2, &validator).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(committed.expect("a block").block.height(), height);
        let root = chain.state().state_root();
        let balance = chain.state().balance(&bob.account_id());
        drop(chain);

        // The disk agrees with memory.
        let reopened = Chain::open(&dir, &genesis).unwrap();
        assert_eq!(reopened.next_height(), height + 1);
        assert_eq!(reopened.state().state_root(), root);
        assert_eq!(reopened.state().balance(&bob.account_id()), balance);
    }
}

//! The ledger on disk, in redb: the block log, the state entries and the tip.
//!
//! Tables:
//! - `blocks`: height → `[BLAKE3 of the block bytes: 32][encoded Block]`;
//! - `state_entries`: `[table tag][key bytes]` → encoded record;
//! - `meta`: `tip_height`, `tip_hash`, `params_digest`, `format`.
//!
//! [`LedgerDb::commit_block`] writes one block and only the state entries it
//! changed in ONE write transaction with immediate durability (fsync): a block
//! is on disk whole or not at all. [`LedgerDb::open`] resumes at the last
//! committed block and refuses to run on anything it cannot vouch for: a bad
//! checksum, a missing block, a broken parent link, a state whose root is not
//! the tip header's root, or corruption redb reports — each a typed error
//! naming the height.

use std::path::{Path, PathBuf};

use peercloud_types::{AccountId, Amount, DecodeError, Hash32, JobId, NodeId, decode, encode};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::block::{Block, BlockError, apply_block};
use crate::params::Params;
use crate::records::{Account, JobRecord, NodeRecord};
use crate::state::{
    EntryError, State, TAG_ACCOUNTS, TAG_JOBS, TAG_NODES, Tip, decode_value, entry_key,
};

const BLOCKS: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("blocks");
const ENTRIES: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("state_entries");
const META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("meta");

const META_TIP_HEIGHT: &str = "tip_height";
const META_TIP_HASH: &str = "tip_hash";
const META_PARAMS_DIGEST: &str = "params_digest";
const META_FORMAT: &str = "format";
/// On-disk layout version; bump with a migration when the tables or the
/// records in them change. 2: job records are version 2 (awards record
/// withdrawals), and the state root hashes them, so a version-1 chain cannot
/// be continued: it is refused with [`DbError::UnsupportedFormat`]. 3: the
/// state root covers the clusters and buckets tables. 4: a bill's usage is
/// optional (blocks hold transactions in their new encoding). 5: cluster
/// records are version 2 (they keep the failed-audit tally, which the state
/// root hashes), so a version-4 chain's cluster entries no longer decode.
/// 7: the state root covers the leases table. 8: node records are version
/// 2 (they keep the reputation tally).
const FORMAT_VERSION: u8 = 8;
/// Bytes of the checksum in front of each stored block.
const CHECKSUM_BYTES: usize = 32;

/// A stored state entry: `(key bytes, value bytes)`.
type StoredEntry = (Vec<u8>, Vec<u8>);

/// What went wrong with the ledger on disk.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed (I/O, lock held by another process, ...).
    #[error("ledger database at {path}: {during} failed: {source}")]
    Storage {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        during: &'static str,
        /// redb's error (boxed: keeps `Result<_, DbError>` small).
        source: Box<redb::Error>,
    },
    /// redb reports its own structures corrupted.
    #[error("ledger database at {path} is corrupted{}: {reason}", height.map(|h| format!(" at block {h}")).unwrap_or_default())]
    Corrupted {
        /// The database file.
        path: PathBuf,
        /// The block being read, when known.
        height: Option<u64>,
        /// What redb said.
        reason: String,
    },
    /// A stored block's bytes do not match their checksum.
    #[error("stored block {height} fails its checksum: the block log is corrupted")]
    BlockChecksum {
        /// The block's height.
        height: u64,
    },
    /// A stored block's bytes do not decode.
    #[error("stored block {height} does not decode: {source}")]
    BlockUndecodable {
        /// The block's height.
        height: u64,
        /// What the decoder said.
        source: DecodeError,
    },
    /// A block the log should hold is absent.
    #[error("block {height} is missing from the block log")]
    MissingBlock {
        /// The missing height.
        height: u64,
    },
    /// A block beyond the recorded tip.
    #[error("block {height} is stored beyond the recorded tip {tip:?}")]
    BeyondTip {
        /// The stray block's height.
        height: u64,
        /// The recorded tip height.
        tip: Option<u64>,
    },
    /// A stored block is not where the log says it is.
    #[error("stored block under height {height} says it is block {found}")]
    HeightMismatch {
        /// The key it is stored under.
        height: u64,
        /// The height in its header.
        found: u64,
    },
    /// The tip block's hash is not the recorded tip hash.
    #[error("block {height}'s hash is not the recorded tip hash")]
    TipHashMismatch {
        /// The tip height.
        height: u64,
    },
    /// A block does not name the block before it as its parent.
    #[error("block {height} does not name block {} as its parent", height.saturating_sub(1))]
    BrokenParentLink {
        /// The child's height.
        height: u64,
    },
    /// The stored state's root is not the one the tip header commits to.
    #[error("stored state at block {height} has root {computed:?}, the header says {expected:?}")]
    StateRootMismatch {
        /// The tip height.
        height: u64,
        /// The header's root.
        expected: Hash32,
        /// The stored state's root.
        computed: Hash32,
    },
    /// A stored state entry cannot be read.
    #[error("stored state at block {height:?} has a bad entry: {source}")]
    BadEntry {
        /// The tip height.
        height: Option<u64>,
        /// What is wrong.
        source: EntryError,
    },
    /// A meta record is malformed.
    #[error("meta record {key:?} is malformed")]
    BadMeta {
        /// Its key.
        key: &'static str,
    },
    /// The database belongs to a chain with other params.
    #[error("the ledger database was created with params {stored:?}, these are {given:?}")]
    ParamsMismatch {
        /// Digest stored.
        stored: Hash32,
        /// Digest of the params given.
        given: Hash32,
    },
    /// The database was written by a newer layout.
    #[error("the ledger database has layout version {found}, this build reads {supported}")]
    UnsupportedFormat {
        /// Found.
        found: u8,
        /// Supported.
        supported: u8,
    },
    /// The block to commit is not the next one on disk.
    #[error("cannot commit block {got}: the next block on disk is {expected}")]
    NotNextBlock {
        /// The next height on disk.
        expected: u64,
        /// The block's height.
        got: u64,
    },
    /// The state given to commit is not the state right after the block.
    #[error("cannot commit block {height}: the state's tip is not this block")]
    StateNotAtBlock {
        /// The block's height.
        height: u64,
    },
    /// Replaying the log from genesis failed.
    #[error("replaying block {height} from genesis failed: {source}")]
    Replay {
        /// The block's height.
        height: u64,
        /// Why (boxed: keeps `Result<_, DbError>` small).
        source: Box<BlockError>,
    },
    /// Replay reached another root than the stored state's.
    #[error(
        "replay from genesis reached root {replayed:?} at block {height}, the stored state has {stored:?}"
    )]
    ReplayRootMismatch {
        /// The tip height.
        height: u64,
        /// The replayed root.
        replayed: Hash32,
        /// The stored root.
        stored: Hash32,
    },
}

/// The tip as recorded on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTip {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash32,
}

/// The ledger's redb database.
#[derive(Debug)]
pub struct LedgerDb {
    db: Database,
    path: PathBuf,
    params: Params,
}

impl LedgerDb {
    /// Opens (or creates) the database at `path` for a chain with `params`,
    /// checks its tail and returns it with the state at its last committed
    /// block (an empty state if nothing was committed yet).
    pub fn open(path: &Path, params: &Params) -> Result<(LedgerDb, State), DbError> {
        let path = path.to_path_buf();
        let db = Database::create(&path).map_err(|e| storage(&path, "opening", None, e))?;
        let ledger = LedgerDb {
            db,
            path,
            params: params.clone(),
        };
        ledger.initialise()?;
        let state = ledger.load_state()?;
        Ok((ledger, state))
    }

    /// The chain's params this database was opened with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err<E: Into<redb::Error>>(
        &self,
        during: &'static str,
        height: Option<u64>,
    ) -> impl FnOnce(E) -> DbError + '_ {
        move |e| storage(&self.path, during, height, e)
    }

    /// Creates the tables and records format and params on first open;
    /// checks them on later opens.
    fn initialise(&self) -> Result<(), DbError> {
        let given = self.params.digest();
        let txn = self
            .db
            .begin_write()
            .map_err(self.err("beginning a write", None))?;
        {
            txn.open_table(BLOCKS)
                .map_err(self.err("creating the block table", None))?;
            txn.open_table(ENTRIES)
                .map_err(self.err("creating the state table", None))?;
            let mut meta = txn
                .open_table(META)
                .map_err(self.err("creating the meta table", None))?;
            let format = meta
                .get(META_FORMAT)
                .map_err(self.err("reading meta", None))?
                .map(|v| v.value().to_vec());
            match format.as_deref() {
                None => {
                    meta.insert(META_FORMAT, [FORMAT_VERSION].as_slice())
                        .map_err(self.err("writing meta", None))?;
                    meta.insert(META_PARAMS_DIGEST, given.as_bytes().as_slice())
                        .map_err(self.err("writing meta", None))?;
                }
                Some([FORMAT_VERSION]) => {}
                Some([found]) => {
                    return Err(DbError::UnsupportedFormat {
                        found: *found,
                        supported: FORMAT_VERSION,
                    });
                }
                Some(_) => return Err(DbError::BadMeta { key: META_FORMAT }),
            }
            let stored = meta
                .get(META_PARAMS_DIGEST)
                .map_err(self.err("reading meta", None))?
                .map(|v| hash_from(v.value()))
                .ok_or(DbError::BadMeta {
                    key: META_PARAMS_DIGEST,
                })?
                .ok_or(DbError::BadMeta {
                    key: META_PARAMS_DIGEST,
                })?;
            if stored != given {
                return Err(DbError::ParamsMismatch { stored, given });
            }
        }
        txn.commit()
            .map_err(self.err("committing the tables", None))
    }

    /// The tip recorded on disk, if any block was committed.
    pub fn tip(&self) -> Result<Option<StoredTip>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(self.err("beginning a read", None))?;
        let meta = txn
            .open_table(META)
            .map_err(self.err("opening meta", None))?;
        let height = meta
            .get(META_TIP_HEIGHT)
            .map_err(self.err("reading meta", None))?;
        let Some(height) = height else {
            return Ok(None);
        };
        let height =
            u64::from_le_bytes(height.value().try_into().map_err(|_| DbError::BadMeta {
                key: META_TIP_HEIGHT,
            })?);
        let hash = meta
            .get(META_TIP_HASH)
            .map_err(self.err("reading meta", Some(height)))?
            .and_then(|v| hash_from(v.value()))
            .ok_or(DbError::BadMeta { key: META_TIP_HASH })?;
        Ok(Some(StoredTip { height, hash }))
    }

    /// The block at `height`, checksum-checked; `None` if beyond the log.
    pub fn block(&self, height: u64) -> Result<Option<Block>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(self.err("beginning a read", Some(height)))?;
        let blocks = txn
            .open_table(BLOCKS)
            .map_err(self.err("opening the block table", Some(height)))?;
        let Some(stored) = blocks
            .get(height)
            .map_err(self.err("reading a block", Some(height)))?
        else {
            return Ok(None);
        };
        decode_stored_block(height, stored.value()).map(Some)
    }

    fn load_state(&self) -> Result<State, DbError> {
        let stored_tip = self.tip()?;
        let last_stored = {
            let txn = self
                .db
                .begin_read()
                .map_err(self.err("beginning a read", None))?;
            let blocks = txn
                .open_table(BLOCKS)
                .map_err(self.err("opening the block table", None))?;
            blocks
                .last()
                .map_err(self.err("reading the last block", None))?
                .map(|(k, _)| k.value())
        };
        let Some(stored_tip) = stored_tip else {
            if let Some(height) = last_stored {
                return Err(DbError::BeyondTip { height, tip: None });
            }
            return State::new(self.params.clone()).map_err(|e| DbError::BadEntry {
                height: None,
                source: e.into(),
            });
        };
        let height = stored_tip.height;
        if let Some(last) = last_stored
            && last > height
        {
            return Err(DbError::BeyondTip {
                height: last,
                tip: Some(height),
            });
        }
        let tip_block = self
            .block(height)?
            .ok_or(DbError::MissingBlock { height })?;
        if tip_block.hash() != stored_tip.hash {
            return Err(DbError::TipHashMismatch { height });
        }
        if height > 0 {
            let parent_height = height - 1;
            let parent = self.block(parent_height)?.ok_or(DbError::MissingBlock {
                height: parent_height,
            })?;
            if tip_block.header.body.parent != parent.hash() {
                return Err(DbError::BrokenParentLink { height });
            }
        }
        let header = &tip_block.header.body;
        let tip = Tip {
            height,
            hash: stored_tip.hash,
            time_ms: header.time_ms,
            state_root: header.state_root,
        };
        let entries = self.read_entries(height)?;
        let state =
            State::from_entries(self.params.clone(), Some(tip), entries).map_err(|source| {
                DbError::BadEntry {
                    height: Some(height),
                    source,
                }
            })?;
        let computed = state.root_from_scratch();
        if computed != header.state_root {
            return Err(DbError::StateRootMismatch {
                height,
                expected: header.state_root,
                computed,
            });
        }
        Ok(state)
    }

    fn read_entries(&self, height: u64) -> Result<Vec<StoredEntry>, DbError> {
        let at = Some(height);
        let txn = self
            .db
            .begin_read()
            .map_err(self.err("beginning a read", at))?;
        let table = txn
            .open_table(ENTRIES)
            .map_err(self.err("opening the state table", at))?;
        let mut entries = Vec::new();
        for row in table.iter().map_err(self.err("reading the state", at))? {
            let (key, value) = row.map_err(self.err("reading the state", at))?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// Writes `block` and the state entries it changed in one fsync'd write
    /// transaction. `state` must be the state right after `block` (its tip is
    /// the block); on success its changes are marked persisted.
    pub fn commit_block(&mut self, block: &Block, state: &mut State) -> Result<(), DbError> {
        let height = block.height();
        let expected = self.tip()?.map_or(0, |tip| tip.height + 1);
        if height != expected {
            return Err(DbError::NotNextBlock {
                expected,
                got: height,
            });
        }
        let hash = block.hash();
        if state.tip().map(|tip| tip.hash) != Some(hash) {
            return Err(DbError::StateNotAtBlock { height });
        }
        let at = Some(height);
        let bytes = encode(block);
        let mut stored = Vec::with_capacity(CHECKSUM_BYTES + bytes.len());
        stored.extend_from_slice(Hash32::of(&bytes).as_bytes());
        stored.extend_from_slice(&bytes);
        let mut txn = self
            .db
            .begin_write()
            .map_err(self.err("beginning a write", at))?;
        txn.set_durability(Durability::Immediate)
            .map_err(self.err("setting durability", at))?;
        {
            let mut blocks = txn
                .open_table(BLOCKS)
                .map_err(self.err("opening the block table", at))?;
            blocks
                .insert(height, stored.as_slice())
                .map_err(self.err("writing a block", at))?;
            let mut entries = txn
                .open_table(ENTRIES)
                .map_err(self.err("opening the state table", at))?;
            for (key, value) in state.unpersisted_entries() {
                match value {
                    Some(value) => {
                        entries
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(self.err("writing the state", at))?;
                    }
                    None => {
                        entries
                            .remove(key.as_slice())
                            .map_err(self.err("writing the state", at))?;
                    }
                }
            }
            let mut meta = txn.open_table(META).map_err(self.err("opening meta", at))?;
            meta.insert(META_TIP_HEIGHT, height.to_le_bytes().as_slice())
                .map_err(self.err("writing meta", at))?;
            meta.insert(META_TIP_HASH, hash.as_bytes().as_slice())
                .map_err(self.err("writing meta", at))?;
        }
        txn.commit().map_err(self.err("committing a block", at))?;
        state.mark_persisted();
        tracing::debug!(height, txs = block.txs.len(), "committed block");
        Ok(())
    }

    /// Re-applies the whole block log to a fresh state and checks it reaches
    /// the stored state's root. Returns the replayed state.
    pub fn replay_from_genesis(&self) -> Result<State, DbError> {
        let mut state = State::new(self.params.clone()).map_err(|e| DbError::BadEntry {
            height: None,
            source: e.into(),
        })?;
        let Some(tip) = self.tip()? else {
            return Ok(state);
        };
        for height in 0..=tip.height {
            let block = self
                .block(height)?
                .ok_or(DbError::MissingBlock { height })?;
            if block.height() != height {
                return Err(DbError::HeightMismatch {
                    height,
                    found: block.height(),
                });
            }
            apply_block(&mut state, &block).map_err(|source| DbError::Replay {
                height,
                source: Box::new(source),
            })?;
        }
        let stored = self.load_state()?.root_from_scratch();
        let replayed = state.state_root();
        if replayed != stored {
            return Err(DbError::ReplayRootMismatch {
                height: tip.height,
                replayed,
                stored,
            });
        }
        Ok(state)
    }

    fn read_entry(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(self.err("beginning a read", None))?;
        let table = txn
            .open_table(ENTRIES)
            .map_err(self.err("opening the state table", None))?;
        let value = table
            .get(key)
            .map_err(self.err("reading the state", None))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// An account's committed record.
    pub fn account(&self, id: &AccountId) -> Result<Option<Account>, DbError> {
        self.read_entry(&entry_key(TAG_ACCOUNTS, id))?
            .map(|bytes| decode_value(TAG_ACCOUNTS, &bytes))
            .transpose()
            .map_err(|source| DbError::BadEntry {
                height: None,
                source,
            })
    }

    /// An account's committed balance (zero if unknown).
    pub fn balance(&self, id: &AccountId) -> Result<Amount, DbError> {
        Ok(self.account(id)?.map_or(Amount::ZERO, |a| a.balance))
    }

    /// A node's committed record.
    pub fn node(&self, id: &NodeId) -> Result<Option<NodeRecord>, DbError> {
        self.read_entry(&entry_key(TAG_NODES, id))?
            .map(|bytes| decode_value(TAG_NODES, &bytes))
            .transpose()
            .map_err(|source| DbError::BadEntry {
                height: None,
                source,
            })
    }

    /// A job's committed record.
    pub fn job(&self, id: &JobId) -> Result<Option<JobRecord>, DbError> {
        self.read_entry(&entry_key(TAG_JOBS, id))?
            .map(|bytes| decode_value(TAG_JOBS, &bytes))
            .transpose()
            .map_err(|source| DbError::BadEntry {
                height: None,
                source,
            })
    }
}

fn hash_from(bytes: &[u8]) -> Option<Hash32> {
    bytes.try_into().ok().map(Hash32)
}

fn decode_stored_block(height: u64, stored: &[u8]) -> Result<Block, DbError> {
    let Some((checksum, bytes)) = stored.split_at_checked(CHECKSUM_BYTES) else {
        return Err(DbError::BlockChecksum { height });
    };
    if Hash32::of(bytes).as_bytes() != checksum {
        return Err(DbError::BlockChecksum { height });
    }
    decode(bytes).map_err(|source| DbError::BlockUndecodable { height, source })
}

fn storage<E: Into<redb::Error>>(
    path: &Path,
    during: &'static str,
    height: Option<u64>,
    error: E,
) -> DbError {
    match error.into() {
        redb::Error::Corrupted(reason) => DbError::Corrupted {
            path: path.to_path_buf(),
            height,
            reason,
        },
        source => DbError::Storage {
            path: path.to_path_buf(),
            during,
            source: Box::new(source),
        },
    }
}

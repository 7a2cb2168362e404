//! An in-process grid: one validator, a few providers and their stores, run
//! by one process on this machine. It wires the real parts together — signed
//! transactions in fsync'd blocks, encrypted chunks placed on three nodes,
//! offers priced by the market, modules in the sandbox — so the whole
//! run-once flow can be watched without starting a network. `peercloud demo`
//! drives it; the multi-process daemon runs the same flow over libp2p.
//!
//! ```text
//!   user ──tx──► Sequencer (build_block → LedgerDb::commit_block)
//!     │                 ▲ SubmitResult / Settle
//!     ├─put_object──► ReplicatedStore ──placement──► provider stores (3 copies)
//!     └─ask──► providers: evaluate → Signed<Offer> ──► select(k) ──► AwardJob
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use peercloud_compute::{ComputeError, Executor, ExecutorConfig};
use peercloud_ledger::{
    BlockContext, BlockError, DbError, Event, GenesisConfig, LedgerDb, Params, State, Tx, TxError,
    TxKind, build_block, registration_proof,
};
use peercloud_market::PricePolicy;
use peercloud_store::{FsChunkStore, PlacementNode, REPLICAS_DEFAULT, StoreError};
use peercloud_types::{AccountId, Amount, Hash32, Keypair, PriceSheet, Resources, Signed};

use crate::replicated::{Replica, ReplicatedStore};

/// Tokens the demo user starts with.
pub const USER_TOKENS: u64 = 1_000;
/// Tokens each farmer starts with.
pub const FARMER_TOKENS: u64 = 100;
/// Tokens each farmer stakes behind its node (must cover `stake_min_to_serve`).
pub const FARMER_STAKE_TOKENS: u64 = 50;
/// The flat fee of every transaction: 0.0001 PCL.
pub const TX_FEE: Amount = Amount::from_base_units(100_000);
/// Countries the demo's providers sit in, in turn.
pub(crate) const LOCATIONS: [&str; 5] = ["DE", "FR", "NL", "SE", "PT"];

/// One provider: a farmer account, its node key, its store and its prices.
#[derive(Debug)]
pub struct Provider {
    /// The farmer (owner) account key.
    pub owner: Keypair,
    /// The node's own key (its network id; signs offers and results).
    pub node: Keypair,
    /// Where the node is.
    pub location: String,
    /// What it has free.
    pub free: Resources,
    /// Its price policy.
    pub policy: PricePolicy,
    /// Its chunk store.
    pub store: Arc<FsChunkStore>,
    /// Its working directory for job inputs and outputs.
    pub work_dir: PathBuf,
    /// Load in basis points: rises by [`LOAD_PER_AWARD_BPS`] with each job
    /// awarded and decays by [`LOAD_DECAY_BPS`] per job posted to the grid, so
    /// a busy node's surge pricing hands the next job to a quieter one.
    pub load_bps: u32,
}

/// Load one awarded job adds to a provider.
pub const LOAD_PER_AWARD_BPS: u32 = 3_000;
/// Load every provider sheds each time a job is posted.
pub const LOAD_DECAY_BPS: u32 = 1_000;

/// A grid could not start or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The ledger database failed.
    #[error("ledger database: {0}")]
    Db(Box<DbError>),
    /// A block could not be built.
    #[error("block: {0}")]
    Block(Box<BlockError>),
    /// A transaction was refused.
    #[error("transaction {what} refused: {source}")]
    Tx {
        /// What the transaction was for.
        what: String,
        /// Why.
        source: Box<TxError>,
    },
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The sandbox failed to start.
    #[error("sandbox: {0}")]
    Compute(#[from] ComputeError),
    /// Files in the grid's directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<DbError> for GridError {
    fn from(e: DbError) -> Self {
        GridError::Db(Box::new(e))
    }
}

impl From<BlockError> for GridError {
    fn from(e: BlockError) -> Self {
        GridError::Block(Box::new(e))
    }
}

/// The in-process grid.
#[derive(Debug)]
pub struct LocalGrid {
    validator: Keypair,
    ledger: LedgerDb,
    state: State,
    pending: Vec<(String, Signed<Tx>)>,
    /// The providers, in registration order.
    pub providers: Vec<Provider>,
    /// The demo user.
    pub user: Keypair,
    /// The treasury account (fees, slashes).
    pub treasury: AccountId,
    /// The sandbox every provider runs jobs in (one machine, one engine).
    pub executor: Arc<Executor>,
    store: ReplicatedStore,
}

/// Wall-clock time in ms since the Unix epoch: the proposer's input to the ledger.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GridError + '_ {
    move |source| GridError::Io {
        path: path.to_owned(),
        source,
    }
}

impl LocalGrid {
    /// Starts a grid of `provider_count` providers in `dir`: genesis mints the
    /// user's and farmers' tokens, and the genesis block registers and stakes
    /// every node.
    pub fn start(dir: &Path, provider_count: usize) -> Result<LocalGrid, GridError> {
        let validator = Keypair::generate();
        let treasury = Keypair::generate().account_id();
        let user = Keypair::generate();
        let mut providers = Vec::with_capacity(provider_count);
        for i in 0..provider_count {
            let work_dir = dir.join(format!("provider-{i}"));
            std::fs::create_dir_all(&work_dir).map_err(io(&work_dir))?;
            let store = Arc::new(FsChunkStore::open(work_dir.join("chunks"))?);
            let price_step = Amount::from_base_units(100_000 * (i as u128 + 1));
            providers.push(Provider {
                owner: Keypair::generate(),
                node: Keypair::generate(),
                location: LOCATIONS[i % LOCATIONS.len()].to_owned(),
                free: Resources {
                    cpu_millicores: 2_000,
                    memory_bytes: 4 << 30,
                    storage_bytes: 100 << 30,
                    bandwidth_bytes_per_sec: 100 << 20,
                    gpus: 0,
                },
                policy: PricePolicy::new(PriceSheet {
                    job_base: price_step,
                    gigafuel: Amount::from_base_units(1_000_000),
                    ..PriceSheet::default()
                }),
                store,
                work_dir,
                load_bps: 0,
            });
        }
        let params = Params {
            genesis_authority: validator.account_id(),
            validator: validator.public(),
            treasury,
            min_fee: TX_FEE,
            stake_min_to_serve: Amount::from_tokens(10),
            slash_bps: 1_000,
        };
        let mut allocations = vec![(user.account_id(), Amount::from_tokens(USER_TOKENS))];
        allocations.extend(
            providers
                .iter()
                .map(|p| (p.owner.account_id(), Amount::from_tokens(FARMER_TOKENS))),
        );
        let genesis = GenesisConfig {
            params: params.clone(),
            allocations,
            time_ms: now_ms(),
        };
        let mut extra = Vec::new();
        for p in &providers {
            let register = TxKind::RegisterNode {
                node: p.node.node_id(),
                proof: registration_proof(&p.node, &p.owner.account_id()),
                resources: p.free,
                location: p.location.clone(),
                prices: p.policy.sheet,
            };
            extra.push(Signed::new(
                Tx {
                    nonce: 1,
                    fee: TX_FEE,
                    kind: register,
                },
                &p.owner,
            ));
            let stake = TxKind::Stake {
                amount: Amount::from_tokens(FARMER_STAKE_TOKENS),
            };
            extra.push(Signed::new(
                Tx {
                    nonce: 2,
                    fee: TX_FEE,
                    kind: stake,
                },
                &p.owner,
            ));
        }
        let ledger_path = dir.join("ledger.redb");
        let (mut ledger, _) = LedgerDb::open(&ledger_path, &params)?;
        let (mut state, built) = genesis.build(&validator, &validator, extra)?;
        if let Some((tx, source)) = built.rejected.into_iter().next() {
            return Err(GridError::Tx {
                what: format!("genesis {:?}", tx.body.kind),
                source: Box::new(source),
            });
        }
        ledger.commit_block(&built.block, &mut state)?;
        let replicas = providers
            .iter()
            .map(|p| Replica {
                placement: PlacementNode {
                    node: p.node.node_id(),
                    owner: p.owner.account_id(),
                },
                store: p.store.clone(),
            })
            .collect();
        let executor = Arc::new(Executor::new(ExecutorConfig::default())?);
        Ok(LocalGrid {
            validator,
            ledger,
            state,
            pending: Vec::new(),
            providers,
            user,
            treasury,
            executor,
            store: ReplicatedStore::new(replicas, REPLICAS_DEFAULT as usize),
        })
    }

    /// The ledger state at the last committed block.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The provider running `node`.
    ///
    /// # Panics
    /// Only if `node` is not one of this grid's providers; callers pass ids
    /// that came from the providers list.
    pub fn provider(&self, node: &peercloud_types::NodeId) -> &Provider {
        #[allow(clippy::expect_used)]
        self.providers
            .iter()
            .find(|p| p.node.node_id() == *node)
            .expect("node is one of the grid's providers")
    }

    /// The replicated store over every provider.
    pub fn store(&self) -> &ReplicatedStore {
        &self.store
    }

    /// Signs `kind` with `key` at its next nonce and queues it for the next block.
    pub fn submit(&mut self, what: impl Into<String>, key: &Keypair, kind: TxKind) {
        let signer = key.public();
        let queued = self
            .pending
            .iter()
            .filter(|(_, t)| t.signer == signer)
            .count() as u64;
        let nonce = self.state.next_nonce(&signer) + queued;
        self.pending.push((
            what.into(),
            Signed::new(
                Tx {
                    nonce,
                    fee: TX_FEE,
                    kind,
                },
                key,
            ),
        ));
    }

    /// Builds a block of the queued transactions, commits it (fsync) and returns
    /// its events. Any refused transaction is an error: in this grid every
    /// transaction is expected to pass.
    pub fn seal_block(&mut self) -> Result<Vec<Event>, GridError> {
        let (whats, txs): (Vec<String>, Vec<Signed<Tx>>) =
            std::mem::take(&mut self.pending).into_iter().unzip();
        let height = self.state.next_height();
        let time_ms = self.state.tip().map_or(0, |t| t.time_ms).max(now_ms());
        let seed = self.state.tip().map_or(Hash32::ZERO, |t| t.hash);
        let ctx = BlockContext {
            height,
            time_ms,
            seed,
        };
        let built = build_block(&mut self.state, txs.clone(), &ctx, &self.validator)?;
        if let Some((tx, source)) = built.rejected.into_iter().next() {
            let at = txs.iter().position(|t| *t == tx).unwrap_or(0);
            let what = whats.get(at).cloned().unwrap_or_default();
            // The refused tx is out of the block; the block itself is valid.
            self.ledger.commit_block(&built.block, &mut self.state)?;
            return Err(GridError::Tx {
                what,
                source: Box::new(source),
            });
        }
        self.ledger.commit_block(&built.block, &mut self.state)?;
        Ok(built.events)
    }

    /// Every account the demo knows, with a label: user, farmers, treasury.
    pub fn accounts(&self) -> Vec<(String, AccountId)> {
        let mut out = vec![("user".to_owned(), self.user.account_id())];
        for (i, p) in self.providers.iter().enumerate() {
            out.push((format!("farmer-{i} ({})", p.location), p.owner.account_id()));
        }
        out.push(("treasury".to_owned(), self.treasury));
        out
    }

    /// Balance and stake of `account` at the last block.
    pub fn holdings(&self, account: &AccountId) -> (Amount, Amount) {
        (self.state.balance(account), self.state.stake(account))
    }

    /// Replays the block log from genesis and checks it reaches the same root.
    pub fn verify_replay(&self) -> Result<Hash32, GridError> {
        let replayed = self.ledger.replay_from_genesis()?;
        Ok(replayed.state_root())
    }
}

//! A devnet in this process: the validator and the providers are the real
//! daemons ([`peercloud_node::daemon::Node`]) on one tokio runtime, speaking
//! libp2p to each other over loopback, each with its own ledger, chunk
//! store and sandbox in its own directory. A user's client reaches a node
//! through [`InProcessNode`], which implements the client's [`NodeApi`] by
//! calling the node's API service directly: the same user-side flow the CLI
//! drives over HTTP runs here, against the same provider, requester, market
//! and ledger code, without starting processes.
//!
//! ```text
//!   test ── client::run_job(&InProcessNode) ──► api::Service (node 1)
//!                                                  │ libp2p (loopback)
//!                      validator (node 0) ◄────────┴──────► providers 2..n
//! ```
//!
//! Like a devnet of processes, a grid comes with a storage cluster every
//! provider is an active member of ([`Grid::cluster`], set up by
//! [`crate::cluster`] once every provider is registered).

use std::path::{Path, PathBuf};
use std::time::Duration;

use peercloud_ledger::{ClusterId, ClusterTerms};
pub use peercloud_node::api::InProcessNode;
use peercloud_node::api::Service;
use peercloud_node::config::{NodeConfig, Settings};
use peercloud_node::daemon::{Node, StartError};
use peercloud_types::Keypair;

use crate::cluster::{self, ClusterError};
use crate::launch::{DevnetError, init, node_dir};

/// How long a provider may take to see its registration on the ledger.
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Worker threads of the grid's runtime: the daemons' tasks are I/O-bound;
/// their CPU work (sandbox runs, sealing, fsync) goes to blocking threads.
const RUNTIME_WORKERS: usize = 2;

/// The in-process grid could not start.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The devnet's files.
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    /// A node's settings.
    #[error(transparent)]
    Config(#[from] peercloud_node::config::ConfigError),
    /// A node did not start.
    #[error("node {index}: {source}")]
    Start {
        /// Its index (0 is the validator).
        index: usize,
        /// Why.
        source: Box<StartError>,
    },
    /// A provider's registration did not reach the ledger in time.
    #[error("node {index} was not registered on the ledger within {} s", REGISTRATION_TIMEOUT.as_secs())]
    NotRegistered {
        /// Its index.
        index: usize,
    },
    /// A node's ledger did not show every provider registered and staked in time.
    #[error(
        "node {index} saw {staked} of {providers} providers registered and staked within {} s",
        REGISTRATION_TIMEOUT.as_secs()
    )]
    NotAllStaked {
        /// Its index.
        index: usize,
        /// Providers it saw staked.
        staked: usize,
        /// Providers started.
        providers: usize,
    },
    /// The runtime did not start.
    #[error("the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The storage cluster could not be set up.
    #[error("the grid's storage cluster: {0}")]
    Cluster(#[from] ClusterError),
}

/// A validator and providers running in this process.
#[derive(Debug)]
pub struct Grid {
    runtime: tokio::runtime::Runtime,
    nodes: Vec<Node>,
    dir: PathBuf,
    user: Keypair,
    manager: Keypair,
    cluster: ClusterId,
}

impl Grid {
    /// Starts a grid of `providers` providers in `dir` whose genesis funds a
    /// fresh user wallet; returns once every provider is registered.
    pub fn start(dir: &Path, providers: usize) -> Result<Grid, GridError> {
        Grid::start_for(dir, providers, Keypair::generate())
    }

    /// [`Grid::start`] with the genesis funding `user`'s wallet.
    pub fn start_for(dir: &Path, providers: usize, user: Keypair) -> Result<Grid, GridError> {
        Grid::start_with(dir, providers, user, |_, _| {})
    }

    /// [`Grid::start_for`] with each node's settings changed by
    /// `adjust(index, settings)` before it starts (they beat its config
    /// file, as flags do): a small storage quota, say. Returns once every
    /// node knows every provider as registered and staked, so chunk
    /// placement is the same from every node, and shows the grid's storage
    /// cluster with every provider active.
    pub fn start_with(
        dir: &Path,
        providers: usize,
        user: Keypair,
        adjust: impl Fn(usize, &mut Settings),
    ) -> Result<Grid, GridError> {
        let terms = crate::amounts::cluster_terms(providers);
        Grid::start_with_terms(dir, providers, user, adjust, terms)
    }

    /// [`Grid::start_with`] whose storage cluster has `terms` (a billing
    /// period of seconds, say, to watch bills come).
    pub fn start_with_terms(
        dir: &Path,
        providers: usize,
        user: Keypair,
        adjust: impl Fn(usize, &mut Settings),
        terms: ClusterTerms,
    ) -> Result<Grid, GridError> {
        init(dir, providers, &user.account_id())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKERS)
            .enable_all()
            .build()
            .map_err(GridError::Runtime)?;
        let mut nodes = Vec::with_capacity(providers + 1);
        let settings = |index: usize, bootstrap: Vec<String>| {
            let mut given = Settings {
                bootstrap: (!bootstrap.is_empty()).then_some(bootstrap),
                ..Settings::default()
            };
            adjust(index, &mut given);
            given
        };
        let validator = runtime.block_on(start_node(dir, 0, settings(0, Vec::new())))?;
        let bootstrap: Vec<String> = validator
            .inner
            .net
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        nodes.push(validator);
        for index in 1..=providers {
            let given = settings(index, bootstrap.clone());
            nodes.push(runtime.block_on(start_node(dir, index, given))?);
        }
        for (index, node) in nodes.iter().enumerate() {
            if !runtime.block_on(node.wait_registered(REGISTRATION_TIMEOUT)) {
                return Err(GridError::NotRegistered { index });
            }
        }
        wait_all_staked(&nodes, providers)?;
        let mut grid = Grid {
            runtime,
            nodes,
            dir: dir.to_owned(),
            user,
            manager: cluster::manager_key(dir)?,
            // Set just below, before anyone sees the grid.
            cluster: ClusterId(peercloud_types::Hash32::ZERO),
        };
        grid.cluster = grid.set_up_cluster(providers, terms)?;
        Ok(grid)
    }

    /// Sets up the grid's storage cluster through the validator and waits
    /// until every node shows it whole; returns its id.
    fn set_up_cluster(
        &self,
        providers: usize,
        terms: ClusterTerms,
    ) -> Result<ClusterId, ClusterError> {
        let dirs: Vec<PathBuf> = (1..=providers).map(|i| node_dir(&self.dir, i)).collect();
        let farmers = cluster::farmers(&dirs)?;
        let nodes: Vec<InProcessNode> = (0..self.nodes.len())
            .filter_map(|index| self.node(index))
            .collect();
        // Through the validator (node 0, always started first): its answers
        // follow its own blocks.
        let view = cluster::ensure(&nodes[0], &self.manager, &farmers, terms)?;
        cluster::wait_seen(&nodes, &view.id, farmers.len())?;
        Ok(view.id)
    }

    /// The grid's storage cluster: every provider an active member.
    pub fn cluster(&self) -> ClusterId {
        self.cluster
    }

    /// The account that created the grid's cluster and is its sole manager.
    pub fn manager(&self) -> &Keypair {
        &self.manager
    }

    /// The wallet the genesis funded.
    pub fn user(&self) -> &Keypair {
        &self.user
    }

    /// The runtime the nodes run on (for a [`peercloud_node::daemon::NetStore`]).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// The grid's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many nodes run (the validator and the providers).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node runs (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Stops node `index`'s network, as if its process were killed: peers
    /// see its connections close and cannot reach it again, so it neither
    /// serves nor takes chunks. Its directory and store stay as they were.
    /// Returns whether there was such a node.
    pub fn stop(&self, index: usize) -> bool {
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        self.runtime.block_on(node.shutdown());
        true
    }

    /// Node `index` (0 is the validator) as a client reaches it.
    pub fn node(&self, index: usize) -> Option<InProcessNode> {
        let node = self.nodes.get(index)?;
        Some(InProcessNode::new(
            Service::new(node.inner.clone()),
            self.runtime.handle().clone(),
        ))
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        for node in self.nodes.iter().rev() {
            self.runtime.block_on(node.shutdown());
        }
    }
}

/// Waits (up to [`REGISTRATION_TIMEOUT`]) until every node's ledger has
/// `providers` nodes registered with their owners staked to serve: each
/// node sees only its own registration when it is ready, and chunk holders
/// judge a put by their own view of the ledger.
fn wait_all_staked(nodes: &[Node], providers: usize) -> Result<(), GridError> {
    let deadline = std::time::Instant::now() + REGISTRATION_TIMEOUT;
    for (index, node) in nodes.iter().enumerate() {
        loop {
            let staked = {
                let chain = node.inner.chain();
                let state = chain.state();
                let stake_min = state.params().stake_min_to_serve;
                state
                    .nodes()
                    .filter(|(_, record)| state.stake(&record.owner) >= stake_min)
                    .count()
            };
            if staked >= providers {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(GridError::NotAllStaked {
                    index,
                    staked,
                    providers,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

async fn start_node(dir: &Path, index: usize, given: Settings) -> Result<Node, GridError> {
    let data_dir = node_dir(dir, index);
    let config = NodeConfig::resolve(&data_dir, None, given)?;
    Node::start(config)
        .await
        .map_err(|source| GridError::Start {
            index,
            source: Box::new(source),
        })
}

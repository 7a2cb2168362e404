//! The node daemon: one process that joins the network, follows (or, on the
//! validator, makes) the chain, offers its capacity, runs awarded jobs,
//! stores chunks, and serves the HTTP API the CLI talks to.
//!
//! ```text
//!            NetEvent (bounded)                  ┌──────────► API (axum, loopback)
//!  swarm actor ──────────► event loop ──┬─ Tx gossip ─► mempool ─► validator loop ─► Block gossip
//!      ▲                                ├─ Block gossip / sync ─► Chain::apply ─► committed (broadcast)
//!      │ NetHandle                      ├─ CapacityRequest ─► provider: evaluate ─► Offer request
//!      └────────────────────────────────┼─ Offer request ─► requester's collector
//!                                       ├─ Chunk put/get/delete ─► FsChunkStore
//!                                       └─ Dispatch ─► provider: fetch, sandbox, store, SubmitResult
//! ```
//!
//! Everything shared lives in [`Inner`], behind an `Arc`; each piece of work
//! runs in its own task so a slow job never stalls block following.

mod answer;
mod billing;
mod chunks;
mod closer;
mod earnings;
mod gossip;
mod held;
mod index;
mod leases;
mod ledger;
mod provider;
mod repair;
mod requester;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use peercloud_api::ErrorCode;
use peercloud_compute::{ComputeError, Executor, ExecutorConfig};
use peercloud_net::{GossipTopic, NetConfig, NetEvent, NetHandle, Protocol, Verdict};
use peercloud_store::{FsChunkStore, StoreError};
use peercloud_types::{JobId, KeyFileError, Keypair, NodeId, PublicKey};
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

pub use chunks::audit::{AuditFailure, AuditOutcome};
pub use chunks::{ChunkError, ChunkRelease, NetStore, PutRefusal};
pub use earnings::{
    AUDITS_KEPT, AnswerCounts, AnsweredAudit, AuditAnswer, AuditJudgement, AuditReport,
    AuditSummary, EARNINGS_FILE, Earnings, EarningsError, PAYMENTS_KEPT, Payment, Summary, Totals,
};
pub use index::table::Batch;
pub use index::table::{INDEX_FORMAT_VERSION, IndexTableError};
pub use index::{Evidence, INDEX_PAGE_MAX, INDEX_REPLICAS, IndexError, IndexRead, LocalIndex};
pub use leases::LeaseOfferError;
pub(crate) use leases::run_space_command;
pub use ledger::SubmitError;
pub use peercloud_types::clock::now_ms;
pub use repair::{
    HOLDER_GRACE, REPAIR_INTERVAL, RepairMemory, RepairMode, RepairReport, RepairTotals,
};
pub use requester::RequesterError;

use crate::chain::{Chain, ChainError, Committed};
use crate::config::NodeConfig;
use crate::genesis::{GENESIS_FILE, Genesis, GenesisError};
use crate::wire::Message;
use peercloud_api::{API_ADDR_FILE, TOKEN_FILE};

/// The node's own key (network identity; signs offers and results).
pub const NODE_KEY_FILE: &str = "node.key";
/// The farmer's account key the node registers under (pays fees and stake).
pub const OWNER_KEY_FILE: &str = "owner.key";
/// The object index replica in the data directory.
pub const INDEX_FILE: &str = "index.redb";
/// Committed blocks buffered for API waiters and agents.
const COMMITTED_CHANNEL: usize = 256;
/// Offers buffered per job while its requester collects them.
const OFFERS_CHANNEL: usize = 256;

/// The node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A key file is missing, unreadable or too open.
    #[error("key file {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyFileError,
    },
    /// No genesis, or a broken one.
    #[error("{0} (a node joins a network by its genesis.bin: `peercloud devnet up` writes one)")]
    Genesis(#[from] GenesisError),
    /// The ledger could not be opened.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The chunk store could not be opened.
    #[error("chunk store: {0}")]
    Store(#[from] StoreError),
    /// The object index could not be opened.
    #[error(transparent)]
    Index(#[from] IndexTableError),
    /// The earnings record could not be opened or caught up.
    #[error(transparent)]
    Earnings(#[from] EarningsError),
    /// The sandbox could not start.
    #[error("sandbox: {0}")]
    Compute(#[from] ComputeError),
    /// The network could not start.
    #[error("network: {0}")]
    Net(#[from] peercloud_net::NetError),
    /// The API token file is unsafe to use.
    #[error("API token file {}: {reason}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file in the data directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key at `path`, creating it first if missing.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, StartError> {
    let key_err = |source| StartError::Key {
        path: path.to_owned(),
        source,
    };
    if !path.exists() {
        Keypair::generate().save(path).map_err(key_err)?;
    }
    Keypair::load(path).map_err(key_err)
}

/// What a node shares between its tasks.
pub struct Inner {
    /// Its resolved configuration.
    pub config: NodeConfig,
    /// Its own key.
    pub node_key: Keypair,
    /// The owner's account key.
    pub owner_key: Keypair,
    /// The network.
    pub net: NetHandle,
    /// The chain.
    chain: Mutex<Chain>,
    /// Every block this node commits, as it commits it.
    pub committed: broadcast::Sender<Arc<Committed>>,
    /// This node's chunks.
    pub store: Arc<FsChunkStore>,
    /// Pieces of public objects served to web visitors ([`crate::edge`]).
    pub edge: crate::edge::EdgeCache,
    /// This node's replica of the object indexes it keeps.
    pub index: LocalIndex,
    /// What this node earned from storage, recorded as blocks commit.
    pub earnings: Earnings,
    /// What this node's repairs did since it started.
    pub repairs: RepairTotals,
    /// The pieces this node acknowledged in others' repairs.
    pub(crate) repair_counted: Mutex<chunks::RepairCounted>,
    /// The buckets whose index this node pulled since it became a replica.
    pub(crate) index_syncs: index::IndexSyncs,
    /// The index writes and gets this node coordinates, in rounds per bucket.
    pub(crate) coalescing: index::Coalescing,
    /// The sandbox.
    pub executor: Arc<Executor>,
    /// The validator's queue of candidate transactions (validator only).
    mempool: Option<mpsc::Sender<peercloud_types::Signed<peercloud_ledger::Tx>>>,
    /// Blocks that arrived ahead of the tip, by height.
    early: Mutex<std::collections::BTreeMap<u64, peercloud_ledger::Block>>,
    /// Offer collectors of the jobs this node is requesting for.
    collectors: Mutex<HashMap<JobId, mpsc::Sender<Message>>>,
    /// Next nonce per key this node signs with, ahead of the chain while its
    /// transactions are in flight.
    nonces: Mutex<HashMap<PublicKey, u64>>,
    /// Load from awards won lately.
    pub(crate) recent_load: Mutex<RecentLoad>,
    /// Jobs this node is running now (one run per job).
    running: Mutex<std::collections::HashSet<JobId>>,
    /// CPU reserved by running jobs, millicores.
    reserved_cpu: AtomicU64,
    /// Memory reserved by running jobs, bytes.
    reserved_memory: AtomicU64,
    /// Gossiped transactions dropped because the mempool was full.
    mempool_dropped: AtomicU64,
    /// The API token.
    token: String,
    /// The web gateway's base URL, once it listens.
    pub web_url: std::sync::OnceLock<String>,
    /// The S3 gateway's base URL, once it listens.
    pub s3_url: std::sync::OnceLock<String>,
    /// Leases: this node's spaces, the probes reported for them, bids gathered.
    pub(crate) leases: leases::Leases,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("node", &self.node_key.node_id())
            .field("validator", &self.mempool.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The chain, locked. Held only for short, synchronous steps.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        // A panic while holding the lock leaves the chain as committed on
        // disk; the in-memory state may be mid-block, so stop using it.
        #[allow(clippy::expect_used)]
        self.chain
            .lock()
            .expect("chain lock poisoned: a block step panicked")
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_key.node_id()
    }

    /// Whether this node is the chain's validator.
    pub fn is_validator(&self) -> bool {
        self.mempool.is_some()
    }

    /// Whether this node's registration is on the ledger.
    pub fn registered(&self) -> bool {
        self.chain().state().node(&self.node_id()).is_some()
    }

    /// Waits, at most `timeout`, until `check` (run now and after each block
    /// this node commits) answers; `None` when it never did. The block
    /// subscription is taken before the first check, so a block committed
    /// in between is not missed.
    pub(crate) async fn watch_chain<T>(
        &self,
        timeout: std::time::Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let mut blocks = self.committed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(answer) = check() {
                return Some(answer);
            }
            match tokio::time::timeout_at(deadline, blocks.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return None,
            }
        }
    }

    /// The API bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Publishes `message` on `topic`, retrying while no peer is subscribed yet
    /// (gossip meshes form a heartbeat after connecting).
    pub async fn publish(
        &self,
        topic: GossipTopic,
        message: &Message,
    ) -> Result<(), peercloud_net::NetError> {
        let bytes = message.to_bytes();
        let deadline = tokio::time::Instant::now() + PUBLISH_RETRY;
        loop {
            match self.net.publish(topic, bytes.clone()).await {
                Err(peercloud_net::NetError::NoPeers { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(peercloud_net::NetError::Duplicate { .. }) => return Ok(()),
                other => return other,
            }
        }
    }

    /// Sends `message` to `node` on `protocol` and decodes the answer; a
    /// [`Message::Error`] answer becomes an error naming the peer's reason.
    pub async fn ask(
        &self,
        node: &NodeId,
        protocol: Protocol,
        message: &Message,
    ) -> Result<Message, AskError> {
        self.ask_encoded(node, protocol, message.to_bytes()).await
    }

    /// [`Inner::ask`] with the message already encoded (one encoding sent to
    /// several nodes).
    pub async fn ask_encoded(
        &self,
        node: &NodeId,
        protocol: Protocol,
        encoded: Vec<u8>,
    ) -> Result<Message, AskError> {
        let peer = peercloud_net::peer_id_of(node);
        let bytes = self
            .net
            .request(peer, protocol, encoded)
            .await
            .map_err(|e| AskError::Net {
                node: *node,
                reason: e.to_string(),
            })?;
        match Message::from_bytes(&bytes) {
            Ok(Message::Error { code, message }) => Err(AskError::Refused {
                node: *node,
                code,
                message,
            }),
            Ok(answer) => Ok(answer),
            Err(e) => Err(AskError::Net {
                node: *node,
                reason: format!("undecodable answer: {e}"),
            }),
        }
    }
}

/// The container engine, when this machine has one answering within a few
/// seconds (a node without one offers no container spaces).
async fn container_engine() -> Option<peercloud_space::ContainerEngine> {
    let connect = peercloud_space::ContainerEngine::connect();
    match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
        Ok(Ok(engine)) => Some(engine),
        Ok(Err(error)) => {
            tracing::info!(%error, "container spaces not offered");
            None
        }
        Err(_) => {
            tracing::info!("container spaces not offered: the engine did not answer in 3 s");
            None
        }
    }
}

/// How long a publish waits for a first subscribed peer.
const PUBLISH_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// A request to another node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AskError {
    /// The node could not be reached or did not answer.
    #[error("node {node}: {reason}")]
    Net {
        /// The node.
        node: NodeId,
        /// What the network said.
        reason: String,
    },
    /// The node answered with a refusal.
    #[error("node {node} refused ({code}): {message}")]
    Refused {
        /// The node.
        node: NodeId,
        /// Its code.
        code: ErrorCode,
        /// Its reason.
        message: String,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// Shared state.
    pub inner: Arc<Inner>,
    /// The API's bound address.
    pub api: std::net::SocketAddr,
    /// The web gateway's bound address.
    pub web: std::net::SocketAddr,
    /// The S3 gateway's bound address.
    pub s3: std::net::SocketAddr,
}

impl Node {
    /// Starts a node: keys, genesis, ledger, store, sandbox, network, API,
    /// agents. Returns once the API is serving; registration on the ledger
    /// proceeds in the background ([`Node::wait_registered`]).
    pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let node_key = load_or_create_key(&dir.join(NODE_KEY_FILE))?;
        let owner_key = load_or_create_key(&dir.join(OWNER_KEY_FILE))?;
        let genesis = Genesis::load(&dir.join(GENESIS_FILE))?;
        let validator = genesis.params.validator == node_key.public();
        let chain = Chain::open(&dir, &genesis)?;
        let earnings = Earnings::open(&dir.join(EARNINGS_FILE), node_key.node_id())?;
        earnings.catch_up(&chain)?;
        let store = Arc::new(FsChunkStore::open(dir.join("chunks"))?);
        let edge_dir = dir.join(EDGE_CACHE_DIR);
        let edge = crate::edge::EdgeCache::open(&edge_dir, config.edge_cache_bytes)
            .map_err(io_error(&edge_dir))?;
        let index = LocalIndex::open(&dir.join(INDEX_FILE))?;
        let executor = Arc::new(Executor::new(ExecutorConfig::default())?);
        let leases = leases::Leases::new(if validator {
            None
        } else {
            container_engine().await
        })
        .await;
        let token = load_or_create_token(&dir.join(TOKEN_FILE))?;
        let mut net_config = NetConfig::new(node_key.seed());
        net_config.bootstrap = config.bootstrap.clone();
        net_config.relays = config.relays.clone();
        net_config.external = config.external.clone();
        net_config.relay_service = config.relay_service;
        net_config.private_network = config.private_network;
        let (net, events) = listen_where_last(&dir, &config.listen, net_config).await?;
        let (committed, _) = broadcast::channel(COMMITTED_CHANNEL);
        let (mempool, mempool_rx) = if validator {
            let (tx, rx) = mpsc::channel(ledger::MEMPOOL_TXS_MAX);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let inner = Arc::new(Inner {
            config,
            node_key,
            owner_key,
            net,
            chain: Mutex::new(chain),
            committed,
            store,
            edge,
            index,
            earnings,
            repairs: RepairTotals::default(),
            repair_counted: Mutex::new(chunks::RepairCounted::default()),
            index_syncs: index::IndexSyncs::default(),
            coalescing: index::Coalescing::default(),
            executor,
            mempool,
            early: Mutex::new(std::collections::BTreeMap::new()),
            collectors: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            recent_load: Mutex::new(RecentLoad::default()),
            running: Mutex::new(std::collections::HashSet::new()),
            reserved_cpu: AtomicU64::new(0),
            reserved_memory: AtomicU64::new(0),
            mempool_dropped: AtomicU64::new(0),
            token,
            web_url: std::sync::OnceLock::new(),
            s3_url: std::sync::OnceLock::new(),
            leases,
        });
        if let Some(rx) = mempool_rx {
            tokio::spawn(ledger::validator_loop(inner.clone(), rx));
        }
        let (sync_tx, sync_rx) = mpsc::channel(ledger::SYNC_TRIGGERS);
        tokio::spawn(ledger::sync_loop(inner.clone(), sync_rx));
        if !validator {
            tokio::spawn(closer::closer_loop(inner.clone()));
            tokio::spawn(billing::billing_loop(inner.clone()));
            tokio::spawn(repair::repair_loop(inner.clone()));
            tokio::spawn(leases::upkeep_loop(inner.clone()));
        }
        tokio::spawn(event_loop(inner.clone(), events, sync_tx));
        let listener = tokio::net::TcpListener::bind(inner.config.api)
            .await
            .map_err(io_error(Path::new("api listener")))?;
        let api = listener
            .local_addr()
            .map_err(io_error(Path::new("api listener")))?;
        let addr_file = dir.join(API_ADDR_FILE);
        std::fs::write(&addr_file, format!("http://{api}\n")).map_err(io_error(&addr_file))?;
        tokio::spawn(crate::api::server::serve(inner.clone(), listener));
        let web = crate::web::listen(&inner, &dir).await?;
        let s3 = crate::s3::listen(&inner, &dir).await?;
        if !validator {
            tokio::spawn(ledger::register(inner.clone()));
        }
        Ok(Node {
            inner,
            api,
            web,
            s3,
        })
    }

    /// Waits until this node's registration is on the ledger (providers), or
    /// returns at once on the validator.
    pub async fn wait_registered(&self, timeout: std::time::Duration) -> bool {
        if self.inner.is_validator() {
            return true;
        }
        let inner = &self.inner;
        inner
            .watch_chain(timeout, || inner.registered().then_some(()))
            .await
            .is_some()
    }

    /// Stops the network (the process exits after).
    pub async fn shutdown(&self) {
        self.inner.net.shutdown().await;
    }
}

/// The edge cache's directory in the node's data directory.
pub const EDGE_CACHE_DIR: &str = "edge-cache";

/// Where a node writes the network addresses it listened on, so a restart
/// takes the same ports and peers that knew the node find it again.
pub const LISTEN_FILE: &str = "p2p.listen";

/// Starts the network on `configured`, with each port 0 replaced by the port
/// this node had last time (from [`LISTEN_FILE`]); if that port is taken
/// now, on a fresh one. Records where it listens for the next start.
async fn listen_where_last(
    dir: &Path,
    configured: &[peercloud_net::Multiaddr],
    mut net_config: NetConfig,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), StartError> {
    let file = dir.join(LISTEN_FILE);
    let last: Vec<peercloud_net::Multiaddr> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    let wanted = keep_ports(configured, &last);
    net_config.listen = wanted.clone();
    let started = match peercloud_net::spawn(net_config.clone()).await {
        Err(e) if wanted != configured => {
            tracing::warn!(%e, "last listen port unavailable; listening on a new one");
            net_config.listen = configured.to_vec();
            peercloud_net::spawn(net_config).await
        }
        other => other,
    };
    let (net, events) = started?;
    let text: String = net
        .listen_addrs()
        .iter()
        .map(|addr| format!("{addr}\n"))
        .collect();
    std::fs::write(&file, text).map_err(io_error(&file))?;
    Ok((net, events))
}

/// `configured` with every TCP or UDP port 0 replaced by the port of the
/// address in `last` on the same IP and transport, if there is one.
fn keep_ports(
    configured: &[peercloud_net::Multiaddr],
    last: &[peercloud_net::Multiaddr],
) -> Vec<peercloud_net::Multiaddr> {
    use peercloud_net::multiaddr::Protocol as P;
    /// Its IP, and its port with whether it is UDP.
    fn split(addr: &peercloud_net::Multiaddr) -> (Option<std::net::IpAddr>, Option<(bool, u16)>) {
        let mut ip = None;
        let mut port = None;
        for part in addr.iter() {
            match part {
                P::Ip4(v4) => ip = Some(v4.into()),
                P::Ip6(v6) => ip = Some(v6.into()),
                P::Tcp(p) => port = Some((false, p)),
                P::Udp(p) => port = Some((true, p)),
                _ => {}
            }
        }
        (ip, port)
    }
    configured
        .iter()
        .map(|addr| {
            let (ip, port) = split(addr);
            let (Some(_), Some((udp, 0))) = (ip, port) else {
                return addr.clone();
            };
            let earlier = last.iter().find_map(|old| match split(old) {
                (old_ip, Some((old_udp, p))) if old_ip == ip && old_udp == udp && p != 0 => Some(p),
                _ => None,
            });
            match earlier {
                Some(p) => addr
                    .iter()
                    .map(|part| match part {
                        P::Tcp(0) => P::Tcp(p),
                        P::Udp(0) => P::Udp(p),
                        other => other,
                    })
                    .collect(),
                None => addr.clone(),
            }
        })
        .collect()
}

/// Fewest characters an API token may have: the node writes 64 hex digits;
/// anything much shorter can be guessed by a process on this machine.
const TOKEN_CHARS_MIN: usize = 32;

/// Reads the API token, refusing one that others may read or that is too
/// short to keep other local users out; writes a fresh one (0600) when the
/// file is missing or empty.
fn load_or_create_token(path: &Path) -> Result<String, StartError> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            let mode = std::fs::metadata(path)
                .map_err(io_error(path))?
                .permissions()
                .mode()
                & 0o777;
            let refuse = |reason: String| StartError::Token {
                path: path.to_owned(),
                reason,
            };
            if mode & 0o077 != 0 {
                return Err(refuse(format!(
                    "mode {mode:o} lets other users read it (chmod 600 it, or delete it for a new one)"
                )));
            }
            if token.chars().count() < TOKEN_CHARS_MIN {
                return Err(refuse(format!(
                    "{} characters, at least {TOKEN_CHARS_MIN} wanted (delete it for a new one)",
                    token.chars().count()
                )));
            }
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StartError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let token = hex::encode(bytes);
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(token.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))?;
    Ok(token)
}

/// Hands each network event to the agent that owns it, each in its own task.
async fn event_loop(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<NetEvent>,
    sync: mpsc::Sender<ledger::SyncTrigger>,
) {
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Gossip {
                topic,
                source,
                data,
                id,
            } => {
                // Judged before anything is forwarded: a message this node
                // finds invalid goes no further and costs its sender.
                let message = match Message::from_bytes(&data) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(?source, topic = topic.name(), %e, "undecodable gossip");
                        inner.net.validate(id, Verdict::Reject).await;
                        continue;
                    }
                };
                let verdict = gossip::judge_gossip(&inner, topic, &message);
                inner.net.validate(id, verdict).await;
                if verdict != Verdict::Accept {
                    tracing::debug!(?source, topic = topic.name(), ?verdict, "gossip not taken");
                    continue;
                }
                match message {
                    Message::Tx(tx) => ledger::on_gossip_tx(&inner, tx),
                    Message::Block(block) => ledger::on_block(&inner, block, source, &sync).await,
                    Message::CapacityRequest(request) => {
                        let span = tracing::debug_span!("capacity_request", job = %request.job);
                        tokio::spawn(
                            provider::on_capacity_request(inner.clone(), request).instrument(span),
                        );
                    }
                    Message::LeaseRequest { request, requester } if !inner.is_validator() => {
                        tokio::spawn(leases::on_lease_request(inner.clone(), request, requester));
                    }
                    other => {
                        tracing::warn!(?source, "unexpected gossip {:?}", gossip::kind_of(&other))
                    }
                }
            }
            NetEvent::Request {
                peer,
                protocol,
                data,
                reply,
            } => {
                let inner = inner.clone();
                let span = tracing::debug_span!("request", %peer, protocol = protocol.name());
                tokio::spawn(
                    async move {
                        let answer = if protocol == Protocol::Chunk && chunks::is_batch(&data) {
                            chunks::on_put_batch(&inner, peer, data).await
                        } else {
                            match Message::from_bytes(&data) {
                                Ok(message) => {
                                    answer::answer(&inner, peer, protocol, message).await
                                }
                                Err(e) => Message::error(
                                    ErrorCode::BadRequest,
                                    format!("undecodable: {e}"),
                                ),
                            }
                        };
                        if let Message::Error { code, message } = &answer {
                            tracing::debug!(%code, %message, "refused");
                        }
                        reply.send(answer.to_bytes());
                    }
                    .instrument(span),
                );
            }
            NetEvent::PeerConnected(peer) => {
                tracing::debug!(%peer, "peer connected");
                // A new peer may know blocks we do not.
                let _ = sync.try_send(ledger::SyncTrigger::From(peer));
            }
            NetEvent::PeerDisconnected(peer) => tracing::debug!(%peer, "peer disconnected"),
        }
    }
    tracing::info!("network events ended");
}

/// Load one award adds to a node's recent load, in basis points: small, so
/// it only breaks ties between similar prices and spreads work around.
pub const LOAD_PER_AWARD_BPS: u32 = 500;
/// The most recent awards count for; beyond it only running jobs raise a price.
pub const RECENT_LOAD_MAX_BPS: u32 = 2_000;
/// How fast recent load decays, in basis points per second.
pub const LOAD_DECAY_BPS_PER_SEC: u64 = 1_000;

/// Recent load: rises with each award this node wins, decays with time, so
/// a node that just won work quotes higher and the next job goes elsewhere.
#[derive(Debug, Default)]
pub(crate) struct RecentLoad {
    bps: u32,
    at_ms: u64,
}

impl RecentLoad {
    fn now(&self, now_ms: u64) -> u32 {
        let decayed = now_ms.saturating_sub(self.at_ms) * LOAD_DECAY_BPS_PER_SEC / 1_000;
        u64::from(self.bps).saturating_sub(decayed) as u32
    }

    pub(crate) fn add(&mut self, bps: u32, now_ms: u64) {
        self.bps = (self.now(now_ms) + bps).min(RECENT_LOAD_MAX_BPS);
        self.at_ms = now_ms;
    }
}

/// Current load of this node in basis points: the CPU its running jobs hold,
/// or its recent awards, whichever is higher.
pub(crate) fn utilisation_bps(inner: &Inner) -> u32 {
    let total = inner.config.resources.cpu_millicores.max(1);
    let used = inner.reserved_cpu.load(Ordering::Relaxed);
    let running = (used.saturating_mul(10_000) / total).min(10_000) as u32;
    #[allow(clippy::expect_used)]
    let recent = inner
        .recent_load
        .lock()
        .expect("load lock poisoned")
        .now(now_ms());
    running.max(recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_load_rises_with_awards_caps_and_decays() {
        let mut load = RecentLoad::default();
        load.add(LOAD_PER_AWARD_BPS, 1_000);
        assert_eq!(load.now(1_000), LOAD_PER_AWARD_BPS);
        for _ in 0..100 {
            load.add(LOAD_PER_AWARD_BPS, 1_000);
        }
        assert_eq!(load.now(1_000), RECENT_LOAD_MAX_BPS);
        assert_eq!(load.now(1_500), RECENT_LOAD_MAX_BPS - 500);
        assert_eq!(load.now(60_000), 0);
    }

    #[test]
    fn a_restart_keeps_the_ports_it_had_where_the_config_says_any() {
        let addr = |s: &str| s.parse::<peercloud_net::Multiaddr>().unwrap();
        let configured = [
            addr("/ip4/127.0.0.1/tcp/0"),
            addr("/ip4/0.0.0.0/tcp/0"),
            addr("/ip4/127.0.0.1/tcp/4001"),
            addr("/ip4/127.0.0.1/udp/0/quic-v1"),
        ];
        let last = [
            addr("/ip4/127.0.0.1/udp/39113/quic-v1"),
            addr(
                "/ip4/127.0.0.1/tcp/39111/p2p/12D3KooWRBhwfeP2Y9CDkFRBAZ1pmxUadH36TKuk3KtKm5XXP8mA",
            ),
            addr("/ip4/10.0.0.5/tcp/39112"),
        ];
        let kept = keep_ports(&configured, &last);
        assert_eq!(kept[0], addr("/ip4/127.0.0.1/tcp/39111"));
        assert_eq!(kept[1], configured[1], "no earlier port on that IP");
        assert_eq!(kept[2], configured[2], "a fixed port stays");
        assert_eq!(
            kept[3],
            addr("/ip4/127.0.0.1/udp/39113/quic-v1"),
            "a QUIC port is kept from the QUIC address, not the TCP one"
        );
        assert_eq!(keep_ports(&configured, &[]), configured.to_vec());
    }

    #[test]
    fn the_api_token_is_created_private_and_a_weak_or_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.token");
        let token = load_or_create_token(&path).unwrap();
        assert_eq!(token.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(&path).unwrap(), token, "kept");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = load_or_create_token(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 666") && err.contains("chmod 600"),
            "{err}"
        );

        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create_token(&path).unwrap_err().to_string();
        assert!(err.contains("1 characters, at least 32"), "{err}");
    }
}

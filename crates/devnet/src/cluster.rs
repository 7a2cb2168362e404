//! The storage cluster every devnet comes with, so a user can make buckets
//! at once. A manager account (`manager.key` in the devnet directory, funded
//! at genesis) creates it; every provider's owner joins it with its node; the
//! manager (the sole manager, threshold 1) admits them all. Written over
//! [`NodeApi`], so the in-process grid and the devnet of processes run the
//! same steps, through the validator's API:
//!
//! ```text
//!   1. manager: CreateCluster (the terms given; amounts::cluster_terms by default)             ─► one block
//!   2. every owner at once: JoinCluster(node, its storage)         ─► one block
//!   3. manager, nonces n, n+1, … at once: ProposeCluster(Admit)    ─► one block
//!   4. every node's ledger shows every provider active             (wait_seen)
//! ```
//!
//! A step is not batched with the one before it: a node dry-runs every
//! transaction against its tip, so a join is refused until the cluster is in
//! a block, and an admission until the join is. Each step skips what the
//! ledger already shows, so a restarted devnet finds its cluster as it left it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peercloud_api::{AccountView, ClusterView, MemberState, TxReceipt};
use peercloud_client::{ClientError, NodeApi, submit_signed};
use peercloud_ledger::params::{CAPACITY_BYTES_MAX, CAPACITY_BYTES_MIN};
use peercloud_ledger::{ClusterAction, ClusterId, ClusterTerms, Tx, TxKind};
use peercloud_node::daemon::{NODE_KEY_FILE, OWNER_KEY_FILE};
use peercloud_types::{KeyFileError, Keypair, NodeId, Signed};

/// The devnet manager's key file, in the devnet directory.
pub const MANAGER_KEY_FILE: &str = "manager.key";
/// How long every node may take to show the cluster with every provider
/// active once the validator has it: a block reaches each follower by
/// gossip within milliseconds, a missed one by the two-second sync.
pub const CLUSTER_SEEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`wait_seen`] asks the nodes again.
const POLL: Duration = Duration::from_millis(20);

/// The devnet's cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A key file of the devnet (the manager's, a provider's).
    #[error(
        "{source} (a devnet made before it came with a storage cluster has no {MANAGER_KEY_FILE}: start it with --fresh)"
    )]
    Key {
        /// Why the key did not load.
        source: KeyFileError,
    },
    /// A call to the node's API failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: ClientError,
    },
    /// A thread submitting a transaction panicked.
    #[error("{what}: the submitting thread panicked")]
    Panicked {
        /// What it was doing.
        what: String,
    },
    /// A provider's node is not on the ledger.
    #[error("node {node} is not registered on the ledger, so it cannot join the cluster")]
    NotRegistered {
        /// The node.
        node: NodeId,
    },
    /// The steps ran but some providers are not active members.
    #[error(
        "{cluster} has {active} of {expected} providers active after the setup; not active: {missing}"
    )]
    NotActive {
        /// The cluster.
        cluster: ClusterId,
        /// Providers active.
        active: usize,
        /// Providers started.
        expected: usize,
        /// The nodes not active, comma-separated.
        missing: String,
    },
    /// A node's ledger did not show the cluster whole in time.
    #[error(
        "node {index} did not show {cluster} with {expected} active providers within {} s (it showed {seen})",
        CLUSTER_SEEN_TIMEOUT.as_secs()
    )]
    NotSeen {
        /// The node's index (0 is the validator).
        index: usize,
        /// The cluster.
        cluster: ClusterId,
        /// Providers expected active.
        expected: usize,
        /// What it showed last.
        seen: String,
    },
}

fn api(what: impl Into<String>) -> impl FnOnce(ClientError) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Api { what, source }
}

/// A provider as the setup needs it: its node and its owner's key.
#[derive(Debug, Clone)]
pub struct Farmer {
    /// The provider's node.
    pub node: NodeId,
    /// Its owner (signs the join, locks the stake).
    pub owner: Keypair,
}

/// The path of the devnet manager's key in `dir`.
pub fn manager_key_path(dir: &Path) -> PathBuf {
    dir.join(MANAGER_KEY_FILE)
}

/// The devnet manager's key in `dir`.
pub fn manager_key(dir: &Path) -> Result<Keypair, ClusterError> {
    Keypair::load(&manager_key_path(dir)).map_err(|source| ClusterError::Key { source })
}

/// The providers whose data directories are `node_dirs`, from their key files.
pub fn farmers(node_dirs: &[PathBuf]) -> Result<Vec<Farmer>, ClusterError> {
    node_dirs
        .iter()
        .map(|node_dir| {
            let load = |file: &str| {
                Keypair::load(&node_dir.join(file)).map_err(|source| ClusterError::Key { source })
            };
            Ok(Farmer {
                node: load(NODE_KEY_FILE)?.node_id(),
                owner: load(OWNER_KEY_FILE)?,
            })
        })
        .collect()
}

/// Makes sure `manager`'s cluster exists with every farmer an active member,
/// through `node` (the validator's API: its answers follow its own blocks);
/// returns the cluster as it then is.
pub fn ensure<N: NodeApi + ?Sized>(
    node: &N,
    manager: &Keypair,
    farmers: &[Farmer],
    terms: ClusterTerms,
) -> Result<ClusterView, ClusterError> {
    let cluster = match find(node, manager)? {
        Some(view) => view.id,
        None => create(node, manager, terms)?,
    };
    let view = node
        .cluster(&cluster)
        .map_err(api(format!("reading {cluster}")))?;
    join_all(node, &view, farmers)?;
    let view = node
        .cluster(&cluster)
        .map_err(api(format!("reading {cluster}")))?;
    admit_all(node, &view, manager)?;
    let view = node
        .cluster(&cluster)
        .map_err(api(format!("reading {cluster}")))?;
    let missing: Vec<String> = farmers
        .iter()
        .filter(|f| view.member(&f.node).map(|m| m.status) != Some(MemberState::Active))
        .map(|f| f.node.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ClusterError::NotActive {
            cluster,
            active: farmers.len() - missing.len(),
            expected: farmers.len(),
            missing: missing.join(", "),
        });
    }
    Ok(view)
}

/// The cluster `manager` created, if the ledger has one.
fn find<N: NodeApi + ?Sized>(
    node: &N,
    manager: &Keypair,
) -> Result<Option<ClusterView>, ClusterError> {
    let clusters = node.clusters().map_err(api("listing the clusters"))?;
    let creator = manager.account_id();
    Ok(clusters.into_iter().find(|c| c.creator == creator))
}

/// Creates the devnet's cluster with `terms`; returns its id.
fn create<N: NodeApi + ?Sized>(
    node: &N,
    manager: &Keypair,
    terms: ClusterTerms,
) -> Result<ClusterId, ClusterError> {
    let creator = manager.account_id();
    let account = node
        .account(&creator)
        .map_err(api("reading the manager's account"))?;
    let nonce = account.next_nonce;
    let kind = TxKind::CreateCluster {
        managers: vec![creator],
        threshold: 1,
        terms,
    };
    node.submit(&signed(&account, manager, nonce, kind), true)
        .map_err(api("creating the cluster"))?;
    Ok(ClusterId::derive(&creator, nonce))
}

/// Every farmer not yet a member joins, all at once, each with its node's
/// registered storage as its capacity (within the ledger's bounds).
fn join_all<N: NodeApi + ?Sized>(
    node: &N,
    view: &ClusterView,
    farmers: &[Farmer],
) -> Result<(), ClusterError> {
    let ledger = node.ledger().map_err(api("reading the ledger"))?;
    let mut joins = Vec::new();
    for farmer in farmers.iter().filter(|f| view.member(&f.node).is_none()) {
        let registered = ledger
            .nodes
            .iter()
            .find(|n| n.node == farmer.node)
            .ok_or(ClusterError::NotRegistered { node: farmer.node })?;
        let capacity_bytes = registered
            .resources
            .storage_bytes
            .clamp(CAPACITY_BYTES_MIN, CAPACITY_BYTES_MAX);
        joins.push((
            farmer,
            TxKind::JoinCluster {
                cluster: view.id,
                node: farmer.node,
                capacity_bytes,
            },
        ));
    }
    std::thread::scope(|scope| {
        let pending: Vec<_> = joins
            .into_iter()
            .map(|(farmer, kind)| {
                let what = format!("node {} joining {}", farmer.node, view.id);
                let handle = scope.spawn(move || submit_signed(&node, &farmer.owner, kind, true));
                (what, handle)
            })
            .collect();
        pending
            .into_iter()
            .try_for_each(|(what, handle)| joined(what, handle.join()))
    })
}

/// The manager admits every pending member: one proposal each (threshold
/// 1, so each executes), signed with consecutive nonces and sent at once; a
/// node holds the ones ahead of their turn until it comes.
fn admit_all<N: NodeApi + ?Sized>(
    node: &N,
    view: &ClusterView,
    manager: &Keypair,
) -> Result<(), ClusterError> {
    let pending: Vec<NodeId> = view
        .members
        .iter()
        .filter(|m| m.status == MemberState::Pending)
        .map(|m| m.node)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let account = node
        .account(&manager.account_id())
        .map_err(api("reading the manager's account"))?;
    let admits: Vec<(NodeId, Signed<Tx>)> = (account.next_nonce..)
        .zip(&pending)
        .map(|(nonce, member)| {
            let kind = TxKind::ProposeCluster {
                cluster: view.id,
                action: ClusterAction::Admit(*member),
            };
            (*member, signed(&account, manager, nonce, kind))
        })
        .collect();
    std::thread::scope(|scope| {
        let sent: Vec<_> = admits
            .iter()
            .map(|(member, tx)| {
                let what = format!("admitting node {member} to {}", view.id);
                (what, scope.spawn(move || node.submit(tx, true)))
            })
            .collect();
        sent.into_iter()
            .try_for_each(|(what, handle)| joined(what, handle.join()))
    })
}

/// What a thread submitting for `what` answered.
fn joined(
    what: String,
    answer: std::thread::Result<Result<TxReceipt, ClientError>>,
) -> Result<(), ClusterError> {
    match answer {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ClusterError::Api { what, source }),
        Err(_) => Err(ClusterError::Panicked { what }),
    }
}

/// `kind` signed by `key` with `nonce`, naming the chain and paying the fee
/// `account` (the signer's view) names.
fn signed(account: &AccountView, key: &Keypair, nonce: u64, kind: TxKind) -> Signed<Tx> {
    Signed::new(
        Tx {
            chain: account.chain,
            nonce,
            fee: account.min_fee,
            kind,
        },
        key,
    )
}

/// Waits (up to [`CLUSTER_SEEN_TIMEOUT`]) until every node of `nodes` shows
/// `cluster` with at least `active` active members: chunk holders and the
/// user's node judge by their own ledger.
pub fn wait_seen<N: NodeApi>(
    nodes: &[N],
    cluster: &ClusterId,
    active: usize,
) -> Result<(), ClusterError> {
    let deadline = Instant::now() + CLUSTER_SEEN_TIMEOUT;
    for (index, node) in nodes.iter().enumerate() {
        loop {
            let seen = match node.cluster(cluster) {
                Ok(view) if view.active() >= active => break,
                Ok(view) => format!("{} active", view.active()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(ClusterError::NotSeen {
                    index,
                    cluster: *cluster,
                    expected: active,
                    seen,
                });
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

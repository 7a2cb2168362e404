//! A devnet: one validator and N providers as separate `peercloud node`
//! processes on loopback, sharing a genesis that funds the user's wallet,
//! every farmer and the devnet's cluster manager. [`init`] writes the
//! directories once; [`Devnet::up`] starts the processes, reads each one's
//! ready line, sets up the devnet's storage cluster through the validator's
//! API ([`crate::cluster`]), and stops them all when dropped (the nodes also
//! stop on Ctrl-C or when their parent goes).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use peercloud_api::TOKEN_FILE;
use peercloud_client::{NodeClient, read_token_file};
use peercloud_ledger::{ClusterId, ClusterTerms, GenesisConfig, Params};
use peercloud_types::{AccountId, Amount, Hash32};

use peercloud_node::config::{CONFIG_FILE, Settings};
use peercloud_node::daemon::{NODE_KEY_FILE, OWNER_KEY_FILE, load_or_create_key, now_ms};
use peercloud_node::genesis::{GENESIS_FILE, Genesis, GenesisError};
use peercloud_node::ready::Ready;

use crate::amounts::{
    FARMER_STAKE_TOKENS, FARMER_TOKENS, LOCATIONS, MANAGER_TOKENS, SLASH_BPS,
    STAKE_MIN_TO_SERVE_TOKENS, TX_FEE, USER_TOKENS, cluster_terms,
};
use crate::cluster::{self, ClusterError, manager_key_path};

/// How long a node may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most providers one devnet starts.
pub const PROVIDERS_MAX: usize = 32;

/// A devnet could not be made or started.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// Files in the devnet directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Keys.
    #[error(transparent)]
    Start(#[from] peercloud_node::daemon::StartError),
    /// The genesis.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// A config file.
    #[error(transparent)]
    Config(#[from] peercloud_node::config::ConfigError),
    /// Too many or too few providers.
    #[error("a devnet has 1 to {PROVIDERS_MAX} providers, not {0}")]
    Size(usize),
    /// The devnet's storage cluster could not be set up.
    #[error("the devnet's storage cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// A node's API could not be reached.
    #[error("node {name}'s API: {source}")]
    Api {
        /// The node's directory name.
        name: String,
        /// Why.
        source: peercloud_client::ClientError,
    },
    /// A node process failed to come up.
    #[error("node {name} did not become ready: {reason}")]
    NotReady {
        /// The node's directory name.
        name: String,
        /// What happened (its last output lines).
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The directory of node `i` (0 is the validator).
pub fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

/// Writes a devnet of `providers` providers into `dir` (unless one is there
/// already): keys, a genesis funding `user` and every farmer, and each
/// node's config, and a cluster manager's key (`manager.key`, funded too).
/// Returns whether it was created (false: reused).
pub fn init(dir: &Path, providers: usize, user: &AccountId) -> Result<bool, DevnetError> {
    if !(1..=PROVIDERS_MAX).contains(&providers) {
        return Err(DevnetError::Size(providers));
    }
    let genesis_path = dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        let existing = (1..=PROVIDERS_MAX)
            .take_while(|i| node_dir(dir, *i).exists())
            .count();
        if existing >= providers {
            return Ok(false);
        }
        // More providers than before: a new devnet.
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let validator_dir = node_dir(dir, 0);
    std::fs::create_dir_all(&validator_dir).map_err(io(&validator_dir))?;
    let validator = load_or_create_key(&validator_dir.join(NODE_KEY_FILE))?;
    let treasury = load_or_create_key(&validator_dir.join(OWNER_KEY_FILE))?;
    let manager = load_or_create_key(&manager_key_path(dir))?;
    let mut allocations = vec![
        (*user, Amount::from_tokens(USER_TOKENS)),
        (manager.account_id(), Amount::from_tokens(MANAGER_TOKENS)),
    ];
    for i in 1..=providers {
        let node = node_dir(dir, i);
        std::fs::create_dir_all(&node).map_err(io(&node))?;
        load_or_create_key(&node.join(NODE_KEY_FILE))?;
        let owner = load_or_create_key(&node.join(OWNER_KEY_FILE))?;
        allocations.push((owner.account_id(), Amount::from_tokens(FARMER_TOKENS)));
        let settings = Settings {
            listen: Some(vec!["/ip4/127.0.0.1/tcp/0".into()]),
            api: Some("127.0.0.1:0".into()),
            location: Some(LOCATIONS[(i - 1) % LOCATIONS.len()].into()),
            cpu_millicores: Some(2_000),
            memory_bytes: Some(4 << 30),
            storage_bytes: Some(20 << 30),
            price_job: Some(format!("0.001{i:02}")),
            // Distinct floors, so a lease auction has a winner and a price.
            lease_price_cpu_core_hour: Some(format!("1.{i:02}")),
            stake: Some(Amount::from_tokens(FARMER_STAKE_TOKENS).to_string()),
            ..Settings::default()
        };
        settings.save(&node.join(CONFIG_FILE))?;
    }
    Settings {
        listen: Some(vec!["/ip4/127.0.0.1/tcp/0".into()]),
        api: Some("127.0.0.1:0".into()),
        ..Settings::default()
    }
    .save(&validator_dir.join(CONFIG_FILE))?;
    let config = GenesisConfig {
        params: Params {
            genesis_authority: validator.account_id(),
            validator: validator.public(),
            treasury: treasury.account_id(),
            min_fee: TX_FEE,
            stake_min_to_serve: Amount::from_tokens(STAKE_MIN_TO_SERVE_TOKENS),
            slash_bps: SLASH_BPS,
        },
        allocations,
        time_ms: now_ms(),
    };
    let genesis = Genesis::create(&config, &validator)?;
    genesis.save(&genesis_path)?;
    for i in 0..=providers {
        genesis.save(&node_dir(dir, i).join(GENESIS_FILE))?;
    }
    Ok(true)
}

/// One running node process.
#[derive(Debug)]
pub struct NodeProcess {
    /// `node-0`, `node-1`, ...
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// What it printed when ready.
    pub ready: Ready,
    child: Child,
    /// Closing it tells the node to stop (`--stop-with-parent`).
    stdin: Option<ChildStdin>,
}

impl NodeProcess {
    /// Its OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it at once (no clean shutdown): for fault tests.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends it SIGTERM (stdin left open) and waits up to `grace`; whether
    /// it exited.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = std::time::Instant::now() + grace;
        while sent && std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Asks it to stop and waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    /// Its directory.
    pub dir: PathBuf,
    /// The validator (index 0) and the providers.
    pub nodes: Vec<NodeProcess>,
    /// The devnet's storage cluster: every provider an active member.
    pub cluster: ClusterId,
}

/// How to start a devnet's processes.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The `peercloud` executable.
    pub exe: PathBuf,
    /// Environment for provider `i` (1-based), e.g. a fault switch in tests.
    pub env: Vec<(usize, String, String)>,
    /// `PEERCLOUD_LOG` for the nodes.
    pub log: Option<String>,
    /// Network namespaces (`ip netns`) to run nodes in, by index (0 is the
    /// validator): a node behind a NAT in a test. Its API is on that
    /// namespace's loopback, out of this process's reach.
    pub netns: Vec<(usize, String)>,
}

impl UpOptions {
    /// The namespace node `i` runs in, if any.
    fn netns_of(&self, i: usize) -> Option<&str> {
        self.netns
            .iter()
            .find(|(n, _)| *n == i)
            .map(|(_, name)| name.as_str())
    }
}

impl Devnet {
    /// Starts the validator, then every provider bootstrapping from it,
    /// waits for each ready line (providers are ready once registered), and
    /// sets up the devnet's storage cluster (or finds it, on a restart):
    /// returns once every node shows it with every provider active.
    pub fn up(dir: &Path, providers: usize, options: &UpOptions) -> Result<Devnet, DevnetError> {
        Devnet::up_with_terms(dir, providers, options, cluster_terms(providers))
    }

    /// [`Devnet::up`] whose storage cluster, when it creates one, has
    /// `terms` (a billing period of seconds, say, to watch bills come); a
    /// restarted devnet keeps the cluster it has.
    pub fn up_with_terms(
        dir: &Path,
        providers: usize,
        options: &UpOptions,
        terms: ClusterTerms,
    ) -> Result<Devnet, DevnetError> {
        let mut nodes = Vec::with_capacity(providers + 1);
        let validator = spawn(dir, 0, None, options)?;
        let bootstrap = validator.ready.p2p.clone();
        nodes.push(validator);
        let mut devnet = Devnet {
            dir: dir.to_owned(),
            nodes,
            // Set below, before `up` returns.
            cluster: ClusterId(Hash32::ZERO),
        };
        let pending: Vec<_> = (1..=providers)
            .map(|i| start_process(dir, i, Some(&bootstrap), options))
            .collect::<Result<_, _>>()?;
        for started in pending {
            devnet.nodes.push(wait_ready(started)?);
        }
        devnet.cluster = devnet.set_up_cluster(terms, options)?;
        Ok(devnet)
    }

    /// Sets up the storage cluster (with `terms` when it creates it) through
    /// the validator's API and waits until every node's API shows it whole;
    /// returns its id.
    fn set_up_cluster(
        &self,
        terms: ClusterTerms,
        options: &UpOptions,
    ) -> Result<ClusterId, DevnetError> {
        // A node in a namespace cannot be asked from here; the others' view
        // of the cluster shows it too.
        let clients = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| options.netns_of(*i).is_none())
            .map(|(_, n)| {
                // The address the node printed when ready, not a file a
                // previous run may have left.
                read_token_file(&n.dir.join(TOKEN_FILE))
                    .and_then(|token| NodeClient::new(&n.ready.api, token))
                    .map_err(|source| DevnetError::Api {
                        name: n.name.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let provider_dirs: Vec<PathBuf> =
            self.nodes.iter().skip(1).map(|n| n.dir.clone()).collect();
        let farmers = cluster::farmers(&provider_dirs)?;
        let manager = cluster::manager_key(&self.dir)?;
        let Some(validator) = clients.first() else {
            return Err(DevnetError::Size(0));
        };
        let view = cluster::ensure(validator, &manager, &farmers, terms)?;
        cluster::wait_seen(&clients, &view.id, farmers.len())?;
        Ok(view.id)
    }

    /// The validator.
    pub fn validator(&self) -> &NodeProcess {
        &self.nodes[0]
    }

    /// Starts node `i` again (after [`NodeProcess::kill`]).
    pub fn restart(&mut self, i: usize, options: &UpOptions) -> Result<(), DevnetError> {
        let bootstrap = self.nodes[0].ready.p2p.clone();
        let process = spawn(
            &self.dir,
            i,
            Some(bootstrap.as_str()).filter(|_| i != 0),
            options,
        )?;
        self.nodes[i] = process;
        Ok(())
    }

    /// Stops every node, providers first.
    pub fn stop(&mut self) {
        for node in self.nodes.iter_mut().rev() {
            drop(node.stdin.take());
        }
        for node in self.nodes.iter_mut().rev() {
            node.stop(Duration::from_secs(5));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Started {
    name: String,
    dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

fn start_process(
    dir: &Path,
    i: usize,
    bootstrap: Option<&str>,
    options: &UpOptions,
) -> Result<Started, DevnetError> {
    let node = node_dir(dir, i);
    let mut command = match options.netns_of(i) {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns]).arg(&options.exe);
            command
        }
        None => Command::new(&options.exe),
    };
    command
        .arg("node")
        .arg("--data-dir")
        .arg(&node)
        .arg("--stop-with-parent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(addr) = bootstrap {
        command.arg("--bootstrap").arg(addr);
    }
    if let Some(log) = &options.log {
        command.env("PEERCLOUD_LOG", log);
    }
    for (_, key, value) in options.env.iter().filter(|(n, _, _)| *n == i) {
        command.env(key, value);
    }
    let mut child = command.spawn().map_err(io(&options.exe))?;
    let stdin = child.stdin.take();
    let (tx, lines) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let log = node.join("node.log");
        std::thread::spawn(move || {
            let Ok(mut file) = std::fs::File::create(&log) else {
                return;
            };
            let _ = std::io::copy(&mut BufReader::new(stderr), &mut file);
        });
    }
    Ok(Started {
        name: format!("node-{i}"),
        dir: node,
        child,
        stdin,
        lines,
    })
}

fn wait_ready(mut started: Started) -> Result<NodeProcess, DevnetError> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match started.lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(ready) = Ready::parse(&line) {
                    return Ok(NodeProcess {
                        name: started.name,
                        dir: started.dir,
                        ready,
                        child: started.child,
                        stdin: started.stdin,
                    });
                }
                seen.push(line);
            }
            Err(why) => {
                let _ = started.child.kill();
                let _ = started.child.wait();
                let log = std::fs::read_to_string(started.dir.join("node.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(DevnetError::NotReady {
                    name: started.name,
                    reason: format!(
                        "{}; last log lines: {}",
                        match why {
                            mpsc::RecvTimeoutError::Timeout =>
                                format!("no ready line within {} s", READY_TIMEOUT.as_secs()),
                            mpsc::RecvTimeoutError::Disconnected => "it exited".to_owned(),
                        },
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ),
                });
            }
        }
    }
}

fn spawn(
    dir: &Path,
    i: usize,
    bootstrap: Option<&str>,
    options: &UpOptions,
) -> Result<NodeProcess, DevnetError> {
    wait_ready(start_process(dir, i, bootstrap, options)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    #[test]
    fn init_funds_the_user_every_farmer_and_the_cluster_manager() {
        let dir = tempfile::tempdir().unwrap();
        let user = Keypair::generate().account_id();
        assert!(init(dir.path(), 3, &user).unwrap());
        assert!(!init(dir.path(), 3, &user).unwrap(), "reused");
        let genesis = Genesis::load(&dir.path().join(GENESIS_FILE)).unwrap();
        let chain = peercloud_node::chain::Chain::open(dir.path(), &genesis).unwrap();
        let state = chain.state();
        assert_eq!(state.balance(&user), Amount::from_tokens(USER_TOKENS));
        for i in 1..=3 {
            let owner = Keypair::load(&node_dir(dir.path(), i).join(OWNER_KEY_FILE)).unwrap();
            assert_eq!(
                state.balance(&owner.account_id()),
                Amount::from_tokens(FARMER_TOKENS)
            );
        }
        let manager = crate::cluster::manager_key(dir.path()).unwrap();
        assert_eq!(
            state.balance(&manager.account_id()),
            Amount::from_tokens(MANAGER_TOKENS)
        );
        assert!(init(dir.path(), 0, &user).is_err());
    }
}

//! `peercloud node`: runs this machine as a grid member until Ctrl-C.
//! Settings: a flag beats its environment variable (clap reads both), which
//! beats `<data-dir>/config.toml` (or `--config`), which beats the default.
//! `peercloud node earnings` asks a running node instead (`earnings.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use peercloud_api::{EARNINGS_LIMIT_MAX, Role};
use peercloud_node::config::{NodeConfig, Settings};
use peercloud_node::daemon::Node;
use peercloud_node::ready::Ready;

/// How long a provider waits for its registration before it says it is ready anyway.
const REGISTRATION_WAIT: Duration = Duration::from_secs(60);

/// Threads for blocking work (chunk writes, sandbox runs): enough to keep the
/// disks and both cores busy, few enough that an idle node holds few stacks.
const BLOCKING_THREADS_MAX: usize = 64;
/// An idle blocking thread exits after this (tokio's default is 10 s).
const BLOCKING_THREAD_IDLE: Duration = Duration::from_secs(1);

/// Options of `peercloud node`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    /// Ask a running node instead of running one.
    #[command(subcommand)]
    pub command: Option<NodeCommand>,
    /// A TOML config file (default: <data-dir>/config.toml when present).
    #[arg(long, env = "PEERCLOUD_CONFIG")]
    config: Option<PathBuf>,
    /// libp2p address to listen on (repeatable).
    #[arg(long, env = "PEERCLOUD_LISTEN", value_delimiter = ',')]
    listen: Vec<String>,
    /// A peer to join through, ending in /p2p/<peer id> (repeatable).
    #[arg(long, env = "PEERCLOUD_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// A relay to reserve a slot on when this node is behind NAT, ending in
    /// /p2p/<peer id> (repeatable; default: any connected peer that relays).
    #[arg(long = "relay", env = "PEERCLOUD_RELAYS", value_delimiter = ',')]
    relays: Vec<String>,
    /// An address others reach this node at: a public IP, a forwarded port
    /// (repeatable).
    #[arg(long, env = "PEERCLOUD_EXTERNAL", value_delimiter = ',')]
    external: Vec<String>,
    /// Do not relay for peers behind NAT (by default a node that peers can
    /// reach relays for those they cannot).
    #[arg(long, env = "PEERCLOUD_NO_RELAY_SERVICE")]
    no_relay_service: bool,
    /// The peers are on a private network (a LAN, a lab): private addresses
    /// count as reachable when the node tests whether it is behind NAT.
    #[arg(long, env = "PEERCLOUD_PRIVATE_NETWORK")]
    private_network: bool,
    /// Address of the HTTP API (loopback only).
    #[arg(long, env = "PEERCLOUD_API")]
    api: Option<String>,
    /// Address of the web gateway that serves public buckets' sites
    /// (default: loopback, a free port; 0.0.0.0:8080 serves other machines).
    #[arg(long, env = "PEERCLOUD_WEB")]
    web: Option<String>,
    /// Address of the S3 gateway for S3 clients signing with `peercloud s3
    /// key create` keys (default: loopback, a free port).
    #[arg(long, env = "PEERCLOUD_S3")]
    s3: Option<String>,
    /// Two-letter country code this node registers.
    #[arg(long, env = "PEERCLOUD_LOCATION")]
    location: Option<String>,
    /// CPU offered, in millicores (default: every core).
    #[arg(long, env = "PEERCLOUD_CPU_MILLICORES")]
    cpu_millicores: Option<u64>,
    /// Memory offered, in bytes (default: half the free memory).
    #[arg(long, env = "PEERCLOUD_MEMORY_BYTES")]
    memory_bytes: Option<u64>,
    /// Storage offered, in bytes (default: half the free disk).
    #[arg(long, env = "PEERCLOUD_STORAGE_BYTES")]
    storage_bytes: Option<u64>,
    /// Disk the edge cache may use for public pieces served to web visitors,
    /// in bytes (default: 1 GiB, at most the storage offered; 0 turns it off).
    #[arg(long, env = "PEERCLOUD_EDGE_CACHE_BYTES")]
    edge_cache_bytes: Option<u64>,
    /// Flat price per job, in PCL.
    #[arg(long, env = "PEERCLOUD_PRICE_JOB")]
    price_job: Option<String>,
    /// Price per billion units of fuel, in PCL.
    #[arg(long, env = "PEERCLOUD_PRICE_GIGAFUEL")]
    price_gigafuel: Option<String>,
    /// A leased space's floor per core-hour of CPU, in PCL (default 0.05).
    #[arg(long, env = "PEERCLOUD_LEASE_PRICE_CPU_CORE_HOUR")]
    lease_price_cpu_core_hour: Option<String>,
    /// A leased space's floor per GiB-hour of memory, in PCL (default 0.005).
    #[arg(long, env = "PEERCLOUD_LEASE_PRICE_MEMORY_GIB_HOUR")]
    lease_price_memory_gib_hour: Option<String>,
    /// A leased space's floor per GiB-hour of disk, in PCL (default 0.0001).
    #[arg(long, env = "PEERCLOUD_LEASE_PRICE_STORAGE_GIB_HOUR")]
    lease_price_storage_gib_hour: Option<String>,
    /// Stop when standard input closes (set by `devnet up` for its children).
    #[arg(long, hide = true)]
    stop_with_parent: bool,
}

/// What to ask a running node (the API options say which: `--node-dir DIR`
/// for your own node's data directory).
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Who the node is, its peers and addresses, and whether peers can reach
    /// it (public, or behind NAT through which relays).
    Status,
    /// What the node earned from storage: totals (storage, bandwidth, per
    /// bucket), its reputation and the stake it locked in clusters, then its
    /// most recent payments.
    Earnings {
        /// Recent payments to list, newest first (0 lists none).
        #[arg(
            long,
            value_name = "N",
            default_value_t = 20,
            value_parser = clap::value_parser!(u32).range(0..=i64::from(EARNINGS_LIMIT_MAX))
        )]
        limit: u32,
    },
}

impl NodeArgs {
    fn settings(&self) -> Settings {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        Settings {
            listen: list(&self.listen),
            bootstrap: list(&self.bootstrap),
            relays: list(&self.relays),
            external: list(&self.external),
            relay_service: self.no_relay_service.then_some(false),
            private_network: self.private_network.then_some(true),
            api: self.api.clone(),
            web: self.web.clone(),
            s3: self.s3.clone(),
            location: self.location.clone(),
            cpu_millicores: self.cpu_millicores,
            memory_bytes: self.memory_bytes,
            storage_bytes: self.storage_bytes,
            bandwidth_bytes_per_sec: None,
            price_job: self.price_job.clone(),
            price_gigafuel: self.price_gigafuel.clone(),
            lease_price_cpu_core_hour: self.lease_price_cpu_core_hour.clone(),
            lease_price_memory_gib_hour: self.lease_price_memory_gib_hour.clone(),
            lease_price_storage_gib_hour: self.lease_price_storage_gib_hour.clone(),
            stake: None,
            edge_cache_bytes: self.edge_cache_bytes,
        }
    }
}

/// Runs the node in `data_dir` until Ctrl-C, SIGTERM or (with
/// `--stop-with-parent`) the end of standard input.
pub fn run(args: NodeArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::resolve(data_dir, args.config.as_deref(), args.settings())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_MAX)
        .thread_keep_alive(BLOCKING_THREAD_IDLE)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let node = Node::start(config)
            .await
            .with_context(|| format!("starting the node in {}", data_dir.display()))?;
        if !node.wait_registered(REGISTRATION_WAIT).await {
            tracing::warn!("registration is not on the ledger yet; serving anyway");
        }
        let inner = &node.inner;
        let p2p = inner
            .net
            .listen_addrs()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let ready = Ready {
            node: inner.node_id().to_string(),
            role: if inner.is_validator() {
                Role::Validator
            } else {
                Role::Provider
            }
            .to_string(),
            p2p,
            api: format!("http://{}", node.api),
            web: Some(format!("http://{}", node.web)),
            s3: Some(format!("http://{}", node.s3)),
        };
        println!("{}", ready.line());
        wait_for_stop(args.stop_with_parent).await;
        node.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_stop(stop_with_parent: bool) {
    // Stdin is watched on a plain thread, not tokio's blocking pool: the
    // runtime waits for its blocking tasks when it shuts down, and a read
    // of an open stdin never ends, so a SIGTERM would leave the process
    // hanging. A plain thread dies with the process.
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    if stop_with_parent {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = closed.send(());
        });
    } else {
        drop(closed);
    }
    let stdin_closed = async {
        if stdin_closed.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = stdin_closed => {}
    }
}

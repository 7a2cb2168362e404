//! What the multi-process tests (`devnet.rs`, `faults.rs`) share: a devnet of
//! real `peercloud node` processes in a temporary directory with a funded user
//! wallet ([`Net`]), the `peercloud` binary run as a user runs it, a time bound
//! on every test ([`bounded`]), job specs built from the embedded workloads,
//! and the ledger numbers the tests compare.
//!
//! Every test holds one lock while it runs: each devnet is four or more
//! processes and the machine has two cores, so tests in one binary run one
//! after another rather than starving each other's deadlines.
//!
//! When a test fails, [`Net`]'s drop prints the tail of every node's log and
//! keeps the devnet directory for a look; the processes are stopped either way.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peercloud_api::{AccountView, LedgerView};
use peercloud_client::NodeClient;
use peercloud_devnet::amounts::cluster_terms;
use peercloud_devnet::{Devnet, UpOptions, init, node_dir};
use peercloud_ledger::ClusterTerms;
use peercloud_types::{AccountId, Amount, Hash32, Keypair, NodeId};

/// Providers in a devnet unless a test needs another count.
pub const PROVIDERS: usize = 3;
/// How long `run_job` collects offers. The node stops collecting as soon as
/// every registered provider has answered (offer or decline), so a healthy
/// devnet never waits this long; it only bounds a provider that is slow to
/// answer on a loaded machine.
pub const OFFER_WINDOW_MS: u64 = 5_000;
/// How long the nodes may take to agree on one tip after the last
/// transaction: a block reaches every follower by gossip within milliseconds,
/// and a missed one by the two-second sync.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the tests poll a node's API while waiting for something.
pub const POLL: Duration = Duration::from_millis(50);
/// Lines of each node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// Serialises the tests of one binary (see the module header).
static SERIAL: Mutex<()> = Mutex::new(());
/// The devnet directory of the test running now, for the log tails printed
/// when the test overruns its bound.
static CURRENT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Runs `test` on its own thread and waits at most `limit` for it. A panic
/// in the test is re-raised here; an overrun panics naming the test and the
/// bound, after printing the devnet's log tails (its processes stop when the
/// test binary exits: they are started with `--stop-with-parent`).
pub fn bounded<T: Send + 'static>(
    name: &str,
    limit: Duration,
    test: impl FnOnce() -> T + Send + 'static,
) -> T {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let value = test();
            let _ = done.send(());
            value
        })
        .expect("the test thread starts");
    match finished.recv_timeout(limit) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(value) => {
                println!("{name}: done in {:.1} s", started.elapsed().as_secs_f64());
                value
            }
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(RecvTimeoutError::Timeout) => {
            let dir = CURRENT
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(dir) = dir {
                print_log_tails(&dir);
            }
            panic!(
                "{name} overran its bound of {} s (the node logs above say where it stuck)",
                limit.as_secs()
            );
        }
    }
}

/// A running devnet in a temporary directory, with the user's data directory
/// (its `wallet.key` funded at genesis) and a scratch directory for files.
#[derive(Debug)]
pub struct Net {
    /// The node processes (index 0 the validator). Declared first so they
    /// stop before the directory is removed.
    pub devnet: Devnet,
    /// The user's wallet.
    pub user: Keypair,
    /// The user's data directory (`--data-dir`): holds `wallet.key`.
    pub data_dir: PathBuf,
    /// Scratch space for specs, modules, inputs and outputs.
    pub work: PathBuf,
    root: tempfile::TempDir,
}

impl Net {
    /// Starts a validator and `providers` providers; `env` sets variables of
    /// provider `i` (1-based), like a fault switch. Waits until every node
    /// sees every provider registered at the same tip.
    pub fn up(providers: usize, env: Vec<(usize, String, String)>) -> Net {
        Net::up_with_terms(providers, env, cluster_terms(providers))
    }

    /// [`Net::up`] whose storage cluster has `terms` (a billing period of
    /// seconds, say).
    pub fn up_with_terms(
        providers: usize,
        env: Vec<(usize, String, String)>,
        terms: ClusterTerms,
    ) -> Net {
        let root = tempfile::Builder::new()
            .prefix("peercloud-devnet-test-")
            .tempdir()
            .expect("a temporary directory");
        let data_dir = root.path().join("user");
        let work = root.path().join("work");
        for dir in [&data_dir, &work] {
            std::fs::create_dir_all(dir).expect("creating a test directory");
        }
        // The wallet exists before the genesis that funds it, as a user's would.
        let user = Keypair::generate();
        user.save(&data_dir.join("wallet.key"))
            .expect("saving the user's wallet");
        let devnet_dir = root.path().join("devnet");
        assert!(
            init(&devnet_dir, providers, &user.account_id()).expect("devnet init"),
            "a new devnet directory is initialised, not reused"
        );
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(devnet_dir.clone());
        let options = UpOptions {
            exe: PathBuf::from(env!("CARGO_BIN_EXE_peercloud")),
            env,
            log: Some("info".into()),
            netns: Vec::new(),
        };
        let started = Instant::now();
        let devnet = Devnet::up_with_terms(&devnet_dir, providers, &options, terms)
            .expect("the devnet comes up");
        let net = Net {
            devnet,
            user,
            data_dir,
            work,
            root,
        };
        let all: Vec<usize> = (0..=providers).collect();
        let view = net.converged(&all);
        assert_eq!(
            view.nodes.len(),
            providers,
            "every provider is registered on the ledger"
        );
        println!(
            "devnet of 1 validator + {providers} providers up and agreed at height {} in {:.1} s",
            view.height,
            started.elapsed().as_secs_f64()
        );
        net
    }

    /// The devnet's directory.
    pub fn dir(&self) -> &Path {
        &self.devnet.dir
    }

    /// Node `i`'s data directory.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        node_dir(self.dir(), i)
    }

    /// A client of node `i`'s API.
    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::from_node_dir(&self.node_dir(i)).expect("a client of the node's API")
    }

    /// Node `i`'s id (`pcn1…`), as it printed it.
    pub fn node_id(&self, i: usize) -> NodeId {
        let text = &self.devnet.nodes[i].ready.node;
        text.parse()
            .unwrap_or_else(|e| panic!("node-{i} printed {text:?}, not a node id: {e}"))
    }

    /// The devnet index of the node whose id is `node`.
    pub fn index_of(&self, node: &NodeId) -> usize {
        let text = node.to_string();
        self.devnet
            .nodes
            .iter()
            .position(|n| n.ready.node == text)
            .unwrap_or_else(|| panic!("{node} is not a node of this devnet"))
    }

    /// Runs `peercloud --data-dir <user> --node-dir <node i> ARGS`.
    pub fn cli(&self, node: usize, args: &[&str]) -> Output {
        let mut full = vec![
            "--data-dir".to_owned(),
            path_text(&self.data_dir).to_owned(),
            "--node-dir".to_owned(),
            path_text(&self.node_dir(node)).to_owned(),
        ];
        full.extend(args.iter().map(|a| (*a).to_owned()));
        peercloud(&full)
    }

    /// The account as node `i`'s ledger has it.
    pub fn account(&self, i: usize, account: &AccountId) -> AccountView {
        self.client(i).account(account).expect("the account view")
    }

    /// The balance of `account` on node `i`'s ledger.
    pub fn balance(&self, i: usize, account: &AccountId) -> Amount {
        self.account(i, account).balance
    }

    /// Waits until the nodes `live` report the same height and state root,
    /// and returns that view; panics after [`CONVERGE_TIMEOUT`] naming what
    /// each node reported.
    pub fn converged(&self, live: &[usize]) -> LedgerView {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let views: Vec<(usize, Result<LedgerView, String>)> = live
                .iter()
                .map(|i| (*i, self.client(*i).ledger().map_err(|e| e.to_string())))
                .collect();
            let tips: Vec<(u64, Hash32)> = views
                .iter()
                .filter_map(|(_, v)| v.as_ref().ok())
                .map(|v| (v.height, v.state_root))
                .collect();
            if tips.len() == live.len() && tips.windows(2).all(|w| w[0] == w[1]) {
                let (_, first) = views.into_iter().next().expect("at least one node");
                return first.expect("checked above");
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = views
                    .iter()
                    .map(|(i, v)| match v {
                        Ok(v) => format!("node-{i}: height {} root {}", v.height, v.state_root),
                        Err(e) => format!("node-{i}: {e}"),
                    })
                    .collect();
                panic!(
                    "the nodes did not agree on one tip within {} s: {}",
                    CONVERGE_TIMEOUT.as_secs(),
                    seen.join("; ")
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Each registered node's owner, by node id, from a ledger view.
    pub fn owners(view: &LedgerView) -> BTreeMap<NodeId, AccountId> {
        view.nodes.iter().map(|n| (n.node, n.owner)).collect()
    }

    /// A node's reputation in a ledger view.
    pub fn reputation(view: &LedgerView, node: &NodeId) -> u32 {
        view.nodes
            .iter()
            .find(|n| n.node == *node)
            .unwrap_or_else(|| panic!("{node} is not registered"))
            .reputation
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = None;
        if std::thread::panicking() {
            print_log_tails(self.dir());
            self.root.disable_cleanup(true);
            eprintln!("devnet kept for a look: {}", self.root.path().display());
        }
    }
}

/// Prints the last lines of every node's `node.log` under `dir`.
fn print_log_tails(dir: &Path) {
    for i in 0.. {
        let node = node_dir(dir, i);
        if !node.exists() {
            break;
        }
        let log = std::fs::read_to_string(node.join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        eprintln!("---- node-{i} log (last {} lines) ----", tail.len());
        for line in tail {
            eprintln!("{line}");
        }
    }
}

/// Runs the `peercloud` binary with `args`, with no node chosen from the
/// environment (the tests name the node on the command line).
pub fn peercloud<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peercloud"))
        .args(args)
        .env_remove("PEERCLOUD_NODE")
        .env_remove("PEERCLOUD_NODE_DIR")
        .env_remove("PEERCLOUD_TOKEN_FILE")
        .env_remove("PEERCLOUD_DATA_DIR")
        .output()
        .expect("the peercloud binary runs")
}

/// The command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command's standard output parsed as JSON, after asserting it succeeded.
pub fn json_of(what: &str, out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A path as UTF-8 (the temporary directories are).
pub fn path_text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Parses an amount the API sent.
pub fn pcl(text: &str) -> Amount {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not an amount: {e}"))
}

/// `a - b`, panicking with both when it would go below zero.
pub fn minus(a: Amount, b: Amount) -> Amount {
    a.checked_sub(b)
        .unwrap_or_else(|| panic!("{a} PCL - {b} PCL is below zero"))
}

/// `a + b`.
pub fn plus(a: Amount, b: Amount) -> Amount {
    a.checked_add(b)
        .expect("amounts in a devnet never overflow")
}

/// `n` transaction fees.
pub fn fees(n: u128) -> Amount {
    peercloud_devnet::amounts::TX_FEE
        .checked_mul(n)
        .expect("a few fees never overflow")
}

/// Writes the wordcount module and the corpus into `dir`, and a spec named
/// `name.json` that counts the corpus's words on `redundancy` nodes.
pub fn wordcount_spec(dir: &Path, name: &str, redundancy: u8, deadline_secs: u64) -> PathBuf {
    std::fs::write(dir.join("wordcount.wasm"), peercloud_workloads::WORDCOUNT)
        .expect("writing the module");
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).expect("creating the corpus directory");
    let mut inputs = Vec::new();
    for (file, text) in peercloud_workloads::corpus() {
        std::fs::write(corpus.join(file), text).expect("writing a corpus file");
        inputs.push(serde_json::json!({"name": file, "source": format!("corpus/{file}")}));
    }
    let spec = serde_json::json!({
        "version": 1,
        "name": name,
        "module": "wordcount.wasm",
        "args": ["--top", "20"],
        "inputs": inputs,
        "outputs": ["counts.json"],
        "resources": {"cpu_millicores": 1000, "memory_bytes": 134_217_728u64},
        "limits": {"fuel": 1_000_000_000u64, "memory_bytes": 67_108_864u64,
                   "wall_time_ms": 30_000, "output_bytes": 1_048_576},
        "redundancy": redundancy,
        "max_price": "0.01",
        "deadline_secs": deadline_secs,
        "seed": 1,
    });
    write_spec(dir, name, &spec)
}

/// Writes the kernel module into `dir`, and a spec named `name.json` that
/// mixes `iterations` rounds on `redundancy` nodes, each holding
/// `memory_bytes` of memory.
pub fn kernel_spec(
    dir: &Path,
    name: &str,
    iterations: u64,
    redundancy: u8,
    deadline_secs: u64,
    memory_bytes: u64,
) -> PathBuf {
    std::fs::write(dir.join("kernel.wasm"), peercloud_workloads::KERNEL)
        .expect("writing the module");
    let spec = serde_json::json!({
        "version": 1,
        "name": name,
        "module": "kernel.wasm",
        "args": ["--iterations", iterations.to_string()],
        "outputs": [],
        "resources": {"cpu_millicores": 1000, "memory_bytes": memory_bytes},
        // About 29 fuel per iteration; the bound leaves room for three times that.
        "limits": {"fuel": iterations.saturating_mul(100).max(1_000_000),
                   "memory_bytes": 67_108_864u64, "wall_time_ms": 60_000,
                   "output_bytes": 1_048_576},
        "redundancy": redundancy,
        "max_price": "1",
        "deadline_secs": deadline_secs,
        "seed": 7,
    });
    write_spec(dir, name, &spec)
}

fn write_spec(dir: &Path, name: &str, spec: &serde_json::Value) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(spec).expect("a spec serialises"),
    )
    .expect("writing the spec");
    path
}

/// Runs `spec` in this machine's sandbox (`job run --local --json`) with
/// its outputs in `out`; returns the printed report.
pub fn local_run(spec: &Path, out: &Path) -> serde_json::Value {
    let run = peercloud(&[
        "job",
        "run",
        path_text(spec),
        "--local",
        "--out",
        path_text(out),
        "--json",
    ]);
    json_of("job run --local", &run)
}

/// Writes `bytes` bytes of pseudo-random data (incompressible, different on
/// every run) to `path`.
pub fn random_file(path: &Path, bytes: usize) {
    let mut state = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut data = Vec::with_capacity(bytes + 8);
    while data.len() < bytes {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        data.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(bytes);
    let mut file = std::fs::File::create(path).expect("creating the file");
    file.write_all(&data).expect("writing the file");
}

/// `store put FILE --json` through node `node`; returns the object's CID.
pub fn store_put(net: &Net, node: usize, file: &Path) -> String {
    let out = net.cli(node, &["store", "put", path_text(file), "--json"]);
    let json = json_of("store put", &out);
    json["cid"]
        .as_str()
        .expect("store put --json names the CID")
        .to_owned()
}

/// `store get CID -o FILE --json` through node `node`; returns the bytes written.
pub fn store_get(net: &Net, node: usize, cid: &str, file: &Path) -> Vec<u8> {
    let out = net.cli(
        node,
        &["store", "get", cid, "-o", path_text(file), "--json"],
    );
    json_of(&format!("store get through node-{node}"), &out);
    std::fs::read(file).expect("store get wrote the file")
}

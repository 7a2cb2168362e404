//! The grid benchmark: a real devnet (one validator and six providers as
//! separate `peercloud node` processes on loopback, in a temp dir) driven the
//! way the CLI drives it, with the figures a user feels:
//!
//! 1. **Job latency**: a trivial job (`kernel --iterations 1000`, redundancy
//!    2, the default offer window) from submit to verified output through
//!    [`run_job`]; min / median / p90 of the total and the median of each
//!    phase. The module is stored once, so each run measures the job, not
//!    the upload.
//! 2. **Store throughput**: `store put` / `store get` of a file of random
//!    bytes with 3 replicas and with RS(4+2) erasure coding, through
//!    [`ApiStore`] + `put_object` / `get_object` as the CLI does it (a get
//!    writes, flushes and fsyncs its file), next to the raw ceiling measured
//!    in the same run: writing and fsyncing the same bytes three times (the
//!    three replicas share this disk; RS(4+2) writes 1.5 times, and its
//!    ratio to that ceiling of its own is printed too), and the CPU the
//!    nodes and the client burnt meanwhile (a figure at 100% of the cores is
//!    CPU-bound, one well under it waits).
//! 3. **Idle memory**: each node's resident set (`VmRSS`) a few seconds after
//!    the runs.
//!
//! Run: `cargo bench -p peercloud-cli --bench grid`. Quick run:
//! `PEERCLOUD_BENCH_RUNS=5 PEERCLOUD_BENCH_STORE_MIB=32 cargo bench -p
//! peercloud-cli --bench grid` (`PEERCLOUD_BENCH_STORE_MIB=0` skips the store
//! part). `PEERCLOUD_BENCH_VERBOSE=1` prints every job run's phases;
//! `PEERCLOUD_BENCH_KEEP=1` keeps the devnet directory (node logs) for
//! profiling. It prints medians itself (no criterion): every sample is a
//! whole multi-process flow, and its variance is part of the finding.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use peercloud_client::Phase;
use peercloud_client::{ApiStore, NodeClient};
use peercloud_client::{Content, JobBundle, RunOptions, run_job};
use peercloud_devnet::{Devnet, UpOptions, init, node_dir};
use peercloud_store::{PutOptions, Redundancy, get_object, put_object};
use peercloud_types::{JobSpec, Keypair};

/// Providers the devnet starts (plus the validator): one per piece of an
/// RS(4+2) group (so also enough for 3 replicas and a redundancy-2 job).
const PROVIDERS: usize = 6;
/// The provider whose API the user talks to: node-1 is the CLI's default.
const USER_NODE: usize = 1;
/// Measured job runs by default (`PEERCLOUD_BENCH_RUNS`): 20 gives a stable
/// median and a p90 that is not the maximum.
const JOB_RUNS_DEFAULT: usize = 20;
/// Job runs before measuring (the task's protocol): they pay the gossip mesh
/// forming and the module's compile on the two providers they land on. The
/// third provider compiles it (~100 ms) in a measured run: that is the max,
/// as a user's first job on a node would see it.
const JOB_WARM_UP_RUNS: usize = 2;
/// Iterations of the kernel: trivial (microseconds), so a run measures the
/// grid, not the module.
const KERNEL_ITERATIONS: u64 = 1_000;
/// Nodes that run each job.
const JOB_REDUNDANCY: u8 = 2;
/// Object size of the store part by default, in MiB (`PEERCLOUD_BENCH_STORE_MIB`).
const STORE_MIB_DEFAULT: u64 = 256;
/// Puts, gets and ceiling measurements each: 3 give a median.
const STORE_RUNS: usize = 3;
/// Copies of every chunk the network keeps (the ceiling writes as many).
const REPLICAS: usize = 3;
/// Data chunks per group of the erasure-coded runs.
const ERASURE_DATA: u8 = 4;
/// Parity chunks per group of the erasure-coded runs.
const ERASURE_PARITY: u8 = 2;
/// Write size of the random file and the ceiling: large sequential writes.
const WRITE_BYTES: usize = 8 << 20;
/// How long the nodes idle before their memory is read.
const IDLE_WAIT: Duration = Duration::from_secs(3);
/// How long the user's node may take to see every provider registered.
const REGISTERED_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the ledger is polled while waiting for the providers.
const POLL: Duration = Duration::from_millis(50);
/// Target: median job latency.
const JOB_MEDIAN_TARGET: Duration = Duration::from_millis(100);
/// Target: put throughput, MB/s (1 MB = 1e6 bytes).
const PUT_TARGET_MB_PER_SEC: f64 = 500.0;
/// Target: get throughput, MB/s.
const GET_TARGET_MB_PER_SEC: f64 = 800.0;
/// Target: an idle node's resident memory, MB.
const IDLE_RSS_TARGET_MB: f64 = 40.0;
/// Bytes per MB in every figure printed.
const BYTES_PER_MB: f64 = 1e6;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs bench
    // targets without it, and must not start a devnet for minutes.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("grid: a benchmark; run it with `cargo bench -p peercloud-cli --bench grid`");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("grid bench failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the environment asked for.
struct Settings {
    job_runs: usize,
    store_mib: u64,
    verbose: bool,
    keep: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse()
                    .with_context(|| format!("{name}={text:?} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
        let job_runs = usize::try_from(number("PEERCLOUD_BENCH_RUNS", JOB_RUNS_DEFAULT as u64)?)
            .context("PEERCLOUD_BENCH_RUNS is too large")?;
        ensure!(job_runs > 0, "PEERCLOUD_BENCH_RUNS must be at least 1");
        Ok(Settings {
            job_runs,
            store_mib: number("PEERCLOUD_BENCH_STORE_MIB", STORE_MIB_DEFAULT)?,
            verbose: flag("PEERCLOUD_BENCH_VERBOSE"),
            keep: flag("PEERCLOUD_BENCH_KEEP"),
        })
    }
}

/// The `peercloud` binary cargo built for this bench.
fn peercloud_exe() -> anyhow::Result<PathBuf> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_peercloud"));
    ensure!(
        exe.is_file(),
        "the peercloud binary is missing at {} (build it with `cargo bench -p peercloud-cli --no-run`)",
        exe.display()
    );
    Ok(exe)
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let exe = peercloud_exe()?;
    let temp = tempfile::Builder::new()
        .prefix("peercloud-grid-bench-")
        .tempdir()
        .context("creating the bench's temp dir")?;
    let dir = temp.path().to_owned();
    if settings.keep {
        // Dropping the guard without deleting: the logs stay for profiling.
        let _ = temp.keep();
    }
    println!("grid bench: {}", machine_facts());
    println!(
        "devnet: 1 validator + {PROVIDERS} providers on loopback in {}",
        dir.display()
    );

    let wallet = Keypair::generate();
    let devnet_dir = dir.join("devnet");
    init(&devnet_dir, PROVIDERS, &wallet.account_id()).context("writing the devnet")?;
    let options = UpOptions {
        exe,
        env: Vec::new(),
        log: std::env::var("PEERCLOUD_LOG").ok(),
        netns: Vec::new(),
    };
    let started = Instant::now();
    let devnet = Devnet::up(&devnet_dir, PROVIDERS, &options).context("starting the devnet")?;
    let client = NodeClient::from_node_dir(&node_dir(&devnet_dir, USER_NODE))
        .context("connecting to node-1's API")?;
    wait_for_providers(&client)?;
    println!(
        "devnet up in {} ms (pids {})",
        started.elapsed().as_millis(),
        devnet
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.pid()))
            .collect::<Vec<_>>()
            .join(" ")
    );

    bench_jobs(&client, &wallet, &settings)?;
    if settings.store_mib > 0 {
        let pids: Vec<u32> = devnet.nodes.iter().map(|n| n.pid()).collect();
        bench_store(&client, &wallet, &dir, settings.store_mib, &pids)?;
    } else {
        println!("\nstore: skipped (PEERCLOUD_BENCH_STORE_MIB=0)");
    }
    bench_idle_memory(&devnet)?;
    drop(devnet);
    if settings.keep {
        println!("\nkept {} (node logs in node-*/node.log)", dir.display());
    }
    Ok(())
}

/// Cores, CPU model and memory: the facts the figures depend on.
fn machine_facts() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
        .map_or("unknown CPU", str::trim);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = proc_kib(&meminfo, "MemTotal:").map_or("unknown".to_owned(), |kib| {
        format!("{:.1} GiB", kib as f64 / f64::from(1 << 20))
    });
    format!("{cores} cores ({model}), {memory} memory")
}

/// Waits until the user's node sees every provider registered (placement
/// and the offer count both read the ledger).
fn wait_for_providers(client: &NodeClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + REGISTERED_TIMEOUT;
    loop {
        let ledger = client.ledger().context("reading node-1's ledger")?;
        if ledger.nodes.len() >= PROVIDERS {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "node-1 sees {} of {PROVIDERS} providers registered after {} s",
            ledger.nodes.len(),
            REGISTERED_TIMEOUT.as_secs()
        );
        std::thread::sleep(POLL);
    }
}

/// The kernel job, its module already stored under `module`.
fn kernel_spec(module: &str) -> anyhow::Result<JobSpec> {
    let json = serde_json::json!({
        "version": 1,
        "name": "grid bench: kernel --iterations 1000",
        "module": module,
        "args": ["--iterations", KERNEL_ITERATIONS.to_string()],
        "outputs": [],
        "resources": {"cpu_millicores": 1000, "memory_bytes": 67_108_864},
        "limits": {"fuel": 100_000_000, "memory_bytes": 67_108_864, "wall_time_ms": 10_000, "output_bytes": 1_048_576},
        "redundancy": JOB_REDUNDANCY,
        "max_price": "0.05",
        "deadline_secs": 30,
        "seed": 1
    });
    JobSpec::from_json(&json.to_string()).context("the bench's kernel spec")
}

fn bench_jobs(client: &NodeClient, wallet: &Keypair, settings: &Settings) -> anyhow::Result<()> {
    let store = ApiStore::new(client.clone());
    let options = PutOptions {
        name: Some("kernel.wasm".into()),
        ..PutOptions::default()
    };
    let module = put_object(
        &store,
        peercloud_workloads::KERNEL,
        &wallet.public(),
        &options,
    )
    .context("storing the kernel module")?;
    let bundle = JobBundle {
        spec: kernel_spec(&module.manifest_cid.to_string())?,
        module: Content::Stored(module.manifest_cid),
        inputs: Vec::new(),
    };
    let run_options = RunOptions::default();
    println!(
        "\njob: kernel --iterations {KERNEL_ITERATIONS}, redundancy {JOB_REDUNDANCY}, offer window {} ms \
         (default), module stored once; {} runs after {JOB_WARM_UP_RUNS} warm-up",
        run_options.offer_window_ms, settings.job_runs
    );
    let mut totals = Vec::with_capacity(settings.job_runs);
    let mut phases: Vec<Vec<Duration>> =
        vec![Vec::with_capacity(settings.job_runs); Phase::ALL.len()];
    for run in 0..JOB_WARM_UP_RUNS + settings.job_runs {
        let started = Instant::now();
        let report = run_job(client, wallet, &bundle, &run_options)
            .with_context(|| format!("job run {run}"))?;
        let total = started.elapsed();
        ensure!(
            report.paid.len() == usize::from(JOB_REDUNDANCY),
            "job run {run}: {} nodes paid, {JOB_REDUNDANCY} expected (no verified majority)",
            report.paid.len()
        );
        let warm_up = run < JOB_WARM_UP_RUNS;
        if settings.verbose {
            println!(
                "  run {run:>2}{} total {:>7.1} ms: {}",
                if warm_up { " (warm-up)" } else { "" },
                ms(total),
                report
                    .phases
                    .iter()
                    .map(|(name, took)| format!("{name} {:.1}", ms(*took)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if warm_up {
            continue;
        }
        totals.push(total);
        for (index, name) in Phase::ALL.iter().enumerate() {
            let took = report
                .phases
                .iter()
                .find(|(phase, _)| phase == name)
                .map_or(Duration::ZERO, |(_, took)| *took);
            phases[index].push(took);
        }
    }
    let median = percentile(&totals, 50);
    println!(
        "  total      min {:.1} ms  median {:.1} ms  p90 {:.1} ms  max {:.1} ms   target median <= {} ms: {}",
        ms(percentile(&totals, 0)),
        ms(median),
        ms(percentile(&totals, 90)),
        ms(percentile(&totals, 100)),
        JOB_MEDIAN_TARGET.as_millis(),
        verdict(median <= JOB_MEDIAN_TARGET)
    );
    let medians: Vec<String> = Phase::ALL
        .iter()
        .zip(&phases)
        .map(|(name, samples)| format!("{name} {:.1}", ms(percentile(samples, 50))))
        .collect();
    println!("  phases     median ms: {}", medians.join(", "));
    let maxima: Vec<String> = Phase::ALL
        .iter()
        .zip(&phases)
        .map(|(name, samples)| format!("{name} {:.1}", ms(percentile(samples, 100))))
        .collect();
    println!("             max ms:    {}", maxima.join(", "));
    Ok(())
}

fn bench_store(
    client: &NodeClient,
    wallet: &Keypair,
    dir: &Path,
    store_mib: u64,
    node_pids: &[u32],
) -> anyhow::Result<()> {
    let bytes = usize::try_from(store_mib << 20).context("PEERCLOUD_BENCH_STORE_MIB too large")?;
    let mut data = vec![0u8; bytes];
    for piece in data.chunks_mut(WRITE_BYTES) {
        getrandom::fill(piece).map_err(|e| anyhow!("drawing random bytes: {e}"))?;
    }
    let source = dir.join("random.bin");
    write_synced(&source, &data)?;
    println!(
        "\nstore: {store_mib} MiB of random bytes, {REPLICAS} replicas and RS({ERASURE_DATA}+{ERASURE_PARITY}), \
         {STORE_RUNS} runs each, through node-1's API (ApiStore + put_object / get_object, as \
         `store put [--erasure {ERASURE_DATA}+{ERASURE_PARITY}]` / `store get`)"
    );

    // The ceiling: the same bytes written and fsynced once per replica.
    let mut ceiling = Vec::with_capacity(STORE_RUNS);
    for run in 0..STORE_RUNS {
        let started = Instant::now();
        for replica in 0..REPLICAS {
            write_synced(&dir.join(format!("ceiling-{run}-{replica}.bin")), &data)?;
        }
        ceiling.push(started.elapsed());
        for replica in 0..REPLICAS {
            let path = dir.join(format!("ceiling-{run}-{replica}.bin"));
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let ceiling_rate = mb_per_sec(bytes, percentile(&ceiling, 50));
    println!(
        "  ceiling    median {ceiling_rate:>7.1} MB/s of object data (write + fsync {store_mib} MiB x{REPLICAS}; runs {})",
        rates(bytes, &ceiling)
    );

    let store = ApiStore::new(client.clone());
    let run = StoreRun {
        store: &store,
        wallet,
        source: &source,
        data: &data,
        target: &dir.join("fetched.bin"),
        node_pids,
    };
    let schemes = [
        (
            format!("{REPLICAS} replicas"),
            Redundancy::Replicas(REPLICAS as u8),
            REPLICAS as f64,
        ),
        (
            format!("RS({ERASURE_DATA}+{ERASURE_PARITY})"),
            Redundancy::Erasure {
                data: ERASURE_DATA,
                parity: ERASURE_PARITY,
            },
            f64::from(ERASURE_DATA + ERASURE_PARITY) / f64::from(ERASURE_DATA),
        ),
    ];
    for (name, redundancy, copies) in schemes {
        let measured = run.measure(redundancy)?;
        let put_rate = mb_per_sec(bytes, percentile(&measured.puts, 50));
        let get_rate = mb_per_sec(bytes, percentile(&measured.gets, 50));
        // Its own ceiling: the disk writing `copies` times the data, not 3.
        let own_ceiling = ceiling_rate * REPLICAS as f64 / copies;
        println!("  {name}:");
        println!(
            "    put      median {put_rate:>7.1} MB/s  (runs {})   target >= {PUT_TARGET_MB_PER_SEC} MB/s: {}",
            rates(bytes, &measured.puts),
            verdict(put_rate >= PUT_TARGET_MB_PER_SEC)
        );
        println!("             {}", measured.put_cpu);
        println!(
            "    get      median {get_rate:>7.1} MB/s  (runs {})   target >= {GET_TARGET_MB_PER_SEC} MB/s: {}",
            rates(bytes, &measured.gets),
            verdict(get_rate >= GET_TARGET_MB_PER_SEC)
        );
        println!(
            "             of which the final fsync of the file: median {:.1} ms; {}",
            ms(percentile(&measured.get_syncs, 50)),
            measured.get_cpu
        );
        let sink_rate = mb_per_sec(bytes, percentile(&measured.sink_gets, 50));
        println!(
            "    get into memory  median {sink_rate:>7.1} MB/s  (runs {})   target >= {GET_TARGET_MB_PER_SEC} MB/s: {}",
            rates(bytes, &measured.sink_gets),
            verdict(sink_rate >= GET_TARGET_MB_PER_SEC)
        );
        println!("             {}", measured.sink_cpu);
        // One file's write + fsync: the most a get into a file can reach.
        let file_ceiling = ceiling_rate * REPLICAS as f64;
        println!(
            "    put / ceiling = {:.2}  (put / the ceiling of its own {copies:.1}x writes, {own_ceiling:.1} MB/s = {:.2}); \
             get / one file's write + fsync ({file_ceiling:.1} MB/s) = {:.2}",
            ratio(put_rate, ceiling_rate),
            ratio(put_rate, own_ceiling),
            ratio(get_rate, file_ceiling)
        );
    }
    Ok(())
}

fn ratio(rate: f64, ceiling: f64) -> f64 {
    if ceiling > 0.0 { rate / ceiling } else { 0.0 }
}

/// What the store runs share: the store, the file and where gets write.
struct StoreRun<'a> {
    store: &'a ApiStore,
    wallet: &'a Keypair,
    source: &'a Path,
    data: &'a [u8],
    target: &'a Path,
    node_pids: &'a [u32],
}

/// One redundancy's runs: each put's and each get's time, the gets' final
/// fsyncs, and the CPU both spent.
struct Measured {
    puts: Vec<Duration>,
    gets: Vec<Duration>,
    get_syncs: Vec<Duration>,
    /// Gets of the same objects into memory (no file): the network's part.
    sink_gets: Vec<Duration>,
    put_cpu: CpuSpent,
    get_cpu: CpuSpent,
    sink_cpu: CpuSpent,
}

impl StoreRun<'_> {
    /// [`STORE_RUNS`] puts of the file with `redundancy`, then a get of each
    /// (written, flushed and fsynced like `store get`, and compared).
    fn measure(&self, redundancy: Redundancy) -> anyhow::Result<Measured> {
        let options = PutOptions {
            name: Some("random.bin".into()),
            redundancy,
            ..PutOptions::default()
        };
        let mut measured = Measured {
            puts: Vec::with_capacity(STORE_RUNS),
            gets: Vec::with_capacity(STORE_RUNS),
            get_syncs: Vec::with_capacity(STORE_RUNS),
            sink_gets: Vec::with_capacity(STORE_RUNS),
            put_cpu: CpuSpent::default(),
            get_cpu: CpuSpent::default(),
            sink_cpu: CpuSpent::default(),
        };
        let mut cids = Vec::with_capacity(STORE_RUNS);
        for run in 0..STORE_RUNS {
            let file = File::open(self.source)
                .with_context(|| format!("opening {}", self.source.display()))?;
            let clock = CpuClock::start(self.node_pids)?;
            let started = Instant::now();
            let receipt = put_object(self.store, file, &self.wallet.public(), &options)
                .with_context(|| format!("store put run {run} ({redundancy:?})"))?;
            measured.puts.push(started.elapsed());
            measured.put_cpu.add(clock.stop()?);
            cids.push(receipt.manifest_cid);
        }
        let target = self.target;
        for (run, cid) in cids.iter().enumerate() {
            let file =
                File::create(target).with_context(|| format!("creating {}", target.display()))?;
            let clock = CpuClock::start(self.node_pids)?;
            let started = Instant::now();
            let mut writer = BufWriter::new(file);
            get_object(self.store, cid, &self.wallet.x25519_secret(), &mut writer)
                .with_context(|| format!("store get run {run} of {cid}"))?;
            let file = writer
                .into_inner()
                .map_err(|e| anyhow!("flushing {}: {}", target.display(), e.error()))?;
            let syncing = Instant::now();
            file.sync_all()
                .with_context(|| format!("syncing {}", target.display()))?;
            measured.get_syncs.push(syncing.elapsed());
            measured.gets.push(started.elapsed());
            measured.get_cpu.add(clock.stop()?);
            ensure_same(target, self.data)
                .with_context(|| format!("store get run {run} of {cid}"))?;
        }
        // The same gets into memory, after the file's: what the network path
        // does alone, without the file system's page allocation and
        // writeback (on this kind of machine, pages the page cache takes
        // fresh from the host write at a few hundred MB/s).
        for (run, cid) in cids.iter().enumerate() {
            let clock = CpuClock::start(self.node_pids)?;
            let started = Instant::now();
            let receipt = get_object(self.store, cid, &self.wallet.x25519_secret(), io::sink())
                .with_context(|| format!("store get run {run} of {cid} into memory"))?;
            measured.sink_gets.push(started.elapsed());
            measured.sink_cpu.add(clock.stop()?);
            ensure!(
                receipt.size_bytes == self.data.len() as u64,
                "store get run {run} of {cid} into memory read {} bytes, not {}",
                receipt.size_bytes,
                self.data.len()
            );
        }
        std::fs::remove_file(target).with_context(|| format!("removing {}", target.display()))?;
        Ok(measured)
    }
}

/// CPU time the nodes and this process (the client) spent over a stretch of
/// wall time: tells a CPU-bound figure from one that waits.
struct CpuClock<'a> {
    pids: &'a [u32],
    nodes_ticks: u64,
    client_ticks: u64,
    started: Instant,
}

/// What [`CpuClock`]s measured (summed over runs).
#[derive(Default)]
struct CpuSpent {
    nodes: Duration,
    client: Duration,
    wall: Duration,
}

impl CpuSpent {
    fn add(&mut self, other: CpuSpent) {
        self.nodes += other.nodes;
        self.client += other.client;
        self.wall += other.wall;
    }
}

impl<'a> CpuClock<'a> {
    fn start(pids: &'a [u32]) -> anyhow::Result<CpuClock<'a>> {
        let (nodes_ticks, client_ticks) = cpu_ticks(pids)?;
        Ok(CpuClock {
            pids,
            nodes_ticks,
            client_ticks,
            started: Instant::now(),
        })
    }

    fn stop(self) -> anyhow::Result<CpuSpent> {
        let wall = self.started.elapsed();
        let (nodes, client) = cpu_ticks(self.pids)?;
        let time = |ticks: u64| Duration::from_millis(ticks * 1_000 / CLOCK_TICKS_PER_SEC);
        Ok(CpuSpent {
            nodes: time(nodes.saturating_sub(self.nodes_ticks)),
            client: time(client.saturating_sub(self.client_ticks)),
            wall,
        })
    }
}

impl std::fmt::Display for CpuSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let busy = (self.nodes + self.client).as_secs_f64();
        let wall = self.wall.as_secs_f64();
        write!(
            f,
            "cpu: nodes {:.2} s + client {:.2} s in {:.2} s wall = {:.0}% of {cores} cores",
            self.nodes.as_secs_f64(),
            self.client.as_secs_f64(),
            wall,
            if wall > 0.0 {
                busy * 100.0 / (wall * cores as f64)
            } else {
                0.0
            }
        )
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times: Linux's `USER_HZ`,
/// 100 on every architecture it exports to user space.
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// User + system ticks of the processes `pids` (summed) and of this process.
fn cpu_ticks(pids: &[u32]) -> anyhow::Result<(u64, u64)> {
    let ticks = |path: &str| -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        // Fields after the command name (which may hold spaces) in parentheses;
        // utime and stime are the 14th and 15th fields, the 12th and 13th here.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| anyhow!("{path}: no command name"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |index: usize| -> anyhow::Result<u64> {
            fields
                .get(index)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| anyhow!("{path}: field {} is not a number", index + 3))
        };
        Ok(field(11)? + field(12)?)
    };
    let mut nodes = 0;
    for pid in pids {
        nodes += ticks(&format!("/proc/{pid}/stat"))?;
    }
    Ok((nodes, ticks("/proc/self/stat")?))
}

/// Writes `data` to `path` in large writes and fsyncs it.
fn write_synced(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for piece in data.chunks(WRITE_BYTES) {
        file.write_all(piece)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// Checks that the file at `path` holds exactly `data`.
fn ensure_same(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; WRITE_BYTES];
    let mut offset = 0;
    loop {
        let read = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        let end = offset + read;
        ensure!(
            end <= data.len() && buf[..read] == data[offset..end],
            "the object read back differs from the file stored at byte {offset}"
        );
        offset = end;
    }
    ensure!(
        offset == data.len(),
        "the object read back has {offset} bytes, the file stored {}",
        data.len()
    );
    Ok(())
}

fn bench_idle_memory(devnet: &Devnet) -> anyhow::Result<()> {
    std::thread::sleep(IDLE_WAIT);
    println!(
        "\nidle memory ({} s after the runs, VmRSS; MB = 1e6 bytes):",
        IDLE_WAIT.as_secs()
    );
    let mut max_kib = 0;
    for node in &devnet.nodes {
        let path = format!("/proc/{}/status", node.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let Some(kib) = proc_kib(&status, "VmRSS:") else {
            bail!("{path} has no VmRSS line (did {} exit?)", node.name);
        };
        max_kib = max_kib.max(kib);
        println!(
            "  {:<7} {:<9} {:>6.1} MB",
            node.name,
            node.ready.role,
            kib_to_mb(kib)
        );
    }
    println!(
        "  max               {:>6.1} MB   target <= {IDLE_RSS_TARGET_MB} MB: {}",
        kib_to_mb(max_kib),
        verdict(kib_to_mb(max_kib) <= IDLE_RSS_TARGET_MB)
    );
    Ok(())
}

/// The value in KiB of a `/proc` line such as `VmRSS:   12345 kB`.
fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / BYTES_PER_MB
}

/// The `pct`th percentile (nearest rank; 0 is the minimum, 100 the maximum).
fn percentile(samples: &[Duration], pct: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * pct)
        .div_ceil(100)
        .clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(Duration::ZERO)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn mb_per_sec(bytes: usize, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / BYTES_PER_MB / secs
    } else {
        0.0
    }
}

/// Every run's rate, in run order.
fn rates(bytes: usize, runs: &[Duration]) -> String {
    runs.iter()
        .map(|took| format!("{:.1}", mb_per_sec(bytes, *took)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

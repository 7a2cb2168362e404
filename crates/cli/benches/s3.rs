//! The S3 benchmark, side by side with garage's figures: a devnet of three
//! providers (as `peercloud node` processes, replication 3, one validator
//! beside them) and its node-1 S3 gateway, driven by awscli for the large
//! transfers and by boto3 (awscli's own botocore) for the small puts:
//!
//! 1. PUT of 256 MiB of unique random data (`aws s3 cp`, multipart as
//!    awscli cuts it), median of 3; GET of it back to a file, median of 3.
//! 2. 4 KiB PUTs from one client and from 16 client processes (boto3 `put_object`).
//! 3. Each node's resident memory idle (before the runs) and its peak
//!    (`VmHWM`, read after the PUTs).
//!
//! garage v2.0.0's figures, measured on a machine like this one (3 nodes,
//! replication 3, awscli): PUT 54.5 MB/s, GET 302 MB/s, 4 KiB PUTs 17.8
//! ops/s from one thread and 231 from 16, idle memory 26-28 MB per node,
//! 337 MB at peak. The targets: PUT at least 3x, GET 1.5x, small PUTs 10x
//! and 2x, idle memory no higher, peak under half. Each ratio is printed.
//!
//! Run: `cargo bench -p peercloud-cli --bench s3` (needs awscli and boto3:
//! `pip install awscli boto3`). `PEERCLOUD_BENCH_S3_MIB` changes the large
//! object's size, `PEERCLOUD_BENCH_KEEP=1` keeps the devnet directory.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use peercloud_client::NodeClient;
use peercloud_devnet::{Devnet, UpOptions, awscli, init, node_dir};
use peercloud_node::s3::keys::{S3_KEYS_FILE, S3Key, S3Keys};
use peercloud_types::{Amount, Keypair};

/// Providers: garage's three nodes.
const PROVIDERS: usize = 3;
/// The large object, MiB.
const LARGE_MIB_DEFAULT: u64 = 256;
/// Runs of each large transfer.
const RUNS: usize = 3;
/// Small PUTs from one thread, and from each of the 16.
const SMALL_PUTS: usize = 200;
/// Threads of the parallel small PUTs.
const THREADS: usize = 16;
/// How long the nodes settle before their idle memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// MB = 1e6 bytes, as the figures are quoted.
const BYTES_PER_MB: f64 = 1e6;

/// garage v2.0.0 on a machine like this one.
mod garage {
    pub const PUT_MB_S: f64 = 54.5;
    pub const GET_MB_S: f64 = 302.0;
    pub const SMALL_ONE_THREAD: f64 = 17.8;
    pub const SMALL_SIXTEEN: f64 = 231.0;
    pub const IDLE_MB: f64 = 28.0;
    pub const PEAK_MB: f64 = 337.0;
}

/// The small PUTs: `threads` client processes (not Python threads, which
/// one interpreter lock would serialize: the client, not the gateway, would
/// be measured), each with its own boto3 client, started together.
const SMALL_SCRIPT: &str = r#"
import sys, time, multiprocessing, boto3
endpoint, ak, sk, bucket, count, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def work(args):
    w, start = args
    c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1")
    c.head_bucket(Bucket=bucket)
    body = bytes(4096)
    while time.time() < start:
        time.sleep(0.001)
    for i in range(count):
        c.put_object(Bucket=bucket, Key=f"small/{workers}/{w}/{i}", Body=body)
    return time.time()
if __name__ == "__main__":
    start = time.time() + 2.0
    with multiprocessing.Pool(workers) as pool:
        ends = pool.map(work, [(w, start) for w in range(workers)])
    print(count * workers / (max(ends) - start))
"#;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s3 bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_peercloud"));
    ensure!(
        exe.is_file(),
        "the peercloud binary is missing at {}",
        exe.display()
    );
    for (program, args) in [
        ("aws", &["--version"][..]),
        ("python3", &["-c", "import boto3"][..]),
    ] {
        let present = Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success());
        ensure!(
            present,
            "{program} {} failed: pip install awscli boto3",
            args.join(" ")
        );
    }
    let large_mib: u64 = match std::env::var("PEERCLOUD_BENCH_S3_MIB") {
        Ok(v) => v.parse().context("PEERCLOUD_BENCH_S3_MIB")?,
        Err(_) => LARGE_MIB_DEFAULT,
    };
    let temp = tempfile::Builder::new()
        .prefix("peercloud-s3-bench-")
        .tempdir()?;
    let dir = temp.path().to_owned();
    if std::env::var("PEERCLOUD_BENCH_KEEP").is_ok_and(|v| v == "1") {
        let _ = temp.keep();
    }
    let wallet = Keypair::generate();
    let devnet_dir = dir.join("devnet");
    init(&devnet_dir, PROVIDERS, &wallet.account_id())?;
    let options = UpOptions {
        exe,
        env: Vec::new(),
        log: std::env::var("PEERCLOUD_LOG").ok(),
        netns: Vec::new(),
    };
    let devnet = Devnet::up(&devnet_dir, PROVIDERS, &options)?;
    let node = node_dir(&devnet_dir, 1);
    let client = NodeClient::from_node_dir(&node)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.ledger()?.nodes.len() < PROVIDERS {
        ensure!(
            Instant::now() < deadline,
            "the providers did not register within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cluster = devnet.cluster;
    let key = S3Key::generate(&wallet, cluster, Amount::from_tokens(100))?;
    S3Keys {
        keys: vec![key.clone()],
    }
    .save(&node.join(S3_KEYS_FILE))?;
    let endpoint = std::fs::read_to_string(node.join(peercloud_api::S3_ADDR_FILE))?
        .trim()
        .to_owned();
    println!(
        "s3 bench: devnet of 1 validator + {PROVIDERS} providers (3 replicas) in {}",
        dir.display()
    );

    std::thread::sleep(SETTLE);
    let pids: Vec<(String, u32)> = devnet
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.pid()))
        .collect();
    let idle: Vec<f64> = pids
        .iter()
        .map(|(_, pid)| proc_mb(*pid, "VmRSS:"))
        .collect::<anyhow::Result<_>>()?;

    let aws = |args: &[&str]| -> anyhow::Result<()> {
        let out = awscli::command(&endpoint, &key.access_key, &key.secret_key)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "aws {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    aws(&["s3", "mb", "s3://bench"])?;

    let bytes = large_mib << 20;
    let file = dir.join("large.bin");
    let back = dir.join("back.bin");
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for run in 0..RUNS {
        write_random(&file, bytes, run as u64)?;
        let key_name = format!("s3://bench/large-{run}.bin");
        let started = Instant::now();
        aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap_or_default(),
            &key_name,
        ])?;
        puts.push(started.elapsed());
        let started = Instant::now();
        aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            &key_name,
            back.to_str().unwrap_or_default(),
        ])?;
        gets.push(started.elapsed());
        ensure!(
            std::fs::metadata(&back)?.len() == bytes,
            "the object came back at another size"
        );
    }
    let peak: Vec<f64> = pids
        .iter()
        .map(|(_, pid)| proc_mb(*pid, "VmHWM:"))
        .collect::<anyhow::Result<_>>()?;
    let small = |threads: usize| -> anyhow::Result<f64> {
        let count = if threads == 1 {
            SMALL_PUTS
        } else {
            SMALL_PUTS / 4
        };
        let out = Command::new("python3")
            .args([
                "-c",
                SMALL_SCRIPT,
                &endpoint,
                &key.access_key,
                &key.secret_key,
                "bench",
            ])
            .arg(count.to_string())
            .arg(threads.to_string())
            .env_remove("AWS_CA_BUNDLE")
            .output()?;
        ensure!(
            out.status.success(),
            "small puts: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    let one = small(1)?;
    let sixteen = small(THREADS)?;

    let rate = |d: &Duration| bytes as f64 / BYTES_PER_MB / d.as_secs_f64();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let put = rate(&median(puts.clone()));
    let get = rate(&median(gets.clone()));
    let runs = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1}", rate(d)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let idle_max = idle.iter().cloned().fold(0.0, f64::max);
    let peak_max = peak.iter().cloned().fold(0.0, f64::max);
    println!(
        "\n{large_mib} MiB of unique random data, awscli; 4 KiB puts with boto3 ({SMALL_PUTS} from one client, {} from each of {THREADS} client processes)",
        SMALL_PUTS / 4
    );
    println!("  figure                 peercloud       garage   ratio   target");
    let line = |name: &str, ours: f64, theirs: f64, unit: &str, target: &str, ok: bool| {
        println!(
            "  {name:<22} {ours:>8.1} {unit:<5} {theirs:>7.1}   {:>5.2}   {target} {}",
            ours / theirs,
            if ok { "met" } else { "MISSED" }
        );
    };
    line(
        "PUT",
        put,
        garage::PUT_MB_S,
        "MB/s",
        ">= 3x",
        put >= 3.0 * garage::PUT_MB_S,
    );
    line(
        "GET",
        get,
        garage::GET_MB_S,
        "MB/s",
        ">= 1.5x",
        get >= 1.5 * garage::GET_MB_S,
    );
    line(
        "4 KiB PUT, 1 client",
        one,
        garage::SMALL_ONE_THREAD,
        "op/s",
        ">= 10x",
        one >= 10.0 * garage::SMALL_ONE_THREAD,
    );
    line(
        "4 KiB PUT, 16 clients",
        sixteen,
        garage::SMALL_SIXTEEN,
        "op/s",
        ">= 2x",
        sixteen >= 2.0 * garage::SMALL_SIXTEEN,
    );
    line(
        "idle memory (max)",
        idle_max,
        garage::IDLE_MB,
        "MB",
        "<= 1x",
        idle_max <= garage::IDLE_MB,
    );
    line(
        "peak memory (max)",
        peak_max,
        garage::PEAK_MB,
        "MB",
        "< 0.5x",
        peak_max < 0.5 * garage::PEAK_MB,
    );
    println!(
        "  PUT runs {} MB/s; GET runs {} MB/s",
        runs(&puts),
        runs(&gets)
    );
    for ((name, _), (i, p)) in pids.iter().zip(idle.iter().zip(&peak)) {
        println!("  {name:<7} idle {i:>6.1} MB   peak {p:>6.1} MB");
    }
    drop(devnet);
    Ok(())
}

/// `len` bytes of fast pseudo-random data, different for each `seed`.
fn write_random(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let mut state =
        0x9e37_79b9_7f4a_7c15_u64 ^ (seed.wrapping_add(1)).wrapping_mul(0xa076_1d64_78bd_642f);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// A `/proc/<pid>/status` figure (`VmRSS:`, `VmHWM:`) in MB.
fn proc_mb(pid: u32, key: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{path} has no {key} line"))?;
    Ok(kib as f64 * 1024.0 / BYTES_PER_MB)
}

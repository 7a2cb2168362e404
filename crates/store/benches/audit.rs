//! The cost of one proof-of-storage challenge on a 1 MiB sealed chunk, and
//! what auditing a node's 1 TiB at one challenge per chunk per day costs it.
//!
//! - `audit/derive_challenge`: drawing the leaves from a seed.
//! - `audit/read_check_1MiB`: the BLAKE3 pass a holder's verified store read
//!   makes before it proves (a reference: the store's, not the audit's).
//! - `audit/prove_1MiB`: the holder's proof from bytes in memory (rebuilds the
//!   chunk's hashes, then encodes the challenged leaves).
//! - `audit/verify`: the auditor's check against the CID.
//!
//! After the criterion runs, a report measures the same steps again (median of
//! a few hundred runs), prints the proof's size and computes the budget of
//! 1 TiB stored as 1 MiB chunks, each challenged once a day.
//!
//! Run: `cargo bench -p peercloud-store --bench audit -- --warm-up-time 1 --measurement-time 5`

// A bench has no caller to report an error to: a failure should abort it loudly.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use peercloud_store::audit::{AUDIT_LEAVES, Challenge, prove, verify};
use peercloud_store::{CHUNK_BYTES_DEFAULT, TAG_BYTES};
use peercloud_types::{ContentId, Hash32, encode, encoding::encode_body_into};

/// A sealed 1 MiB chunk: the plaintext chunk and its seal tag.
const CHUNK_BYTES: usize = CHUNK_BYTES_DEFAULT as usize + TAG_BYTES;
/// Bytes a node stores in the budget: 1 TiB.
const STORED_BYTES: u64 = 1 << 40;
/// Challenges per chunk per day.
const CHALLENGES_PER_DAY: u64 = 1;
/// Seconds in a day.
const DAY_SECS: f64 = 86_400.0;
/// Link of the bandwidth share: 100 Mbit/s, a modest home uplink.
const LINK_BYTES_PER_SEC: f64 = 100e6 / 8.0;
/// Runs of each step in the report.
const REPORT_RUNS: usize = 300;

fn sealed_chunk() -> Vec<u8> {
    let mut out = vec![0u8; CHUNK_BYTES];
    blake3::Hasher::new()
        .update(b"peercloud audit bench")
        .finalize_xof()
        .fill(&mut out);
    out
}

fn seed(n: u64) -> Hash32 {
    Hash32::of(&n.to_le_bytes())
}

fn audit(c: &mut Criterion) {
    let bytes = sealed_chunk();
    let cid = ContentId::of(&bytes);
    let len = bytes.len() as u64;
    let challenge = Challenge::derive(&seed(1), &cid, len);
    let proof = prove(&bytes, &challenge).unwrap();
    let mut group = c.benchmark_group("audit");
    group.bench_function("derive_challenge", |b| {
        b.iter(|| Challenge::derive(black_box(&seed(2)), &cid, len))
    });
    group.throughput(Throughput::Bytes(len));
    group.bench_function("read_check_1MiB", |b| {
        b.iter(|| ContentId::of(black_box(&bytes)))
    });
    group.bench_function("prove_1MiB", |b| {
        b.iter(|| prove(black_box(&bytes), &challenge).unwrap())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter(|| verify(&cid, len, &challenge, black_box(&proof)).unwrap())
    });
    group.finish();
}

/// Median wall time of `run`, over [`REPORT_RUNS`] runs.
fn median(mut run: impl FnMut(u64)) -> Duration {
    let mut times: Vec<Duration> = (0..REPORT_RUNS as u64)
        .map(|n| {
            let start = Instant::now();
            run(n);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report() {
    let bytes = sealed_chunk();
    let cid = ContentId::of(&bytes);
    let len = bytes.len() as u64;
    let challenges: Vec<Challenge> = (0..REPORT_RUNS as u64)
        .map(|n| Challenge::derive(&seed(n), &cid, len))
        .collect();
    let proofs: Vec<_> = challenges
        .iter()
        .map(|c| prove(&bytes, c).unwrap())
        .collect();
    let read = median(|_| {
        black_box(ContentId::of(black_box(&bytes)));
    });
    let proving = median(|n| {
        black_box(prove(black_box(&bytes), &challenges[n as usize]).unwrap());
    });
    let verifying = median(|n| {
        let n = n as usize;
        verify(&cid, len, &challenges[n], black_box(&proofs[n])).unwrap();
    });
    let proof_sizes: Vec<usize> = proofs.iter().map(|p| encode(p).len()).collect();
    let proof_max = proof_sizes.iter().copied().max().unwrap_or(0);
    let proof_mean = proof_sizes.iter().sum::<usize>() as f64 / proof_sizes.len() as f64;
    // The request on the wire: a message header (kind, version, variant),
    // the CID and the challenge.
    let mut request = Vec::new();
    encode_body_into(&(cid, &challenges[0]), &mut request);
    let request_bytes = 3 + request.len();

    let chunks = STORED_BYTES / u64::from(CHUNK_BYTES_DEFAULT);
    let per_sec = (chunks * CHALLENGES_PER_DAY) as f64 / DAY_SECS;
    let holder_secs = (read + proving).as_secs_f64();
    let bytes_per_audit = proof_mean + request_bytes as f64;
    println!();
    println!("audit report: one challenge of {AUDIT_LEAVES} leaves on a {len}-byte sealed chunk");
    println!("  holder: verified store read {read:?} + prove {proving:?} (median)");
    println!("  auditor: verify {verifying:?} (median)");
    println!(
        "  proof: {proof_mean:.0} bytes on average, {proof_max} at most over {REPORT_RUNS} seeds; request {request_bytes} bytes"
    );
    println!(
        "budget: 1 TiB as {chunks} chunks, {CHALLENGES_PER_DAY} challenge per chunk per day = {per_sec:.2} audits/s"
    );
    println!(
        "  holder CPU: {:.3}% of one core ({:.0} s a day)",
        100.0 * per_sec * holder_secs,
        per_sec * holder_secs * DAY_SECS
    );
    println!(
        "  auditor CPU (all of them together): {:.4}% of one core",
        100.0 * per_sec * verifying.as_secs_f64()
    );
    println!(
        "  network: {:.1} KiB/s, {:.3}% of a 100 Mbit/s link",
        per_sec * bytes_per_audit / 1024.0,
        100.0 * per_sec * bytes_per_audit / LINK_BYTES_PER_SEC
    );
    println!(
        "  disk: the holder reads each chunk whole once a day, {:.1} MiB/s",
        per_sec * len as f64 / (1 << 20) as f64
    );
}

criterion_group!(benches, audit);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}
